"""Helpers for tests that use real MRML classes from the slicer-core wheel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk
import vtk


def scene_with_logics():
    """A scene with the logics Slicer registers at startup (colours, segmentations)."""
    import slicer

    scene = slicer.vtkMRMLScene()
    color_logic = slicer.vtkSlicerColorLogic()
    color_logic.SetMRMLScene(scene)
    segmentations_logic = slicer.vtkSlicerSegmentationsModuleLogic()
    segmentations_logic.SetMRMLScene(scene)
    scene.color_logic = color_logic
    return scene


def make_image(shape=(24, 32), spacing=(0.4, 0.3), origin=(5.0, -2.0)) -> sitk.Image:
    """A seeded random float image with the given geometry (SimpleITK order ``shape``)."""
    rng = np.random.default_rng(0)
    image = sitk.GetImageFromArray(rng.random(shape).astype(np.float32))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    return image


def load_seg_nrrd_in_scene(path: Path):
    """Load a .seg.nrrd into a fresh slicer-core scene through vtkMRMLSegmentationStorageNode."""
    from slicer import vtkMRMLScene, vtkMRMLSegmentationNode, vtkMRMLSegmentationStorageNode

    scene = vtkMRMLScene()
    node = vtkMRMLSegmentationNode()
    scene.AddNode(node)
    storage = vtkMRMLSegmentationStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(path))
    assert storage.ReadData(node), f"slicer-core could not read {path}"
    return scene, node


def tag(vtk_segment, key: str) -> str | None:
    value = vtk.reference("")
    return str(value) if vtk_segment.GetTag(key, value) else None


def segments_by_name(node) -> dict:
    segmentation = node.GetSegmentation()
    return {segmentation.GetNthSegment(i).GetName(): segmentation.GetNthSegment(i)
            for i in range(segmentation.GetNumberOfSegments())}
