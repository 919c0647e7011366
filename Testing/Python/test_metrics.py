"""Metrics against values computed by hand on tiny synthetic cases (the arithmetic is in the comments)."""

from __future__ import annotations

import numpy as np
import pytest

from ConfidenceSegLib.contract import ConfidenceSegError
from ConfidenceSegLib.quality import metrics


def test_dice_hand_values_and_empty_convention():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[0, :3] = True  # 3 pixels
    b[0, 1:] = True  # 3 pixels, 2 shared
    # Dice = 2 * 2 / (3 + 3) = 2/3
    assert metrics.dice(a, b) == pytest.approx(2 / 3)
    assert metrics.dice(a, a) == pytest.approx(1.0)
    empty = np.zeros((4, 4), bool)
    assert metrics.dice(empty, empty) == 1.0  # documented convention: both empty -> 1
    assert metrics.dice(a, empty) == 0.0
    assert metrics.dice(empty, a) == 0.0
    # 3D and non-bool input (label values 0/2)
    c = np.zeros((2, 3, 3), np.uint8)
    c[0, 0, 0] = c[1, 0, 0] = 2
    d = np.zeros((2, 3, 3), np.uint8)
    d[0, 0, 0] = 1
    # 2 * 1 / (2 + 1) = 2/3
    assert metrics.dice(c, d) == pytest.approx(2 / 3)
    with pytest.raises(ConfidenceSegError, match="shapes differ"):
        metrics.dice(a, c)


def test_qubiq_soft_dice_hand_value():
    # Four pixels. Rater fractions (3 raters): 1, 2/3, 1/3, 0. Probabilities: 0.95, 0.55, 0.05, 0.
    raters = np.array([1.0, 2 / 3, 1 / 3, 0.0], np.float32)
    probability = np.array([0.95, 0.55, 0.05, 0.0], np.float32)
    # t = 0.1, 0.2, 0.3: raters {0,1,2}, prediction {0,1}:  Dice = 2*2/(3+2) = 0.8   (3 levels)
    # t = 0.4, 0.5:       raters {0,1},   prediction {0,1}:  Dice = 1                (2 levels)
    # t = 0.6:            raters {0,1},   prediction {0}:    Dice = 2*1/(2+1) = 2/3  (1 level)
    # t = 0.7, 0.8, 0.9:  raters {0},     prediction {0}:    Dice = 1                (3 levels)
    expected = (3 * 0.8 + 2 * 1 + 2 / 3 + 3 * 1) / 9
    assert metrics.qubiq_soft_dice(probability, raters) == pytest.approx(expected)
    # A prediction equal to the rater fraction scores 1.
    assert metrics.qubiq_soft_dice(raters, raters) == pytest.approx(1.0)


def test_ece_hand_value_and_pooling():
    # Inside the ROI: probabilities 0.15, 0.15, 0.85, 0.85, targets 0, 1, 1, 1.
    # Bin [0.1, 0.2): mean p 0.15, frequency 0.5, gap 0.35, weight 2/4
    # Bin [0.8, 0.9): mean p 0.85, frequency 1.0, gap 0.15, weight 2/4
    # ECE = 0.5 * 0.35 + 0.5 * 0.15 = 0.25
    probability = np.array([0.15, 0.15, 0.85, 0.85, 0.0, 0.01])
    target = np.array([0, 1, 1, 1, 0, 0])
    bins = metrics.calibration_bins(probability, target)  # the last two pixels lie outside the ROI
    assert bins.counts.sum() == 4
    assert metrics.expected_calibration_error(bins) == pytest.approx(0.25)
    # Pooling two images adds the bins: a second image with p 0.85 and target 0 in the high bin:
    # bin [0.8, 0.9) now has mean p 0.85, frequency 2/3, gap 0.85 - 2/3 = 0.18333, weight 3/5;
    # ECE = 2/5 * 0.35 + 3/5 * 0.18333 = 0.14 + 0.11 = 0.25
    pooled = bins + metrics.calibration_bins(np.array([0.85]), np.array([0]))
    assert metrics.expected_calibration_error(pooled) == pytest.approx(0.14 + 0.11)
    # Soft targets (rater fractions) and p = 1.0 in the last bin: p 1.0, target 0.5 -> gap 0.5
    assert metrics.expected_calibration_error(
        metrics.calibration_bins(np.array([1.0]), np.array([0.5]))) == pytest.approx(0.5)
    empty = metrics.calibration_bins(np.zeros(3), np.zeros(3))
    assert metrics.expected_calibration_error(empty) is None


