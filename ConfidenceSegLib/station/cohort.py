"""The cohort a review station shows: ``review.csv`` rows in review order with their latest decisions.

Standard library only (no trame, no MRML), so the list, its navigation and the decisions are
tested without a browser. Decisions go through :mod:`ConfidenceSegLib.outputs.decisions`, the
same code and ``decisions.csv`` schema as the Slicer module's Review section.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..contract import REVIEW, ConfidenceSegError, Key, badge_color
from ..outputs.decisions import load_decisions, record_decision
from ..outputs.review_table import ReviewRow, read_review_table


def row_key(row: ReviewRow) -> str:
    """A (case, class) row's key in the page: ``case/class`` (both are file-name safe)."""
    return f"{row.case}/{row.class_name}"


@dataclass
class Cohort:
    """The rows of one review folder, in review order (REVIEW first, lowest bound first)."""

    folder: Path
    rows: list[ReviewRow]

    @classmethod
    def open(cls, folder: str | os.PathLike) -> Cohort:
        folder = Path(folder).resolve()
        rows = read_review_table(folder)
        if not rows:
            raise ConfidenceSegError(f"{folder / 'review.csv'} has no cases")
        return cls(folder, rows)

    def row(self, key: str) -> ReviewRow:
        for row in self.rows:
            if row_key(row) == key:
                return row
        raise ConfidenceSegError(f"no case {key!r} in {self.folder}")

    def items(self) -> list[dict]:
        """The list as the page shows it: one dict per row with its latest decision (JSON-ready)."""
        decisions = load_decisions(self.folder)
        items = []
        for row in self.rows:
            decided = decisions.get((row.case, row.class_name))
            items.append({"key": row_key(row), Key.CASE: row.case, Key.CLASS: row.class_name,
                          Key.BADGE: row.badge or "unrated", "color": badge_color(row.badge),
                          "dice": "" if row.predicted_dice is None else f"{row.predicted_dice:.2f}",
                          "bound": "" if row.dice_lower_bound is None else f"{row.dice_lower_bound:.2f}",
                          Key.REASON: row.reason, Key.MEASUREMENT: row.measurement, Key.FRAMES: row.frames,
                          Key.DECISION: decided.decision if decided else "",
                          Key.NOTE: decided.note if decided else ""})
        return items

    def step(self, key: str | None, offset: int, flagged_only: bool = False) -> str:
        """The key ``offset`` rows after ``key`` (before, when negative) in review order, skipping
        rows that are not REVIEW when ``flagged_only``; ``key`` itself when there is none."""
        keys = [row_key(row) for row in self.rows]
        position = keys.index(key) if key in keys else (-1 if offset > 0 else len(keys))
        candidates = range(position + 1, len(keys)) if offset > 0 else range(position - 1, -1, -1)
        for index in candidates:
            if not flagged_only or self.rows[index].badge == REVIEW:
                return keys[index]
        return key if key in keys else keys[0]

    def decide(self, key: str, decision: str, note: str = "") -> None:
        """Record ``decision`` (and ``note``) on a row: written at once and atomically to ``decisions.csv``."""
        row = self.row(key)
        record_decision(self.folder, row.case, row.class_name, decision, note)


def _frame(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def decision_target(page_selected: str | None, page_shown: str | None, page_frame, view_key: str | None,
                    view_frame: int | None, view_error: str = "") -> str:
    """The case a decision from the page goes to: the case (and frame) the page shows, only when it is the
    one the view has loaded and shows now; otherwise a ConfidenceSegError saying why nothing is recorded."""
    if view_key is None:
        raise ConfidenceSegError(f"no decision recorded: {view_error or 'no case is shown'}")
    if page_shown != view_key or page_selected != view_key:
        asked = page_selected if page_selected != view_key else page_shown
        raise ConfidenceSegError(f"no decision recorded for {asked}: the view shows {view_key} now; "
                                 "look at it and decide again")
    if _frame(page_frame) != _frame(view_frame):
        raise ConfidenceSegError(f"no decision recorded for {view_key}: the view shows frame {view_frame} now, "
                                 f"not {page_frame}; look at it and decide again")
    return view_key
