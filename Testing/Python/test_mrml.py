"""The MRML adapter against real slicer-core MRML classes (no Qt, scene passed in)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from slicer import vtkMRMLScene
from slicer_scene import load_seg_nrrd_in_scene

from ConfidenceSegLib.annotation.layers import DEFAULT_LEVELS
from ConfidenceSegLib.io.images import same_geometry
from ConfidenceSegLib.io.segfile import write_segmentation
from ConfidenceSegLib.io.segments import Segment
from ConfidenceSegLib.slicer import mrml


def _oblique_image() -> sitk.Image:
    rng = np.random.default_rng(5)
    image = sitk.GetImageFromArray(rng.random((5, 7, 9)).astype(np.float32))
    image.SetSpacing((0.5, 0.75, 2.0))
    image.SetOrigin((10.0, -4.0, 7.5))
    angle = np.deg2rad(30)
    image.SetDirection((np.cos(angle), 0, np.sin(angle), 0, 1, 0, -np.sin(angle), 0, np.cos(angle)))
    return image


def _confidence(shape) -> np.ndarray:
    rng = np.random.default_rng(6)
    return np.array(list(DEFAULT_LEVELS.values()) + [0.0], np.float32)[rng.integers(0, 4, shape)]


def test_confidence_layers_in_a_segmentation_node_round_trip():
    image = _oblique_image()
    confidence = _confidence(sitk.GetArrayFromImage(image).shape)
    scene = vtkMRMLScene()
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "annotation")
    ids = mrml.add_confidence_layers(node, "lesion", confidence, image, DEFAULT_LEVELS.values())
    assert node.GetSegmentation().GetNumberOfSegments() == len(ids) == 3
    np.testing.assert_array_equal(mrml.read_confidence_map(node, "lesion", image), confidence)


def test_confidence_map_volume_keeps_voxels_and_geometry():
    image = _oblique_image()
    confidence = _confidence(sitk.GetArrayFromImage(image).shape)
    scene = vtkMRMLScene()
    volume = mrml.add_confidence_map_volume(scene, confidence, image, "lesion confidence")
    assert scene.GetNodeByID(volume.GetID()) is volume
    back = mrml.image_from_volume_node(volume)
    assert same_geometry(back, image)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), confidence)


def test_segments_loaded_from_file_keep_tags_and_status(tmp_path):
    image = sitk.Image(8, 6, sitk.sitkUInt8)
    mask = np.zeros((6, 8), bool)
    mask[1:4, 2:6] = True
    segment = Segment("fetal_head", mask, (0.9, 0.4, 0.1),
                      {"ConfidenceSeg.Class": "fetal_head", "ConfidenceSeg.Badge": "REVIEW"}, status="flagged")
    path = tmp_path / "p.seg.nrrd"
    write_segmentation(path, [segment], image)
    _, node = load_seg_nrrd_in_scene(path)
    (read,) = mrml.read_segments(node, image)
    np.testing.assert_array_equal(read.mask, mask)
    assert read.tags == segment.tags and read.status == "flagged"
