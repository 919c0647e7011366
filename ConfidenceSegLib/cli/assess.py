"""``confidenceseg assess``: a quality badge for a segmentation the model did not make."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..io.safe_files import output_folder
from .options import add_model_option, add_prediction_options


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "assess", help="predicted Dice, lower bound and badge of a given (imported or hand-painted) segmentation",
        description="Assess a segmentation from another tool or painted by hand: the model predicts the image, "
                    "and each class of SEG is rated by its agreement with that prediction (calibrated on "
                    "perturbed reference masks; see `calibrate`). SEG: a .seg.nrrd (classes from the ConfidenceSeg "
                    "tags or segment names) or a mask image on the image's grid (binary: --class or the model's "
                    "only class; label k = the model's k-th class). Writes OUT/<stem>.json with the same per-class "
                    "fields as predict (per frame for stacks) plus the assessed segmentation and per-method results.")
    add_model_option(parser)
    parser.add_argument("--image", required=True, metavar="IMG", help="the image the segmentation belongs to")
    parser.add_argument("--seg", required=True, metavar="SEG", help=".seg.nrrd or mask image on the image's grid")
    parser.add_argument("--out", required=True, metavar="OUT", help="output folder (created if missing)")
    parser.add_argument("--class", dest="class_name", metavar="C", help="assess only this class")
    parser.add_argument("--method", choices=("agreement", "rca", "both"), default="agreement",
                        help="agreement (default): with the model's prediction and uncertainty (the uncertainty "
                             "method is auto, as calibrated); rca: reverse classification accuracy against the "
                             "bundle's reference masks (2D); both: PASS only when both pass")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT/<stem>.json")
    add_prediction_options(parser, method=False)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..contract import REPORT_SUFFIX, ConfidenceSegError, badge_label
    from ..io.inputs import input_stem
    from ..io.safe_files import check_output_folder
    from ..model.bundle_config import read_config

    config = read_config(args.model)  # bad arguments are answered before the model stack loads
    image, seg = Path(args.image), Path(args.seg)
    missing = [str(path) for path in (image, seg) if not path.exists()]
    if missing:
        raise ConfidenceSegError(f"file not found: {', '.join(missing)}")
    check_output_folder(args.out, [f"{input_stem(image)}{REPORT_SUFFIX}"], args.overwrite)
    from ..jobs.assess import assess_segmentation
    from ..jobs.settings import PredictionSettings
    from ..model.bundle import load_bundle
    from ..quality.reasons import result_words

    bundle = load_bundle(args.model, config)
    settings = PredictionSettings("auto", args.samples, args.device, ())
    settings.check(len(bundle.members), bundle.spatial_dims)
    with output_folder(args.out) as out:
        report = assess_segmentation(bundle, image, seg, out, args.class_name, settings, args.overwrite, args.method)
    for name, result in report.classes.items():
        print(f"{name} {badge_label(result.verdict.badge)}: {result_words(result)}")
    return 0
