"""Running the model on one input: the one path behind ``predict``, ``review``, ``quickstart``, the worker,
the Slicer module's background process, ``evaluate`` and ``calibrate``.

:func:`run_prediction` reads the image (unless given), runs
:func:`~ConfidenceSegLib.inference.predict.predict_image` and assesses it
(:func:`~ConfidenceSegLib.quality.assessed.assess_prediction`); :func:`predict_input` then writes the
outputs of :mod:`~ConfidenceSegLib.outputs.prediction_files` (staged in a hidden folder, moved into place
in one uninterruptible step), reporting progress over the ``span`` of the caller's progress bar. A stop
request (SIGTERM, SIGINT, a cancelled job) raises :class:`~ConfidenceSegLib.io.stops.StopRequested` and
leaves no partial output.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import SimpleITK as sitk

from ..contract import OVERLAY_SUFFIX
from ..inference.predict import Progress, predict_image
from ..io.inputs import InputFacts, input_stem
from ..io.stops import uninterruptible
from ..model.bundle import ModelBundle
from ..outputs.overlay import OverlayLayer, layers_from_prediction, overlay_options, write_overlay
from ..outputs.prediction_files import write_prediction_outputs
from ..outputs.report import PredictionReport
from ..quality.assessed import AssessedPrediction, assess_prediction
from ..quality.verdict import Reason
from .progress import ProgressReporter
from .settings import PredictionSettings

#: Share of one input's progress span taken by reading (before) and writing (after) the prediction.
READ_SHARE, WRITE_SHARE = 0.05, 0.2


def run_prediction(bundle: ModelBundle, source: InputFacts, settings: PredictionSettings,
                   image: sitk.Image | None = None, progress: Progress | None = None) -> AssessedPrediction:
    """Predict ``source`` (or the given ``image`` of it, e.g. a degraded copy) and assess every class."""
    image = source.read() if image is None else image
    prediction = predict_image(bundle, image, settings.method, settings.samples, settings.device, progress=progress)
    return assess_prediction(prediction, bundle.config.quality, source, uncalibrated_reason(bundle))


def uncalibrated_reason(bundle: ModelBundle) -> Reason | None:
    """Why an nnU-Net model without a quality model cannot PASS (None for ConfidenceSeg's models: unrated)."""
    if bundle.config.nnunet is None:
        return None
    return Reason("not_calibrated", "this nnU-Net model is not calibrated: confidenceseg calibrate --model "
                                    f"{bundle.config.nnunet['folder']} --dataset DIR --out BUNDLE")


@dataclass
class WrittenPrediction:
    """An assessed prediction kept in memory together with the report its files were written with."""

    report: PredictionReport
    assessed: AssessedPrediction

    def overlay_layers(self) -> list[OverlayLayer]:
        return layers_from_prediction(self.assessed)

    def write_overlay(self, out_dir: Path, stem: str, model: str | os.PathLike, overwrite: bool = False) -> Path:
        """``S_overlay.png`` (image, outlines, entropy heatmap, badges; a stack's measured frame), titled
        with the input, the model and how it was predicted; returns its path."""
        report, path = self.report, Path(out_dir) / f"{stem}{OVERLAY_SUFFIX}"
        title = f"{Path(report.input).name} · model {Path(model).name} · {report.sampling}"
        write_overlay(path, self.assessed.image, self.overlay_layers(), overwrite, title=title,
                      **overlay_options(report))
        return path


def predict_input(bundle: ModelBundle, path: str | os.PathLike, out_dir: str | os.PathLike,
                  settings: PredictionSettings, overwrite: bool = False,
                  reporter: ProgressReporter | None = None, span: tuple[float, float] = (0.0, 1.0),
                  stem: str | None = None) -> WrittenPrediction:
    """Predict the image at ``path`` and write its outputs as ``stem`` (default: the input's stem)."""
    reporter = reporter or ProgressReporter()
    path = Path(path)
    start, end = span
    inferred = end - WRITE_SHARE * (end - start)
    reporter("read", start, f"reading {path}")
    assessed = run_prediction(bundle, InputFacts.of(path, settings.spacing, bundle.config.in_channels), settings,
                              progress=reporter.scaled(start + READ_SHARE * (end - start), inferred))
    report = write_prediction_outputs(assessed, bundle.path, out_dir, stem or input_stem(path), overwrite,
                                      progress=reporter.scaled(inferred, end), finalize=uninterruptible,
                                      maps=settings.maps)
    return WrittenPrediction(report, assessed)
