"""Postprocessing on synthetic masks with known components, on sample logits, and its choice."""

from __future__ import annotations

import numpy as np
import torch

from ConfidenceSegLib.inference.postprocessing import (
    apply_per_frame,
    choose_postprocessing,
    fill_holes,
    fit_ellipse,
    keep_largest_component,
    postprocess_sample_logits,
)
from ConfidenceSegLib.quality.metrics import dice

BOTH = {"keep_largest_component": True, "fill_holes": True}


def ring_with_blob() -> tuple[np.ndarray, np.ndarray]:
    """A disc of radius 12 with a hole of radius 3, and a stray 3x3 blob; plus the filled disc alone."""
    yy, xx = np.mgrid[:48, :64]
    distance = np.hypot(yy - 24, xx - 24)
    disc = distance < 12
    mask = disc & (distance >= 3)
    mask[2:5, 55:58] = True
    return mask, disc


def test_largest_component_and_holes_have_known_sizes():
    mask, disc = ring_with_blob()
    largest = keep_largest_component(mask)
    assert largest.sum() == mask.sum() - 9 and not largest[2:5, 55:58].any()
    assert np.array_equal(fill_holes(largest), disc)
    assert np.array_equal(apply_per_frame(np.stack([mask, mask]), BOTH), np.stack([disc, disc]))
    assert not apply_per_frame(np.zeros((2, 8, 8), bool), BOTH).any()


def tilted_ellipse(wobble: float = 0.0, shape=(96, 128), centre=(46.3, 60.7), axes=(30.0, 18.0),
                   angle=0.5) -> np.ndarray:
    """A filled ellipse (semi-axes ``axes`` in pixels, rotated by ``angle`` rad) on a frame of ``shape``;
    ``wobble``: its edge bulges in and out by that fraction, 7 times around (a ragged segmentation)."""
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    dy, dx = yy - centre[0], xx - centre[1]
    u = (dy * np.cos(angle) + dx * np.sin(angle)) / axes[0]
    v = (-dy * np.sin(angle) + dx * np.cos(angle)) / axes[1]
    return np.hypot(u, v) <= 1.0 + wobble * np.sin(7 * np.arctan2(v, u))


def test_fit_ellipse_keeps_an_ellipse_and_recovers_it_from_a_ragged_edge():
    truth = tilted_ellipse()
    assert dice(fit_ellipse(truth), truth) > 0.995
    ragged = tilted_ellipse(wobble=0.08)
    assert dice(ragged, truth) < 0.96
    assert dice(fit_ellipse(ragged), truth) > 0.99
    assert not fit_ellipse(np.zeros((8, 8), bool)).any()
    stray = truth.copy()
    stray[85:95, 110:125] = True  # a piece far from the structure: the ellipse fits the structure alone
    assert np.array_equal(fit_ellipse(stray), fit_ellipse(truth))


def test_sample_logits_follow_the_steps_and_keep_their_entropy():
    mask, disc = ring_with_blob()
    logits = torch.where(torch.from_numpy(mask), 2.0, -1.5)[None, None, None].repeat(3, 1, 1, 1, 1)
    logits[1] *= 0.5  # samples differ in confidence
    changed = postprocess_sample_logits(logits, [BOTH])
    assert torch.equal(changed >= 0, torch.from_numpy(disc)[None, None, None].expand_as(changed))
    assert torch.allclose(changed.abs(), logits.abs())  # |logit| kept: same entropy
    assert torch.equal(postprocess_sample_logits(logits, [None]), logits)
    ragged = tilted_ellipse(wobble=0.08)
    with_stray = ragged.copy()
    with_stray[85:95, 110:125] = True
    ragged_logits = torch.where(torch.from_numpy(with_stray), 2.0, -1.5)[None, None, None]
    kept = postprocess_sample_logits(ragged_logits, [{"fit_ellipse": True}])[0, 0, 0] >= 0
    assert np.array_equal(kept.numpy(), fit_ellipse(ragged))  # each sample gets the ellipse of the final mask


def test_choice_keeps_a_step_only_where_it_raises_validation_dice():
    square = np.zeros((48, 64), bool)
    square[12:36, 12:36] = True  # no ellipse: only the largest component and the filled hole restore it
    mask = square.copy()
    mask[22:26, 22:26] = False
    mask[2:5, 55:58] = True
    chosen = choose_postprocessing([np.where(mask, 0.9, 0.1)[None]], [square[None]], dice)[0]
    assert chosen["keep_largest_component"] and chosen["fill_holes"] and not chosen["fit_ellipse"]
    assert chosen["validation_dice"]["keep_largest_component+fill_holes"] == 1.0
    two_true_parts = np.zeros((1, 48, 64), bool)
    two_true_parts[0, 5:15, 5:15] = two_true_parts[0, 30:40, 40:50] = True
    chosen = choose_postprocessing([np.where(two_true_parts, 0.8, 0.2)], [two_true_parts], dice)[0]
    assert not chosen["keep_largest_component"] and not chosen["fill_holes"] and not chosen["fit_ellipse"]
    band = np.zeros((1, 48, 64), bool)
    band[0, 20:26, 4:60] = True  # a thin band (a pleural line) is no ellipse: the fit stays off
    assert not choose_postprocessing([np.where(band, 0.9, 0.1)], [band], dice)[0]["fit_ellipse"]


def test_choice_fits_the_ellipse_of_an_elliptic_structure_with_a_bumpy_edge():
    truth, bumpy = tilted_ellipse(), tilted_ellipse(wobble=0.08)
    chosen = choose_postprocessing([np.where(bumpy, 0.9, 0.1)[None]], [truth[None]], dice)[0]
    assert chosen["fit_ellipse"]
    assert chosen["validation_dice"]["fit_ellipse"] > chosen["validation_dice"]["none"] + 0.01


def test_presence_threshold_empties_specks_on_frames_without_the_structure_and_keeps_small_true_ones():
    yy, xx = np.mgrid[:48, :64]
    disc = np.hypot(yy - 24, xx - 30) < 8  # ~200 px of 3072
    speck = np.zeros((48, 64), bool)
    speck[10:12, 10:12] = True  # 4 px: a false positive
    empty = np.zeros_like(disc)
    probabilities = [np.where(disc, 0.9, 0.1)[None], np.where(speck, 0.9, 0.1)[None]] * 3
    references = [disc[None], empty[None]] * 3
    chosen = choose_postprocessing(probabilities, references, dice)[0]
    fraction = chosen["min_area_fraction"]
    assert speck.sum() / speck.size < fraction <= disc.sum() / disc.size
    assert not apply_per_frame(speck[None], chosen).any() and apply_per_frame(disc[None], chosen).sum() == disc.sum()
    assert chosen["validation_dice"][f"min_area_fraction={fraction:g}"] == 1.0
    assert chosen["validation_dice"]["none"] == 0.5
    no_specks = choose_postprocessing([np.where(disc, 0.9, 0.1)[None]], [disc[None]], dice)[0]
    assert no_specks["min_area_fraction"] == 0.0  # nothing to gain: no threshold