def test_aurc_and_e_aurc_hand_values():
    confidence = [0.9, 0.8, 0.7, 0.6]
    dice = [0.9, 0.5, 0.8, 1.0]  # risks 0.1, 0.5, 0.2, 0.0 in confidence order
    # selective risks: 0.1, (0.1+0.5)/2 = 0.3, 0.8/3, 0.8/4 = 0.2 ; AURC = mean
    expected = (0.1 + 0.3 + 0.8 / 3 + 0.2) / 4
    coverage, risk = metrics.risk_coverage_curve(confidence, dice)
    assert coverage == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert risk == pytest.approx([0.1, 0.3, 0.8 / 3, 0.2])
    assert metrics.aurc(confidence, dice) == pytest.approx(expected)
    # oracle order by risk: 0.0, 0.1, 0.2, 0.5 -> 0, 0.05, 0.1, 0.2 ; mean 0.0875
    assert metrics.e_aurc(confidence, dice) == pytest.approx(expected - 0.0875)
    # A perfect ranking has e-AURC 0; the reversed one is worse than any other.
    assert metrics.e_aurc(dice, dice) == pytest.approx(0.0)
    assert metrics.aurc([-d for d in dice], dice) > metrics.aurc(confidence, dice)


def test_aurc_ties_are_averaged():
    # All confidences equal: every coverage has the mean risk (0.1 + 0.5) / 2 = 0.3 whatever the order.
    assert metrics.aurc([1, 1], [0.9, 0.5]) == pytest.approx(0.3)
    assert metrics.aurc([1, 1], [0.5, 0.9]) == pytest.approx(0.3)
    assert metrics.aurc([], []) is None


def test_failure_auroc_and_spearman():
    dice = [0.95, 0.9, 0.6, 0.7]  # failures (Dice < 0.8): cases 2 and 3
    confidence = [0.9, 0.5, 0.6, 0.1]
    # pairs (failure, good) where the failure has the lower confidence:
    # (0.6 vs 0.9) yes, (0.6 vs 0.5) no, (0.1 vs 0.9) yes, (0.1 vs 0.5) yes -> 3/4
    assert metrics.failure_auroc(confidence, dice) == pytest.approx(0.75)
    assert metrics.failure_auroc(confidence, [0.9] * 4) is None
    # ranks of confidence 4, 2, 3, 1 and of Dice 4, 3, 1, 2: d = 0, -1, 2, -1, sum d^2 = 6
    # rho = 1 - 6 * 6 / (4 * 15) = 0.4
    assert metrics.spearman(confidence, dice) == pytest.approx(0.4)
    assert metrics.spearman([1, 1, 1], [0.1, 0.2, 0.3]) is None
    with pytest.raises(ConfidenceSegError, match="same length"):
        metrics.spearman([1, 2], [1, 2, 3])


def test_badge_metrics():
    dice = [0.9, 0.75, 0.85, 0.5]
    lower = [0.8, 0.8, 0.85, 0.1]
    badges = ["PASS", "PASS", "REVIEW", "REVIEW"]
    # covered: 0.9>=0.8 yes, 0.75>=0.8 no, 0.85>=0.85 yes, 0.5>=0.1 yes -> 3/4
    assert metrics.lower_bound_coverage(lower, dice) == pytest.approx(0.75)
    assert metrics.pass_rate(badges) == pytest.approx(0.5)
    # PASS cases have Dice 0.9 (good) and 0.75 (bad) -> precision 1/2
    assert metrics.pass_precision(badges, dice) == pytest.approx(0.5)
    assert metrics.pass_precision(["REVIEW"] * 4, dice) is None
    assert metrics.mean_absolute_error([0.9, 0.7], [0.8, 0.8]) == pytest.approx(0.1)
