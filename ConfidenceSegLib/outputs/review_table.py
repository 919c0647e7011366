"""Batch quality control: predict a cohort, rank it for review, write ``review.csv`` and ``index.html``.

Every case gets the outputs of ``confidenceseg predict`` (``S.seg.nrrd``, ``S_<class>_<map>.nrrd``,
``S.json``) plus ``S_overlay.png``, all flat in the output folder, so the Slicer module's Review
section opens them. ``review.csv`` has one row per case and class (paths relative to the folder),
ordered for review: REVIEW first, then ABSENT, PASS and unrated (no quality model); within a badge
the lowest Dice lower bound (then predicted Dice) first. ``index.html`` shows the same rows with
thumbnails. A case that cannot be read or predicted is reported and skipped; the others go on.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from tqdm import tqdm

from ..contract import ConfidenceSegError
from ..io.images import IMAGE_SUFFIXES, read_image
from ..io.safe_files import check_can_write, write_text_atomic
from ..io.segfile import read_segmentation
from ..model.bundle import load_bundle, read_config
from .overlay import OverlayLayer, render_overlay, write_overlay
from .prediction_files import MAP_KINDS, output_names, output_stem, write_prediction_outputs
from .report_html import BADGE_PRIORITY, ReportRow, review_page

CSV_COLUMNS = ("case", "class", "predicted_dice", "dice_lower_bound", "badge", "segmentation", "probability",
               "entropy", "mutual_information", "json")
OVERLAY_SUFFIX = "_overlay.png"
THUMBNAIL_WIDTH = 240


@dataclass
class ReviewResult:
    """What a review wrote: the ordered rows, the two summary files and the inputs that failed."""

    rows: list[dict]
    csv_path: Path
    html_path: Path
    failures: list[str] = field(default_factory=list)


def _is_image_file(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.name.lower().endswith(IMAGE_SUFFIXES) \
        and not path.name.lower().endswith(".seg.nrrd")


def _is_dicom_file(path: Path) -> bool:
    """DICOM Part 10 file: ``DICM`` after the 128-byte preamble."""
    try:
        with path.open("rb") as file:
            return file.read(132)[128:] == b"DICM"
    except OSError:
        return False


def _is_dicom_folder(path: Path) -> bool:
    """A folder whose first file is DICOM (then read as a series by :func:`imageio.read_image`)."""
    if not path.is_dir():
        return False
    first = next((p for p in sorted(path.iterdir()) if p.is_file() and not p.name.startswith(".")), None)
    return first is not None and _is_dicom_file(first)


def collect_inputs(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Image files and DICOM series folders to review, in order, without duplicate case names.

    A folder that is itself a DICOM series is one case; any other folder contributes its image
    files and its DICOM series sub-folders (``.dcm`` files in a folder of images are not cases).
    """
    found: list[Path] = []
    for item in map(Path, inputs):
        if not item.exists():
            raise ConfidenceSegError(f"input not found: {item}")
        if item.is_file():
            if not item.name.lower().endswith(IMAGE_SUFFIXES):
                raise ConfidenceSegError(f"not an image file: {item} (expected one of {', '.join(IMAGE_SUFFIXES)})")
            found.append(item)
        elif _is_dicom_folder(item):
            found.append(item)
        else:
            children = sorted(item.iterdir())
            found += [p for p in children if _is_image_file(p) and not p.name.lower().endswith(".dcm")]
            found += [p for p in children if _is_dicom_folder(p)]
    if not found:
        raise ConfidenceSegError("no images found in " + ", ".join(map(str, inputs)))
    seen: dict[str, Path] = {}
    for path in found:
        name = output_stem(path)
        if name in seen:
            raise ConfidenceSegError(f"two inputs would write the same outputs {name}.*: {seen[name]} and {path}")
        seen[name] = path
    return found


def case_outputs(case: str, classes: Sequence[str]) -> list[str]:
    """File names that one case writes: those of ``predict`` plus the overlay."""
    return output_names(case, list(classes)) + [f"{case}{OVERLAY_SUFFIX}"]


def rows_from_report(case: str, report: dict) -> list[dict]:
    """``review.csv`` rows (one per class) from a ``predict`` report; paths relative to its folder."""
    rows = []
    for class_name, result in report["classes"].items():
        files = result.get("files", {})
        rows.append({"case": case, "class": class_name, "predicted_dice": result.get("predicted_dice"),
                     "dice_lower_bound": result.get("dice_lower_bound"), "badge": result.get("badge"),
                     "segmentation": report["segmentation"], **{kind: files.get(kind, "") for kind in MAP_KINDS},
                     "json": f"{case}.json"})
    return rows


def review_order(row: dict) -> tuple:
    """Sort key: badge priority, then lower bound, then predicted Dice (lowest first), then names."""
    missing = 2.0  # unknown numbers sort after known ones
    bound, dice = row.get("dice_lower_bound"), row.get("predicted_dice")
    return (BADGE_PRIORITY.get(row.get("badge"), len(BADGE_PRIORITY)),
            missing if bound is None else float(bound), missing if dice is None else float(dice),
            row["case"], row["class"])


