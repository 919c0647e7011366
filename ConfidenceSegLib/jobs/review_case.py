"""One case of a batch review, wherever it runs: predict, write its files and overlay, make its rows.

:func:`review_case` is the unit of work of every runner in :mod:`.review_runners` (in process,
local worker processes, Dask workers); its :class:`CaseResult` is small and picklable, so it can
travel back from another process or machine. Bundles are loaded once per process
(:func:`cached_bundle`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..contract import OVERLAY_SUFFIX, ConfidenceSegError
from ..io.inputs import InputFacts
from ..io.stops import uninterruptible
from ..model.bundle import ModelBundle, load_bundle
from ..model.bundle_config import BundleConfig
from ..outputs.overlay import layers_from_prediction, overlay_options, write_overlay
from ..outputs.prediction_files import write_prediction_outputs
from ..outputs.report_html import thumbnails
from ..outputs.review_table import rows_from_report
from ..outputs.slicer_scene import write_case_scene
from ..quality.assessed import AssessedPrediction
from .predict_job import run_prediction
from .settings import PredictionSettings

_bundles: dict[str, ModelBundle] = {}


@dataclass
class CaseResult:
    """The ``review.csv`` rows and (overlay, heatmap) thumbnails of one case, or why it failed."""

    case: str
    rows: list[dict] = field(default_factory=list)
    pictures: dict[tuple[str, str], tuple[bytes, bytes]] = field(default_factory=dict)
    failure: str = ""
    warnings: list[str] = field(default_factory=list)


def cached_bundle(model: Path, config: BundleConfig | None = None) -> ModelBundle:
    """The bundle at ``model``, loaded once per process (worker processes keep it between cases);
    ``config``: its config as the run read it."""
    key = str(Path(model).resolve())
    if key not in _bundles:
        _bundles[key] = load_bundle(model, config)
    return _bundles[key]


def finish_case(bundle: ModelBundle, assessed: AssessedPrediction, case: str, out_dir: Path,
                settings: PredictionSettings, overwrite: bool) -> CaseResult:
    """Write an assessed case's files, overlay and Slicer scene (a stop waits for them: a case is written
    whole or not at all, in well under a second); its rows and thumbnails."""
    layers = layers_from_prediction(assessed)
    with uninterruptible():
        report = write_prediction_outputs(assessed, bundle.path, out_dir, case, overwrite, maps=settings.maps)
        write_overlay(out_dir / f"{case}{OVERLAY_SUFFIX}", assessed.image, layers, overwrite, title=case,
                      **overlay_options(report))
        write_case_scene(out_dir, case, report, assessed.source.path, overwrite, assessed.image)
    pictures = {(case, name): pair for name, pair in thumbnails(assessed.image, layers).items()}
    return CaseResult(case, rows_from_report(case, report), pictures,
                      warnings=[f"{case}: {warning}" for warning in report.warnings])


def review_case(bundle: ModelBundle, path: Path, case: str, out_dir: Path, settings: PredictionSettings,
                overwrite: bool) -> CaseResult:
    """Read, predict and finish one case; a user error becomes the case's ``failure``."""
    try:
        assessed = run_prediction(bundle, InputFacts.of(path, settings.spacing, bundle.config.in_channels), settings)
        return finish_case(bundle, assessed, case, out_dir, settings, overwrite)
    except ConfidenceSegError as error:
        return CaseResult(case, failure=f"{path}: {error}")
    except OSError as error:  # e.g. the disk filled up: this case fails, the batch goes on
        return CaseResult(case, failure=f"{path}: cannot write its outputs ({error.strerror or error})")


def review_case_in_worker(model: Path, config: BundleConfig, path: Path, case: str, out_dir: Path,
                          settings: PredictionSettings, overwrite: bool) -> CaseResult:
    """:func:`review_case` with the worker process's cached bundle (for process pools and Dask)."""
    return review_case(cached_bundle(model, config), path, case, out_dir, settings, overwrite)
