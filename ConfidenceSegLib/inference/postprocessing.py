"""Mask postprocessing chosen on validation and stored in the bundle (as nnU-Net does).

Per class, three optional steps: keep the largest connected component, fill holes, replace the
mask by the moment ellipse of its largest component (all 2D per frame: 8-connected components,
holes = background not connected to the frame border, the ellipse of :func:`fit_ellipse`), then a
presence decision: a mask smaller than ``min_area_fraction`` of the frame is emptied (the class is
absent there, so the badge says ABSENT instead of rating a speck). Training tries every
combination on the validation subjects (out-of-fold predictions with ``--folds``) and keeps the
one with the best mean Dice, which scores a false segment on a frame without the structure 0;
none unless a step raises it (:func:`choose_postprocessing`). The bundle's ``config.json`` holds
``"postprocessing": {CLASS: {"keep_largest_component": bool, "fill_holes": bool, "fit_ellipse": bool,
"min_area_fraction": float, ...}}`` (a bundle without ``fit_ellipse`` does not fit one).

At prediction time the steps apply to every uncertainty sample (so that the maps and the badge's
features describe what is shown) and to the final mask. A sample's pixels that a step switches
keep their entropy: their logit changes sign (p -> 1 - p), see :func:`postprocess_sample_logits`.
The samples live on the model grid, so where the ellipse switches many pixels the heatmap's edge
there follows model-grid pixels. (Giving the samples their largest component instead of the
ellipse smoothed that edge but let 24 of 180 images of other organs PASS, against none: the
ellipse's disagreement between samples is what tells the badge that a blob is no head.) 3D models
(volumes streamed slab by slab) apply the steps to the final mask only, in 3D.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import product

import numpy as np
import torch
from scipy import ndimage

from ..contract import POSTPROCESSING_STEPS as STEPS
from ..contract import PRESENCE_STEP
from .measurements import mask_moments, moment_ellipse

#: Presence thresholds tried (fraction of the frame's pixels; 0 = any non-empty mask is present).
MIN_AREA_FRACTIONS = (0.0, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02)


def keep_largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest connected component of a boolean mask (any shape, e.g. (H, W) or (Z, Y, X); full
    connectivity); bool, the same shape."""
    labels, count = ndimage.label(mask, structure=np.ones((3,) * mask.ndim, dtype=bool))
    if count <= 1:
        return mask.astype(bool, copy=True)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """The mask with every enclosed hole filled (background not connected to the border); ``mask``: bool,
    any shape ((H, W) frame or (Z, Y, X) volume), returned bool of the same shape."""
    return ndimage.binary_fill_holes(mask)


def fit_ellipse(mask: np.ndarray) -> np.ndarray:
    """The filled ellipse with the centroid and second moments of a 2D boolean mask's largest
    connected component (H, W): one structure, so stray pieces far away do not drag the ellipse.

    It is the ellipse whose circumference :mod:`.measurements` reports
    (:func:`~.measurements.moment_ellipse`). For a structure that is an ellipse (the fetal head of
    HC18) it smooths a ragged edge; validation decides whether it helps.
    """
    moments = mask_moments(keep_largest_component(mask))
    if moments[0] == 0:
        return mask.astype(bool, copy=True)
    centre, covariance = moment_ellipse(moments)
    inverse = np.linalg.inv(covariance)
    dy = np.arange(mask.shape[0], dtype=np.float64)[:, None] - centre[0]
    dx = np.arange(mask.shape[1], dtype=np.float64)[None, :] - centre[1]
    return inverse[0, 0] * dy * dy + 2.0 * inverse[0, 1] * dy * dx + inverse[1, 1] * dx * dx <= 4.0


def class_steps(postprocessing: dict, classes: Sequence[str]) -> list[dict | None]:
    """Each class's entry of a bundle's ``postprocessing`` (None where it has none)."""
    return [postprocessing.get(name) for name in classes]


def has_steps(steps: dict | None) -> bool:
    """Whether a class's postprocessing entry changes any mask."""
    return bool(steps) and (any(steps.get(step) for step in STEPS) or bool(steps.get(PRESENCE_STEP)))


def apply_steps(mask: np.ndarray, steps: dict | None) -> np.ndarray:
    """``mask`` after the chosen steps (``steps``: a class's postprocessing entry, None = nothing).

    ``mask``: bool, a 2D frame (H, W) or a 3D model's volume (Z, Y, X) (``fit_ellipse``: 2D only); same shape out.
    """
    if not steps or not mask.any():
        return mask
    if steps.get("keep_largest_component"):
        mask = keep_largest_component(mask)
    if steps.get("fill_holes"):
        mask = fill_holes(mask)
    if steps.get("fit_ellipse"):
        mask = fit_ellipse(mask)
    if mask.sum() < float(steps.get(PRESENCE_STEP) or 0.0) * mask.size:
        mask = np.zeros_like(mask, dtype=bool)
    return mask


