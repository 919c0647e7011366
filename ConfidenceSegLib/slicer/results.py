"""Prediction results in a Slicer scene: heatmaps, badges and review status.

The logic behind the Segment and Review sections of the ConfidenceSeg module. Functions take the
scene or nodes they work on (no global scene, no Qt). Results are the files written by
``confidenceseg predict`` (``S.json``, ``S.seg.nrrd``, ``S_<class>_<map>.nrrd``); the Review
section reads ``review.csv`` with :func:`~ConfidenceSegLib.outputs.review_table.read_review_table`.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..contract import (
    BADGE_TAG,
    CLASS_TAG,
    DEFAULT_HEATMAP,
    DICE_LOWER_BOUND_TAG,
    HEATMAP_DISPLAY_THRESHOLD,
    INFERNO_COLOR_NODE_ID,
    MAP_KINDS,
    PASS,
    PREDICTED_DICE_TAG,
    REASON_TAG,
    REVIEW,
    ConfidenceSegError,
    badge_color,
    badge_label,
)
from ..io.safe_files import write_text_atomic
from ..outputs.report import PredictionReport, read_report
from ..outputs.review_table import optional_float, review_sort_key
from ..quality.reasons import frame_counts, headline_measurement
from ..quality.verdict import ClassResult, FrameResult
from .mrml import segment_tags
from .storage import load_segmentation, load_volume

INFERNO_NAME = "Inferno"
#: Heatmap choices in the module, the default first.
HEATMAP_MAPS = (DEFAULT_HEATMAP, *(kind for kind in MAP_KINDS if kind != DEFAULT_HEATMAP))


def _slicer():
    import slicer  # Slicer's own module inside Slicer, the slicer-core wheel outside

    return slicer


# --- heatmap -----------------------------------------------------------------------------------

def inferno_color_node(scene, color_logic=None):
    """Slicer's Inferno colour table node.

    3D Slicer loads it at startup. Where the scene lacks it (the ``slicer-core`` wheel ships no
    colour files), the same table (matplotlib's inferno, as in Slicer's ``Inferno.txt``) is written
    as a Slicer colour file and loaded with ``color_logic``.
    """
    node = scene.GetNodeByID(INFERNO_COLOR_NODE_ID) or scene.GetFirstNode(INFERNO_NAME, "vtkMRMLColorTableNode")
    if node is not None:
        return node
    if color_logic is None:
        raise ConfidenceSegError("the Inferno colour table is not in the scene; pass the colour logic to load it")
    node = color_logic.LoadColorFile(str(_inferno_color_file()), INFERNO_NAME)
    if node is None:
        raise ConfidenceSegError("the colour logic could not load the Inferno colour table")
    node.SetName(INFERNO_NAME)
    return node


def _inferno_color_file() -> Path:
    from matplotlib import colormaps

    rgba = (colormaps["inferno"].resampled(256)(range(256)) * 255).round().astype(int)
    lines = [f"{index} inferno{index:03d} {r} {g} {b} {a}" for index, (r, g, b, a) in enumerate(rgba)]
    path = Path(tempfile.gettempdir()) / "ConfidenceSeg-colors" / "Inferno.txt"
    path.parent.mkdir(exist_ok=True)
    write_text_atomic(path, "# Inferno (matplotlib), Slicer colour table format\n" + "\n".join(lines) + "\n",
                      overwrite=True)
    return path


def setup_heatmap_display(volume_node, color_node, lower_threshold: float = HEATMAP_DISPLAY_THRESHOLD):
    """Show an uncertainty map (values in [0, 1]) as a heatmap: Inferno colours, window/level fixed
    to 0..1, values below ``lower_threshold`` transparent (so certain areas stay clear), interpolated
    linearly between pixels (a zoomed view shows no pixel staircase)."""
    if not 0.0 <= lower_threshold < 1.0:
        raise ConfidenceSegError(f"heatmap threshold must lie in [0, 1), got {lower_threshold}")
    display = volume_node.GetDisplayNode()
    if display is None:
        volume_node.CreateDefaultDisplayNodes()
        display = volume_node.GetDisplayNode()
    display.SetAndObserveColorNodeID(color_node.GetID())
    display.AutoWindowLevelOff()
    display.SetWindowLevelMinMax(0.0, 1.0)
    display.AutoThresholdOff()
    display.SetThreshold(lower_threshold, 1.0)
    display.ApplyThresholdOn()
    display.SetInterpolate(True)
    return display


# --- badges ------------------------------------------------------------------------------------

@dataclass
class Badge:
    """The quality badge of one predicted class."""

    class_name: str
    badge: str | None
    predicted_dice: float | None
    dice_lower_bound: float | None
    reason: str = ""
    #: Headline measurement with its interval (``circumference 172.4 mm (169.8-175.1)``), "" if none.
    measurement: str = ""
    #: For a stack assessed frame by frame: ``frames 14 PASS, 2 REVIEW, 0 ABSENT`` ("" otherwise).
    frames: str = ""

    @classmethod
    def of(cls, name: str, result: ClassResult | FrameResult, frames: str = "") -> Badge:
        """The badge of one class of a report (whole input or one frame)."""
        verdict = result.verdict
        return cls(name, verdict.badge, verdict.predicted_dice, verdict.dice_lower_bound, verdict.first_reason,
                   headline_measurement(result), frames)

    @property
    def color(self) -> str:
        return badge_color(self.badge)

    def text(self) -> str:
        """``fetal_head: PASS (Dice 0.93, >= 0.88)``; otherwise with the first reason in words
        (``fetal_head: REVIEW (Dice 0.71, >= 0.52): lower bound 0.52 below ...``)."""
        if self.badge is None:
            return f"{self.class_name}: {self.reason or 'no quality model'}"
        numbers = "" if self.predicted_dice is None else f" (Dice {self.predicted_dice:.2f}" + (
            "" if self.dice_lower_bound is None else f", >= {self.dice_lower_bound:.2f}") + ")"
        why = "" if self.badge == PASS or not self.reason else f": {self.reason}"
        extra = "".join(f"; {part}" for part in (self.measurement, self.frames) if part)
        return f"{self.class_name}: {self.badge}{numbers}{why}{extra}"


def badge_text(badges: list[Badge]) -> str:
    """Text for a slice view corner annotation: one line per class."""
    return "\n".join(badge.text() for badge in badges)


def segment_badges(segmentation_node) -> list[Badge]:
    """Badges read from the segments' tags (class, badge, predicted Dice, lower bound, first reason)."""
    segmentation = segmentation_node.GetSegmentation()
    badges = []
    for index in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetNthSegment(index)
        tags = segment_tags(segment)
        badges.append(Badge(tags.get(CLASS_TAG, segment.GetName()), tags.get(BADGE_TAG) or None,
                            optional_float(tags.get(PREDICTED_DICE_TAG)),
                            optional_float(tags.get(DICE_LOWER_BOUND_TAG)), tags.get(REASON_TAG, "")))
    return badges


