"""Command-line options shared by the commands that run predictions (predict, review, calibrate, evaluate)."""

from __future__ import annotations

import argparse

from ..contract import DEFAULT_SAMPLES, DEVICE_CHOICES, METHODS


def add_prediction_options(parser: argparse.ArgumentParser) -> None:
    """``--method``, ``--samples`` and ``--device``, defined once so every command predicts alike."""
    parser.add_argument("--method", choices=METHODS, default="auto",
                        help="uncertainty method; auto: ensemble if the bundle has several members, else MC "
                             "dropout (default: auto)")
    parser.add_argument("--samples", type=int, metavar="N",
                        help=f"number of samples (default: {DEFAULT_SAMPLES}, or one per member/flip if there are "
                             "more); spread over ensemble members or TTA flips, MC dropout within each when "
                             "there are more samples than members/flips")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto",
                        help="compute device (default: auto: CUDA, then MPS, then CPU)")
