"""Confidence-layered annotation in a Slicer scene: palette, exclusivity, rater import, export.

The logic behind the Annotate section of the ConfidenceSeg module. Every function takes the
nodes it works on (no global scene, no Qt), so it runs in 3D Slicer and, for tests, with the MRML
classes of ``slicer-core``. Segments follow :mod:`ConfidenceSegLib.annotation.layers`: one segment per
(class, level), tagged with the class name and the level.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import vtk

from ..annotation.layers import (
    confidence_classes,
    confidence_map_from_segments,
    level_color,
    segment_name,
    segments_from_raters,
    validate_levels,
)
from ..contract import CLASS_TAG, CONFIDENCE_TAG, ConfidenceSegError
from ..io.images import check_same_geometry, write_image
from ..io.safe_files import check_can_write, write_text_atomic
from .mrml import add_segments, image_from_volume_node, read_segments, segment_mask, segment_tags
from .storage import image_from_volume

#: Levels match when they differ by less than this (tags store levels as decimal text).
LEVEL_TOLERANCE = 1e-6


def _slicer():
    import slicer  # Slicer's own module inside Slicer, the slicer-core wheel outside

    return slicer


# --- palette -----------------------------------------------------------------------------------

def level_segments(segmentation_node, class_name: str) -> dict[str, float]:
    """IDs of the confidence segments of ``class_name`` in the node, with their levels."""
    segmentation = segmentation_node.GetSegmentation()
    found = {}
    for index in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(index)
        tags = segment_tags(segmentation.GetSegment(segment_id), (CLASS_TAG, CONFIDENCE_TAG))
        if tags.get(CLASS_TAG) == class_name and CONFIDENCE_TAG in tags:
            found[segment_id] = float(tags[CONFIDENCE_TAG])
    return found


def annotated_classes(segmentation_node) -> list[str]:
    """Class names that have confidence segments in the node, in segment order."""
    segmentation = segmentation_node.GetSegmentation()
    names: list[str] = []
    for index in range(segmentation.GetNumberOfSegments()):
        tags = segment_tags(segmentation.GetNthSegment(index), (CLASS_TAG, CONFIDENCE_TAG))
        if CONFIDENCE_TAG in tags and tags.get(CLASS_TAG) not in (None, *names):
            names.append(tags[CLASS_TAG])
    return names


def select_or_create_level_segment(segmentation_node, class_name: str, level: float) -> str:
    """The ID of the (class, level) segment, created empty (named, coloured, tagged) if missing.

    The Segment Editor then paints into this segment, so every effect paints at that confidence.
    """
    if not class_name.strip() or ":" in class_name or "|" in class_name:
        raise ConfidenceSegError(f"invalid class name {class_name!r}: it must be non-empty without ':' or '|'")
    level = validate_levels([level])[0]
    for segment_id, existing in level_segments(segmentation_node, class_name).items():
        if abs(existing - level) < LEVEL_TOLERANCE:
            return segment_id
    segmentation = segmentation_node.GetSegmentation()
    name = segment_name(class_name, level)
    segment_id = segmentation.AddEmptySegment(segmentation.GenerateUniqueSegmentID(name), name,
                                              level_color(class_name, level))
    segment = segmentation.GetSegment(segment_id)
    segment.SetTag(CLASS_TAG, class_name)
    segment.SetTag(CONFIDENCE_TAG, repr(float(level)))
    return segment_id


# --- exclusivity -------------------------------------------------------------------------------

def enforce_level_exclusivity(segmentation_node, painted_segment_id: str) -> list[str]:
    """Remove the painted segment's area from the other levels of its class; return the IDs changed.

    Called after an edit: a pixel of a class has exactly one confidence, the one painted last.
    Other classes are never touched.
    """
    slicer = _slicer()
    segmentation = segmentation_node.GetSegmentation()
    painted_segment = segmentation.GetSegment(painted_segment_id)
    if painted_segment is None:
        raise ConfidenceSegError(f"segment {painted_segment_id!r} not found in {segmentation_node.GetName()}")
    class_name = segment_tags(painted_segment, (CLASS_TAG,)).get(CLASS_TAG)
    if class_name is None:
        return []
    painted = slicer.vtkOrientedImageData()
    segmentation_node.GetBinaryLabelmapRepresentation(painted_segment_id, painted)
    if painted.GetPointData().GetScalars() is None or painted.GetScalarRange()[1] <= 0:
        return []
    changed = []
    resample = slicer.vtkOrientedImageDataResample
    for segment_id in level_segments(segmentation_node, class_name):
        if segment_id == painted_segment_id:
            continue
        other = slicer.vtkOrientedImageData()
        segmentation_node.GetBinaryLabelmapRepresentation(segment_id, other)
        if other.GetPointData().GetScalars() is None or other.GetScalarRange()[1] <= 0:
            continue
        before = _voxel_count(other)
        mask = slicer.vtkOrientedImageData()
        mask.DeepCopy(painted)
        if not resample.DoGeometriesMatch(other, mask):
            resampled = slicer.vtkOrientedImageData()
            resample.ResampleOrientedImageToReferenceOrientedImage(mask, other, resampled, False, True)
            mask = resampled
        resample.ModifyImage(other, mask, resample.OPERATION_MASKING, None, 0, 0)
        if _voxel_count(other) != before:
            slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
                other, segmentation_node, segment_id, slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE)
            changed.append(segment_id)
    return changed


def _voxel_count(image) -> int:
    from vtk.util import numpy_support

    return int(np.count_nonzero(numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())))


# --- rater import ------------------------------------------------------------------------------

def rater_mask_from_node(node, reference: sitk.Image) -> np.ndarray:
    """One rater's mask on ``reference``'s grid: a labelmap/scalar volume (non-zero voxels) or a
    segmentation node (union of its segments)."""
    if node.IsA("vtkMRMLSegmentationNode"):
        segmentation = node.GetSegmentation()
        ids = [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())]
        if not ids:
            raise ConfidenceSegError(f"rater segmentation {node.GetName()} has no segments")
        return np.logical_or.reduce([segment_mask(node, segment_id, reference) for segment_id in ids])
    if node.IsA("vtkMRMLScalarVolumeNode"):
        image = image_from_volume_node(node)
        reference_3d = _as_3d(reference)
        check_same_geometry(reference_3d, image, "the image", f"rater volume {node.GetName()}")
        mask = sitk.GetArrayFromImage(image) != 0
        return mask[0] if reference.GetDimension() == 2 else mask
    raise ConfidenceSegError(f"{node.GetName()} is neither a segmentation nor a volume: cannot use it as a rater")


def import_raters(segmentation_node, class_name: str, rater_nodes: Sequence, reference: sitk.Image) -> list[str]:
    """Add the confidence layers of several raters' annotations (fraction k/R per pixel) to the node.

    ``rater_nodes`` are segmentations or labelmap volumes on ``reference``'s grid. Existing layers of
    ``class_name`` are replaced; returns the new segment IDs.
    """
    if len(rater_nodes) < 2:
        raise ConfidenceSegError(f"importing raters needs at least 2 annotations, got {len(rater_nodes)}")
    masks = [rater_mask_from_node(node, reference) for node in rater_nodes]
    segmentation = segmentation_node.GetSegmentation()
    for segment_id in level_segments(segmentation_node, class_name):
        segmentation.RemoveSegment(segment_id)
    return add_segments(segmentation_node, segments_from_raters(class_name, masks), reference)


# --- dataset export ----------------------------------------------------------------------------

@dataclass
class AnnotatedCase:
    """One case to export: its image volume node and the segmentation holding its confidence layers."""

    id: str
    volume_node: object
    segmentation_node: object
    subject: str | None = None


def _as_3d(image: sitk.Image) -> sitk.Image:
    return image if image.GetDimension() == 3 else sitk.JoinSeries(image)


def annotated_cases_in_scene(scene) -> list[AnnotatedCase]:
    """Every segmentation with confidence layers, paired with its reference volume (case ID: volume name)."""
    cases = []
    for index in range(scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode")):
        node = scene.GetNthNodeByClass(index, "vtkMRMLSegmentationNode")
        volume = node.GetNodeReference(node.GetReferenceImageGeometryReferenceRole())
        if volume is not None and annotated_classes(node):
            case_id = re.sub(r"[^A-Za-z0-9_-]+", "_", volume.GetName()).strip("_") or volume.GetID()
            cases.append(AnnotatedCase(case_id, volume, node))
    return cases


def export_dataset(folder: str | os.PathLike, cases: Sequence[AnnotatedCase], classes: Sequence[str],
                   name: str, overwrite: bool = False) -> Path:
    """Write the cases as a training dataset (``dataset.json`` format of the shared data).

    Per case: ``images/<id>.nrrd`` and, per class, ``labels/<id>_<class>.nrrd``: a float32
    confidence map (the highest level painted at each pixel, 0 where nothing is painted), read back
    by :meth:`ConfidenceSegLib.annotation.datasets.Case.confidence_map`. Returns the ``dataset.json`` path.
    """
    root = Path(folder)
    if not cases:
        raise ConfidenceSegError("no annotated cases to export")
    if not classes:
        raise ConfidenceSegError("no classes to export")
    ids = [case.id for case in cases]
    if len(set(ids)) != len(ids):
        raise ConfidenceSegError(f"case IDs must be unique: {ids}")
    outputs = [root / "dataset.json"] + [root / "images" / f"{i}.nrrd" for i in ids]
    outputs += [root / "labels" / f"{i}_{c}.nrrd" for i in ids for c in classes]
    for sub in ("images", "labels"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    check_can_write(outputs, overwrite)
    entries = []
    for case in cases:
        image = image_from_volume(case.volume_node)
        segments = read_segments(case.segmentation_node, image)
        painted = confidence_classes(segments)
        write_image(image, root / "images" / f"{case.id}.nrrd", overwrite)
        labels = {}
        for class_name in classes:
            confidence = (confidence_map_from_segments(segments, class_name) if class_name in painted
                          else np.zeros(sitk.GetArrayViewFromImage(image).shape, dtype=np.float32))
            label = sitk.GetImageFromArray(confidence)
            label.CopyInformation(image)
            labels[class_name] = f"labels/{case.id}_{class_name}.nrrd"
            write_image(label, root / labels[class_name], overwrite)
        entries.append({"id": case.id, "subject": case.subject or case.id, "image": f"images/{case.id}.nrrd",
                        "labels": labels})
    meta = {"name": name, "description": "Confidence-layered annotation exported from 3D Slicer (ConfidenceSeg)",
            "classes": list(classes), "label_type": "confidence", "cases": entries}
    write_text_atomic(root / "dataset.json", json.dumps(meta, indent=2) + "\n", overwrite)
    return root / "dataset.json"


def export_scene_dataset(scene, folder: str | os.PathLike, name: str = "annotations", overwrite: bool = False) -> Path:
    """:func:`export_dataset` of every annotated case in ``scene``, with every class annotated in any of them."""
    cases = annotated_cases_in_scene(scene)
    classes = list(dict.fromkeys(c for case in cases for c in annotated_classes(case.segmentation_node)))
    return export_dataset(folder, cases, classes, name or "annotations", overwrite)


def observe_segment_edits(segmentation_node, callback) -> int:
    """Call ``callback(segment_id)`` whenever a segment's labelmap changes; returns the observer tag."""
    @vtk.calldata_type(vtk.VTK_STRING)
    def on_modified(caller, event, segment_id):
        callback(segment_id)

    segmentation = segmentation_node.GetSegmentation()
    return segmentation.AddObserver(_slicer().vtkSegmentation.RepresentationModified, on_modified)
