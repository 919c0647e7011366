"""Ending a background process and everything it started, with no psutil needed (Slicer 5.10 has none).

Slicer starts Python through ``PythonSlicer``, a CTKAppLauncher that runs the real interpreter as its
child and does not pass signals on: SIGTERM to the launcher leaves the Python running. So a stop signals
the Python itself (its ID announced on its first stdout line, :func:`~.process.parse_pid`) and every
descendant of the launcher (from ``/proc`` on Linux, psutil where installed), asking first (SIGTERM: the
run removes its partial outputs) and killing what is left after a grace time. Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

#: SIGKILL where it exists (on Windows ``os.kill`` with any signal terminates the process).
KILL = getattr(signal, "SIGKILL", signal.SIGTERM)
PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` after the command name (state first, parent ID second), or None."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (a zombie has ended; it only waits to be reaped)."""
    fields = _stat_fields(pid)
    if fields is not None:
        return fields[0] != "Z"
    if PROC.is_dir():
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError, OSError):
        return False
    return True


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children first), from psutil or ``/proc``; [] where neither tells."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        with contextlib.suppress(psutil.Error):
            return [child.pid for child in psutil.Process(pid).children(recursive=True)]
        return []
    if not PROC.is_dir():
        return []
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, queue = [], list(children.get(pid, []))
    while queue:
        child = queue.pop(0)
        found.append(child)
        queue += children.get(child, [])
    return found


def send(pids: Iterable[int], sig: int) -> None:
    """Send ``sig`` to each of ``pids`` that still runs (ignoring those that ended meanwhile)."""
    for pid in pids:
        if pid and pid != os.getpid() and is_running(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
                os.kill(pid, sig)


def end_processes(pids: Iterable[int], grace_s: float) -> list[int]:
    """SIGTERM ``pids``, wait up to ``grace_s`` for them to end, SIGKILL the rest; the IDs killed."""
    pids = [pid for pid in dict.fromkeys(pids) if pid]
    send(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(is_running(pid) for pid in pids):
        time.sleep(0.02)
    stubborn = [pid for pid in pids if is_running(pid)]
    send(stubborn, KILL)
    return stubborn