def review_csv(rows: Sequence[dict]) -> str:
    """The CSV text: numbers with 4 decimals, empty cells for missing values."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row.get(key) is None else
                         (f"{row[key]:.4f}" if isinstance(row[key], float) else row[key]) for key in CSV_COLUMNS})
    return buffer.getvalue()


def read_layers(json_path: str | os.PathLike, image: sitk.Image) -> list[OverlayLayer]:
    """The classes of a ``predict`` report as overlay layers (mask from the .seg.nrrd, entropy map)."""
    json_path = Path(json_path)
    folder = json_path.parent
    report = json.loads(json_path.read_text(encoding="utf-8"))
    segments = read_segmentation(folder / report["segmentation"], image)
    layers = []
    for class_name, result in report["classes"].items():
        masks = [s.mask for s in segments if (s.class_name or s.name) == class_name]
        mask = np.any(masks, axis=0) if masks else np.zeros(image.GetSize()[::-1], dtype=bool)
        entropy = sitk.GetArrayFromImage(read_image(folder / result["files"]["entropy"]))
        layers.append(OverlayLayer(class_name, mask, entropy, result.get("predicted_dice"),
                                   result.get("dice_lower_bound"), result.get("badge")))
    return layers


def thumbnails(image: sitk.Image, layers: Sequence[OverlayLayer]) -> dict[str, tuple[bytes, bytes]]:
    """Per class: (overlay, heatmap) thumbnails as PNG bytes for the HTML page."""
    return {layer.name: (render_overlay(image, [layer], width=THUMBNAIL_WIDTH, text=False, palette=True),
                         render_overlay(image, [layer], width=THUMBNAIL_WIDTH, heatmap_only=True, palette=True))
            for layer in layers}


def predict_case(bundle, image: sitk.Image, image_path: Path, out_dir: Path, case: str, method: str = "auto",
                 samples: int | None = None, device: str = "auto",
                 overwrite: bool = False) -> tuple[dict, list[OverlayLayer]]:
    """Exactly what ``confidenceseg predict`` does for one image (predict, then write its outputs); returns the
    report and the overlay layers, taken from the prediction in memory rather than read back from the files."""
    from ..inference.runner import predict_image  # heavy import, only needed here

    prediction = predict_image(bundle, image, method=method, samples=samples, device=device)
    report = write_prediction_outputs(prediction, bundle, out_dir, case, image_path, overwrite=overwrite)
    layers = [OverlayLayer(c.name, c.mask, c.entropy, report["classes"][c.name].get("predicted_dice"),
                           report["classes"][c.name].get("dice_lower_bound"), report["classes"][c.name].get("badge"))
              for c in prediction.classes]
    return report, layers


def run_review(model: str | os.PathLike, inputs: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
               method: str = "auto", samples: int | None = None, device: str = "auto", overwrite: bool = False,
               progress: bool = True) -> ReviewResult:
    """Predict every input, write each case's outputs and overlay, then ``review.csv`` and ``index.html``."""
    out_dir = Path(out_dir)
    csv_path, html_path = out_dir / "review.csv", out_dir / "index.html"
    paths = collect_inputs(inputs)
    classes = read_config(model)["classes"]
    if out_dir.exists():
        check_can_write([csv_path, html_path] + [out_dir / name for path in paths
                                                 for name in case_outputs(output_stem(path), classes)], overwrite)
    bundle = load_bundle(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    pictures: dict[tuple[str, str], tuple[bytes, bytes]] = {}
    failures: list[str] = []
    bar = tqdm(paths, desc="review", unit="case", disable=not progress, dynamic_ncols=True)
    for path in bar:
        case = output_stem(path)
        bar.set_postfix_str(case)
        try:
            image = read_image(path)
            report, layers = predict_case(bundle, image, path, out_dir, case, method, samples, device, overwrite)
            write_overlay(out_dir / f"{case}{OVERLAY_SUFFIX}", image, layers, overwrite, title=case)
        except ConfidenceSegError as error:
            failures.append(f"{path}: {error}")
            bar.write(f"confidenceseg: skipped {path}: {error}")
            continue
        pictures.update({(case, name): pair for name, pair in thumbnails(image, layers).items()})
        rows += rows_from_report(case, report)
    if not rows:
        raise ConfidenceSegError("no input could be processed:\n  " + "\n  ".join(failures))
    rows.sort(key=review_order)
    write_text_atomic(csv_path, review_csv(rows), overwrite)
    cases = len({row["case"] for row in rows})
    description = (f"Model {bundle.path} · {cases} case(s) · PASS: the conformal lower bound of the predicted "
                   "Dice reaches the bundle's threshold; REVIEW: open and check.")
    report_rows = [ReportRow(row, *pictures[(row["case"], row["class"])], overlay_link=f"{row['case']}{OVERLAY_SUFFIX}")
                   for row in rows]
    page = review_page(report_rows, title=f"ConfidenceSeg review: {out_dir.name}", description=description,
                       failures=failures)
    write_text_atomic(html_path, page, overwrite)
    return ReviewResult(rows, csv_path, html_path, failures)
