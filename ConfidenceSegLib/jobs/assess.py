"""``confidenceseg assess``: the quality badge of a given segmentation (imported or hand-painted).

The model predicts the image as usual; each class of the given segmentation is then assessed by its
agreement with that prediction (:mod:`~ConfidenceSegLib.quality.agreement`, calibrated on perturbed
reference masks and stored in the bundle's ``quality.assessment``), with the badge's rules (PASS iff
the conformal lower bound reaches the threshold, in domain, same prediction settings as calibrated).
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

from ..contract import ABSENT, REPORT_SUFFIX, REVIEW, SEG_SUFFIX, ConfidenceSegError
from ..io.images import check_same_geometry, read_image
from ..io.inputs import has_physical_spacing, input_stem
from ..io.safe_files import write_text_atomic
from ..io.segfile import read_segmentation
from ..quality.agreement import agreement_features, agreement_from_maps
from ..quality.apply import assess_frames, assess_segment
from ..quality.reasons import reason

ASSESS_METHODS = ("agreement",)


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
    values = [int(v) for v in np.unique(array) if v != 0]
    if not np.issubdtype(array.dtype, np.integer) and not np.all(np.isin(array, np.arange(len(classes) + 1))):
        raise ConfidenceSegError(f"{seg_path} is not a mask: expected integer labels 0..{len(classes)}")
    if values and max(values) > 1 or (len(classes) > 1 and class_name is None):
        if values and max(values) > len(classes):
            raise ConfidenceSegError(f"{seg_path} has label {max(values)} but the model has {len(classes)} classes")
        if class_name is not None:
            return {class_name: array == classes.index(class_name) + 1}
        return {name: array == index + 1 for index, name in enumerate(classes)}
    return {class_name or classes[0]: array > 0}


def _empty_given(class_name: str, predicted_present: bool) -> dict | None:
    if not predicted_present:
        return None
    return {"predicted_dice": 0.0, "dice_lower_bound": 0.0, "badge": REVIEW, "reasons": [reason(
        "given_mask_empty", f"the given segmentation has no {class_name}, but the model finds it here")]}


def assess_class(assessment: dict, class_prediction, given: np.ndarray, settings: dict, has_spacing: bool,
                 stack: bool) -> dict:
    """One class's assessment (and per frame for a stack) from the agreement model."""
    name = class_prediction.name
    if not stack:
        features = agreement_features(given, class_prediction)
        result = (None if given.any() else _empty_given(name, bool(class_prediction.mask.any()))) or assess_segment(
            assessment, name, features, settings=settings, has_spacing=has_spacing)
        return {"present": bool(given.any()), **result, "methods": {"agreement": {**result, "features": features}}}
    features = [agreement_from_maps(given[k], class_prediction.mask[k], class_prediction.probability[k],
                                    class_prediction.entropy[k], class_prediction.frame_summaries[k])
                for k in range(given.shape[0])]
    whole, frames, summary = assess_frames(assessment, name, features, settings, has_spacing)
    for index, frame in enumerate(frames):
        if frame["badge"] == ABSENT:
            frames[index] = _empty_given(name, bool(class_prediction.mask[index].any())) or frame
    return {"present": bool(given.any()), **whole, "frames_summary": summary, "frame_results": frames,
            "methods": {"agreement": dict(whole)}}


def assess_segmentation(bundle, image_path: Path, seg_path: Path, out: Path, class_name: str | None,
                        settings, overwrite: bool) -> dict:
    """Predict ``image_path``, assess the given segmentation's classes, write ``out/<stem>.json``."""
    from ..inference.predict import predict_image

    image = read_image(image_path)
    masks = given_masks(seg_path, image, bundle.classes, class_name)
    quality = bundle.config.get("quality") or {}
    assessment = quality.get("assessment")
    if not assessment or not assessment.get("classes"):
        raise ConfidenceSegError(f"model {bundle.path} has no calibrated assessment of given segmentations: "
                                 "recalibrate it with `confidenceseg calibrate`")
    target = out / f"{input_stem(image_path)}{REPORT_SUFFIX}"
    if target.exists() and not overwrite:
        raise ConfidenceSegError(f"output exists: {target} (pass --overwrite to replace it)")
    prediction = predict_image(bundle, image, settings.method, settings.samples, settings.device)
    used = {"method": prediction.method, "samples": prediction.samples}
    config = dict(assessment, prediction=quality.get("prediction"))
    stack = bundle.spatial_dims == 2 and image.GetDimension() == 3
    classes, frames = {}, []
    for class_prediction in prediction.classes:
        if class_prediction.name in masks:
            result = assess_class(config, class_prediction, masks[class_prediction.name], used,
                                  has_physical_spacing(image_path), stack)
            for index, frame in enumerate(result.pop("frame_results", [])):
                if len(frames) <= index:
                    frames.append({"index": index, "classes": {}})
                frames[index]["classes"][class_prediction.name] = frame
            classes[class_prediction.name] = result
    report = {"input": str(image_path), "assessed_segmentation": str(seg_path), "model": str(bundle.path),
              "method": "agreement", **used, "device": prediction.device, "classes": classes}
    if frames:
        report["frames"] = frames
    write_text_atomic(target, json.dumps(report, indent=2) + "\n", overwrite)
    return report
