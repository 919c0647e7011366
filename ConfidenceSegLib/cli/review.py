"""``confidenceseg review``: batch quality control over a cohort, flagged cases first."""

from __future__ import annotations

import argparse

from ..jobs.review import run_review
from .options import add_prediction_options


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "review", help="batch QC: predict a cohort, rank it for review (review.csv, index.html)",
        description="Predicts every input (image files, DICOM series folders, or folders of them) and writes "
                    "the outputs of predict per case plus S_overlay.png into OUTDIR, then OUTDIR/review.csv "
                    "(one row per case and class: REVIEW first, then ABSENT, PASS, unrated; lowest Dice lower "
                    "bound first) and OUTDIR/index.html (self-contained page with thumbnails and sortable "
                    "columns, works offline). Inputs that cannot be read are reported and skipped (exit code 1). "
                    "Existing outputs are kept unless --overwrite.")
    parser.add_argument("--model", required=True, metavar="MODEL", help="model bundle folder")
    parser.add_argument("--inputs", required=True, nargs="+", metavar="DIR_OR_FILE",
                        help="image files, DICOM series folders, or folders holding them")
    parser.add_argument("--out", required=True, metavar="OUTDIR", help="output folder (created if missing)")
    add_prediction_options(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = run_review(args.model, args.inputs, args.out, method=args.method, samples=args.samples,
                        device=args.device, overwrite=args.overwrite)
    counts: dict[str, int] = {}
    for row in result.rows:
        counts[row["badge"] or "UNRATED"] = counts.get(row["badge"] or "UNRATED", 0) + 1
    summary = ", ".join(f"{n} {badge}" for badge, n in sorted(counts.items()))
    cases = len({row["case"] for row in result.rows})
    print(f"Reviewed {cases} case(s), {len(result.rows)} segment(s): {summary}")
    print(f"  {result.csv_path}  (REVIEW first)")
    print(f"  {result.html_path}  (open in a browser)")
    if result.failures:
        print(f"{len(result.failures)} input(s) could not be processed:")
        for failure in result.failures:
            print(f"  {failure}")
        return 1
    return 0
