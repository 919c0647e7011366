"""Segmentation and failure-detection metrics for the quality evaluation.

Overlap: :func:`dice` (MONAI) and :func:`qubiq_soft_dice`. Calibration of probability maps:
:func:`calibration_bins` / :func:`expected_calibration_error`. Failure detection over cases, where a
higher ``confidence`` means "more likely good" and risk = 1 - Dice: :func:`risk_coverage_curve`,
:func:`aurc`, :func:`e_aurc`, :func:`failure_auroc` (scikit-learn), :func:`spearman` (SciPy). The
badge: :func:`lower_bound_coverage`, :func:`pass_rate`, :func:`pass_precision`.

Metrics that are undefined for the given cases (e.g. AUROC when every case is good) return ``None``,
which JSON writes as ``null``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from ..contract import ConfidenceSegError

#: Thresholds of the QUBIQ score: 0.1, 0.2, ..., 0.9.
QUBIQ_THRESHOLDS = tuple(round(0.1 * k, 1) for k in range(1, 10))
#: Dice below this is a failure (the badge threshold and the AUROC target).
GOOD_DICE = 0.8


def _check_same_shape(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.shape != b.shape:
        raise ConfidenceSegError(f"{what}: shapes differ ({a.shape} vs {b.shape})")


def dice(prediction: np.ndarray, reference: np.ndarray) -> float:
    """Dice of two binary masks of one shape (any shape; non-zero = foreground).

    Convention: both masks empty -> 1.0 (a correctly predicted absent structure); exactly one empty -> 0.0.
    """
    prediction, reference = np.asarray(prediction), np.asarray(reference)
    _check_same_shape(prediction, reference, "Dice")
    return float(_batched_dice(prediction[None] != 0, reference[None] != 0)[0])


def _batched_dice(predictions: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Dice of each pair along the first axis (bool arrays), empty/empty = 1."""
    # MONAI loads when first used: an nnU-Net prediction never needs it
    from monai.metrics import compute_dice

    shape = (predictions.shape[0], 1, -1)  # MONAI wants (batch, channel, spatial...)
    y_pred = torch.from_numpy(predictions.reshape(shape).astype(np.float32))
    y = torch.from_numpy(references.reshape(shape).astype(np.float32))
    return compute_dice(y_pred, y, include_background=True, ignore_empty=False)[:, 0].numpy()


def qubiq_soft_dice(probability: np.ndarray, rater_fraction: np.ndarray,
                    thresholds: tuple[float, ...] = QUBIQ_THRESHOLDS) -> float:
    """QUBIQ score: mean over thresholds t of Dice(probability > t, rater_fraction > t).

    A pixel counts at level t when its value exceeds t (a fraction of 3 of 7 raters, 0.43, counts at 0.1
    to 0.4). Levels where both are empty score 1.0 (the :func:`dice` convention). ``probability`` and
    ``rater_fraction``: values in [0, 1], one shape (any shape).
    """
    probability, rater_fraction = np.asarray(probability, np.float32), np.asarray(rater_fraction, np.float32)
    _check_same_shape(probability, rater_fraction, "QUBIQ soft Dice")
    levels = np.asarray(thresholds, np.float32).reshape((-1,) + (1,) * probability.ndim)
    scores = _batched_dice(probability[None] > levels, rater_fraction[None] > levels)
    return float(scores.mean())


@dataclass
class CalibrationBins:
    """Per-bin sums for a reliability diagram / ECE; add them to pool several images."""

    counts: np.ndarray
    probability_sums: np.ndarray
    target_sums: np.ndarray

    def __add__(self, other: CalibrationBins) -> CalibrationBins:
        return CalibrationBins(self.counts + other.counts, self.probability_sums + other.probability_sums,
                               self.target_sums + other.target_sums)

    @property
    def n_bins(self) -> int:
        return len(self.counts)

    def mean_probability(self) -> np.ndarray:
        """Mean predicted probability per bin (NaN for empty bins)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.probability_sums / self.counts

    def observed_frequency(self) -> np.ndarray:
        """Mean target (fraction of foreground, or of raters) per bin (NaN for empty bins)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.target_sums / self.counts


def foreground_roi(probability: np.ndarray, target: np.ndarray, min_probability: float = 0.05) -> np.ndarray:
    """Region where ECE is measured: where the model (p > ``min_probability``) or any annotator sees foreground.

    Restricting ECE to this region keeps the huge, trivially calibrated background (p ~ 0, target 0) from
    hiding miscalibration of the structure and its boundary. ``probability`` and ``target``: one shape (any
    shape); the region is bool of that shape.
    """
    return (np.asarray(probability) > min_probability) | (np.asarray(target) > 0)


