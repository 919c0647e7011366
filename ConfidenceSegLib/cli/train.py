"""``confidenceseg train``: train an ensemble from a dataset folder into a model bundle."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from ..contract import DEVICE_CHOICES, ConfidenceSegError
from ..training.defaults import (
    DEFAULT_ARCHITECTURE,
    DEFAULT_CALIBRATION_FRACTION,
    DEFAULT_EPOCHS,
    DEFAULT_LONG_SIDE,
    DEFAULT_MEMBERS,
    DEFAULT_VALIDATION_FRACTION,
    FOLD_STEP_BUDGET,
    LABEL_MODES,
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a segmentation ensemble from confidence labels into a model bundle",
        description="Train an ensemble on a dataset folder (dataset.json format), split by subject into "
                    "training and validation, and write a model bundle (config.json + .safetensors per member). "
                    "Label modes: threshold (binarise confidence, default 0.6, optional ignored band), soft "
                    "(confidence as soft target), weighted (binary target at 0.5 weighted by agreement).")
    parser.add_argument("--dataset", required=True, metavar="DIR", help="dataset folder with dataset.json")
    parser.add_argument("--out", required=True, metavar="MODEL", help="model bundle folder to write")
    parser.add_argument("--classes", nargs="+", metavar="C", help="classes to learn (default: all of the dataset)")
    parser.add_argument("--label-mode", choices=LABEL_MODES, default="threshold", help="default: threshold")
    parser.add_argument("--threshold", type=float, metavar="T",
                        help="confidence threshold (default 0.6 for threshold, 0.5 for weighted)")
    parser.add_argument("--ignore-band", nargs=2, type=float, metavar=("LOW", "HIGH"),
                        help="threshold mode: ignore pixels with LOW < confidence < HIGH")
    parser.add_argument("--members", type=int,
                        help=f"ensemble members, each from its own seed (default {DEFAULT_MEMBERS}; with --folds "
                             "the K fold members)")
    parser.add_argument("--folds", type=int, metavar="K",
                        help="subject-level cross-validation: K members, each trained on K-1 folds of subjects and "
                             "kept at its last epoch; every subject gets out-of-fold predictions, and the bundle "
                             "records per-fold and per-subject Dice and presence metrics (metrics.cross_validation). "
                             "No validation split; calibration only with an explicit --calibration-fraction")
    parser.add_argument("--epochs", type=int,
                        help=f"default {DEFAULT_EPOCHS}; with --folds, {FOLD_STEP_BUDGET} optimiser steps per "
                             "member in whole epochs (18 for 156 frames), so that more data does not train longer")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the weights and the data order")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="default: auto (CUDA, MPS, CPU)")
    parser.add_argument("--spatial-dims", type=int, choices=(2, 3), default=2,
                        help="2: frames and slices (default); 3: whole volumes (sliding-window inference)")
    parser.add_argument("--input-size", nargs=2, type=int, metavar=("H", "W"),
                        help=f"2D model grid (multiples of 16; default: long side {DEFAULT_LONG_SIDE}, aspect kept)")
    parser.add_argument("--spacing", nargs=3, type=float, metavar=("Z", "Y", "X"),
                        help="3D: resample volumes to this spacing in mm (default: the first volume's)")
    parser.add_argument("--roi-size", nargs=3, type=int, metavar=("D", "H", "W"),
                        help="3D: training crop and sliding-window size (multiples of 16; default 64 64 64)")
    parser.add_argument("--channels", nargs="+", type=int, metavar="N",
                        help="UNet widths per level, each level downsampling 2x "
                             f"(default {' '.join(map(str, DEFAULT_ARCHITECTURE['channels']))})")
    parser.add_argument("--validation-fraction", type=float, default=DEFAULT_VALIDATION_FRACTION,
                        help=f"fraction of subjects held out for validation (default {DEFAULT_VALIDATION_FRACTION})")
    parser.add_argument("--calibration-fraction", type=float, metavar="F",
                        help="fraction of subjects held out to calibrate the quality badge (never trained on, never "
                             f"choosing a checkpoint; default {DEFAULT_CALIBRATION_FRACTION}, 0 with --no-calibrate)")
    parser.add_argument("--test-fraction", type=float, default=0.0, metavar="F",
                        help="fraction of subjects held out from everything, recorded in the bundle, for an honest "
                             "`confidenceseg evaluate` afterwards (default 0)")
    parser.add_argument("--no-calibrate", dest="calibrate", action="store_false",
                        help="skip fitting the quality model on the validation split (see `calibrate`)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bundle folder")
    parser.set_defaults(func=run)


def canonical_command(args: argparse.Namespace) -> str:
    """The command line with every setting spelled out (recorded in the bundle for reproduction)."""
    words = ["confidenceseg", "train", "--dataset", str(args.dataset), "--out", str(args.out)]
    if args.classes:
        words += ["--classes", *args.classes]
    words += ["--label-mode", args.label_mode]
    if args.threshold is not None:
        words += ["--threshold", str(args.threshold)]
    if args.ignore_band:
        words += ["--ignore-band", *map(str, args.ignore_band)]
    words += ["--folds", str(args.folds)] if args.folds else ["--members", str(args.members)]
    if args.epochs is not None:  # else the trainer appends the epochs it derives (--folds)
        words += ["--epochs", str(args.epochs)]
    words += ["--seed", str(args.seed)]
    if args.spatial_dims != 2:
        words += ["--spatial-dims", str(args.spatial_dims)]
    for option, value in (("--input-size", args.input_size), ("--spacing", args.spacing),
                          ("--roi-size", args.roi_size)):
        if value:
            words += [option, *map(str, value)]
    if args.channels:
        words += ["--channels", *map(str, args.channels)]
    if not args.folds:
        words += ["--validation-fraction", str(args.validation_fraction)]
    if args.calibration_fraction is not None:
        words += ["--calibration-fraction", str(args.calibration_fraction)]
    if args.test_fraction:
        words += ["--test-fraction", str(args.test_fraction)]
    if not args.calibrate:
        words.append("--no-calibrate")
    return shlex.join(words)


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def architecture_from(args: argparse.Namespace) -> dict | None:
    if not args.channels:
        return None
    if len(args.channels) < 2 or min(args.channels) < 1:
        raise ConfidenceSegError("--channels needs at least two positive widths")
    return dict(DEFAULT_ARCHITECTURE, spatial_dims=args.spatial_dims, channels=list(args.channels),
                strides=[2] * (len(args.channels) - 1))


def run(args: argparse.Namespace) -> int:
    from ..annotation.datasets import load_dataset

    if args.folds is not None and args.members is not None:
        raise ConfidenceSegError("--folds makes one member per fold: leave out --members")
    args.members = args.folds or args.members or DEFAULT_MEMBERS
    if args.epochs is None and not args.folds:
        args.epochs = DEFAULT_EPOCHS
    dataset = load_dataset(args.dataset)  # a bad dataset is answered before the training stack loads
    from ..io.safe_files import check_output_folder, check_replaceable_folder
    from ..model.bundle_config import not_a_bundle

    out = Path(args.out)
    check_output_folder(out.parent, [out.name], args.overwrite)
    check_replaceable_folder(out, not_a_bundle, inputs=[dataset.root])
    from ..training.trainer import TrainOptions, train_bundle

    options = TrainOptions(
        dataset=Path(args.dataset), out=Path(args.out), classes=args.classes, label_mode=args.label_mode,
        threshold=args.threshold, ignore_band=tuple(args.ignore_band) if args.ignore_band else None,
        architecture=architecture_from(args), members=args.members, epochs=args.epochs, seed=args.seed,
        device=args.device, overwrite=args.overwrite,
        spatial_dims=args.spatial_dims, input_size=args.input_size, spacing=args.spacing, roi_size=args.roi_size,
        validation_fraction=args.validation_fraction, calibration_fraction=args.calibration_fraction,
        test_fraction=args.test_fraction, calibrate=args.calibrate, folds=args.folds,
        command=canonical_command(args))
    config = train_bundle(options, dataset)
    metrics = config.metrics["validation"]
    dice = ", ".join(f"{name} {value:.3f}" for name, value in metrics["dice"].items())
    if "cross_validation" in config.metrics:
        per_class = config.metrics["cross_validation"]["classes"]
        dice = "; ".join(f"{name} {m['dice_over_subjects']['mean']:.3f} +- {m['dice_over_subjects']['std']:.3f} "
                         f"over subjects, false positives {_rate(m['false_positive_rate'])} of "
                         f"{m['frames_without_structure']} frames without it" for name, m in per_class.items())
        dice_words = f"cross-validated Dice ({args.folds} folds, out of fold): {dice}"
    else:
        dice_words = f"validation Dice ({metrics['cases']} cases of unseen subjects): {dice}"
    print(f"wrote {args.out}: {len(config.classes)} classes, {args.members} members, "
          f"{config.training['time_seconds']:.0f} s; {dice_words}"
          + ("; quality model calibrated on the calibration subjects" if config.quality else ""))
    return 0
