"""``confidenceseg confidence``: raters' masks -> layered .seg.nrrd, and .seg.nrrd -> confidence map."""

from __future__ import annotations

import argparse

import numpy as np
import SimpleITK as sitk

from ..annotation.layers import check_binary, confidence_map_from_segments, segments_from_raters
from ..contract import ConfidenceSegError
from ..io.images import check_same_geometry, image_from_array, read_image, write_image
from ..io.safe_files import check_can_write
from ..io.segfile import SEG_SUFFIX, read_segmentation, segmentation_grid, write_segmentation


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
    if args.raters:
        if not args.out:
            raise ConfidenceSegError("--raters needs --out OUT.seg.nrrd")
        return raters_to_segmentation(args.raters, args.class_name, args.out, args.overwrite)
    if not args.map_out:
        raise ConfidenceSegError("--seg needs --map-out MAP")
    return segmentation_to_map(args.seg, args.class_name, args.map_out, args.reference, args.overwrite)


def raters_to_segmentation(rater_paths: list[str], class_name: str, out: str, overwrite: bool) -> int:
    if not out.endswith(SEG_SUFFIX):
        raise ConfidenceSegError(f"--out must end with {SEG_SUFFIX}: {out}")
    check_can_write([out], overwrite)
    reference = read_image(rater_paths[0])
    masks = []
    for path in rater_paths:
        image = read_image(path)
        check_same_geometry(reference, image, f"rater mask {rater_paths[0]}", f"rater mask {path}")
        array = sitk.GetArrayFromImage(image)
        check_binary(array, f"rater mask {path}")
        masks.append(array > 0)
    write_segmentation(out, segments_from_raters(class_name, masks), reference, overwrite)
    print(f"wrote {out}: {class_name} from {len(masks)} raters")
    return 0


def segmentation_to_map(seg_path: str, class_name: str, map_out: str, reference_path: str | None,
                        overwrite: bool) -> int:
    check_can_write([map_out], overwrite)
    if reference_path:
        reference = read_image(reference_path)
        segments = read_segmentation(seg_path, reference)
    else:
        reference = segmentation_grid(seg_path)
        segments = read_segmentation(seg_path, reference)
    confidence = confidence_map_from_segments(segments, class_name)
    write_image(image_from_array(confidence.astype(np.float32), reference), map_out, overwrite)
    print(f"wrote {map_out}: confidence of {class_name}")
    return 0

