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


class SpacingAction(argparse.Action):
    """``--spacing SX SY [SZ]``: two or three pixel sizes in mm, each positive and finite."""

    def __call__(self, parser, namespace, values, option_string=None):
        if len(values) not in (2, 3) or not all(0 < value < float("inf") for value in values):
            parser.error(f"{option_string} takes 2 or 3 positive sizes in mm (SX SY [SZ]), got "
                         f"{' '.join(f'{value:g}' for value in values)}")
        setattr(namespace, self.dest, tuple(values))


def add_spacing_option(parser: argparse.ArgumentParser) -> None:
    """``--spacing SX SY [SZ]``: the pixel size of inputs that have none of their own (PNG, JPEG, TIFF, BMP,
    DICOM without Pixel Spacing); inputs with their own spacing keep it."""
    parser.add_argument("--spacing", nargs="+", type=float, action=SpacingAction, metavar="MM",
                        help="pixel size in mm (SX SY [SZ], x then y) of inputs without physical spacing (PNG, JPEG, "
                             "TIFF, BMP, DICOM without Pixel Spacing), so that their sizes are in mm and their badge "
                             "can PASS; inputs with their own spacing keep it; recorded in S.json")


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
