"""Applying the quality model at prediction time: predicted Dice, lower bound and badge.

``PASS`` iff the conformal lower bound reaches the threshold (default 0.8) and the segment is in
the calibration domain (:func:`.features.in_domain`). Outside the domain the conformal guarantee
does not apply, so the bound is reported as 0 and the badge is ``REVIEW`` (out-of-domain segments
must not PASS). A class predicted absent (empty mask, or non-empty in fewer than half of the
samples) is ``ABSENT`` with no Dice. No scikit-learn here: the model is plain numbers (:mod:`.fit`).
"""

from __future__ import annotations

import numpy as np

from ..contract import ABSENT, PASS, REVIEW
from .features import feature_values, in_domain, is_absent, predict_dice, sigma


def assess_segment(quality_config: dict | None, class_name: str, summary: dict, baseline: bool = False) -> dict:
    """Predicted Dice, its lower bound and the badge of one predicted segment (contract 2).

    All ``None`` when there is no quality model for the class; ``baseline=True`` uses the mean-entropy
    baseline model instead (for the evaluation).
    """
    result = {"predicted_dice": None, "dice_lower_bound": None, "badge": None}
    model = (quality_config or {}).get("baseline" if baseline else "classes", {}).get(class_name)
    if model is None:
        return result
    if is_absent(summary):
        return dict(result, badge=ABSENT)
    predicted = float(predict_dice(model, feature_values(summary, model["features"])))
    quantile = model["score_quantile"]
    bound = 0.0 if quantile is None else float(np.clip(predicted - quantile * sigma(predicted), 0.0, 1.0))
    if not in_domain(model["domain"], feature_values(summary, model["domain"]["features"])):
        bound = 0.0
    badge = PASS if bound >= quality_config["threshold"] else REVIEW
    return {"predicted_dice": predicted, "dice_lower_bound": bound, "badge": badge}
