"""The module's parameter node: its state, saved with the scene (Slicer's ``parameterNodeWrapper``).

Folders default to ``~/ConfidenceSeg`` (shown on their buttons) rather than ``pathlib.Path()``, which is
Slicer's default for a path and means the working directory of Slicer itself. The model is kept by the
name shown in the model selector (``modelName``) and, for "model folder...", by its folder.
"""

import pathlib
from typing import Annotated

from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper

from ConfidenceSegLib.contract import DEVICE_CHOICES, HEATMAP_DISPLAY_THRESHOLD, HEATMAP_OPACITY, METHODS
from ConfidenceSegLib.slicer.results import HEATMAP_MAPS

#: Where exports go and batch QC folders are looked for until the user chooses another folder.
DEFAULT_FOLDER = pathlib.Path.home() / "ConfidenceSeg"


@parameterNodeWrapper
class ConfidenceSegParameterNode:
    """Module state, saved with the scene."""

    inputVolume: vtkMRMLScalarVolumeNode
    annotation: vtkMRMLSegmentationNode
    className: str = "structure"
    exportDirectory: pathlib.Path = DEFAULT_FOLDER
    exportName: str = "annotations"
    modelName: str = ""
    modelPath: pathlib.Path
    method: Annotated[str, Choice(list(METHODS))] = "auto"
    samples: Annotated[int, WithinRange(0, 200)] = 0
    device: Annotated[str, Choice(list(DEVICE_CHOICES))] = "auto"
    heatmap: Annotated[str, Choice(list(HEATMAP_MAPS))] = HEATMAP_MAPS[0]
    heatmapOpacity: Annotated[float, WithinRange(0.0, 1.0)] = HEATMAP_OPACITY
    heatmapThreshold: Annotated[float, WithinRange(0.0, 0.95)] = HEATMAP_DISPLAY_THRESHOLD
    heatmapVolume: vtkMRMLScalarVolumeNode
    result: vtkMRMLSegmentationNode
    reviewFolder: pathlib.Path = DEFAULT_FOLDER
