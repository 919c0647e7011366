"""``confidenceseg calibrate``: fit a bundle's quality model (predicted Dice, lower bound, badge) on labelled cases."""

from __future__ import annotations

import argparse

from .options import add_model_option, add_prediction_options


def calibration_cases(config, dataset, which: str):
    """The cases to calibrate on (None: all of ``dataset``); ``calibration``: the bundle's calibration subjects."""
    from ..contract import ConfidenceSegError

    if which == "all":
        return None
    training = config.training
    subjects = ((training.get("split") or {}).get("calibration") or {}).get("subject_ids")
    if training.get("dataset") != dataset.name or not subjects:
        raise ConfidenceSegError(f"the bundle records no calibration subjects of dataset {dataset.name}: pass "
                                 "--cases all")
    return dataset.cases_of_subjects(subjects)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "calibrate", help="fit the predicted-Dice quality model of a model bundle on labelled cases",
        description="Predicts every case of a labelled dataset, measures each class's true Dice and fits the "
                    "quality model (predicted Dice with a conformal lower bound at level 1 - alpha; PASS iff the "
                    "bound >= threshold), stored in a bundle's config.json: a new bundle with --out (same "
                    "weights; the --model bundle is left as it is), else the --model bundle itself (refused for "
                    "a bundled model). Use cases the model was not trained on, from several subjects.")
    add_model_option(parser, note="; updated in place unless --out")
    parser.add_argument("--out", metavar="NEW_BUNDLE", help="write the calibrated model as a new bundle folder here")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out bundle")
    parser.add_argument("--dataset", required=True, metavar="DIR", help="labelled dataset folder (dataset.json)")
    parser.add_argument("--alpha", type=float, default=0.1,
                        help="miscoverage of the lower bound: it holds for about 1 - alpha of segments (default 0.1)")
    parser.add_argument("--threshold", type=float, default=0.8,
                        help="PASS when the Dice lower bound reaches this (default 0.8)")
    parser.add_argument("--degrade", nargs="+", metavar="KIND", default=[],
                        help="also calibrate on a degraded copy of every image per KIND (all, noise, speckle, blur, "
                             "low_contrast, gamma, low_resolution, shadow, occlusion; labels unchanged), so that the "
                             "badge has seen failures; `train` uses all")
    parser.add_argument("--seed", type=int, default=0, help="seed of the degradation strengths (default 0)")
    parser.add_argument("--cases", choices=("all", "calibration"), default="all",
                        help="all (default): every case of the dataset; calibration: the subjects the bundle's "
                             "training record names as its calibration subjects of this dataset (recalibrating a "
                             "trained bundle on the same held-out cases)")
    add_prediction_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..annotation.datasets import load_dataset
    from ..model.bundle_config import read_config

    config = read_config(args.model)  # a bad bundle or dataset is answered before the model stack loads
    dataset = load_dataset(args.dataset)
    cases = calibration_cases(config, dataset, args.cases)
    from ..jobs.calibrate import calibrate_bundle
    from ..jobs.labelled import LabelledRun
    from ..jobs.settings import PredictionSettings
    from ..quality.conformal import fewest_cases
    from ..quality.degradations import check_kinds

    degradations = check_kinds(args.degrade) if args.degrade else []
    run = LabelledRun(PredictionSettings(args.method, args.samples, args.device, ()), tuple(degradations), args.seed)
    quality = calibrate_bundle(args.model, dataset, cases, alpha=args.alpha, threshold=args.threshold, run=run,
                               out=args.out, overwrite=args.overwrite)
    data = quality["calibration_data"]
    degraded = f", each also degraded ({', '.join(degradations)})" if degradations else ""
    print(f"calibrated {args.out or args.model} on {data['n_cases']} cases of {data['n_subjects']} subjects"
          f"{degraded}: {data['n_segments']} segments, true Dice {data['dice_range'][0]:.2f}-"
          f"{data['dice_range'][1]:.2f}, {data['segments_below_threshold']} below the PASS threshold "
          f"(alpha {quality['alpha']}, PASS threshold {quality['threshold']})")
    for name, model in quality["classes"].items():
        quantile = model["score_quantile"]
        note = "" if quantile is not None else (f" (too few for a bound: a {1 - quality['alpha']:.0%} bound needs "
                                                f"{fewest_cases(quality['alpha'])} subjects; nothing can PASS)")
        print(f"  {name}: {model['n_cases']} segments predicted present, {model['n_subjects']} subjects{note}")
    for name, reason in quality["skipped"].items():
        print(f"  {name}: no quality model ({reason})")
    return 0
