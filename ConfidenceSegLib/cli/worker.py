"""``confidenceseg worker``: keep a model loaded and predict on JSON-line requests (for the Slicer module)."""

from __future__ import annotations

import argparse

from .options import add_model_option


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "worker", help="keep a model loaded and predict on JSON-line requests from stdin",
        description="Loads the model once, then reads one JSON request per line on stdin "
                    '({"id", "command": "predict", "input", "out", "method", "samples", "device", "maps", '
                    '"overwrite"}; {"id", "command": "cancel", "target"}; {"command": "quit"}) and answers JSON '
                    'lines on stdout ("ready"; per job "progress" lines, then "result", "error" or "cancelled"; '
                    '"bye"). A cancelled job leaves no partial output. Used by the 3D Slicer module so that '
                    "only the first prediction pays for loading torch and the model.")
    add_model_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..model.bundle_config import read_config

    config = read_config(args.model)  # a bad bundle is answered before the model stack loads
    from ..jobs.worker import Worker

    return Worker(args.model, config=config).serve()
