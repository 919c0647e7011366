"""The assessed prediction: a prediction with every class's quality verdict and reported measurements.

:func:`assess_prediction` is the one function that turns a
:class:`~ConfidenceSegLib.inference.prediction.Prediction` into an :class:`AssessedPrediction`: per class
(and per frame when a 2D model ran slice by slice on a stack) presence, verdict (:mod:`.apply`) and the
measurements with the bundle's calibration applied (:mod:`.measurement_intervals`); a stack's class
reports the measurements of one frame (:func:`measured_frame`), never a volume. Every output
(files, overlay, review table, worker answer) serialises this object; none re-assesses.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import SimpleITK as sitk

from ..contract import ABSENT, PASS, REVIEW, UNRATED, ConfidenceSegError, Key
from ..inference.prediction import ClassPrediction, Prediction
from ..io.inputs import InputFacts
from ..model.bundle_config import QualityConfig
from .apply import assess_frames, assess_segment, combine_frames
from .boundary import ProfileImage, boundary_typicality
from .domain import Typicality, domain_references, typicality
from .measurement_intervals import calibrated, implausible, report_names
from .verdict import ClassResult, FrameResult, Reason, Verdict


@dataclass
class AssessedPrediction:
    """A prediction (image-grid maps and masks) with its quality, in memory, before anything is written.

    ``frames``: for a 2D model run slice by slice on a stack, one ``{class: FrameResult}`` per frame.
    """

    prediction: Prediction
    source: InputFacts
    pass_threshold: float | None
    classes: list[ClassResult]
    frames: list[dict[str, FrameResult]] | None = None

    @property
    def image(self) -> sitk.Image:
        return self.prediction.image

    def maps(self, name: str) -> ClassPrediction:
        """The prediction of class ``name`` (mask and maps (frames, H, W) or (H, W), image grid)."""
        return next(c for c in self.prediction.classes if c.name == name)


def reported_measurements(quality: QualityConfig | None, class_name: str, measured: dict | None,
                          has_spacing: bool, verdict: Verdict) -> tuple[dict, Verdict]:
    """Measurements as reported (the bundle's calibration applied, implausible ones marked, pixel names
    without spacing) and the verdict, REVIEW with the reason when a measurement is implausible."""
    calibration = quality.measurement_calibration(class_name) if quality is not None else None
    measurements, reason = implausible(calibrated(measured or {}, calibration), calibration, class_name)
    if reason is not None and verdict.predicted_dice is not None:
        reasons = (reason, *verdict.reasons) if verdict.badge == PASS else (*verdict.reasons, reason)
        verdict = Verdict(REVIEW, verdict.predicted_dice, verdict.dice_lower_bound, reasons)
    return report_names(measurements, has_spacing), verdict


def image_typicality(prediction: Prediction, quality: QualityConfig | None) -> list[Typicality] | None:
    """The domain check of every frame (2D model) or of the volume; None without a calibrated domain."""
    section = quality.domain if quality is not None else None
    if section is None or prediction.embeddings is None:
        return None
    by_frame = [c.frame_summaries or [c.summary] for c in prediction.classes]
    uncertainty = np.array([[summaries[k]["mean_entropy_image"] for summaries in by_frame]
                            for k in range(len(by_frame[0]))]).mean(axis=1)
    return typicality(section, domain_references(quality.folder, section), prediction.embeddings, uncertainty,
                      prediction.blank)


def class_typicalities(profile_image: ProfileImage | None, quality: QualityConfig | None, result: ClassPrediction,
                       images: list[Typicality] | None) -> list[Typicality | None] | None:
    """Per frame (one for an image or volume) the domain check that decides for class ``result``: the
    image's when it is out of domain, else the class's boundary check of its segment (:mod:`.boundary`)."""
    section = quality.boundary_model(result.name) if quality is not None else None
    if section is None or profile_image is None:
        return images
    references = domain_references(quality.folder, section).get(result.name)
    if references is None or references.ndim != 2 or references.shape[1] != len(section["feature_mean"]):
        raise ConfidenceSegError(f"model bundle {quality.folder}: {section['references']} lacks the boundary "
                                 f"profiles of {result.name}; recalibrate the bundle")
    profiles = profile_image.profiles(result.mask, frames=result.frame_summaries is not None)
    segments = [boundary_typicality(section, references, profile) for profile in profiles]
    return [image if image is not None and image.outside else segment
            for image, segment in zip(images or [None] * len(segments), segments, strict=True)]


def assess_prediction(prediction: Prediction, quality: QualityConfig | None, source: InputFacts,
                      uncalibrated: Reason | None = None) -> AssessedPrediction:
    """Every class of ``prediction`` assessed with the bundle's ``quality`` model (None: unrated, or REVIEW with
    the reason ``uncalibrated`` when given: a model that must be calibrated before any PASS, e.g. nnU-Net's)."""
    if quality is None and uncalibrated is not None:
        return _flagged_uncalibrated(assess_prediction(prediction, None, source), uncalibrated)
    used = (prediction.method, prediction.samples)
    typicalities = image_typicality(prediction, quality)
    profile_image = ProfileImage.of(prediction.image) if quality is not None and quality.data.get("boundary") else None
    classes, frames = [], None
    for result in prediction.classes:
        decisive = class_typicalities(profile_image, quality, result, typicalities)
        if result.frame_summaries is None:
            verdict = assess_segment(quality, result.name, result.summary, used=used, has_spacing=source.has_spacing,
                                     typicality=decisive[0] if decisive else None)
            measurements, verdict = reported_measurements(quality, result.name, result.measurements,
                                                          source.has_spacing, verdict)
            classes.append(ClassResult(result.name, bool(result.mask.any()), dict(result.summary), verdict,
                                       measurements))
            continue
        _, frame_verdicts, _ = assess_frames(quality, result.name, result.frame_summaries, used, source.has_spacing,
                                             decisive)
        frames = frames or [{} for _ in frame_verdicts]
        for index, frame_verdict in enumerate(frame_verdicts):
            measured, frame_verdicts[index] = reported_measurements(
                quality, result.name, result.frame_measurements[index], source.has_spacing, frame_verdict)
            frames[index][result.name] = FrameResult(bool(result.mask[index].any()), frame_verdicts[index], measured)
        verdict, _, frames_summary = combine_frames(result.name, frame_verdicts)
        shown = measured_frame(frames_summary, result.mask)
        frames_summary[Key.MEASURED_FRAME] = shown
        classes.append(ClassResult(result.name, bool(result.mask.any()), dict(result.summary), verdict,
                                   frames[shown][result.name].measurements if shown is not None else {},
                                   frames_summary))
    return AssessedPrediction(prediction, source, quality.threshold if quality is not None else None, classes, frames)