def calibration_bins(probability: np.ndarray, target: np.ndarray, roi: np.ndarray | None = None,
                     n_bins: int = 10) -> CalibrationBins:
    """Bin the foreground probability in ``n_bins`` equal-width bins over [0, 1] (inside ``roi``).

    ``target`` is the reference foreground (0/1) or a soft reference (rater fraction in [0, 1]).
    By default the ROI is :func:`foreground_roi`. ``probability``, ``target`` and ``roi`` (bool): one shape (any
    shape); the bins' arrays are (n_bins,) float64.
    """
    probability, target = np.asarray(probability, np.float64), np.asarray(target, np.float64)
    _check_same_shape(probability, target, "calibration")
    roi = foreground_roi(probability, target) if roi is None else np.asarray(roi, bool)
    p, t = probability[roi], target[roi]
    index = np.clip((p * n_bins).astype(int), 0, n_bins - 1)  # p = 1.0 goes into the last bin
    return CalibrationBins(counts=np.bincount(index, minlength=n_bins).astype(np.float64),
                           probability_sums=np.bincount(index, weights=p, minlength=n_bins),
                           target_sums=np.bincount(index, weights=t, minlength=n_bins))


def expected_calibration_error(bins: CalibrationBins) -> float | None:
    """ECE = sum_b (n_b / N) |mean probability_b - observed frequency_b|; ``None`` for an empty ROI."""
    total = bins.counts.sum()
    if total == 0:
        return None
    filled = bins.counts > 0
    gaps = np.abs(bins.probability_sums[filled] - bins.target_sums[filled]) / bins.counts[filled]
    return float(np.sum(bins.counts[filled] / total * gaps))


def _as_vectors(*arrays, names: tuple[str, ...]) -> list[np.ndarray]:
    vectors = [np.asarray(a, np.float64).ravel() for a in arrays]
    if any(len(v) != len(vectors[0]) for v in vectors):
        raise ConfidenceSegError(f"{' and '.join(names)} must have the same length")
    return vectors


def risk_coverage_curve(confidence, dice_values) -> tuple[np.ndarray, np.ndarray]:
    """Coverage k/n and selective risk (mean of 1 - Dice over the k most confident cases), k = 1..n.

    Ties in ``confidence`` have no defined order, so each tied group's risks are replaced by their mean
    (the expected curve over random orders of the group): a constant confidence gives the flat line
    at the mean risk.
    """
    confidence, dice_values = _as_vectors(confidence, dice_values, names=("confidence", "Dice"))
    n = len(confidence)
    if n == 0:
        return np.zeros(0), np.zeros(0)
    order = np.argsort(-confidence, kind="stable")
    sorted_confidence, risk = confidence[order], 1.0 - dice_values[order]
    _, group, group_sizes = np.unique(sorted_confidence, return_inverse=True, return_counts=True)
    risk = (np.bincount(group, weights=risk) / group_sizes)[group]
    accepted = np.arange(1, n + 1)
    return accepted / n, np.cumsum(risk) / accepted


def aurc(confidence, dice_values) -> float | None:
    """Area under the risk-coverage curve: mean selective risk over coverages 1/n .. n/n (lower is better)."""
    _, risk = risk_coverage_curve(confidence, dice_values)
    return float(risk.mean()) if len(risk) else None


def e_aurc(confidence, dice_values) -> float | None:
    """Excess AURC: AURC minus the AURC of the oracle that accepts cases in order of their true Dice."""
    value = aurc(confidence, dice_values)
    return None if value is None else value - aurc(dice_values, dice_values)


def failure_auroc(confidence, dice_values, good_dice: float = GOOD_DICE) -> float | None:
    """AUROC of ``-confidence`` for detecting failures (Dice < ``good_dice``); ``None`` without both kinds."""
    confidence, dice_values = _as_vectors(confidence, dice_values, names=("confidence", "Dice"))
    failed = dice_values < good_dice
    if failed.all() or not failed.any():
        return None
    return float(roc_auc_score(failed, -confidence))


def spearman(predicted, true) -> float | None:
    """Spearman rank correlation; ``None`` for fewer than 3 cases or a constant input."""
    predicted, true = _as_vectors(predicted, true, names=("predicted", "true values"))
    if len(predicted) < 3 or np.ptp(predicted) == 0 or np.ptp(true) == 0:
        return None
    return float(spearmanr(predicted, true).statistic)


def mean_absolute_error(predicted, true) -> float | None:
    predicted, true = _as_vectors(predicted, true, names=("predicted", "true values"))
    return float(np.mean(np.abs(predicted - true))) if len(predicted) else None


def lower_bound_coverage(lower_bounds, dice_values) -> float | None:
    """Fraction of cases whose true Dice is at or above the predicted lower bound."""
    lower_bounds, dice_values = _as_vectors(lower_bounds, dice_values, names=("lower bounds", "Dice"))
    return float(np.mean(dice_values >= lower_bounds)) if len(dice_values) else None


def pass_rate(badges) -> float | None:
    """Fraction of badges that are PASS."""
    badges = list(badges)
    return sum(b == "PASS" for b in badges) / len(badges) if badges else None


def pass_precision(badges, dice_values, good_dice: float = GOOD_DICE) -> float | None:
    """Fraction of PASS cases whose true Dice >= ``good_dice``; ``None`` when nothing passed."""
    passed = [d for b, d in zip(badges, dice_values, strict=True) if b == "PASS"]
    return float(np.mean(np.asarray(passed) >= good_dice)) if passed else None