def apply_per_frame(mask: np.ndarray, steps: dict | None) -> np.ndarray:
    """:func:`apply_steps` on each 2D frame of (..., H, W) masks."""
    if not has_steps(steps):
        return mask
    flat = mask.reshape(-1, *mask.shape[-2:])
    return np.stack([apply_steps(frame, steps) for frame in flat]).reshape(mask.shape)


def postprocess_sample_logits(logits: torch.Tensor, class_steps: Sequence[dict | None]) -> torch.Tensor:
    """Logits of samples (S, B, C, h, w) whose masks (logit >= 0) follow each class's steps.

    Pixels a step switches get the negated logit (p -> 1 - p): the mask changes, the sample's
    entropy there does not.
    """
    active = [c for c, steps in enumerate(class_steps) if has_steps(steps)]
    if not active:
        return logits
    masks = (logits[:, :, active] >= 0).cpu().numpy()
    kept = apply_per_frame(masks, class_steps[active[0]]) if len(active) == 1 else np.stack(
        [apply_per_frame(masks[:, :, i], class_steps[c]) for i, c in enumerate(active)], axis=2)
    switched = torch.from_numpy(kept != masks).to(logits.device)
    logits = logits.clone()
    logits[:, :, active] = torch.where(switched, -logits[:, :, active], logits[:, :, active])
    return logits


def postprocessing_scores(probabilities: Sequence[np.ndarray], references: Sequence[np.ndarray],
                          dice: Callable[[np.ndarray, np.ndarray], float], threshold: float = 0.5) -> np.ndarray:
    """Dice of every case, class, step combination and presence threshold: (N, C, 2**len(STEPS),
    len(MIN_AREA_FRACTIONS)). ``probabilities`` / ``references``: per case (C, ...) arrays on the
    image grid (reference already binary)."""
    combinations = list(product((False, True), repeat=len(STEPS)))
    scores = np.zeros((len(probabilities), probabilities[0].shape[0], len(combinations), len(MIN_AREA_FRACTIONS)))
    for n, (probability, reference) in enumerate(zip(probabilities, references, strict=True)):
        for c in range(probability.shape[0]):
            empty_score = dice(np.zeros_like(reference[c], dtype=bool), reference[c])
            for j, combination in enumerate(combinations):
                mask = apply_per_frame(probability[c] >= threshold, dict(zip(STEPS, combination, strict=True)))
                frames = mask.reshape(-1, *mask.shape[-2:]) if mask.ndim > 2 else mask[None]
                full = dice(mask, reference[c])
                for f, fraction in enumerate(MIN_AREA_FRACTIONS):
                    small = [frame.sum() < fraction * frame.size for frame in frames]
                    scores[n, c, j, f] = full if not any(small) else (empty_score if all(small) else dice(
                        apply_per_frame(mask, {PRESENCE_STEP: fraction}), reference[c]))
    return scores


def choose_from_scores(scores: np.ndarray) -> dict:
    """Per class index, the steps and presence threshold with the best mean Dice over the cases of
    ``scores`` (N, C, combinations, fractions) (:func:`postprocessing_scores`); none unless one raises it;
    ties: fewer steps, lower threshold.
    ``{c: {"keep_largest_component", "fill_holes", "min_area_fraction", "validation_dice"}}``."""
    combinations = list(product((False, True), repeat=len(STEPS)))
    means = scores.mean(axis=0)  # (C, combinations, fractions)
    chosen = {}
    for c in range(means.shape[0]):
        keys = {(j, f): means[c, j, f] for j in range(len(combinations)) for f in range(len(MIN_AREA_FRACTIONS))}
        best = max(keys, key=lambda key: (keys[key], -sum(combinations[key[0]]), -key[1]))
        if keys[best] <= keys[(0, 0)]:
            best = (0, 0)
        steps, fraction = combinations[best[0]], MIN_AREA_FRACTIONS[best[1]]
        chosen[c] = {**dict(zip(STEPS, steps, strict=True)), PRESENCE_STEP: fraction,
                     "validation_dice": {_combination_name(combinations[j], MIN_AREA_FRACTIONS[f]): round(float(v), 4)
                                         for (j, f), v in keys.items() if f in (0, best[1])}}
    return chosen


def choose_postprocessing(probabilities: Sequence[np.ndarray], references: Sequence[np.ndarray],
                          dice: Callable[[np.ndarray, np.ndarray], float], threshold: float = 0.5) -> dict:
    """:func:`choose_from_scores` of the validation cases' :func:`postprocessing_scores`; ``probabilities`` /
    ``references``: one (C, H, W) float / bool array per validation frame (image grid)."""
    return choose_from_scores(postprocessing_scores(probabilities, references, dice, threshold))


def _combination_name(combination: tuple, fraction: float) -> str:
    steps = [step for step, on in zip(STEPS, combination, strict=True) if on]
    if fraction:
        steps.append(f"{PRESENCE_STEP}={fraction:g}")
    return "+".join(steps) or "none"
