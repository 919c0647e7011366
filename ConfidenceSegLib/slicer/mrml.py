"""MRML adapter: confidence layers and maps in a Slicer scene.

Every function takes the scene or nodes it works on (no global ``slicer.mrmlScene``, no Qt), so
the same code runs in 3D Slicer and, for tests, with the MRML classes of the ``slicer-core``
wheel. Images cross the boundary as SimpleITK images (LPS); MRML works in RAS.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk
import vtk
from vtk.util import numpy_support

from ..annotation.layers import confidence_map_from_segments, segments_from_confidence_map
from ..contract import KNOWN_TAGS, STATUS_TAG, ConfidenceSegError
from ..io.images import ijk_to_lps, spatial_size_3d
from ..io.segments import Segment

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _slicer():
    import slicer  # Slicer's own module inside Slicer, the slicer-core wheel outside

    return slicer


def _vtk_matrix(array: np.ndarray) -> vtk.vtkMatrix4x4:
    matrix = vtk.vtkMatrix4x4()
    for row in range(4):
        for column in range(4):
            matrix.SetElement(row, column, float(array[row, column]))
    return matrix


def _numpy_matrix(matrix: vtk.vtkMatrix4x4) -> np.ndarray:
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def ijk_to_ras(image: sitk.Image) -> np.ndarray:
    """4x4 voxel-index to RAS matrix of a SimpleITK image."""
    return LPS_TO_RAS @ ijk_to_lps(image)


def _vtk_image(array_ijk_order: np.ndarray) -> vtk.vtkImageData:
    """vtkImageData from an (i, j, k) array (VTK stores i fastest)."""
    image = vtk.vtkImageData()
    image.SetDimensions(array_ijk_order.shape)
    flat = np.ascontiguousarray(array_ijk_order.transpose(2, 1, 0)).ravel()
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(flat, deep=True))
    return image


def _as_ijk(array: np.ndarray) -> np.ndarray:
    volume = array if array.ndim == 3 else array[np.newaxis]
    return volume.transpose(2, 1, 0)


def _reference_oriented_image(reference: sitk.Image):
    """Empty vtkOrientedImageData with the reference image's grid (used for resampling)."""
    slicer = _slicer()
    oriented = slicer.vtkOrientedImageData()
    oriented.SetDimensions(spatial_size_3d(reference))
    oriented.SetImageToWorldMatrix(_vtk_matrix(ijk_to_ras(reference)))
    return oriented


# --- volumes -----------------------------------------------------------------------------------

def add_volume_from_image(scene, image: sitk.Image, name: str, class_name: str = "vtkMRMLScalarVolumeNode"):
    """Add a volume node holding ``image`` (voxels and geometry) to ``scene``; return the node."""
    slicer = _slicer()
    node = scene.AddNewNodeByClass(class_name, name)
    node.SetIJKToRASMatrix(_vtk_matrix(ijk_to_ras(image)))
    slicer.util.updateVolumeFromArray(node, sitk.GetArrayFromImage(image))
    return node


def image_from_volume_node(volume_node) -> sitk.Image:
    """The voxels and geometry of a scalar volume node as a 3D SimpleITK image (LPS)."""
    slicer = _slicer()
    if volume_node is None or volume_node.GetImageData() is None:
        raise ConfidenceSegError("the volume node has no image data")
    array = slicer.util.arrayFromVolume(volume_node)
    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    ijk_lps = LPS_TO_RAS @ _numpy_matrix(matrix)
    spacing = np.linalg.norm(ijk_lps[:3, :3], axis=0)
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.SetSpacing(tuple(spacing))
    image.SetOrigin(tuple(ijk_lps[:3, 3]))
    image.SetDirection(tuple((ijk_lps[:3, :3] / spacing).ravel()))
    return image


