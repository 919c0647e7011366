"""Confidence layers <-> confidence maps on synthetic cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from ConfidenceSegLib.annotation.layers import (
    DEFAULT_LEVELS,
    check_binary,
    confidence_map_from_segments,
    format_level,
    level_color,
    quantize_to_levels,
    rater_fraction,
    segment_name,
    segments_from_confidence_map,
    segments_from_raters,
    validate_levels,
)
from ConfidenceSegLib.contract import CLASS_TAG, CONFIDENCE_TAG, ConfidenceSegError


def _painted_map() -> np.ndarray:
    """A 6x6 map: a certain core, a likely ring piece and a possible corner."""
    confidence = np.zeros((6, 6), np.float32)
    confidence[0, :] = 0.5
    confidence[2:5, 2:5] = 0.75
    confidence[3, 3] = 1.0
    return confidence


def test_default_levels_are_valid_and_ordered():
    assert validate_levels(DEFAULT_LEVELS.values()) == sorted(DEFAULT_LEVELS.values(), reverse=True)


@pytest.mark.parametrize("levels, message", [([], "at least one"), ([0.0], r"\(0, 1\]"), ([1.2], r"\(0, 1\]"),
                                             ([0.5, 0.5], "distinct")])
def test_invalid_levels_are_refused(levels, message):
    with pytest.raises(ConfidenceSegError, match=message):
        validate_levels(levels)


def test_map_to_layers_and_back_is_exact():
    confidence = _painted_map()
    segments = segments_from_confidence_map("pleural_line", confidence, DEFAULT_LEVELS.values())
    assert [s.confidence for s in segments] == [1.0, 0.75, 0.5]
    assert [s.name for s in segments] == ["pleural_line @ 100%", "pleural_line @ 75%", "pleural_line @ 50%"]
    assert all(s.tags[CLASS_TAG] == "pleural_line" for s in segments)
    # levels are exclusive: every pixel in at most one level segment
    assert np.sum([s.mask for s in segments], axis=0).max() == 1
    assert int(segments[0].mask.sum()) == 1 and int(segments[2].mask.sum()) == 6
    np.testing.assert_array_equal(confidence_map_from_segments(segments, "pleural_line"), confidence)


def test_highest_painted_level_wins_where_levels_overlap():
    confidence = _painted_map()
    segments = segments_from_confidence_map("rib", confidence, DEFAULT_LEVELS.values())
    segments[2].mask = segments[2].mask | segments[0].mask  # 'possible' also painted over the certain pixel
    assert confidence_map_from_segments(segments, "rib")[3, 3] == 1.0


def test_values_between_levels_round_down_to_a_level():
    confidence = np.array([[0.0, 0.4, 0.5, 0.6, 0.8, 1.0]], np.float32)
    np.testing.assert_array_equal(quantize_to_levels(confidence, [1.0, 0.75, 0.5]),
                                  np.array([[0, 0, 0.5, 0.5, 0.75, 1.0]], np.float32))


def test_rater_fraction_is_k_over_r_and_gives_one_level_per_fraction():
    rng = np.random.default_rng(3)
    masks = [rng.random((9, 7)) > 0.5 for _ in range(7)]
    fraction = rater_fraction(masks)
    expected = (np.sum(masks, axis=0) / 7.0).astype(np.float32)
    np.testing.assert_array_equal(fraction, expected)
    segments = segments_from_raters("brain", masks)
    present = sorted({int(k) for k in np.unique(np.sum(masks, axis=0)) if k > 0}, reverse=True)
    assert [float(s.tags[CONFIDENCE_TAG]) for s in segments] == [k / 7 for k in present]
    np.testing.assert_array_equal(confidence_map_from_segments(segments, "brain"), expected)


def test_rater_masks_of_different_shapes_are_refused():
    with pytest.raises(ConfidenceSegError, match="rater mask 2 has shape"):
        rater_fraction([np.zeros((3, 3), bool), np.zeros((3, 4), bool)])


def test_non_binary_mask_is_refused_and_binary_accepted():
    check_binary(np.array([0, 255, 255], np.uint8), "mask")
    check_binary(np.zeros(4, np.uint8), "mask")
    with pytest.raises(ConfidenceSegError, match="not a binary mask .*values: 0, 1, 2"):
        check_binary(np.array([0, 1, 2]), "mask")


def test_unknown_class_lists_the_known_ones():
    segments = segments_from_confidence_map("rib", _painted_map())
    with pytest.raises(ConfidenceSegError, match="unknown class 'liver'.*rib"):
        confidence_map_from_segments(segments, "liver")


def test_map_with_nan_or_out_of_range_values_is_refused():
    bad = _painted_map()
    bad[0, 0] = np.nan
    with pytest.raises(ConfidenceSegError, match="NaN"):
        segments_from_confidence_map("rib", bad)
    with pytest.raises(ConfidenceSegError, match="outside"):
        segments_from_confidence_map("rib", _painted_map() * 2)


def test_colours_keep_the_class_hue_and_pale_with_lower_levels():
    strong, weak = level_color("rib", 1.0), level_color("rib", 0.25)
    saturation = lambda rgb: (max(rgb) - min(rgb)) / max(rgb)  # noqa: E731
    assert saturation(strong) > saturation(weak)
    assert level_color("rib", 0.5) != level_color("pleural_line", 0.5)
    assert all(0.0 <= c <= 1.0 for c in strong + weak)


def test_readable_names_for_rater_fractions():
    assert format_level(1 / 3) == "33.3%"
    assert segment_name("oocyte", 2 / 3) == "oocyte @ 66.7%"
