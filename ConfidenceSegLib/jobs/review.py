"""Batch quality control: predict a cohort, rank it for review, write ``review.csv`` and ``index.html``.

Every case gets the outputs of ``confidenceseg predict`` (``S.seg.nrrd``, ``S_<class>_<map>.nrrd``,
``S.json``) plus ``S_overlay.png`` and a Slicer scene ``S.mrml``, all flat in the output folder, so
the Slicer module's Review section opens them. ``review.csv`` lists one row per case and class in
review order (:mod:`~ConfidenceSegLib.outputs.review_table`); ``index.html`` shows the same rows
with thumbnails. A case that cannot be read or predicted is reported and skipped; the others go on.

Where the cases run (:mod:`.review_runners`): in this process, with reading, inference and
writing overlapped (default); in ``workers`` local processes; or on a Dask distributed cluster
(``dask_address``). Every case is processed by :func:`.review_case.review_case` in all three, so
the outputs and ``review.csv`` are the same whichever is used.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..contract import DEFAULT_MAPS, OVERLAY_SUFFIX, REVIEW_CSV, REVIEW_HTML, SCENE_SUFFIX, ConfidenceSegError, Key
from ..io.inputs import collect_inputs
from ..io.safe_files import output_folder, write_text_atomic
from ..model.bundle_config import read_config
from ..outputs.review_table import review_csv, review_order
from .preflight import check_prediction_run
from .settings import PredictionSettings


@dataclass
class ReviewResult:
    """What a review wrote: the ordered rows, the two summary files, the inputs that failed, what optional
    output was not written (``warnings``, one line each), the speed."""

    rows: list[dict]
    csv_path: Path
    html_path: Path
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        cases = len({row[Key.CASE] for row in self.rows}) + len(self.failures)
        return cases / self.seconds if self.seconds > 0 else 0.0


def run_review(model: str | os.PathLike, inputs: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
               method: str = "auto", samples: int | None = None, device: str = "auto", overwrite: bool = False,
               progress: bool = True, maps: Sequence[str] | None = None, workers: int = 1,
               dask_address: str | None = None, spacing: Sequence[float] | None = None) -> ReviewResult:
    """Predict every input, write each case's outputs and overlay, then ``review.csv`` and ``index.html``."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    if workers < 1:
        raise ConfidenceSegError(f"--workers must be at least 1, got {workers}")
    settings = PredictionSettings(method, samples, device, tuple(maps) if maps else DEFAULT_MAPS,
                                  tuple(spacing) if spacing else None)
    config = read_config(model)
    paths = collect_inputs(inputs, config.in_channels)
    stems, config = check_prediction_run(model, paths, out_dir, overwrite, overlay=True, config=config,
                                         extra_names=[REVIEW_CSV, REVIEW_HTML], maps=settings.maps, scene=True)
    from ..outputs.report_html import ReportRow, review_page  # the model stack loads only now
    from .review_runners import run_cases

    rows: list[dict] = []
    pictures: dict[tuple[str, str], tuple[bytes, bytes]] = {}
    failures: list[str] = []
    warnings: list[str] = []
    with output_folder(out_dir):
        for result in run_cases(Path(model), config, list(zip(paths, stems, strict=True)), out_dir, settings,
                                overwrite, workers, dask_address, progress):
            if result.failure:
                failures.append(result.failure)
                continue
            rows += result.rows
            warnings += result.warnings
            pictures.update(result.pictures)
        if not rows:
            more = f" (and {len(failures) - 3} more)" if len(failures) > 3 else ""
            raise ConfidenceSegError(f"no input could be processed: {'; '.join(failures[:3])}{more}")
        rows.sort(key=review_order)
        csv_path, html_path = out_dir / REVIEW_CSV, out_dir / REVIEW_HTML
        write_text_atomic(csv_path, review_csv(rows), overwrite)
        cases = len({row[Key.CASE] for row in rows})
        description = (f"Model {model} · {cases} case(s) · PASS: the conformal lower bound of the predicted "
                       "Dice reaches the bundle's threshold; REVIEW: open and check.")
        report_rows = [ReportRow(row, *pictures[(row[Key.CASE], row[Key.CLASS])],
                                 overlay_link=f"{row[Key.CASE]}{OVERLAY_SUFFIX}",
                                 scene_link=f"{row[Key.CASE]}{SCENE_SUFFIX}") for row in rows]
        page = review_page(report_rows, title=f"ConfidenceSeg review: {out_dir.name}", description=description,
                           failures=failures)
        write_text_atomic(html_path, page, overwrite)
    return ReviewResult(rows, csv_path, html_path, failures, time.perf_counter() - started, warnings)
