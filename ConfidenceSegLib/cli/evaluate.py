"""``confidenceseg evaluate``: predict a labelled dataset and measure segmentation and quality-badge metrics."""

from __future__ import annotations

import argparse

from .options import add_model_option, add_prediction_options


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="evaluate a model and its quality badge on a labelled dataset",
        description="Predicts every case of a labelled dataset and writes OUTDIR/metrics.json (per case and "
                    "class: true Dice, predicted Dice, lower bound, badge; per class: mean Dice, MAE, Spearman, "
                    "AUROC for Dice < threshold, AURC, e-AURC, lower-bound coverage, PASS rate and precision, "
                    "also for the mean-entropy baseline; ECE and, for multi-rater sets, QUBIQ soft Dice) and "
                    "PNG plots per class; measurements (area, ellipse circumference, volume) against the reference "
                    "with their interval coverage. By default only cases of subjects the model never used "
                    "(training, validation, calibration: as its bundle records) are evaluated.")
    add_model_option(parser)
    parser.add_argument("--dataset", required=True, metavar="DIR", help="labelled dataset folder (dataset.json)")
    parser.add_argument("--out", required=True, metavar="OUTDIR", help="output folder (created if missing)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs in OUTDIR")
    parser.add_argument("--cases", choices=("unseen", "test", "all"), default="unseen",
                        help="unseen (default): leave out the subjects the bundle records as used for training, "
                             "validation or calibration on this dataset; test: only its recorded test subjects; "
                             "all: every case (optimistic if used)")
    parser.add_argument("--limit", type=int, metavar="N",
                        help="evaluate only the first N of those cases (in dataset order), e.g. for a quick look")
    parser.add_argument("--degrade", nargs="+", metavar="KIND", default=[],
                        help="also evaluate a degraded copy of every image per KIND (all, noise, speckle, blur, "
                             "low_contrast, gamma, low_resolution, shadow, occlusion); metrics per kind and pooled")
    add_prediction_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..annotation.datasets import load_dataset
    from ..model.bundle_config import read_config

    config = read_config(args.model)  # a bad bundle or dataset is answered before the model stack loads
    dataset = load_dataset(args.dataset)
    from ..jobs.evaluate import run_evaluation

    return run_evaluation(args, dataset, config)
