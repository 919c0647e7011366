"""Presentation on the command line: the ``confidenceseg`` tool.

In: command-line arguments. Out: exit codes, one-line summaries, the files of ``jobs``/``outputs``.

Each subcommand lives in its own module of this package with a ``register(subparsers)`` function
that adds its parser and sets ``func`` (called with the parsed arguments, returns an exit code).
User errors (:class:`ConfidenceSegError`) print one line ``confidenceseg: error: ...`` and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from ..contract import ConfidenceSegError

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS = ("confidence", "train", "calibrate", "evaluate", "predict", "quickstart", "review")


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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfidenceSegError as error:
        print(f"confidenceseg: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("confidenceseg: interrupted; no partial output was kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
