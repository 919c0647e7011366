"""Reviewers' decisions (accept / needs correction / reject, with a note) beside a ``review.csv``.

``decisions.csv`` (columns :data:`~ConfidenceSegLib.contract.DECISION_COLUMNS`) keeps every
decision in the order made; :func:`load_decisions` gives the latest per case and class. Each
decision is written at once and atomically (the whole file is rewritten into a temporary file and
renamed) under an exclusive lock, so two front ends deciding at the same moment (the Slicer module
and a browser, two browser tabs) lose nothing. Shared by every front end; standard library only.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..contract import DECISION_COLUMNS, DECISIONS, DECISIONS_CSV, ConfidenceSegError, Key
from ..io.safe_files import write_text_atomic
from .review_table import csv_cell, csv_value, optional_float, read_review_table

#: Longest note kept (characters).
MAX_NOTE = 2000
LOCK_NAME = ".decisions.lock"


@dataclass(frozen=True)
class Decision:
    case: str
    class_name: str
    decision: str
    note: str
    badge: str | None
    predicted_dice: float | None
    time: str

    def row(self) -> dict:
        """The ``decisions.csv`` row (numbers with 4 decimals, empty cells for missing values)."""
        values = asdict(self)
        values[Key.CLASS] = values.pop("class_name")
        values[Key.PREDICTED_DICE] = "" if self.predicted_dice is None else f"{self.predicted_dice:.4f}"
        values[Key.BADGE] = self.badge or ""
        return {key: csv_cell(values[key]) for key in DECISION_COLUMNS}


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on the folder's decisions (advisory; where ``fcntl`` exists)."""
    try:
        import fcntl
    except ImportError:  # Windows: the atomic rename still keeps the file whole
        yield
        return
    with open(folder / LOCK_NAME, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_decisions(folder: str | os.PathLike) -> list[Decision]:
    """Every decision of ``folder/decisions.csv`` in the order made (none when the file is absent)."""
    path = Path(folder) / DECISIONS_CSV
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        if tuple(reader.fieldnames or ()) != DECISION_COLUMNS:
            raise ConfidenceSegError(f"{path} is not a ConfidenceSeg decisions file (columns {reader.fieldnames})")
        records = [{key: csv_value(value) for key, value in record.items()} for record in reader]
        try:
            return [Decision(r[Key.CASE], r[Key.CLASS], r[Key.DECISION], r[Key.NOTE], r[Key.BADGE] or None,
                             optional_float(r[Key.PREDICTED_DICE]), r[Key.TIME]) for r in records]
        except ValueError:
            raise ConfidenceSegError(f"{path}: predicted Dice values must be numbers") from None


def load_decisions(folder: str | os.PathLike) -> dict[tuple[str, str], Decision]:
    """The latest decision per (case, class)."""
    return {(decision.case, decision.class_name): decision for decision in read_decisions(folder)}


def record_decision(folder: str | os.PathLike, case: str, class_name: str, decision: str,
                    note: str = "") -> Decision:
    """Record a decision on a row of ``folder/review.csv`` (its badge and predicted Dice are kept with it)."""
    folder = Path(folder)
    if decision not in DECISIONS:
        raise ConfidenceSegError(f"unknown decision {decision!r}; choose one of {', '.join(DECISIONS)}")
    rows = {(row.case, row.class_name): row for row in read_review_table(folder)}
    if (case, class_name) not in rows:
        raise ConfidenceSegError(f"no case {case!r} with class {class_name!r} in {folder / 'review.csv'}")
    row = rows[(case, class_name)]
    made = Decision(case, class_name, decision, " ".join(str(note).split())[:MAX_NOTE], row.badge,
                    row.predicted_dice, datetime.now(timezone.utc).isoformat(timespec="seconds"))
    try:
        with _locked(folder):
            decisions = read_decisions(folder) + [made]
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=DECISION_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(decision.row() for decision in decisions)
            write_text_atomic(folder / DECISIONS_CSV, buffer.getvalue(), overwrite=True)
    except OSError as error:  # a read-only folder, a full disk: the reviewer must know it was not saved
        raise ConfidenceSegError(f"the decision was NOT saved: cannot write {folder / DECISIONS_CSV} "
                                 f"({error.strerror or error})") from None
    return made