def flag_review_segments(segmentation_node) -> list[str]:
    """Set the Segmentation status "flagged" on every segment whose badge is REVIEW; return their IDs."""
    logic = _slicer().vtkSlicerSegmentationsModuleLogic
    segmentation = segmentation_node.GetSegmentation()
    flagged = []
    for index in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetNthSegment(index)
        if segment_tags(segment, (BADGE_TAG,)).get(BADGE_TAG) == REVIEW:
            logic.SetSegmentStatus(segment, logic.Flagged)
            flagged.append(segmentation.GetNthSegmentID(index))
    return flagged


# --- predict outputs ---------------------------------------------------------------------------

@dataclass
class LoadedPrediction:
    """Nodes created from one ``predict`` result."""

    report: PredictionReport
    volume_node: object
    segmentation_node: object
    heatmap_nodes: dict[str, object] = field(default_factory=dict)  # class name -> map volume node
    badges: list[Badge] = field(default_factory=list)
    folder: Path | None = None  # the report's folder (map files are relative to it)
    #: Every map loaded so far, by (class, map kind): :func:`heatmap_node` adds to it.
    map_nodes: dict[tuple[str, str], object] = field(default_factory=dict)
    #: The image was loaded with the result (not a node the user had): it goes with the result.
    owns_volume: bool = False
    #: The files lie in a temporary folder: the nodes are marked to be saved with the scene.
    temporary: bool = False

    def nodes(self) -> list:
        """Every node made for this result (the image only when it was loaded with it)."""
        return [*([self.volume_node] if self.owns_volume else []), self.segmentation_node, *self.map_nodes.values()]


def _loaded(node, temporary: bool):
    """A node read from a file; one read from a temporary folder is marked modified so that Slicer's Save
    writes it with the scene (the folder goes when the result is no longer shown)."""
    if temporary:
        node.StorableModified()
    return node


def remove_prediction(scene, loaded: LoadedPrediction) -> None:
    """Remove a shown result's nodes from ``scene`` (before another case is shown in its place)."""
    for node in loaded.nodes():
        if node is not None and scene.IsNodePresent(node):
            scene.RemoveNode(node)


