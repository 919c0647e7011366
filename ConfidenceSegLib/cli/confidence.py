"""``confidenceseg confidence``: raters' masks -> confidence layers, and confidence layers -> a confidence map."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..contract import ConfidenceSegError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "confidence", help="convert raters' masks or confidence layers to confidence maps",
        description="Either --raters (binary masks of one image, one per rater) -> layered segmentation with "
                    "one level per rater fraction k/R (--out), or --seg (layered segmentation) -> the class's "
                    "confidence map as a float image (--map-out). Existing outputs are kept unless --overwrite.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--raters", nargs="+", metavar="MASK", help="binary masks of one image, one per rater")
    source.add_argument("--seg", metavar="SEG", help="confidence-layered segmentation (.seg.nrrd)")
    parser.add_argument("--class", dest="class_name", required=True, metavar="NAME", help="class (structure) name")
    parser.add_argument("--out", metavar="OUT.seg.nrrd", help="layered segmentation to write (with --raters)")
    parser.add_argument("--map-out", metavar="MAP", help="confidence map to write (with --seg; e.g. .nrrd)")
    parser.add_argument("--reference", metavar="IMAGE",
                        help="image whose grid the segmentation is read on (default: the segmentation's own grid)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    missing = [path for path in (*(args.raters or []), args.seg, args.reference) if path and not Path(path).exists()]
    if missing:  # answered before SimpleITK and slicerio load
        raise ConfidenceSegError(f"file not found: {', '.join(missing)}")
    from ..jobs.confidence import raters_to_segmentation, segmentation_to_map

    if args.raters:
        if not args.out:
            raise ConfidenceSegError("--raters needs --out OUT.seg.nrrd")
        return raters_to_segmentation(args.raters, args.class_name, args.out, args.overwrite)
    if not args.map_out:
        raise ConfidenceSegError("--seg needs --map-out MAP")
    return segmentation_to_map(args.seg, args.class_name, args.map_out, args.reference, args.overwrite)
