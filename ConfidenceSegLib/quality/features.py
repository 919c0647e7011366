"""Features of a predicted segment that the quality model reads, and the checks it applies.

Features come from the uncertainty summary of a segment (``inference`` stage,
:data:`~ConfidenceSegLib.inference.uncertainty.SUMMARY_KEYS`); ``log_volume_mm`` is derived as
log(1 + volume_mm). A stored regressor (plain numbers in the bundle, see :mod:`.fit`) maps them to
a predicted Dice; its calibration range per feature defines the domain where it is trusted.
Shared by fitting (:mod:`.fit`) and applying (:mod:`.apply`).
"""

from __future__ import annotations

import math

import numpy as np

from ..contract import ConfidenceSegError

#: Features of the quality regressor, computed from the summary by :func:`feature_values`.
FEATURES = ("mean_pairwise_dice", "samples_iou", "volume_cv", "mean_entropy", "mean_entropy_boundary",
            "mean_mutual_information", "log_volume_mm", "mean_probability")
#: The published reference that disagreement-based quality must beat.
BASELINE_FEATURES = ("mean_entropy",)
#: Domain descriptors, checked on both sides of their calibration range.
TWO_SIDED_DOMAIN_FEATURES = ("log_volume_mm", "mean_entropy_image")
SIGMA_FLOOR = 0.05


def is_absent(summary: dict) -> bool:
    """Predicted absent: empty mask, or non-empty in fewer than half of the samples."""
    return feature_value(summary, "volume_voxels") <= 0 or feature_value(summary, "present_fraction") < 0.5


def baseline_confidence(summary: dict) -> float:
    """Ranking score of the mean-entropy baseline: lower mean entropy inside the segment = more confident."""
    return -feature_value(summary, "mean_entropy")


def feature_value(summary: dict, key: str) -> float:
    """One named feature of a summary, checked to be present and finite."""
    if key == "log_volume_mm":
        return math.log1p(max(feature_value(summary, "volume_mm"), 0.0))
    if key not in summary:
        raise ConfidenceSegError(f"uncertainty summary lacks {key!r} (needed by the quality model)")
    value = float(summary[key])
    if not math.isfinite(value):
        raise ConfidenceSegError(f"uncertainty summary has a non-finite {key!r}: {value}")
    return value


def feature_values(summary: dict, names) -> np.ndarray:
    """The named features of one summary (``log_volume_mm`` = log(1 + volume_mm))."""
    return np.array([feature_value(summary, name) for name in names], np.float64)


def sigma(predicted):
    """Difficulty scale of the conformal scores: larger where the predicted Dice is lower."""
    return 1.0 - np.asarray(predicted, np.float64) + SIGMA_FLOOR


def predict_dice(regressor: dict, x: np.ndarray) -> np.ndarray:
    """Predicted Dice in [0, 1] of feature rows x (N, F) or (F,) from a stored regressor."""
    z = (x - np.asarray(regressor["feature_mean"])) / np.asarray(regressor["feature_scale"])
    return np.clip(z @ np.asarray(regressor["coefficients"]) + regressor["intercept"], 0.0, 1.0)


def in_domain(domain: dict, x: np.ndarray) -> np.ndarray:
    """True where feature rows x lie inside the stored calibration range (None = side not checked)."""
    low = np.array([-np.inf if v is None else v for v in domain["low"]])
    high = np.array([np.inf if v is None else v for v in domain["high"]])
    return np.all((x >= low) & (x <= high), axis=-1)


