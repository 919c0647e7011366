"""Features of a predicted segment that the quality model reads, and the checks it applies.

Features come from the uncertainty summary of a segment (``inference`` stage,
:data:`~ConfidenceSegLib.inference.uncertainty.SUMMARY_KEYS`); ``log_size_fraction`` is derived as
log10 of the segment's fraction of the image (floored at 1e-6). Every feature is spacing-free: the
same pixels get the same predicted Dice with or without physical spacing. A stored regressor (plain
numbers in the bundle, see :mod:`.fit`) maps them to a predicted Dice; its calibration range per
feature defines the domain where it is trusted.
Shared by fitting (:mod:`.fit`) and applying (:mod:`.apply`).
"""

from __future__ import annotations

import math

import numpy as np

from ..contract import ConfidenceSegError

#: Features of the quality regressor, computed from the summary by :func:`feature_values`.
FEATURES = ("mean_pairwise_dice", "samples_iou", "volume_cv", "mean_entropy", "mean_entropy_boundary",
            "mean_mutual_information", "log_size_fraction", "mean_probability")
#: The published reference that disagreement-based quality must beat.
BASELINE_FEATURES = ("mean_entropy",)
#: Domain descriptors, checked on both sides of their calibration range.
TWO_SIDED_DOMAIN_FEATURES = ("log_size_fraction", "mean_entropy_image")
SIZE_FRACTION_FLOOR = 1e-6


#: Features computed from the summary rather than read from it.
DERIVED_FEATURES = ("log_size_fraction",)


def missing_features(model: dict, summary: dict) -> list[str]:
    """Features a stored class model needs that this version's summaries lack (a model calibrated by an
    older version, e.g. on the spacing-dependent ``log_volume_mm``)."""
    needed = dict.fromkeys([*model["features"], *model["domain"]["features"]])
    return [name for name in needed if name not in summary and name not in DERIVED_FEATURES]


def is_absent(summary: dict) -> bool:
    """Predicted absent: empty mask, or non-empty in fewer than half of the samples."""
    return feature_value(summary, "volume_voxels") <= 0 or feature_value(summary, "present_fraction") < 0.5


def baseline_confidence(summary: dict) -> float:
    """Ranking score of the mean-entropy baseline: lower mean entropy inside the segment = more confident."""
    return -feature_value(summary, "mean_entropy")


def feature_value(summary: dict, key: str) -> float:
    """One named feature of a summary, checked to be present and finite."""
    if key == "log_size_fraction":
        return math.log10(max(feature_value(summary, "size_fraction"), SIZE_FRACTION_FLOOR))
    if key not in summary:
        raise ConfidenceSegError(f"uncertainty summary lacks {key!r} (needed by the quality model)")
    value = float(summary[key])
    if not math.isfinite(value):
        raise ConfidenceSegError(f"uncertainty summary has a non-finite {key!r}: {value}")
    return value


def feature_values(summary: dict, names) -> np.ndarray:
    """The named features of one summary (``log_size_fraction`` derived, see the module)."""
    return np.array([feature_value(summary, name) for name in names], np.float64)


def predict_dice(regressor: dict, x: np.ndarray) -> np.ndarray:
    """Predicted Dice in [0, 1] of feature rows x (N, F) or (F,) from a stored regressor."""
    z = (x - np.asarray(regressor["feature_mean"])) / np.asarray(regressor["feature_scale"])
    return np.clip(z @ np.asarray(regressor["coefficients"]) + regressor["intercept"], 0.0, 1.0)


def in_domain(domain: dict, x: np.ndarray) -> np.ndarray:
    """True where feature rows x lie inside the stored calibration range (None = side not checked).

    ``x``: (N, F) float64 -> (N,) bool, or one row (F,) -> a bool scalar."""
    low = np.array([-np.inf if v is None else v for v in domain["low"]])
    high = np.array([np.inf if v is None else v for v in domain["high"]])
    return np.all((x >= low) & (x <= high), axis=-1)


