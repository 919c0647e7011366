"""Progress reports for long runs: ``--progress json`` lines, and a stop check at every report.

``--progress json`` prints one JSON object per line on stdout,
``{"stage": str, "fraction": float 0..1, "message": str}``, for the Slicer module to read. Every
report first checks for a stop request (:mod:`ConfidenceSegLib.io.stops`), so a run stops between
batches even where a signal handler cannot interrupt a long native call.
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

from ..io.stops import check_stop


def progress_record(stage: str, fraction: float, message: str = "") -> dict:
    """``{"stage", "fraction" (clamped to 0..1), "message"}``: one progress line."""
    return {"stage": stage, "fraction": round(min(max(float(fraction), 0.0), 1.0), 4), "message": message}


class ProgressReporter:
    """Callable ``(stage, fraction, message)``: prints JSON lines when asked, raises once a stop was requested."""

    def __init__(self, json_lines: bool = False, stream: TextIO | None = None):
        self.json_lines = json_lines
        self.stream = stream or sys.stdout

    def __call__(self, stage: str, fraction: float, message: str = "") -> None:
        check_stop()
        self.emit(stage, fraction, message)

    def emit(self, stage: str, fraction: float, message: str = "") -> None:
        """Print one progress line (without checking for a stop: for the last line of a stopped run)."""
        if self.json_lines:
            print(json.dumps(progress_record(stage, fraction, message)), file=self.stream, flush=True)

    def scaled(self, start: float, end: float):
        """A progress callable whose fractions 0..1 map to ``start``..``end`` of this reporter's."""
        return lambda stage, fraction, message="": self(stage, start + (end - start) * fraction, message)
