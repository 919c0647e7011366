"""Applying the quality model to one segment: predicted Dice, lower bound, badge and its reasons.

``PASS`` iff the conformal lower bound reaches the threshold (default 0.8), the segment is in the
calibration domain (:func:`.features.in_domain`), the prediction was made as the calibration's
(method and samples) and the image has physical spacing. Outside the domain the regressor is not
valid: the predicted Dice and the bound are ``None`` and the badge is ``REVIEW``. A class predicted
absent (empty mask, or non-empty in fewer than half of the samples) is ``ABSENT`` with no Dice.
Every :class:`~.verdict.Verdict` carries reasons (:mod:`.reasons`), the deciding one first. No
scikit-learn here: the model is plain numbers (:mod:`.fit`).
"""

from __future__ import annotations

from ..contract import ABSENT, PASS, REVIEW
from ..model.bundle_config import QualityConfig
from .conformal import fewest_cases, lower_bound, sigma
from .domain import Typicality
from .features import feature_values, is_absent, missing_features, predict_dice
from .presence import absence_reason
from .reasons import bound_reason, compared, method_mismatch, out_of_domain, reason
from .verdict import Verdict, frame_counts_summary

#: (method, samples) a prediction was made with.
Settings = tuple[str, int]


def assess_segment(quality: QualityConfig | None, class_name: str, summary: dict, baseline: bool = False,
                   used: Settings | None = None, has_spacing: bool = True,
                   typicality: Typicality | None = None) -> Verdict:
    """The verdict of one predicted segment from its uncertainty summary.

    ``used``: the prediction's (method, samples), compared with the calibration's; ``has_spacing``: False
    for an image without physical spacing (PNG, JPEG, TIFF); ``typicality``: the image's domain check
    (:mod:`.domain`; out of domain: no number); ``baseline=True`` uses the mean-entropy baseline model
    instead (for the evaluation).
    """
    model = quality.class_model(class_name, baseline) if quality is not None else None
    if model is None:
        return Verdict(None, reasons=(reason("no_quality_model", f"this model has no quality model for {class_name}"),))
    cautions = tuple(r for r in (method_mismatch(quality.calibrated_settings, used), None if has_spacing else reason(
        "no_spacing", "the image has no physical spacing (PNG, JPEG, TIFF, DICOM without Pixel Spacing): sizes "
                      "are not comparable with the calibration images; give the pixel size with --spacing SX SY "
                      "(mm)")) if r is not None)
    if typicality is not None and typicality.outside:
        return Verdict(REVIEW, reasons=(typicality.reason, *cautions))
    if is_absent(summary):
        return Verdict(ABSENT, reasons=(reason("absent", f"{class_name} not found in this image"),))
    missing = absence_reason(quality.presence_model(class_name), class_name, summary)
    if missing is not None:
        return Verdict(ABSENT, reasons=(missing,))
    outdated = missing_features(model, summary)
    if outdated:
        return Verdict(REVIEW, reasons=(reason(
            "quality_model_outdated", f"the quality model was calibrated by an older ConfidenceSeg (it reads "
                                      f"{', '.join(outdated)}): recalibrate it with `confidenceseg calibrate`"),))
    outside = out_of_domain(model["domain"], feature_values(summary, model["domain"]["features"]))
    if outside is not None:
        return Verdict(REVIEW, reasons=(outside, *cautions))
    predicted = float(predict_dice(model, feature_values(summary, model["features"])))
    quantile, threshold = model["score_quantile"], quality.threshold
    bound = lower_bound(predicted, quantile, sigma(predicted))
    if quantile is None:
        return Verdict(REVIEW, predicted, bound, (reason(
            "too_few_calibration_cases", f"too few calibration cases for a lower bound ({model['n_cases']} "
                                         f"segments of {model['n_subjects']} subjects; a {1 - quality.alpha:.0%} "
                                         f"bound needs {fewest_cases(quality.alpha)} subjects or more)"),
            *cautions))
    if bound < threshold:
        return Verdict(REVIEW, predicted, bound, (bound_reason(bound, threshold, quality.alpha), *cautions))
    if cautions:
        return Verdict(REVIEW, predicted, bound, cautions)
    return Verdict(PASS, predicted, bound, (bound_reason(bound, threshold, quality.alpha),))


def assess_frames(quality: QualityConfig | None, class_name: str, frame_summaries: list[dict],
                  used: Settings | None = None, has_spacing: bool = True,
                  typicalities: list[Typicality] | None = None) -> tuple[Verdict, list[Verdict], dict]:
    """A 2D model run slice by slice: each frame assessed as the 2D image it is, and the whole input's
    verdict from them (PASS only when every frame with the class passes; the worst frame's numbers).

    Returns (whole verdict, per-frame verdicts in frame order, ``{"PASS", "REVIEW", "ABSENT",
    "worst_frame"}`` counts).
    """
    frames = [assess_segment(quality, class_name, summary, used=used, has_spacing=has_spacing,
                             typicality=typicalities[index] if typicalities else None)
              for index, summary in enumerate(frame_summaries)]
    return combine_frames(class_name, frames)


def combine_frames(class_name: str, frames: list[Verdict]) -> tuple[Verdict, list[Verdict], dict]:
    """The whole input's verdict from its frames' (see :func:`assess_frames`)."""
    present = [index for index, frame in enumerate(frames) if frame.badge != ABSENT]
    unrated = not frames or frames[0].badge is None
    if unrated or not present:
        reasons = frames[0].reasons if unrated and frames else (reason(
            "absent", f"{class_name} not found in any of the {len(frames)} frames"),)
        return Verdict(None if unrated else ABSENT, reasons=reasons), frames, frame_counts_summary(frames, None)
    worst = min(present, key=lambda index: (frames[index].dice_lower_bound is not None,
                                            frames[index].dice_lower_bound or 0.0))
    failing = [index for index in present if frames[index].badge == REVIEW]
    numbers = frames[worst].predicted_dice, frames[worst].dice_lower_bound
    if failing:  # frames are numbered from 1 in every text, as Slicer numbers slices
        listed = ", ".join(str(index + 1) for index in failing[:10]) + (", ..." if len(failing) > 10 else "")
        needs = "needs" if len(failing) == 1 else "need"
        whole = Verdict(REVIEW, *numbers, (reason(
            "frames_need_review", f"{len(failing)} of {len(frames)} frames {needs} review "
                                  f"({'frame' if len(failing) == 1 else 'frames'} {listed}); frame "
                                  f"{worst + 1}: {frames[worst].first_reason}"), *frames[worst].reasons))
    else:
        whole = Verdict(PASS, *numbers, (reason(
            "lower_bound_above_threshold", f"all {len(present)} frames with {class_name} pass (lowest bound "
                                           f"{compared(frames[worst].dice_lower_bound, 0.0)}, frame {worst + 1})"),))
    return whole, frames, frame_counts_summary(frames, worst)
