"""Command-line options shared by the commands that run predictions (predict, review, calibrate, evaluate)."""

from __future__ import annotations

import argparse

from ..contract import DEFAULT_MAPS, DEFAULT_SAMPLES, DEVICE_CHOICES, MAP_KINDS, METHODS


def add_model_option(parser: argparse.ArgumentParser, required: bool = True, note: str = "") -> None:
    """``--model``: a bundle folder, or the name of an installed or bundled model."""
    parser.add_argument("--model", required=required, metavar="MODEL",
                        help="model bundle folder, or the name of an installed or bundled model (confidenceseg "
                             f"models list){note}")


def add_prediction_options(parser: argparse.ArgumentParser, method: bool = True) -> None:
    """``--method``, ``--samples`` and ``--device``, defined once so every command predicts alike
    (``method=False``: the command uses ``--method`` itself and predicts with ``auto``)."""
    if method:
        parser.add_argument("--method", choices=METHODS, default="auto",
                            help="uncertainty method; auto: ensemble if the bundle has several members, else MC "
                                 "dropout (default: auto)")
    parser.add_argument("--samples", type=int, metavar="N",
                        help=f"number of samples (default: {DEFAULT_SAMPLES}, or one per member/flip if there are "
                             "more); spread over ensemble members or TTA flips, MC dropout within each when "
                             "there are more samples than members/flips")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto",
                        help="compute device (default: auto: CUDA, then MPS, then CPU)")


def map_list(text: str) -> tuple[str, ...]:
    """``entropy,probability`` -> ("entropy", "probability"), each a known map kind, no repeats."""
    kinds = tuple(kind.strip() for kind in text.split(",") if kind.strip())
    unknown = [kind for kind in kinds if kind not in MAP_KINDS]
    if not kinds or unknown or len(set(kinds)) != len(kinds):
        raise argparse.ArgumentTypeError(f"expected distinct map kinds from {','.join(MAP_KINDS)}, got {text!r}")
    return kinds


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """``--maps``: which uncertainty maps the commands that write a prediction's files write."""
    parser.add_argument("--maps", type=map_list, default=DEFAULT_MAPS, metavar="KINDS",
                        help=f"comma-separated maps to write per class, of {','.join(MAP_KINDS)} (default: "
                             f"{','.join(DEFAULT_MAPS)}: the heatmap; the others cost writing time)")