def heatmap_node(scene, loaded: LoadedPrediction, class_name: str, kind: str, color_node,
                 lower_threshold: float = HEATMAP_DISPLAY_THRESHOLD):
    """The (class, map kind) heatmap of a loaded prediction, loaded from its file the first time (then
    kept); None when the prediction has no such map."""
    if (class_name, kind) not in loaded.map_nodes:
        result = loaded.report.classes.get(class_name)
        map_file = result.files.get(kind) if result is not None else None
        if not map_file:
            return None
        node = load_volume(scene, loaded.folder / map_file, f"{loaded.report.stem} {class_name} {kind}")
        setup_heatmap_display(_loaded(node, loaded.temporary), color_node, lower_threshold)
        loaded.map_nodes[(class_name, kind)] = node
    return loaded.map_nodes[(class_name, kind)]


def load_prediction(scene, json_path: str | os.PathLike, volume_node=None, heatmap: str = "entropy",
                    color_logic=None, lower_threshold: float = HEATMAP_DISPLAY_THRESHOLD,
                    temporary: bool = False) -> LoadedPrediction:
    """Load a ``predict`` result: segmentation (REVIEW segments flagged), one heatmap per class, badges.

    Without ``volume_node`` the report's input image is loaded too. ``temporary``: the files lie in a
    folder that goes when the result is no longer shown (the nodes are marked to be saved with the scene).
    """
    if heatmap not in HEATMAP_MAPS:
        raise ConfidenceSegError(f"unknown heatmap {heatmap!r}; choose one of {', '.join(HEATMAP_MAPS)}")
    report = read_report(json_path)
    folder, stem = report.folder, report.stem
    owns_volume = volume_node is None
    if owns_volume:
        image_path = Path(report.input)
        if not image_path.is_absolute() and (folder / image_path).is_file():
            image_path = folder / image_path  # a relative input that the JSON's folder resolves
        volume_node = load_volume(scene, image_path, stem)
    segmentation_node = _loaded(load_segmentation(scene, folder / report.segmentation, f"{stem} segmentation"),
                                temporary)
    segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(volume_node)
    flag_review_segments(segmentation_node)
    badges = [Badge.of(name, result, frame_counts(result.frames_summary)) for name, result in report.classes.items()]
    loaded = LoadedPrediction(report, volume_node, segmentation_node, badges=badges, folder=folder,
                              owns_volume=owns_volume, temporary=temporary)
    color_node = inferno_color_node(scene, color_logic)
    for class_name in report.classes:
        node = heatmap_node(scene, loaded, class_name, heatmap, color_node, lower_threshold)
        if node is not None:
            loaded.heatmap_nodes[class_name] = node
    return loaded


# --- per-frame badges in the slice views -------------------------------------------------------

def frame_badges(report: PredictionReport, frame: int | None) -> list[Badge]:
    """The badges to show at ``frame`` of a stack run slice by slice, else the whole input's (a single
    image, a 3D model, or ``frame`` None / out of range)."""
    results = report.frame_results(frame)
    prefix = "" if all(isinstance(r, ClassResult) for r in results.values()) else f"frame {frame}: "
    return [Badge.of(f"{prefix}{name}", result) for name, result in results.items()]


def structure_badges(report: PredictionReport) -> list[Badge]:
    """Every structure's badge of the whole input in the review table's order (REVIEW, ABSENT, PASS,
    unrated; within each, lowest lower bound and predicted Dice first); for label maps of many structures."""
    return sorted(frame_badges(report, None), key=lambda badge: review_sort_key(
        badge.badge, badge.dice_lower_bound, badge.predicted_dice, "", badge.class_name))


def badges_summary(badges: list[Badge]) -> str:
    """``12 structures: 7 REVIEW, 3 PASS, 2 ABSENT`` (counts of each badge word, most frequent first)."""
    words = [badge_label(badge.badge) for badge in badges]
    counts = sorted({word: words.count(word) for word in words}.items(), key=lambda item: (-item[1], item[0]))
    return f"{len(badges)} structures: " + ", ".join(f"{count} {word}" for word, count in counts)


def frame_at_slice(volume_node, slice_node) -> int | None:
    """The frame (k index) of ``volume_node`` that ``slice_node`` shows, None when the slice is not an
    axial cut of the volume (another orientation, or outside its frames)."""
    import vtk

    slice_to_ras = slice_node.GetSliceToRAS()
    ras_to_ijk = vtk.vtkMatrix4x4()
    volume_node.GetRASToIJKMatrix(ras_to_ijk)
    origin = [slice_to_ras.GetElement(row, 3) for row in range(3)] + [1.0]
    normal = [slice_to_ras.GetElement(row, 2) for row in range(3)] + [0.0]
    ijk, along = ras_to_ijk.MultiplyPoint(origin), ras_to_ijk.MultiplyPoint(normal)
    if abs(along[2]) < 0.99 * max(abs(v) for v in along[:3]):  # the slice is not across k
        return None
    frame = round(ijk[2])
    dimensions = volume_node.GetImageData().GetDimensions() if volume_node.GetImageData() else (0, 0, 0)
    return frame if 0 <= frame < dimensions[2] else None
