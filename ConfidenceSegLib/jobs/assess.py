"""``confidenceseg assess``: the quality badge of a given segmentation (imported or hand-painted).

The model predicts the image as usual; each class of the given segmentation is then assessed by its
agreement with that prediction (:mod:`~ConfidenceSegLib.quality.agreement`, calibrated on perturbed
reference masks and stored in the bundle's ``quality.assessment``), with the badge's rules (PASS iff
the conformal lower bound reaches the threshold, in domain, same prediction settings as calibrated),
and/or (2D) by reverse classification accuracy (:mod:`~ConfidenceSegLib.quality.rca`).
A 2D model on a stack assesses each frame and the whole from its frames, as ``predict`` does.

The given segmentation is a ``.seg.nrrd`` (classes from the ConfidenceSeg class tags, else the
segment names; several segments of a class are merged) or a mask image on the image's grid: binary
(the class is ``--class``, or the model's only class) or a label map whose value k is the model's
k-th class. An empty given mask where the model finds the class is REVIEW with predicted Dice 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..contract import ABSENT, PASS, REPORT_SUFFIX, REVIEW, SEG_SUFFIX, ConfidenceSegError
from ..io.images import check_same_geometry, read_image
from ..io.inputs import InputFacts, input_stem
from ..io.safe_files import write_text_atomic
from ..io.segfile import read_segmentation
from ..model.bundle_config import QualityConfig
from ..outputs.report import PredictionReport, report_json, verdict_json
from ..quality.agreement import agreement_features, agreement_from_maps
from ..quality.apply import assess_segment, combine_frames
from ..quality.conformal import lower_bound
from ..quality.rca import load_references, rca_dice
from ..quality.reasons import reason
from ..quality.verdict import ClassResult, FrameResult, Verdict
from .predict_job import run_prediction

#: ``both``: PASS only when agreement and RCA both pass; the lower of the two predicted Dice and bounds.
ASSESS_METHODS = ("agreement", "rca", "both")


def given_masks(seg_path: Path, image: sitk.Image, classes: list[str], class_name: str | None) -> dict[str, np.ndarray]:
    """The given segmentation's mask per model class (image grid); refuses other grids and unknown classes."""
    if class_name is not None and class_name not in classes:
        raise ConfidenceSegError(f"the model has no class {class_name!r} (it has {', '.join(classes)})")
    if seg_path.name.endswith(SEG_SUFFIX):
        masks: dict[str, np.ndarray] = {}
        for segment in read_segmentation(seg_path, image):
            name = segment.class_name or segment.name
            if class_name is not None and len(classes) == 1 and name not in classes:
                name = class_name  # a single-class model: any segment name assesses that class
            if name in classes:
                masks[name] = masks[name] | segment.mask if name in masks else segment.mask.astype(bool)
        if not masks:
            raise ConfidenceSegError(f"{seg_path} has no segment of the model's classes ({', '.join(classes)}); "
                                     "name the segment after the class or pass --class")
        return {name: masks[name] for name in classes if name in masks and (class_name in (None, name))}
    labels = read_image(seg_path)
    check_same_geometry(image, labels, "image", f"segmentation {seg_path}")
    array = sitk.GetArrayFromImage(labels)
    if not np.issubdtype(array.dtype, np.integer) and not np.all(np.isin(array, np.arange(len(classes) + 1))):
        raise ConfidenceSegError(f"{seg_path} is not a mask: expected integer labels 0..{len(classes)}")
    top = int(array.max()) if array.size else 0
    if top > len(classes):
        raise ConfidenceSegError(f"{seg_path} has label {top} but the model has {len(classes)} classes")
    if top <= 1 and (class_name is not None or len(classes) == 1):  # a binary mask of one class
        return {class_name or classes[0]: array > 0}
    masks = {name: array == index + 1 for index, name in enumerate(classes)}  # label k = the k-th class
    return {class_name: masks[class_name]} if class_name is not None else masks


def _empty_given(class_name: str, predicted_present: bool) -> Verdict | None:
    if not predicted_present:
        return None
    return Verdict(REVIEW, 0.0, 0.0, (reason(
        "given_mask_empty", f"the given segmentation has no {class_name}, but the model finds it here"),))


def rca_result(assessment: QualityConfig, folder: Path, class_prediction, given: np.ndarray,
               pixel_mm) -> tuple[Verdict, list[float]]:
    """One class's RCA assessment of a 2D mask (best transfer Dice, conformal bound, badge, reasons) and
    the transfer Dice per reference. ``given``: (H, W) bool on the image grid; ``pixel_mm``: (y, x) mm."""
    entry = (assessment.data.get("rca") or {}).get(class_prediction.name)
    if entry is None:
        return Verdict(None, reasons=(reason(
            "no_quality_model", f"this model has no RCA references for {class_prediction.name}"),)), []
    predicted, per_reference = rca_dice(class_prediction.mask, given, pixel_mm, load_references(folder, entry))
    bound, threshold = lower_bound(predicted, entry["score_quantile"]), assessment.threshold
    passed = bound >= threshold
    words = (f"RCA: best transfer Dice {predicted:.2f} over {len(per_reference)} references, lower bound {bound:.2f}"
             f" {'reaches' if passed else 'below'} the PASS threshold {threshold:.2f}")
    return Verdict(PASS if passed else REVIEW, predicted, bound, (
        reason("lower_bound_above_threshold" if passed else "lower_bound_below_threshold", words),)), per_reference


