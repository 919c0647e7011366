"""A small 3D Slicer scene per reviewed case (``S.mrml``): open it in Slicer and the case appears as
the review shows it: the image, the segmentation and the entropy heatmap over it.

The scene only refers to the case's files (the image where it was read, ``S.seg.nrrd`` and
``S_<class>_entropy.nrrd`` beside the scene); opening it modifies none of them, and each volume is
read as a single file (not merged with similarly named neighbours). Written as MRML XML text, so no
Slicer library is needed to write it; ``Testing/Python/test_slicer_scene.py`` loads it with Slicer's
own MRML classes.

An input read with a pixel size given by ``--spacing`` (PNG, DICOM without Pixel Spacing) is still
read by Slicer with 1-unit pixels; the scene puts it under a linear transform that gives it the
pixel size the outputs have, so image, segmentation and heatmap line up.
"""

from __future__ import annotations

import os
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from ..contract import (
    DEFAULT_HEATMAP,
    HEATMAP_DISPLAY_THRESHOLD,
    HEATMAP_OPACITY,
    INFERNO_COLOR_NODE_ID,
    SCENE_SUFFIX,
)
from ..io.images import ijk_to_lps
from ..io.safe_files import write_text_atomic
from .report import PredictionReport


def _node(tag: str, **attributes) -> str:
    return f"<{tag} " + " ".join(f"{key}={quoteattr(str(value))}" for key, value in attributes.items()) + f"></{tag}>"


def _volume(number: int, name: str, path: str, display: str, single_file: bool = True) -> list[str]:
    volume_id, storage_id = f"vtkMRMLScalarVolumeNode{number}", f"vtkMRMLVolumeArchetypeStorageNode{number}"
    return [_node("Volume", id=volume_id, name=name, references=f"display:{display};storage:{storage_id};"),
            _node("VolumeArchetypeStorage", id=storage_id, name=f"{name} storage", fileName=path,
                  singleFile=int(single_file))]


#: LPS <-> RAS (its own inverse).
FLIP_LPS_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def given_spacing_transform(image) -> np.ndarray:
    """4x4 RAS transform from ``image`` read with 1-unit pixels to ``image`` with its (given) spacing.

    ``image``: the ``sitk.Image`` as predicted; the same origin and direction, spacing 1 in the file."""
    given = ijk_to_lps(image)
    unit = given.copy()
    unit[:3, :3] = given[:3, :3] / np.linalg.norm(given[:3, :3], axis=0)  # direction columns, spacing 1
    return FLIP_LPS_RAS @ given @ np.linalg.inv(unit) @ FLIP_LPS_RAS


def case_scene(case: str, report: PredictionReport, image_path: str | os.PathLike, scene_dir: Path,
               predicted=None) -> str:
    """The MRML text of one case: image (grey), segmentation, and the first class's heatmap over it.

    ``predicted``: the image as predicted (``sitk.Image``), needed when its spacing was given (``--spacing``)."""
    image_path = Path(image_path)
    single = not image_path.is_dir()  # a DICOM series folder: its first file, read as the series
    if not single:
        from ..io.images import series_files

        image_path = Path(series_files(image_path)[0])
    image = os.path.relpath(image_path.resolve(), scene_dir.resolve())
    nodes = _volume(1, case, image, "vtkMRMLScalarVolumeDisplayNode1", single)
    if (report.spacing or {}).get("source") == "--spacing" and predicted is not None:
        matrix = " ".join(f"{value:.9g}" for value in given_spacing_transform(predicted).ravel())
        nodes[0] = nodes[0].replace("<Volume ", '<Volume transformNodeRef="vtkMRMLLinearTransformNode1" ', 1)
        nodes.append(_node("LinearTransform", id="vtkMRMLLinearTransformNode1", name=f"{case} pixel size (--spacing)",
                           matrixTransformToParent=matrix))
    nodes.append(_node("VolumeDisplay", id="vtkMRMLScalarVolumeDisplayNode1", name=f"{case} display",
                       colorNodeID="vtkMRMLColorTableNodeGrey", autoWindowLevel=1))
    nodes += [_node("Segmentation", id="vtkMRMLSegmentationNode1", name=f"{case} segmentation",
                    references="display:vtkMRMLSegmentationDisplayNode1;storage:vtkMRMLSegmentationStorageNode1;"),
              _node("SegmentationStorage", id="vtkMRMLSegmentationStorageNode1", name=f"{case} segmentation storage",
                    fileName=report.segmentation),
              _node("SegmentationDisplay", id="vtkMRMLSegmentationDisplayNode1", name=f"{case} segmentation display",
                    Visibility2DFill="false", Visibility2DOutline="true")]
    heatmaps = [(name, result.files[DEFAULT_HEATMAP]) for name, result in report.classes.items()
                if DEFAULT_HEATMAP in result.files]
    composite = {"backgroundVolumeID": "vtkMRMLScalarVolumeNode1"}
    if heatmaps:
        name, path = heatmaps[0]
        nodes += _volume(2, f"{case} {name} {DEFAULT_HEATMAP}", path, "vtkMRMLScalarVolumeDisplayNode2")
        nodes.append(_node("VolumeDisplay", id="vtkMRMLScalarVolumeDisplayNode2", name=f"{case} heatmap display",
                           colorNodeID=INFERNO_COLOR_NODE_ID, autoWindowLevel=0, window=1, level=0.5, autoThreshold=0,
                           lowerThreshold=HEATMAP_DISPLAY_THRESHOLD, upperThreshold=1, applyThreshold=1, interpolate=1))
        composite.update(foregroundVolumeID="vtkMRMLScalarVolumeNode2", foregroundOpacity=HEATMAP_OPACITY)
    nodes.append(_node("SliceComposite", id="vtkMRMLSliceCompositeNodeRed", name="SliceComposite",
                       singletonTag="Red", **composite))
    body = "\n ".join(nodes)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<MRML version="Slicer5">\n {body}\n</MRML>\n'


def write_case_scene(out_dir: Path, case: str, report: PredictionReport, image_path: str | os.PathLike,
                     overwrite: bool = False, predicted=None) -> Path:
    """Write ``out_dir/<case>.mrml`` atomically (``predicted``: see :func:`case_scene`); return its path."""
    path = out_dir / f"{case}{SCENE_SUFFIX}"
    write_text_atomic(path, case_scene(case, report, image_path, out_dir, predicted), overwrite)
    return path
