"""Predicting one input and writing its outputs: the one path behind ``predict``, ``review``,
``quickstart`` and the Slicer module's background process.

Read the image, run :func:`~ConfidenceSegLib.inference.predict.predict_image`, write the outputs
of :mod:`~ConfidenceSegLib.outputs.prediction_files` (staged in a hidden folder, moved into place
in one uninterruptible step), reporting progress over the ``span`` of the caller's progress bar.
A stop request (SIGTERM, SIGINT, a cancelled job) raises
:class:`~ConfidenceSegLib.io.stops.StopRequested` and leaves no partial output.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import SimpleITK as sitk

from ..inference.predict import Prediction, predict_image
from ..io.images import read_image
from ..io.inputs import input_stem
from ..io.stops import uninterruptible
from ..model.bundle import ModelBundle
from ..outputs.overlay import OverlayLayer, layers_from_prediction
from ..outputs.prediction_files import write_prediction_outputs
from .progress import ProgressReporter
from .settings import PredictionSettings

#: Share of one input's progress span taken by reading (before) and writing (after) the prediction.
READ_SHARE, WRITE_SHARE = 0.05, 0.2


@dataclass
class WrittenPrediction:
    """A prediction kept in memory together with the ``predict`` report its files were written with."""

    report: dict
    prediction: Prediction
    image: sitk.Image

    def overlay_layers(self) -> list[OverlayLayer]:
        return layers_from_prediction(self.prediction, self.report)


def predict_input(bundle: ModelBundle, path: str | os.PathLike, out_dir: str | os.PathLike,
                  settings: PredictionSettings, overwrite: bool = False,
                  reporter: ProgressReporter | None = None, span: tuple[float, float] = (0.0, 1.0),
                  stem: str | None = None, image: sitk.Image | None = None) -> WrittenPrediction:
    """Predict the image at ``path`` (or the already read ``image``) and write its outputs as ``stem``."""
    reporter = reporter or ProgressReporter()
    path = Path(path)
    start, end = span
    inferred = end - WRITE_SHARE * (end - start)
    reporter("read", start, f"reading {path}")
    image = read_image(path) if image is None else image
    prediction = predict_image(bundle, image, settings.method, settings.samples, settings.device,
                               progress=reporter.scaled(start + READ_SHARE * (end - start), inferred))
    report = write_prediction_outputs(prediction, bundle, out_dir, stem or input_stem(path), path, overwrite,
                                      progress=reporter.scaled(inferred, end), finalize=uninterruptible,
                                      maps=settings.maps)
    return WrittenPrediction(report, prediction, image)