def add_confidence_map_volume(scene, confidence: np.ndarray, reference: sitk.Image, name: str):
    """Put a confidence map (float32 in [0, 1]) in the scene as a scalar volume on the reference grid.

    ``confidence``: (H, W) or (Z, Y, X), SimpleITK order, ``reference``'s size."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(confidence, dtype=np.float32))
    if image.GetSize() != reference.GetSize():
        raise ConfidenceSegError(f"confidence map of size {image.GetSize()} does not match the image "
                                 f"{reference.GetSize()}")
    image.CopyInformation(reference)
    return add_volume_from_image(scene, image, name)


# --- segments ----------------------------------------------------------------------------------



def add_segments(segmentation_node, segments: Sequence[Segment], reference: sitk.Image) -> list[str]:
    """Add ``segments`` (masks on ``reference``'s grid) to a segmentation node; return their IDs.

    An empty segmentation takes ``reference``'s grid as its reference image geometry.
    """
    slicer = _slicer()
    segmentation = segmentation_node.GetSegmentation()
    if segmentation.GetNumberOfSegments() == 0:
        geometry = slicer.vtkSegmentationConverter.SerializeImageGeometry(_reference_oriented_image(reference))
        segmentation.SetConversionParameter(
            slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName(), geometry)
    labelmap_name = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
    ids = []
    for segment in segments:
        labelmap = slicer.vtkOrientedImageData()
        labelmap.ShallowCopy(_vtk_image(_as_ijk(np.asarray(segment.mask, dtype=np.uint8))))
        labelmap.SetImageToWorldMatrix(_vtk_matrix(ijk_to_ras(reference)))
        vtk_segment = slicer.vtkSegment()
        vtk_segment.SetName(segment.name)
        vtk_segment.SetColor(*segment.color)
        vtk_segment.AddRepresentation(labelmap_name, labelmap)
        for key, value in segment.tags.items():
            vtk_segment.SetTag(key, str(value))
        if segment.status:
            vtk_segment.SetTag(STATUS_TAG, segment.status)
        segment_id = segmentation.GenerateUniqueSegmentID(segment.id or segment.name)
        segmentation.AddSegment(vtk_segment, segment_id)
        ids.append(segment_id)
    return ids


def segment_tags(vtk_segment, keys: Sequence[str] = KNOWN_TAGS) -> dict[str, str]:
    """The tags ``keys`` that a vtkSegment has, as a dict."""
    tags = {}
    value = vtk.reference("")
    for key in keys:
        if vtk_segment.GetTag(key, value):
            tags[key] = str(value)
    return tags


def segment_mask(segmentation_node, segment_id: str, reference: sitk.Image) -> np.ndarray:
    """A segment's binary labelmap resampled onto ``reference``'s grid (bool, SimpleITK order)."""
    slicer = _slicer()
    labelmap = slicer.vtkOrientedImageData()
    if not segmentation_node.GetBinaryLabelmapRepresentation(segment_id, labelmap):
        raise ConfidenceSegError(f"segment {segment_id!r} has no binary labelmap")
    on_grid = slicer.vtkOrientedImageData()
    if labelmap.GetPointData().GetScalars() is None:  # empty segment
        size = spatial_size_3d(reference)
        ijk = np.zeros(size, dtype=bool)
    else:
        slicer.vtkOrientedImageDataResample.ResampleOrientedImageToReferenceOrientedImage(
            labelmap, _reference_oriented_image(reference), on_grid, False, True)
        dims = on_grid.GetDimensions()
        flat = numpy_support.vtk_to_numpy(on_grid.GetPointData().GetScalars())
        ijk = flat.reshape(dims[2], dims[1], dims[0]).transpose(2, 1, 0) != 0
    volume = ijk.transpose(2, 1, 0)
    return volume[0] if reference.GetDimension() == 2 else volume


def read_segments(segmentation_node, reference: sitk.Image) -> list[Segment]:
    """All segments of a node, masks on ``reference``'s grid, with their known tags and status."""
    segmentation = segmentation_node.GetSegmentation()
    segments = []
    for index in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(index)
        vtk_segment = segmentation.GetSegment(segment_id)
        tags = segment_tags(vtk_segment)
        status = tags.pop(STATUS_TAG, None)
        segments.append(Segment(name=vtk_segment.GetName(), mask=segment_mask(segmentation_node, segment_id, reference),
                                color=tuple(vtk_segment.GetColor()), tags=tags, status=status, id=segment_id))
    return segments


def add_confidence_layers(segmentation_node, class_name: str, confidence: np.ndarray, reference: sitk.Image,
                          levels: Sequence[float] | None = None) -> list[str]:
    """Add one segment per confidence level of ``class_name`` (see
    :func:`~ConfidenceSegLib.annotation.layers.segments_from_confidence_map`); return the segment IDs.
    ``confidence``: float in [0, 1] on ``reference``'s grid, (H, W) or (Z, Y, X) SimpleITK order."""
    return add_segments(segmentation_node, segments_from_confidence_map(class_name, confidence, levels), reference)


def read_confidence_map(segmentation_node, class_name: str, reference: sitk.Image) -> np.ndarray:
    """Per-pixel confidence of ``class_name`` from the node's confidence layers."""
    return confidence_map_from_segments(read_segments(segmentation_node, reference), class_name)
