"""``confidenceseg predict``: segmentation, uncertainty maps and quality fields for each input image."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..contract import ConfidenceSegError
from ..inference.runner import predict_image
from ..io.safe_files import check_can_write
from ..jobs.progress import ProgressReporter, StopRequested
from .options import add_prediction_options

PROGRESS_FORMATS = ("json",)
#: Exit status after a SIGTERM stop (as for an interrupt, see cli.main).
STOPPED_EXIT_CODE = 130


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict", help="segment images with uncertainty maps and a quality badge",
        description="Run a model bundle on 2D images, multi-frame stacks (a 2D model runs frame by frame) or 3D "
                    "volumes (3D model). Per input S writes S.seg.nrrd, S_<class>_probability.nrrd, "
                    "S_<class>_entropy.nrrd, S_<class>_mutual_information.nrrd and S.json, on the input's grid. "
                    "Existing outputs are kept unless --overwrite.")
    parser.add_argument("--model", required=True, metavar="MODEL", help="model bundle folder")
    parser.add_argument("--input", required=True, nargs="+", metavar="IMG", help="input images")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    add_prediction_options(parser)
    parser.add_argument("--progress", choices=PROGRESS_FORMATS,
                        help="json: one JSON object per line on stdout (stage, fraction, message)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    reporter = ProgressReporter(json_lines=args.progress == "json")
    with reporter.stop_on_sigterm():
        try:
            return predict_files(args, reporter)
        except StopRequested:
            # Outputs of the unfinished input are already cleaned up. End the process now, as SIGTERM's
            # default action would: interpreter teardown with torch loaded can take over a second.
            reporter.stop_requested = False  # let the last line through
            reporter("stopped", 0.0, "stopped on request; no partial output was kept")
            print("confidenceseg: stopped (SIGTERM); no partial output was kept", file=sys.stderr, flush=True)
            os._exit(STOPPED_EXIT_CODE)


def predict_files(args: argparse.Namespace, reporter: ProgressReporter) -> int:
    from ..io.images import read_image
    from ..model.bundle import load_bundle, read_config
    from ..outputs.prediction_files import output_names, output_stem, write_prediction_outputs

    inputs = [Path(path) for path in args.input]
    stems = [output_stem(path) for path in inputs]
    duplicates = sorted({stem for stem in stems if stems.count(stem) > 1})
    if duplicates:
        raise ConfidenceSegError(f"several inputs would write the same outputs: {', '.join(duplicates)}")
    missing = [str(path) for path in inputs if not path.exists()]
    if missing:
        raise ConfidenceSegError(f"file not found: {', '.join(missing)}")
    classes = read_config(args.model)["classes"]
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfidenceSegError(f"--out {out_dir} is a file, not a folder")
    if out_dir.is_dir():
        check_can_write([out_dir / name for stem in stems for name in output_names(stem, classes)], args.overwrite)
    reporter("load", 0.0, f"loading model {args.model}")
    bundle = load_bundle(args.model)
    out_dir.mkdir(parents=True, exist_ok=True)
    count = len(inputs)
    for number, (path, stem) in enumerate(zip(inputs, stems, strict=True)):
        reporter("read", number / count, f"reading {path}")
        image = read_image(path)
        prediction = predict_image(bundle, image, args.method, args.samples, args.device,
                                   progress=reporter.scaled((number + 0.05) / count, (number + 0.8) / count))
        report = write_prediction_outputs(prediction, bundle, out_dir, stem, path, args.overwrite,
                                          progress=reporter.scaled((number + 0.8) / count, (number + 1) / count),
                                          finalize=reporter.uninterruptible)
        if reporter.json_lines:
            reporter("done" if number + 1 == count else "input done", (number + 1) / count,
                     f"wrote {out_dir / (stem + '.json')}")
        else:
            print(f"wrote {out_dir / (stem + '.json')}: {describe(report)}")
    return 0


def describe(report: dict) -> str:
    """One line: method, samples and each class's badge or presence."""
    parts = []
    for name, result in report["classes"].items():
        badge = result["badge"] or ("present" if result["present"] else "absent")
        dice = result["predicted_dice"]
        parts.append(f"{name} {badge}" + (f" (predicted Dice {dice:.2f})" if dice is not None else ""))
    return f"{report['method']}, {report['samples']} samples on {report['device']}; " + ", ".join(parts)
