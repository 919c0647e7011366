"""Reading and writing volumes and segmentations through MRML storage nodes (as 3D Slicer does).

Nodes keep their storage node, so a scene saved in Slicer refers to the files; a segmentation
round-trips with every segment, tag and review status. Functions take the scene or node they
work on (no global scene, no Qt).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..contract import SEG_SUFFIX, ConfidenceSegError
from ..io.safe_files import atomic_output
from .mrml import image_from_volume_node


def load_volume(scene, path: str | os.PathLike, name: str | None = None, labelmap: bool = False):
    """Read a volume file into a new scalar (or labelmap) volume node with a storage node."""
    node_class = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
    path = Path(path)
    return _read_with_storage_node(scene, path, node_class, "vtkMRMLVolumeArchetypeStorageNode",
                                   name or path.name.split(".")[0], f"cannot read volume {path}")


def load_segmentation(scene, path: str | os.PathLike, name: str | None = None):
    """Read a ``.seg.nrrd`` into a new segmentation node (segments, tags and status as saved)."""
    path = Path(path)
    return _read_with_storage_node(scene, path, "vtkMRMLSegmentationNode", "vtkMRMLSegmentationStorageNode",
                                   name or path.name.removesuffix(SEG_SUFFIX),
                                   f"cannot read segmentation {path}: corrupt or not a .seg.nrrd")


def _read_with_storage_node(scene, path: Path, node_class: str, storage_class: str, name: str, failure: str):
    """A new node of ``node_class`` read from ``path`` by a new ``storage_class`` node; nothing left on failure."""
    if not path.is_file():
        raise ConfidenceSegError(f"file not found: {path}")
    node = scene.AddNewNodeByClass(node_class, name)
    storage = scene.AddNewNodeByClass(storage_class)
    storage.SetFileName(str(path))
    if storage.IsA("vtkMRMLVolumeArchetypeStorageNode"):
        storage.SetSingleFile(True)  # not a numbered series of similarly named files
    node.SetAndObserveStorageNodeID(storage.GetID())
    if not storage.ReadData(node):
        scene.RemoveNode(node)
        scene.RemoveNode(storage)
        raise ConfidenceSegError(failure)
    node.CreateDefaultDisplayNodes()
    return node


def save_segmentation(segmentation_node, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write a segmentation node to a ``.seg.nrrd`` (atomically) with Slicer's own storage node."""
    path = Path(path)
    if not path.name.endswith(SEG_SUFFIX):
        raise ConfidenceSegError(f"segmentation file name must end with {SEG_SUFFIX}: {path}")
    scene = segmentation_node.GetScene()
    storage = scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    try:
        with atomic_output(path, overwrite) as tmp:
            storage.SetFileName(str(tmp))
            if not storage.WriteData(segmentation_node):
                raise ConfidenceSegError(f"cannot write segmentation {path}")
    finally:
        scene.RemoveNode(storage)
    return path


def image_from_volume(volume_node) -> sitk.Image:
    """A volume node as a SimpleITK image; 2D when it is a single axial slice (how Slicer holds a 2D image)."""
    image = image_from_volume_node(volume_node)
    direction = np.reshape(image.GetDirection(), (3, 3))
    axial = np.allclose(direction[:, 2], [0, 0, 1]) and np.allclose(direction[2, :2], 0)
    if image.GetSize()[2] != 1 or not axial:
        return image
    flat = image[:, :, 0]
    flat.SetDirection(tuple(direction[:2, :2].ravel()))
    return flat
