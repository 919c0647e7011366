"""Stopping promptly and cleanly on SIGTERM or SIGINT (Ctrl+C), without tearing a write apart.

:func:`stop_on_signals` makes SIGTERM and SIGINT raise :class:`StopRequested` at once (after the
current tensor operation). Writers clean up their temporary files while it unwinds, so no partial
output is left; the command line then ends the process without the slow interpreter teardown
(see :func:`ConfidenceSegLib.cli.main`). Short steps that must not be torn apart (moving finished
files into place, swapping a bundle folder) run inside :func:`uninterruptible`, which defers the
stop to the end of the step. The state is per process: one process runs one command.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator

from ..contract import ANNOUNCE_PID_ENV, PID_EVENT

#: The name of a stop that a cancel request (not a signal) asked for.
CANCEL = "cancel"
#: Signals that stop a run.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequested(KeyboardInterrupt):
    """The run was asked to stop (SIGTERM, SIGINT or a cancel request)."""


class _StopState:
    def __init__(self):
        self.requested = False
        self.deferring = 0
        self.signal_name = ""


_state = _StopState()


def stop_requested() -> bool:
    """True once a stop signal arrived in this process (the run is unwinding or has ended)."""
    return _state.requested


def stop_signal_name() -> str:
    return _state.signal_name


def check_stop() -> None:
    """Raise :class:`StopRequested` if a stop was requested and no uninterruptible step is running."""
    if _state.requested and not _state.deferring:
        raise StopRequested(f"stopped ({_state.signal_name or 'on request'})")


def request_stop(signal_number: int | None = None, _frame=None) -> None:
    """Signal handler: stop now, or at the end of an uninterruptible step (repeats are ignored, so a
    second signal cannot interrupt the clean-up of the first)."""
    if _state.requested and _state.signal_name != CANCEL:
        return
    _state.requested = True
    _state.signal_name = signal.Signals(signal_number).name if signal_number else CANCEL
    check_stop()


def request_cancel() -> None:
    """Ask the running job to stop at its next progress report; safe from any thread (it never raises
    here). Unlike a stop signal, a cancel ends only the job, not the process (see :func:`clear_cancel`)."""
    if not _state.requested:
        _state.signal_name = CANCEL
        _state.requested = True


def cancel_pending() -> bool:
    return _state.requested and _state.signal_name == CANCEL


def clear_cancel() -> None:
    """Forget a handled cancel request, before the next job (a stop signal is never forgotten)."""
    if _state.signal_name == CANCEL:
        _state.requested = False
        _state.signal_name = ""


@contextlib.contextmanager
def uninterruptible() -> Iterator[None]:
    """Defer a stop request to the end of the block."""
    _state.deferring += 1
    try:
        yield
    finally:
        _state.deferring -= 1
    check_stop()


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Install :func:`request_stop` for SIGTERM and SIGINT for the duration of the block (main thread
    only; elsewhere the block runs with the handlers it has)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, request_stop) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def announce_pid() -> None:
    """Print this process's ID as the first stdout line when the parent asked for it (:data:`ANNOUNCE_PID_ENV`):
    a launcher between the two does not pass a stop signal on, so the parent signals this process itself."""
    if os.environ.pop(ANNOUNCE_PID_ENV, "") == "1":  # popped: the announcement is not inherited by children
        print(json.dumps({"event": PID_EVENT, "pid": os.getpid()}), file=sys.stdout, flush=True)