def _all_review(result: ClassResult) -> dict | None:
    """A class's frame counts with every frame REVIEW (None for a class without frames)."""
    if result.frames_summary is None:
        return None
    others = {key: value for key, value in result.frames_summary.items() if key != UNRATED}
    return {**others, PASS: 0, ABSENT: 0, REVIEW: result.frame_count}


def _flagged_uncalibrated(assessed: AssessedPrediction, why: Reason) -> AssessedPrediction:
    """``assessed`` (made without a quality model) with every class and frame REVIEW for reason ``why``."""
    verdict = Verdict(REVIEW, reasons=(why,))
    assessed.classes = [replace(result, verdict=verdict, frames_summary=_all_review(result))
                        for result in assessed.classes]
    assessed.frames = None if assessed.frames is None else [
        {name: replace(frame, verdict=verdict) for name, frame in by_class.items()} for by_class in assessed.frames]
    return assessed


def measured_frame(frames_summary: dict, mask: np.ndarray) -> int | None:
    """The frame whose measurements stand for a stack: the worst frame, else (unrated) the one with the
    largest segmentation; None when no frame has the class. ``mask``: bool (frames, H, W)."""
    if frames_summary.get(Key.WORST_FRAME) is not None:
        return frames_summary[Key.WORST_FRAME]
    areas = mask.reshape(mask.shape[0], -1).sum(axis=1)
    return int(areas.argmax()) if areas.any() else None
