"""Converting between confidence representations (``confidenceseg confidence``): raters' masks to a
layered segmentation, and a layered segmentation to a confidence map."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..annotation.layers import check_binary, confidence_map_from_segments, segments_from_raters
from ..contract import SEG_SUFFIX, ConfidenceSegError
from ..io.images import check_same_geometry, image_from_array, read_image, write_image
from ..io.safe_files import check_can_write
from ..io.segfile import read_segmentation, segmentation_grid, write_segmentation


def raters_to_segmentation(rater_paths: list[str], class_name: str, out: str, overwrite: bool) -> int:
    """Several raters' binary masks of one image -> a layered ``.seg.nrrd``, one level per fraction k/R."""
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
    """A layered ``.seg.nrrd`` -> the class's confidence map as a float image (on ``reference_path``'s grid)."""
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

