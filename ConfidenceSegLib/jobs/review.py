"""Batch quality control: predict a cohort, rank it for review, write ``review.csv`` and ``index.html``.

Every case gets the outputs of ``confidenceseg predict`` (``S.seg.nrrd``, ``S_<class>_<map>.nrrd``,
``S.json``) plus ``S_overlay.png``, all flat in the output folder, so the Slicer module's Review
section opens them. ``review.csv`` lists one row per case and class in review order
(:mod:`~ConfidenceSegLib.outputs.review_table`); ``index.html`` shows the same rows with
thumbnails. A case that cannot be read or predicted is reported and skipped; the others go on.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ..contract import OVERLAY_SUFFIX, REVIEW_CSV, REVIEW_HTML, ConfidenceSegError
from ..io.inputs import collect_inputs, input_stem
from ..io.safe_files import check_output_folder, output_folder, write_text_atomic
from ..model.bundle import load_bundle
from ..model.bundle_config import read_config
from ..outputs.overlay import write_overlay
from ..outputs.report_html import ReportRow, review_page, thumbnails
from ..outputs.review_table import review_csv, review_order, rows_from_report
from .predict_job import PredictionSettings, output_bytes, output_names, predict_input


@dataclass
class ReviewResult:
    """What a review wrote: the ordered rows, the two summary files and the inputs that failed."""

    rows: list[dict]
    csv_path: Path
    html_path: Path
    failures: list[str] = field(default_factory=list)


def run_review(model: str | os.PathLike, inputs: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
               method: str = "auto", samples: int | None = None, device: str = "auto", overwrite: bool = False,
               progress: bool = True) -> ReviewResult:
    """Predict every input, write each case's outputs and overlay, then ``review.csv`` and ``index.html``."""
    out_dir = Path(out_dir)
    csv_path, html_path = out_dir / REVIEW_CSV, out_dir / REVIEW_HTML
    paths = collect_inputs(inputs)
    stems = [input_stem(path) for path in paths]
    classes = read_config(model)["classes"]
    check_output_folder(out_dir, [REVIEW_CSV, REVIEW_HTML, *output_names(stems, classes, overlay=True)], overwrite,
                        output_bytes(paths, classes))
    bundle = load_bundle(model)
    settings = PredictionSettings(method, samples, device)
    settings.check(len(bundle.members))
    rows: list[dict] = []
    pictures: dict[tuple[str, str], tuple[bytes, bytes]] = {}
    failures: list[str] = []
    with output_folder(out_dir):
        bar = tqdm(list(zip(paths, stems, strict=True)), desc="review", unit="case", disable=not progress,
                   dynamic_ncols=True)
        for path, case in bar:
            bar.set_postfix_str(case)
            try:
                written = predict_input(bundle, path, out_dir, settings, overwrite, stem=case)
                layers = written.overlay_layers()
                write_overlay(out_dir / f"{case}{OVERLAY_SUFFIX}", written.image, layers, overwrite, title=case)
            except ConfidenceSegError as error:
                failures.append(f"{path}: {error}")
                bar.write(f"confidenceseg: skipped {path}: {error}")
                continue
            pictures.update({(case, name): pair for name, pair in thumbnails(written.image, layers).items()})
            rows += rows_from_report(case, written.report)
        if not rows:
            raise ConfidenceSegError("no input could be processed:\n  " + "\n  ".join(failures))
        rows.sort(key=review_order)
        write_text_atomic(csv_path, review_csv(rows), overwrite)
        cases = len({row["case"] for row in rows})
        description = (f"Model {bundle.path} · {cases} case(s) · PASS: the conformal lower bound of the predicted "
                       "Dice reaches the bundle's threshold; REVIEW: open and check.")
        report_rows = [ReportRow(row, *pictures[(row["case"], row["class"])],
                                 overlay_link=f"{row['case']}{OVERLAY_SUFFIX}") for row in rows]
        page = review_page(report_rows, title=f"ConfidenceSeg review: {out_dir.name}", description=description,
                           failures=failures)
        write_text_atomic(html_path, page, overwrite)
    return ReviewResult(rows, csv_path, html_path, failures)
