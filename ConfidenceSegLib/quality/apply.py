"""Applying the quality model at prediction time: predicted Dice, lower bound, badge and its reasons.

``PASS`` iff the conformal lower bound reaches the threshold (default 0.8), the segment is in the
calibration domain (:func:`.features.in_domain`), the prediction was made as the calibration's
(method and samples) and the image has physical spacing. Outside the domain the regressor is not
valid: the predicted Dice and the bound are ``None`` and the badge is ``REVIEW``. A class predicted
absent (empty mask, or non-empty in fewer than half of the samples) is ``ABSENT`` with no Dice.
Every result carries ``reasons`` (:mod:`.reasons`), the deciding one first. No scikit-learn here:
the model is plain numbers (:mod:`.fit`).
"""

from __future__ import annotations

import numpy as np

from ..contract import ABSENT, PASS, REVIEW
from .features import feature_values, is_absent, missing_features, predict_dice, sigma
from .reasons import method_mismatch, out_of_domain, reason


def assess_segment(quality_config: dict | None, class_name: str, summary: dict, baseline: bool = False,
                   settings: dict | None = None, has_spacing: bool = True) -> dict:
    """``{"predicted_dice", "dice_lower_bound", "badge", "reasons"}`` of one predicted segment.

    ``settings``: the prediction's ``{"method", "samples"}`` (compared with the calibration's);
    ``has_spacing``: False for an image read without physical spacing (PNG, JPEG, TIFF);
    ``baseline=True`` uses the mean-entropy baseline model instead (for the evaluation).
    """
    model = (quality_config or {}).get("baseline" if baseline else "classes", {}).get(class_name)
    if model is None:
        return {"predicted_dice": None, "dice_lower_bound": None, "badge": None,
                "reasons": [reason("no_quality_model", f"this model has no quality model for {class_name}")]}
    if is_absent(summary):
        return {"predicted_dice": None, "dice_lower_bound": None, "badge": ABSENT,
                "reasons": [reason("absent", f"{class_name} not found in this image")]}
    outdated = missing_features(model, summary)
    if outdated:
        return {"predicted_dice": None, "dice_lower_bound": None, "badge": REVIEW, "reasons": [reason(
            "quality_model_outdated", f"the quality model was calibrated by an older ConfidenceSeg (it reads "
                                      f"{', '.join(outdated)}): recalibrate it with `confidenceseg calibrate`")]}
    cautions = [r for r in (method_mismatch(quality_config, settings), None if has_spacing else reason(
        "no_spacing", "the image has no physical spacing (PNG, JPEG, TIFF): sizes are not comparable with "
                      "the calibration images")) if r is not None]
    outside = out_of_domain(model["domain"], feature_values(summary, model["domain"]["features"]))
    if outside is not None:
        return {"predicted_dice": None, "dice_lower_bound": None, "badge": REVIEW, "reasons": [outside, *cautions]}
    predicted = float(predict_dice(model, feature_values(summary, model["features"])))
    quantile, threshold = model["score_quantile"], quality_config["threshold"]
    if quantile is None:
        return {"predicted_dice": predicted, "dice_lower_bound": 0.0, "badge": REVIEW, "reasons": [reason(
            "too_few_calibration_cases", f"too few calibration cases for a lower bound ({model['n_cases']} "
                                         f"segments of {model['n_subjects']} subjects)"), *cautions]}
    bound = float(np.clip(predicted - quantile * sigma(predicted), 0.0, 1.0))
    if bound < threshold:
        return {"predicted_dice": predicted, "dice_lower_bound": bound, "badge": REVIEW, "reasons": [reason(
            "lower_bound_below_threshold", f"lower bound {bound:.2f} below the PASS threshold {threshold:.2f}"),
            *cautions]}
    if cautions:
        return {"predicted_dice": predicted, "dice_lower_bound": bound, "badge": REVIEW, "reasons": cautions}
    return {"predicted_dice": predicted, "dice_lower_bound": bound, "badge": PASS, "reasons": [reason(
        "lower_bound_above_threshold", f"lower bound {bound:.2f} reaches the PASS threshold {threshold:.2f}")]}


def assess_frames(quality_config: dict | None, class_name: str, frame_summaries: list[dict],
                  settings: dict | None = None, has_spacing: bool = True) -> tuple[dict, list[dict], dict]:
    """A 2D model run slice by slice: each frame assessed as the 2D image it is, and the whole input's
    assessment from them (PASS only when every frame with the class passes; the worst frame's numbers).

    Returns (whole assessment, per-frame assessments in frame order, ``{"PASS", "REVIEW", "ABSENT",
    "worst_frame"}`` counts).
    """
    frames = [assess_segment(quality_config, class_name, summary, settings=settings, has_spacing=has_spacing)
              for summary in frame_summaries]
    counts = {badge: sum(frame["badge"] == badge for frame in frames) for badge in (PASS, REVIEW, ABSENT)}
    present = [index for index, frame in enumerate(frames) if frame["badge"] != ABSENT]
    unrated = not frames or frames[0]["badge"] is None
    if unrated or not present:
        reasons = frames[0]["reasons"] if unrated and frames else [reason(
            "absent", f"{class_name} not found in any of the {len(frames)} frames")]
        whole = {"predicted_dice": None, "dice_lower_bound": None, "badge": None if unrated else ABSENT,
                 "reasons": reasons}
        return whole, frames, dict(counts, worst_frame=None)
    worst = min(present, key=lambda index: (frames[index]["dice_lower_bound"] is not None,
                                            frames[index]["dice_lower_bound"] or 0.0))
    failing = [index for index in present if frames[index]["badge"] == REVIEW]
    whole = {key: frames[worst][key] for key in ("predicted_dice", "dice_lower_bound")}
    if failing:
        listed = ", ".join(map(str, failing[:10])) + (", ..." if len(failing) > 10 else "")
        whole.update(badge=REVIEW, reasons=[reason(
            "frames_need_review", f"{len(failing)} of {len(frames)} frames need review (frames {listed}); frame "
                                  f"{worst}: {frames[worst]['reasons'][0]['message']}"), *frames[worst]["reasons"]])
    else:
        whole.update(badge=PASS, reasons=[reason(
            "lower_bound_above_threshold", f"all {len(present)} frames with {class_name} pass (lowest bound "
                                           f"{frames[worst]['dice_lower_bound']:.2f}, frame {worst})")])
    return whole, frames, dict(counts, worst_frame=worst)
