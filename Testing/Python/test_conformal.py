"""Split conformal lower bound: the quantile rank by hand, and coverage on synthetic exchangeable data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ConfidenceSegLib.contract import ConfidenceSegError
from ConfidenceSegLib.quality.conformal import conformal_quantile, conformal_rank, lower_bound, sigma


def test_quantile_rank_by_hand():
    residuals = [0.05, -0.02, 0.1, 0.03, 0.0, 0.07, -0.01, 0.2, 0.04]
    # n = 9, alpha = 0.1: k = ceil(10 * 0.9) = 9 -> the largest residual
    assert conformal_rank(9, 0.1) == 9
    assert conformal_quantile(residuals, 0.1) == pytest.approx(0.2)
    # alpha = 0.2: k = ceil(10 * 0.8) = 8 -> the second largest, 0.1
    assert conformal_quantile(residuals, 0.2) == pytest.approx(0.1)
    # alpha = 0.5: k = ceil(10 * 0.5) = 5 -> sorted -0.02 -0.01 0 0.03 0.04 ... -> 0.04
    assert conformal_quantile(residuals, 0.5) == pytest.approx(0.04)
    # n = 19, alpha = 0.1: k = ceil(18) = 18
    assert conformal_rank(19, 0.1) == 18
    # n = 8, alpha = 0.1: k = ceil(8.1) = 9 > 8 -> no finite quantile
    assert conformal_quantile(residuals[:8], 0.1) == math.inf
    assert conformal_quantile([], 0.1) == math.inf


def test_lower_bound_clips_and_is_conservative_without_quantile():
    assert lower_bound(0.9, 0.05) == pytest.approx(0.85)
    assert lower_bound(0.9, math.inf) == 0.0
    assert lower_bound(0.95, -0.2) == 1.0  # a negative quantile cannot push the bound above 1
    assert lower_bound(np.array([0.5, 0.9]), 0.1) == pytest.approx([0.4, 0.8])
    assert lower_bound(0.9, None, sigma(0.9)) == 0.0
    # the badge's bound: the quantile of normalised scores times the difficulty scale 1 - p + 0.05
    assert lower_bound(0.9, 0.5, sigma(0.9)) == pytest.approx(0.9 - 0.5 * 0.15)
    assert lower_bound(np.array([0.6, 0.9]), 0.5, sigma([0.6, 0.9])) == pytest.approx([0.6 - 0.225, 0.825])


def test_bad_alpha_and_residuals():
    with pytest.raises(ConfidenceSegError, match="alpha"):
        conformal_rank(10, 1.5)
    with pytest.raises(ConfidenceSegError, match="non-finite"):
        conformal_quantile([0.1, float("nan")], 0.1)


@pytest.mark.parametrize("n, alpha", [(19, 0.1), (50, 0.1), (30, 0.2)])
@pytest.mark.parametrize("normalised", [False, True], ids=["residuals", "badge scores"])
def test_empirical_coverage_on_exchangeable_data(n, alpha, normalised):
    # Each trial: n calibration cases + 1 test case, residual = predicted - true, skewed noise.
    # Exact theory for continuous residuals: coverage = k / (n + 1) with k = ceil((n+1)(1-alpha)),
    # i.e. in [1 - alpha, 1 - alpha + 1/(n+1)). With 4000 trials the standard error is ~0.005, so a
    # quantile one rank too low (coverage lower by 1/(n+1) >= 0.02) fails the test. ``normalised``: the
    # badge's scores (predicted - true) / sigma(predicted) and its bound predicted - q * sigma(predicted).
    rng = np.random.default_rng(1234)
    trials = 4000
    true = rng.beta(8, 2, size=(trials, n + 1))
    predicted = np.clip(true + rng.gamma(2.0, 0.03, size=true.shape) - 0.05, 0, 1)
    covered = 0
    for row_predicted, row_true in zip(predicted, true, strict=True):
        scale = sigma(row_predicted) if normalised else np.ones_like(row_predicted)
        q = conformal_quantile((row_predicted[:n] - row_true[:n]) / scale[:n], alpha)
        covered += row_true[n] >= lower_bound(row_predicted[n], q, scale[n])
    coverage = covered / trials
    expected = conformal_rank(n, alpha) / (n + 1)
    assert coverage >= 1 - alpha - 0.015
    assert coverage == pytest.approx(expected, abs=0.02)
