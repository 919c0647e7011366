"""The batch QC table ``review.csv``: its rows, their review order, writing and reading it back.

One row per case and class (:data:`~ConfidenceSegLib.contract.REVIEW_COLUMNS`, paths relative to the
folder; ``reason`` holds every reason of the badge, the deciding one first), ordered for review:
REVIEW first, then ABSENT, PASS and unrated (no quality model); within a badge the lowest Dice lower
bound (then predicted Dice) first. The same order is used by ``confidenceseg review``,
``index.html`` and the Slicer module's Review section, which reads the table with
:func:`read_review_table`. Standard library only, so every front end can import it.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..contract import (
    BADGE_PRIORITY,
    MAP_KINDS,
    QUALITY_KEYS,
    REPORT_SUFFIX,
    REVIEW_COLUMNS,
    REVIEW_CSV,
    ConfidenceSegError,
    Key,
)
from ..quality.reasons import all_reasons, frame_counts, headline_measurement
from .report import PredictionReport

#: Sorts unknown numbers (no quality model) after every known Dice.
MISSING_NUMBER = 2.0
#: Columns a review table must have to be opened.
REQUIRED_COLUMNS = (Key.CASE, Key.CLASS, *QUALITY_KEYS)
#: Optional columns of words (older tables may lack them); the remaining columns hold file paths.
TEXT_COLUMNS = (Key.REASON, Key.MEASUREMENT, Key.FRAMES)
#: First characters that make a spreadsheet run a cell as a formula (and the apostrophe that escapes them).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


def csv_cell(value):
    """A text cell as written: one a spreadsheet would run as a formula gets a leading apostrophe."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def csv_value(cell):
    """A cell as read back: :func:`csv_cell` undone."""
    escaped = isinstance(cell, str) and cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS)
    return cell[1:] if escaped else cell


def rows_from_report(case: str, report: PredictionReport) -> list[dict]:
    """``review.csv`` rows (one per class) from a ``predict`` report; paths relative to its folder."""
    rows = []
    for result in report.classes.values():
        verdict = result.verdict
        rows.append({Key.CASE: case, Key.CLASS: result.name, Key.PREDICTED_DICE: verdict.predicted_dice,
                     Key.DICE_LOWER_BOUND: verdict.dice_lower_bound, Key.BADGE: verdict.badge,
                     Key.REASON: all_reasons(verdict), Key.MEASUREMENT: headline_measurement(result),
                     Key.FRAMES: frame_counts(result.frames_summary), Key.SEGMENTATION: report.segmentation,
                     **{kind: result.files.get(kind, "") for kind in MAP_KINDS}, Key.JSON: f"{case}{REPORT_SUFFIX}"})
    return rows


def review_sort_key(badge: str | None, bound: float | None, dice: float | None, case: str, class_name: str) -> tuple:
    """Badge priority, then lower bound, then predicted Dice (lowest first), then names."""
    return (BADGE_PRIORITY.get(badge or None, len(BADGE_PRIORITY)),
            MISSING_NUMBER if bound is None else float(bound), MISSING_NUMBER if dice is None else float(dice),
            case, class_name)


def review_order(row: dict) -> tuple:
    """Sort key of a ``review.csv`` row dict (see :func:`review_sort_key`)."""
    return review_sort_key(row.get(Key.BADGE), row.get(Key.DICE_LOWER_BOUND), row.get(Key.PREDICTED_DICE),
                           row[Key.CASE], row[Key.CLASS])


def review_csv(rows: Sequence[dict]) -> str:
    """The CSV text: numbers with 4 decimals, empty cells for missing values."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=REVIEW_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row.get(key) is None else
                         (f"{row[key]:.4f}" if isinstance(row[key], float) else csv_cell(row[key]))
                         for key in REVIEW_COLUMNS})
    return buffer.getvalue()


@dataclass
class ReviewRow:
    """One (case, class) row of a ``review.csv`` as read back, with the case's report path."""

    case: str
    class_name: str
    predicted_dice: float | None
    dice_lower_bound: float | None
    badge: str | None
    report_path: Path
    paths: dict[str, str] = field(default_factory=dict)
    #: First reason, headline measurement and frame counts in words ("" where the table has none).
    reason: str = ""
    measurement: str = ""
    frames: str = ""


def optional_float(value) -> float | None:
    """A CSV cell or tag value as a number; empty means missing."""
    return None if value in (None, "") else float(value)


def _report_path(folder: Path, case: str, paths: dict[str, str]) -> Path:
    """The case's ``predict`` report: a ``.json`` path column, else ``<case>.json`` (flat or in a case folder)."""
    for value in paths.values():
        if value.endswith(REPORT_SUFFIX):
            return folder / value
    flat = folder / f"{case}{REPORT_SUFFIX}"
    return flat if flat.is_file() else folder / case / f"{case}{REPORT_SUFFIX}"


def read_review_table(folder: str | os.PathLike) -> list[ReviewRow]:
    """Rows of ``folder/review.csv`` in review order (:func:`review_sort_key`)."""
    folder = Path(folder)
    path = folder / REVIEW_CSV
    if not path.is_file():
        raise ConfidenceSegError(f"not a batch QC folder: {path} not found")
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ConfidenceSegError(f"{path} lacks the column(s) {', '.join(missing)}")
        rows = []
        for record in reader:
            record = {key: csv_value(value) for key, value in record.items()}
            paths = {k: v for k, v in record.items() if k not in (*REQUIRED_COLUMNS, *TEXT_COLUMNS) and k and v}
            words = {str(column): record.get(column) or "" for column in TEXT_COLUMNS}
            try:
                rows.append(ReviewRow(record[Key.CASE], record[Key.CLASS], optional_float(record[Key.PREDICTED_DICE]),
                                      optional_float(record[Key.DICE_LOWER_BOUND]), record[Key.BADGE] or None,
                                      _report_path(folder, record[Key.CASE], paths), paths, **words))
            except ValueError:
                raise ConfidenceSegError(f"{path}, case {record[Key.CASE]}: Dice values must be numbers") from None
    return sorted(rows, key=lambda row: review_sort_key(row.badge, row.dice_lower_bound, row.predicted_dice,
                                                        row.case, row.class_name))
