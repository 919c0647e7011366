"""``confidenceseg predict``: segmentation, uncertainty maps and quality fields for each input image."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..contract import REPORT_SUFFIX
from ..io.safe_files import output_folder
from ..io.stops import StopRequested
from ..jobs.preflight import check_prediction_run
from ..jobs.progress import ProgressReporter
from ..jobs.settings import PredictionSettings
from . import warn
from .options import add_model_option, add_output_options, add_prediction_options, add_spacing_option

PROGRESS_FORMATS = ("json",)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict", help="segment images with uncertainty maps and a quality badge",
        description="Run a model bundle on 2D images, multi-frame stacks (a 2D model runs frame by frame) or 3D "
                    "volumes (3D model). Per input S writes S.seg.nrrd, S.json and per class the uncertainty maps "
                    "of --maps (default S_<class>_entropy.nrrd; also probability, mutual_information), on the "
                    "input's grid. Existing outputs are kept unless --overwrite.")
    add_model_option(parser)
    parser.add_argument("--input", required=True, nargs="+", metavar="IMG", help="input images")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    add_prediction_options(parser)
    add_spacing_option(parser)
    parser.add_argument("--overlay", action="store_true",
                        help="also write S_overlay.png, the picture quickstart writes (image, outline, entropy "
                             "heatmap, badge; a stack's measured frame)")
    add_output_options(parser)
    parser.add_argument("--progress", choices=PROGRESS_FORMATS,
                        help="json: one JSON object per line on stdout (stage, fraction, message)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    reporter = ProgressReporter(json_lines=args.progress == "json")
    try:
        return predict_files(args, reporter)
    except StopRequested:
        # The unfinished input's outputs are already cleaned up; cli.main ends the process.
        reporter.emit("stopped", 0.0, "stopped on request; no partial output was kept")
        raise


def predict_files(args: argparse.Namespace, reporter: ProgressReporter) -> int:
    inputs = [Path(path) for path in args.input]
    stems, config = check_prediction_run(args.model, inputs, args.out, args.overwrite, overlay=args.overlay,
                                         maps=args.maps)
    reporter("load", 0.0, f"loading model {args.model}")
    from ..jobs.predict_job import predict_input  # the model stack loads only now
    from ..model.bundle import load_bundle

    bundle = load_bundle(args.model, config)
    settings = PredictionSettings(args.method, args.samples, args.device, args.maps, args.spacing)
    settings.check(len(bundle.members), bundle.spatial_dims)
    count = len(inputs)
    with output_folder(args.out) as out_dir:
        for number, (path, stem) in enumerate(zip(inputs, stems, strict=True)):
            written = predict_input(bundle, path, out_dir, settings, args.overwrite, reporter,
                                    span=(number / count, (number + 1) / count), stem=stem)
            json_path = out_dir / f"{stem}{REPORT_SUFFIX}"
            if args.overlay:
                written.write_overlay(out_dir, stem, args.model, args.overwrite)
            for warning in written.report.warnings:
                warn(f"{stem}: {warning}")
            if reporter.json_lines:
                reporter("done" if number + 1 == count else "input done", (number + 1) / count, f"wrote {json_path}")
            else:
                print(f"wrote {json_path}: {describe(written.report)}")
    return 0


def describe(report) -> str:
    """One line of a :class:`~ConfidenceSegLib.outputs.report.PredictionReport`: method, samples and each
    class's badge (or presence) with its numbers and reason."""
    from ..quality.reasons import result_words

    parts = []
    for name, result in report.classes.items():
        badge = result.verdict.badge or ("present" if result.present else "absent")
        parts.append(f"{name} {badge}: {result_words(result)}")
    how = f", 2D model slice by slice on {len(report.frames)} frames" if report.frames else ""
    return f"{report.sampling} on {report.device}{how}; " + ", ".join(parts)
