"""Helpers for tests that use real MRML classes from the slicer-core wheel."""

from __future__ import annotations

from pathlib import Path

import vtk


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
