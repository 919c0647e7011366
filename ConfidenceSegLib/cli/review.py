"""``confidenceseg review``: batch quality control over a cohort, flagged cases first."""

from __future__ import annotations

import argparse

from ..contract import Key, badge_label
from . import warn
from .options import add_model_option, add_output_options, add_prediction_options, add_spacing_option


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "review", help="batch QC: predict a cohort, rank it for review (review.csv, index.html)",
        description="Predicts every input (image files, DICOM series folders, or folders of them) and writes "
                    "the outputs of predict per case plus S_overlay.png into OUTDIR, then OUTDIR/review.csv "
                    "(one row per case and class: REVIEW first, then ABSENT, PASS, unrated; lowest Dice lower "
                    "bound first) and OUTDIR/index.html (self-contained page with thumbnails and sortable "
                    "columns, works offline). Inputs that cannot be read are reported and skipped (exit code 1). "
                    "Existing outputs are kept unless --overwrite.")
    add_model_option(parser)
    parser.add_argument("--inputs", required=True, nargs="+", metavar="DIR_OR_FILE",
                        help="image files, DICOM series folders, or folders holding them")
    parser.add_argument("--out", required=True, metavar="OUTDIR", help="output folder (created if missing)")
    add_prediction_options(parser)
    add_spacing_option(parser)
    add_output_options(parser)
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="local worker processes, each loading the model once (default 1: one process that "
                             "overlaps reading, inference and writing)")
    parser.add_argument("--dask", metavar="ADDRESS",
                        help="send the cases to this Dask distributed scheduler (e.g. tcp://127.0.0.1:8786); the "
                             "workers must see the input and output folders (needs the [dask] extra)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..jobs.review import run_review  # heavy: loads the model stack

    result = run_review(args.model, args.inputs, args.out, method=args.method, samples=args.samples,
                        device=args.device, overwrite=args.overwrite, maps=args.maps, workers=args.workers,
                        dask_address=args.dask, spacing=args.spacing)
    counts: dict[str, int] = {}
    for row in result.rows:
        counts[badge_label(row[Key.BADGE])] = counts.get(badge_label(row[Key.BADGE]), 0) + 1
    summary = ", ".join(f"{n} {badge}" for badge, n in sorted(counts.items()))
    cases = len({row[Key.CASE] for row in result.rows})
    print(f"Reviewed {cases} case(s), {len(result.rows)} segment(s): {summary} "
          f"in {result.seconds:.1f} s ({result.images_per_second:.2f} images/s)")
    print(f"  {result.csv_path}  (REVIEW first)")
    print(f"  {result.html_path}  (open in a browser)")
    for warning in result.warnings:
        warn(warning)
    if result.failures:
        print(f"{len(result.failures)} input(s) could not be processed:")
        for failure in result.failures:
            print(f"  {failure}")
        return 1
    return 0