def combined(agreement: Verdict, rca: Verdict) -> Verdict:
    """``both``: PASS only when both methods pass; the lower predicted Dice and bound; both reasons."""
    if agreement.badge in (None, ABSENT) or rca.badge is None:
        return agreement
    lowest = [min((v for v in pair if v is not None), default=None) for pair in (
        (agreement.predicted_dice, rca.predicted_dice), (agreement.dice_lower_bound, rca.dice_lower_bound))]
    badge = PASS if agreement.badge == rca.badge == PASS else REVIEW
    failing = [v for v in (agreement, rca) if v.badge != PASS] or [agreement, rca]
    return Verdict(badge, *lowest, tuple(r for v in failing for r in v.reasons))


def assess_class(assessment: QualityConfig, class_prediction, given: np.ndarray, used: tuple[str, int],
                 has_spacing: bool, stack: bool, method: str = "agreement", folder: Path | None = None,
                 pixel_mm=(1.0, 1.0)) -> tuple[ClassResult, dict, list[Verdict]]:
    """One class's result, its per-method details and (a stack, agreement only) its frames' verdicts.

    ``given``: bool on the image grid, (H, W), (Z, Y, X) or, when ``stack``, (frames, H, W)."""
    name = class_prediction.name
    if not stack:
        features = agreement_features(given, class_prediction)
        empty = None if given.any() else _empty_given(name, bool(class_prediction.mask.any()))
        agreement = empty or assess_segment(assessment, name, features, used=used, has_spacing=has_spacing)
        methods = {"agreement": {**verdict_json(agreement), "features": features}}
        verdict = agreement
        if method in ("rca", "both"):
            rca, per_reference = (empty, []) if empty else rca_result(assessment, folder, class_prediction, given,
                                                                      pixel_mm)
            methods["rca"] = {**verdict_json(rca), "per_reference": [round(score, 4) for score in per_reference]}
            verdict = rca if method == "rca" else combined(agreement, rca)
        return ClassResult(name, bool(given.any()), {}, verdict), methods, []
    features = [agreement_from_maps(given[k], class_prediction.mask[k], class_prediction.probability[k],
                                    class_prediction.entropy[k], class_prediction.frame_summaries[k])
                for k in range(given.shape[0])]
    frames = [assess_segment(assessment, name, summary, used=used, has_spacing=has_spacing) for summary in features]
    frames = [(_empty_given(name, bool(class_prediction.mask[k].any())) or frame) if frame.badge == ABSENT else frame
              for k, frame in enumerate(frames)]
    whole, frames, summary = combine_frames(name, frames)
    return (ClassResult(name, bool(given.any()), {}, whole, frames_summary=summary),
            {"agreement": verdict_json(whole)}, frames)


def assess_segmentation(bundle, image_path: Path, seg_path: Path, out: Path, class_name: str | None,
                        settings, overwrite: bool, method: str = "agreement") -> PredictionReport:
    """Predict ``image_path``, assess the given segmentation's classes by ``method`` (:data:`ASSESS_METHODS`),
    write ``out/<stem>.json``."""
    source = InputFacts.of(image_path, channels=bundle.config.in_channels)
    image = source.read()
    masks = given_masks(seg_path, image, bundle.classes, class_name)
    assessment = bundle.config.quality.assessment if bundle.config.quality is not None else None
    if assessment is None:
        raise ConfidenceSegError(f"model {bundle.path} has no calibrated assessment of given segmentations: "
                                 "`confidenceseg calibrate` fits one on labelled 2D images (not on volumes or "
                                 "stacks)")
    if method != "agreement" and image.GetDimension() != 2:
        raise ConfidenceSegError(f"--method {method} (reverse classification accuracy) assesses 2D images only; "
                                 "use --method agreement for stacks and volumes")
    target = out / f"{input_stem(image_path)}{REPORT_SUFFIX}"
    if target.exists() and not overwrite:
        raise ConfidenceSegError(f"output exists: {target} (pass --overwrite to replace it)")
    prediction = run_prediction(bundle, source, settings, image=image).prediction
    used = (prediction.method, prediction.samples)
    stack = bundle.spatial_dims == 2 and image.GetDimension() == 3
    pixel_mm = (image.GetSpacing()[1], image.GetSpacing()[0])
    classes, methods, frames = {}, {}, []
    for class_prediction in prediction.classes:
        name = class_prediction.name
        if name in masks:
            classes[name], methods[name], frame_verdicts = assess_class(
                assessment, class_prediction, masks[name], used, source.has_spacing, stack, method,
                Path(bundle.path), pixel_mm)
            for index, frame in enumerate(frame_verdicts):
                if len(frames) <= index:
                    frames.append({})
                frames[index][name] = FrameResult(bool(masks[name][index].any()), frame)
    report = PredictionReport(input=str(source.path), model=str(bundle.path), method=prediction.method,
                              samples=prediction.samples, device=prediction.device, classes=classes,
                              pass_threshold=assessment.threshold, frames=frames or None,
                              extra={"assessed_segmentation": str(seg_path), "assess_method": method})
    write_text_atomic(target, json.dumps(report_json(report, {name: {"methods": entry} for name, entry in
                                                              methods.items()}), indent=2) + "\n", overwrite)
    return report
