"""The assessed prediction: a prediction with every class's quality verdict and reported measurements.

:func:`assess_prediction` is the one function that turns a
:class:`~ConfidenceSegLib.inference.prediction.Prediction` into an :class:`AssessedPrediction`: per class
(and per frame when a 2D model ran slice by slice on a stack) presence, verdict (:mod:`.apply`) and the
measurements with the bundle's calibration applied (:mod:`.measurement_intervals`). Every output
(files, overlay, review table, worker answer) serialises this object; none re-assesses.
"""

from __future__ import annotations

from dataclasses import dataclass

import SimpleITK as sitk

from ..inference.prediction import ClassPrediction, Prediction
from ..io.inputs import InputFacts
from ..model.bundle_config import QualityConfig
from .apply import assess_frames, assess_segment
from .measurement_intervals import calibrated, report_names
from .verdict import ClassResult, FrameResult


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
                          has_spacing: bool) -> dict:
    """Measurements as reported: the bundle's calibration applied, pixel names without spacing."""
    calibration = quality.measurement_calibration(class_name) if quality is not None else None
    return report_names(calibrated(measured or {}, calibration), has_spacing)


def assess_prediction(prediction: Prediction, quality: QualityConfig | None, source: InputFacts) -> AssessedPrediction:
    """Every class of ``prediction`` assessed with the bundle's ``quality`` model (None: unrated)."""
    used = (prediction.method, prediction.samples)
    classes, frames = [], None
    for result in prediction.classes:
        measurements = reported_measurements(quality, result.name, result.measurements, source.has_spacing)
        frames_summary = None
        if result.frame_summaries is None:
            verdict = assess_segment(quality, result.name, result.summary, used=used, has_spacing=source.has_spacing)
        else:
            verdict, frame_verdicts, frames_summary = assess_frames(quality, result.name, result.frame_summaries,
                                                                    used, source.has_spacing)
            frames = frames or [{} for _ in frame_verdicts]
            for index, frame_verdict in enumerate(frame_verdicts):
                frames[index][result.name] = FrameResult(
                    bool(result.mask[index].any()), frame_verdict,
                    reported_measurements(quality, result.name, result.frame_measurements[index], source.has_spacing))
        classes.append(ClassResult(result.name, bool(result.mask.any()), dict(result.summary), verdict, measurements,
                                   frames_summary))
    return AssessedPrediction(prediction, source, quality.threshold if quality is not None else None, classes, frames)
