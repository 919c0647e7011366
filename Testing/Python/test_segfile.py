"""Writing and reading .seg.nrrd: every segment, tag, status and the geometry survive."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import slicerio
from slicer_scene import load_seg_nrrd_in_scene, segments_by_name, tag

from ConfidenceSegLib.annotation.layers import segments_from_confidence_map
from ConfidenceSegLib.contract import CLASS_TAG, CONFIDENCE_TAG, ConfidenceSegError
from ConfidenceSegLib.io.images import ijk_to_lps
from ConfidenceSegLib.io.segfile import read_segmentation, segmentation_grid, write_segmentation
from ConfidenceSegLib.io.segments import Segment


def _image_2d() -> sitk.Image:
    image = sitk.Image(12, 9, sitk.sitkUInt8)
    image.SetSpacing((0.3, 0.4))
    image.SetOrigin((5.0, -2.0))
    return image


def _image_3d() -> sitk.Image:
    image = sitk.Image(10, 8, 6, sitk.sitkInt16)
    image.SetSpacing((0.5, 0.6, 2.0))
    image.SetOrigin((1.0, 2.0, 3.0))
    image.SetDirection((0, 1, 0, 1, 0, 0, 0, 0, -1))
    return image


def _overlapping_segments(shape) -> list[Segment]:
    rng = np.random.default_rng(1)
    confidence = np.round(rng.random(shape) * 4) / 4
    segments = segments_from_confidence_map("lesion", confidence.astype(np.float32), [1.0, 0.75, 0.5, 0.25])
    other = Segment(name="organ", mask=rng.random(shape) > 0.3, color=(0.1, 0.9, 0.2),
                    tags={CLASS_TAG: "organ", "ConfidenceSeg.Badge": "REVIEW"}, status="flagged")
    return segments + [other]  # 'organ' overlaps the lesion levels: stored in another layer


@pytest.mark.parametrize("make_image", [_image_2d, _image_3d])
def test_round_trip_keeps_masks_tags_status_and_grid(tmp_path, make_image):
    image = make_image()
    shape = sitk.GetArrayFromImage(image).shape
    segments = _overlapping_segments(shape)
    path = tmp_path / "case.seg.nrrd"
    write_segmentation(path, segments, image)
    back = read_segmentation(path, image)
    assert [s.name for s in back] == [s.name for s in segments]
    for written, read in zip(segments, back, strict=True):
        np.testing.assert_array_equal(read.mask, written.mask)
        assert read.tags == written.tags and read.status == written.status
        np.testing.assert_allclose(read.color, written.color, atol=1e-5)
    grid = segmentation_grid(path)
    assert grid.GetDimension() == image.GetDimension() and grid.GetSize() == image.GetSize()
    np.testing.assert_allclose(ijk_to_lps(grid), ijk_to_lps(image), atol=1e-6)


def test_slicer_core_reads_every_segment_tag_and_status(tmp_path):
    image = _image_3d()
    segments = _overlapping_segments(sitk.GetArrayFromImage(image).shape)
    path = tmp_path / "case.seg.nrrd"
    write_segmentation(path, segments, image)
    _, node = load_seg_nrrd_in_scene(path)
    loaded = segments_by_name(node)
    assert set(loaded) == {s.name for s in segments}
    for segment in segments:
        for key, value in segment.tags.items():
            assert tag(loaded[segment.name], key) == value
    assert tag(loaded["organ"], "Segmentation.Status") == "flagged"


def test_slicer_style_cropped_file_is_padded_onto_the_reference_grid(tmp_path):
    image = _image_3d()
    shape_ijk = image.GetSize()
    full = np.zeros(shape_ijk, np.uint8)
    full[3:6, 2:5, 1:3] = 1
    cropped = full[3:6, 2:5, 1:3]
    matrix = ijk_to_lps(image)
    matrix[:3, 3] = matrix @ np.array([3, 2, 1, 1.0]) @ np.eye(4)[:, :3]  # origin of the crop
    segmentation = slicerio.create_segmentation(cropped.shape, matrix)
    slicerio.add_segment(segmentation, cropped.astype(bool), {"id": "s1", "name": "crop",
                                                             "tags": {CONFIDENCE_TAG: "1.0", CLASS_TAG: "x"}})
    path = tmp_path / "cropped.seg.nrrd"
    slicerio.write_segmentation(str(path), segmentation)
    (segment,) = read_segmentation(path, image)
    np.testing.assert_array_equal(segment.mask, full.transpose(2, 1, 0).astype(bool))


def test_file_on_another_grid_is_a_geometry_mismatch(tmp_path):
    image = _image_3d()
    path = tmp_path / "case.seg.nrrd"
    write_segmentation(path, _overlapping_segments(sitk.GetArrayFromImage(image).shape), image)
    other = _image_3d()
    other.SetSpacing((0.5, 0.6, 3.0))
    with pytest.raises(ConfidenceSegError, match="geometry mismatch"):
        read_segmentation(path, other)


def test_refuses_to_clobber_wrong_shapes_and_bad_tags(tmp_path):
    image = _image_2d()
    shape = sitk.GetArrayFromImage(image).shape
    path = tmp_path / "case.seg.nrrd"
    write_segmentation(path, _overlapping_segments(shape), image)
    before = path.read_bytes()
    with pytest.raises(ConfidenceSegError, match="output exists"):
        write_segmentation(path, [], image)
    with pytest.raises(ConfidenceSegError, match="shape"):
        write_segmentation(tmp_path / "b.seg.nrrd", [Segment("x", np.zeros((2, 2), bool))], image)
    with pytest.raises(ConfidenceSegError, match="cannot be stored"):
        write_segmentation(tmp_path / "c.seg.nrrd", [Segment("x", np.zeros(shape, bool), tags={"a": "b|c"})], image)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case.seg.nrrd"]


def test_corrupt_segmentation_is_named(tmp_path):
    path = tmp_path / "bad.seg.nrrd"
    path.write_text("not a nrrd")
    with pytest.raises(ConfidenceSegError, match="cannot read segmentation .*bad.seg.nrrd"):
        read_segmentation(path)
