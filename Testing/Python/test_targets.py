"""Label modes: targets and weights from small confidence maps with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from ConfidenceSegLib.contract import ConfidenceSegError
from ConfidenceSegLib.training.targets import make_target

# Rater fractions of 5 raters, one pixel each: 0, 1/5, ..., 5/5.
FRACTIONS = np.array([[0.0, 0.2, 0.4, 0.6, 0.8, 1.0]], dtype=np.float32)


def test_threshold_default_is_sixty_percent():
    target, weight = make_target(FRACTIONS, "threshold")
    np.testing.assert_array_equal(target, [[0, 0, 0, 1, 1, 1]])
    np.testing.assert_array_equal(weight, np.ones_like(FRACTIONS))
    assert target.dtype == np.float32 and weight.dtype == np.float32


@pytest.mark.parametrize(("threshold", "expected"), [
    (0.3, [0, 0, 1, 1, 1, 1]), (0.5, [0, 0, 0, 1, 1, 1]), (0.7, [0, 0, 0, 0, 1, 1]), (1.0, [0, 0, 0, 0, 0, 1])])
def test_threshold_values(threshold, expected):
    target, _ = make_target(FRACTIONS, "threshold", threshold)
    np.testing.assert_array_equal(target[0], expected)


def test_threshold_counts_a_pixel_exactly_at_the_threshold():
    target, _ = make_target(np.array([[0.6, 0.59999]], np.float32), "threshold", 0.6)
    np.testing.assert_array_equal(target, [[1, 0]])


def test_ignore_band_zeroes_weights_strictly_inside_the_band():
    target, weight = make_target(FRACTIONS, "threshold", 0.6, ignore_band=(0.2, 0.8))
    np.testing.assert_array_equal(weight[0], [1, 1, 0, 0, 1, 1])
    np.testing.assert_array_equal(target[0], [0, 0, 0, 1, 1, 1])


def test_soft_target_is_the_confidence_with_unit_weight():
    target, weight = make_target(FRACTIONS, "soft")
    np.testing.assert_allclose(target, FRACTIONS)
    np.testing.assert_array_equal(weight, np.ones_like(FRACTIONS))
    assert target is not FRACTIONS


def test_weighted_target_at_half_with_agreement_weights():
    target, weight = make_target(FRACTIONS, "weighted")
    np.testing.assert_array_equal(target[0], [0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(weight[0], [1.0, 0.8, 0.6, 0.6, 0.8, 1.0], atol=1e-6)


def test_single_annotator_mask_gives_full_weight_everywhere():
    mask = np.zeros((4, 5), np.float32)
    mask[1:3, 1:4] = 1.0
    for mode in ("threshold", "soft", "weighted"):
        target, weight = make_target(mask, mode)
        np.testing.assert_array_equal(target, mask)
        np.testing.assert_array_equal(weight, np.ones_like(mask))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"mode": "fuzzy"}, "unknown label mode"),
    ({"mode": "threshold", "threshold": 0.0}, "threshold must lie"),
    ({"mode": "threshold", "ignore_band": (0.7, 0.3)}, "ignore band"),
])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ConfidenceSegError, match=message):
        make_target(FRACTIONS, **kwargs)


def test_confidence_outside_unit_interval_is_refused():
    with pytest.raises(ConfidenceSegError):
        make_target(np.array([[0.5, 1.5]], np.float32), "soft")
