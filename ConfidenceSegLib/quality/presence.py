"""Is the structure there at all? Presence from the evidence of the samples, calibrated like the badge.

A segment is ABSENT when its samples do not agree that the structure is there: the uncertainty inside
the segment (the predictive entropy averaged over its pixels: high where the samples disagree on which
pixels belong to it, low on a structure the model recognises) is higher than for all but ``alpha`` (2%
by default) of the calibration segments of that class whose reference has the structure (clean and
degraded images): a conformal test, so at most about ``alpha`` of real structures are called absent.
Without this, pure noise, a frame without the structure or an image of another organ got a random
segment with a numeric Dice.
"""

from __future__ import annotations

import math

from .domain import upper_p_values
from .features import feature_value
from .verdict import Reason

#: Share of real structures (as in calibration) the test may call absent.
PRESENCE_ALPHA = 0.02
#: The evidence: the uncertainty inside the segment.
PRESENCE_FEATURE = "mean_entropy"
#: Fewest calibration segments that make a presence test (fewer: the test is not made).
MIN_SEGMENTS = 20


def fit_presence(records, alpha: float = PRESENCE_ALPHA) -> dict[str, dict]:
    """Per class: the calibration scores of its segments whose reference has the structure (records of
    :class:`~.fit.QualityRecord` with reference measurements); classes with too few are left out."""
    by_class: dict[str, list[float]] = {}
    for record in records:
        present = any(value > 0 for value in (record.reference_measurements or {}).values())
        if present and record.summary.get("volume_voxels", 0) > 0:
            by_class.setdefault(record.class_name, []).append(feature_value(record.summary, PRESENCE_FEATURE))
    return {name: {"feature": PRESENCE_FEATURE, "alpha": alpha, "scores": sorted(scores)}
            for name, scores in sorted(by_class.items()) if len(scores) >= MIN_SEGMENTS}


def absence_reason(model: dict | None, class_name: str, summary: dict) -> Reason | None:
    """ABSENT's reason when the segment's samples do not agree that ``class_name`` is there, else None."""
    if model is None or summary.get("volume_voxels", 0) <= 0:
        return None
    value = feature_value(summary, model["feature"])
    p_value = float(upper_p_values(value, model["scores"]))
    if p_value >= model["alpha"]:
        return None
    share = math.floor(1000 * (1 - p_value)) / 10
    return Reason("absent", f"{class_name} not found: the samples do not agree that it is here (uncertainty in "
                            f"the segment {value:.2f}, higher than for {share:g}% of the calibration segments)")
