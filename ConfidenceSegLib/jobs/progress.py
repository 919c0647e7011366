"""Progress reports for long runs, and stopping cleanly on SIGTERM.

``--progress json`` prints one JSON object per line on stdout,
``{"stage": str, "fraction": float 0..1, "message": str}``, for the Slicer module to read.
SIGTERM stops the run at once (after the current tensor operation) by raising
:class:`StopRequested`; writers clean up their temporary files, so no partial output is left.
Short steps that must not be torn apart (moving finished files into place) run inside
:meth:`ProgressReporter.uninterruptible`, which defers the stop to its end.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from collections.abc import Iterator
from typing import TextIO


class StopRequested(KeyboardInterrupt):
    """The run was asked to stop (SIGTERM)."""


class ProgressReporter:
    """Callable ``(stage, fraction, message)``: prints JSON lines when asked, raises once a stop was requested."""

    def __init__(self, json_lines: bool = False, stream: TextIO | None = None):
        self.json_lines = json_lines
        self.stream = stream or sys.stdout
        self.stop_requested = False
        self._deferring = 0

    def __call__(self, stage: str, fraction: float, message: str = "") -> None:
        self.check_stop()
        if self.json_lines:
            record = {"stage": stage, "fraction": round(min(max(float(fraction), 0.0), 1.0), 4), "message": message}
            print(json.dumps(record), file=self.stream, flush=True)

    def scaled(self, start: float, end: float):
        """A progress callable whose fractions 0..1 map to ``start``..``end`` of this reporter's."""
        return lambda stage, fraction, message="": self(stage, start + (end - start) * fraction, message)

    def check_stop(self) -> None:
        if self.stop_requested and not self._deferring:
            raise StopRequested("stop requested")

    def request_stop(self, *_signal_args) -> None:
        """Signal handler: stop now, or at the end of an uninterruptible step (repeats are ignored,
        so a second signal cannot interrupt the clean-up of the first)."""
        if self.stop_requested:
            return
        self.stop_requested = True
        self.check_stop()

    @contextlib.contextmanager
    def uninterruptible(self) -> Iterator[None]:
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
        self.check_stop()

    @contextlib.contextmanager
    def stop_on_sigterm(self) -> Iterator[None]:
        """Install :meth:`request_stop` as the SIGTERM handler for the duration of the block."""
        previous = signal.signal(signal.SIGTERM, self.request_stop)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)
