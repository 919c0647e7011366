"""``confidenceseg quickstart``: the bundled model on a bundled sample image, outputs and overlay."""

from __future__ import annotations

import argparse
import os

from ..contract import DEVICE_CHOICES, QUICKSTART_FOLDER
from . import warn
from .options import add_model_option, add_spacing_option


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "quickstart", help="segment a bundled sample image with the bundled model: outputs, overlay, badge",
        description="Runs predict with the bundled HC18 fetal-head model on a bundled sample ultrasound image "
                    "(or --image / --model), writes the segmentation (.seg.nrrd), probability, entropy and "
                    "mutual-information maps, the JSON report and a PNG overlay, and prints the quality badge. "
                    f"Without --out the outputs go to a new folder {QUICKSTART_FOLDER}/ (or {QUICKSTART_FOLDER}-2/, "
                    "... when it exists); files in an existing --out folder are replaced only with --overwrite.")
    parser.add_argument("--out", metavar="DIR", help=f"output folder (default: a new {QUICKSTART_FOLDER}[-N] folder)")
    parser.add_argument("--image", metavar="IMG", help="image to segment (default: the first bundled sample)")
    add_model_option(parser, required=False, note="; default: the bundled fetal_head")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="default: auto (CUDA, MPS, CPU)")
    add_spacing_option(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace existing files in --out")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..jobs.quickstart import badge_summary, run_quickstart  # heavy: loads the model stack

    result = run_quickstart(args.out, args.image, args.model, args.overwrite, device=args.device,
                            spacing=args.spacing)
    report = result.report
    seconds = report.timings.get("total_s", 0.0) + report.timings.get("write_s", 0.0)
    print(f"Segmented {report.input} with {report.model} "
          f"({report.sampling}, {report.device}, {seconds:.1f} s)")
    print("Quality (PASS: lower bound of the predicted Dice reaches the bundle's threshold; REVIEW: check it):")
    for line in badge_summary(report):
        print("  " + line)
    folder = os.path.relpath(result.out_dir) if not os.path.relpath(result.out_dir).startswith("..") \
        else str(result.out_dir)
    print(f"Outputs in {folder}{os.sep}:")
    print(f"  {result.overlay_path.name:<44} overlay: image, outline, uncertainty heatmap, badge")
    print(f"  {report.segmentation:<44} segmentation (open in 3D Slicer)")
    for name, details in report.classes.items():
        print(f"  {details.files['entropy']:<44} uncertainty heatmap of {name} (entropy; also "
              "probability, mutual_information)")
    print(f"  {result.json_path.name:<44} report: uncertainty summary, predicted Dice, badge")
    if report.dicom_segmentation:
        print(f"  {report.dicom_segmentation:<44} DICOM SEG referencing the series")
    for warning in report.warnings:
        warn(warning)
    return 0
