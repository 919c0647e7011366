"""The quick start: the bundled model on a bundled sample image, with every output and an overlay.

Runs exactly what ``confidenceseg predict`` runs (:func:`~.predict_job.predict_input`), then draws
``S_overlay.png``. Without ``out`` the outputs go to a new folder ``confidenceseg-quickstart``
in the current folder (``confidenceseg-quickstart-2``, ``-3``, ... when it exists), so running
the quick start again never touches earlier results; an explicit ``out`` may exist, but files
in it are replaced only with ``overwrite``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..contract import MAP_KINDS, OVERLAY_SUFFIX, QUICKSTART_FOLDER, REPORT_SUFFIX, badge_label
from ..io.resources import default_model_dir, sample_images
from ..io.safe_files import output_folder
from ..outputs.report import PredictionReport
from ..quality.reasons import result_words
from .preflight import check_prediction_run
from .settings import PredictionSettings


@dataclass
class QuickstartResult:
    """Where the quick start wrote its outputs, and the ``predict`` report it wrote."""

    out_dir: Path
    case: str
    report: PredictionReport

    @property
    def json_path(self) -> Path:
        return self.out_dir / f"{self.case}{REPORT_SUFFIX}"

    @property
    def overlay_path(self) -> Path:
        return self.out_dir / f"{self.case}{OVERLAY_SUFFIX}"


def fresh_folder(base: Path) -> Path:
    """``base`` if it does not exist, else the first of ``base-2``, ``base-3``, ... that does not."""
    candidate, number = base, 1
    while candidate.exists():
        number += 1
        candidate = base.with_name(f"{base.name}-{number}")
    return candidate


def run_quickstart(out: str | os.PathLike | None = None, image: str | os.PathLike | None = None,
                   model: str | os.PathLike | None = None, overwrite: bool = False, method: str = "auto",
                   samples: int | None = None, device: str = "auto",
                   spacing: tuple[float, ...] | None = None) -> QuickstartResult:
    """Predict ``image`` (default: first bundled sample) with ``model`` (default: bundled) into ``out``
    (``spacing``: mm, x y [z], for an image without its own)."""
    model_dir = Path(model) if model else default_model_dir()
    image_path = Path(image) if image else sample_images()[0]
    out_dir = Path(out) if out else fresh_folder(Path.cwd() / QUICKSTART_FOLDER)
    (case,), config = check_prediction_run(model_dir, [image_path], out_dir, overwrite, overlay=True, maps=MAP_KINDS)
    from ..model.bundle import load_bundle  # the model stack loads only now
    from .predict_job import predict_input

    bundle = load_bundle(model_dir, config)
    settings = PredictionSettings(method, samples, device, MAP_KINDS, spacing)  # one frame: every map is cheap
    settings.check(len(bundle.members), bundle.spatial_dims)
    with output_folder(out_dir):
        written = predict_input(bundle, image_path, out_dir, settings, overwrite, stem=case)
        written.write_overlay(out_dir, case, model_dir, overwrite)
    return QuickstartResult(out_dir, case, written.report)


def badge_summary(report: PredictionReport) -> list[str]:
    """One readable line per class: badge, predicted Dice, lower bound and (unless PASS) the reason."""
    width = max(len(name) for name in report.classes)
    return [f"{name:<{width}}  {badge_label(result.verdict.badge):<7} {result_words(result)}"
            for name, result in report.classes.items()]
