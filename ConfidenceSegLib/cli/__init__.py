"""Presentation on the command line: the ``confidenceseg`` tool.

In: command-line arguments. Out: exit codes, one-line summaries, the files of ``jobs``/``outputs``.

Each subcommand lives in its own module of this package with a ``register(subparsers)`` function
that adds its parser and sets ``func`` (called with the parsed arguments, returns an exit code).
User errors (:class:`ConfidenceSegError`) print one line ``confidenceseg: error: ...`` and exit 2, as do
errors of the system that the checks before the run could not foresee (a disk that fills up meanwhile).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .. import __version__
from ..contract import ConfidenceSegError
from ..io.stops import announce_pid, stop_on_signals, stop_requested, stop_signal_name
from .console import make_console_safe

#: Exit status of a user error (one line on stderr) and of a run stopped by SIGTERM/SIGINT.
USER_ERROR_EXIT_CODE = 2
STOPPED_EXIT_CODE = 130

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS = ("confidence", "train", "calibrate", "evaluate", "predict", "assess", "quickstart", "review", "station",
            "worker", "models")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="confidenceseg",
        description="Segmentation with honest uncertainty: confidence layers, training, "
                    "uncertainty heatmaps and a predicted-Dice quality badge.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def warn(message: str) -> None:
    """One line on stderr about something optional that was not done (the main outputs were written)."""
    print(f"confidenceseg: warning: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    announce_pid()
    make_console_safe()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "model", None):
            from ..model.registry import resolve_model

            args.model = str(resolve_model(args.model))  # a bundle folder, or an installed or bundled name
        with stop_on_signals():
            return int(args.func(args) or 0)
    except ConfidenceSegError as error:
        print(f"confidenceseg: error: {error}", file=sys.stderr)
        return USER_ERROR_EXIT_CODE
    except OSError as error:  # the system refused (a full disk, a name too long, permissions): one line
        where = f" ({error.filename})" if error.filename else ""
        print(f"confidenceseg: error: {error.strerror or error}{where}", file=sys.stderr)
        return USER_ERROR_EXIT_CODE
    except KeyboardInterrupt:
        print(f"confidenceseg: {stop_signal_name() or 'interrupted'}: stopped; no partial output was kept",
              file=sys.stderr, flush=True)
        if stop_requested():
            # Partial outputs were removed while the stop unwound; skip the interpreter teardown, which
            # takes seconds with torch loaded, so that a stop is as prompt as the signal.
            sys.stdout.flush()
            os._exit(STOPPED_EXIT_CODE)
        return STOPPED_EXIT_CODE


if __name__ == "__main__":
    sys.exit(main())
