"""The review station's slice view: one case at a time in a Slicer scene, drawn by Slicer's own code.

A trame-slicer ``SliceView`` (Slicer's slice logic and displayable managers from the
``slicer-core`` wheel) shows the case's image, its segmentation as outlines (a filled 2D segment
hides the image under it) and one uncertainty map as the foreground layer, with the Inferno
colours, 0..1 window and transparent low values that the Slicer module uses
(:func:`ConfidenceSegLib.slicer.results.load_prediction`). A stack is shown frame by frame.
Inputs that Slicer's volume reader does not take as ``predict`` read them (PNG, JPEG, TIFF, BMP: pixels
of 1 unit; DICOM series folders) are read with SimpleITK, as ``predict`` did, and put in the scene.
A case that cannot be shown leaves the view empty (never the previous case's image).
"""

from __future__ import annotations

import os
from pathlib import Path

import vtk

from ..contract import DEFAULT_HEATMAP, NO_SPACING_SUFFIXES
from ..io.images import display_image, read_image, with_spacing
from ..outputs.report import read_report
from ..slicer.mrml import add_volume_from_image
from ..slicer.results import LoadedPrediction, frame_at_slice, frame_badges, heatmap_node, inferno_color_node
from ..slicer.results import load_prediction as load_prediction_into_scene

#: Node classes a failed load may leave behind (removed again).
CASE_NODE_CLASSES = ("vtkMRMLVolumeNode", "vtkMRMLSegmentationNode", "vtkMRMLStorageNode", "vtkMRMLDisplayNode")


def input_path(report) -> Path:
    """The report's input image: its path, or a relative one beside the report (as ``load_prediction``)."""
    path = Path(report.input)
    return report.folder / path if not path.is_absolute() and (report.folder / path).is_file() else path


def needs_simpleitk(path: Path) -> bool:
    """Inputs read with SimpleITK rather than Slicer's volume reader: 2D formats without spacing, DICOM."""
    return path.is_dir() or path.name.lower().endswith((*NO_SPACING_SUFFIXES, ".dcm"))


def add_input_volume(scene, path: Path, name: str, report=None):
    """``path`` read as ``predict`` read it (grey values, colour as luminance; the pixel size ``--spacing`` gave
    it, recorded in ``report``) into a new volume node."""
    image = read_image(path)
    given = (report.spacing or {}) if report is not None else {}
    if given.get("source") == "--spacing":
        image = with_spacing(image, tuple(given["mm"]), path)
    node = add_volume_from_image(scene, display_image(image), name)
    node.CreateDefaultDisplayNodes()
    return node


class CaseView:
    """The case shown in ``slice_view`` (a trame-slicer ``SliceView``) of ``slicer_app``'s scene."""

    def __init__(self, slicer_app, slice_view):
        self.scene = slicer_app.scene
        self.color_logic = slicer_app.color_logic
        self.view = slice_view
        self.loaded: LoadedPrediction | None = None
        self.class_name: str | None = None
        self.kind = DEFAULT_HEATMAP
        # The browser sizes the view after it connects: fit the image to every new size.
        slice_view.render_window().AddObserver(vtk.vtkCommand.WindowResizeEvent, lambda *_: self.fit())

    # --- the case ------------------------------------------------------------------------------

    def show_case(self, report_path: str | os.PathLike, class_name: str | None = None) -> LoadedPrediction:
        """Replace the shown case with the ``predict`` result ``report_path``: its first frame, with the
        heatmap of ``class_name`` (default: the first class) in the map kind in use. When it cannot be
        loaded, the view is left empty and the error raised."""
        before = {self.scene.GetNthNode(i).GetID() for i in range(self.scene.GetNumberOfNodes())}
        try:
            report = read_report(report_path)
            path = input_path(report)
            volume = add_input_volume(self.scene, path, report.stem, report) if needs_simpleitk(path) else None
            loaded = load_prediction_into_scene(self.scene, report_path, volume_node=volume, heatmap=self.kind,
                                                color_logic=self.color_logic)
        except Exception:
            self._remove_new_nodes(before)
            self.clear()
            raise
        self._remove_case()
        self.loaded = loaded
        display = loaded.segmentation_node.GetDisplayNode()
        display.SetOpacity2DFill(0.0)
        display.SetOpacity2DOutline(1.0)
        display.SetSliceIntersectionThickness(2)
        self.view.set_background_volume_id(loaded.volume_node.GetID())
        self.show_heatmap(class_name or next(iter(loaded.report.classes), None), self.kind)
        self.fit()
        self.show_frame(0)
        return loaded

    def clear(self) -> None:
        """Show no case (an empty view)."""
        self._remove_case()
        self.view.set_background_volume_id(None)
        self.view.set_foreground_volume_id(None)
        self.view.schedule_render()

    def _remove_new_nodes(self, before: set[str]) -> None:
        new = [self.scene.GetNthNode(i) for i in range(self.scene.GetNumberOfNodes())]
        for node in new:
            if node.GetID() not in before and any(node.IsA(name) for name in CASE_NODE_CLASSES) \
                    and node.GetScene() is self.scene:
                self.scene.RemoveNode(node)

    def _remove_case(self) -> None:
        if self.loaded is None:
            return
        nodes = [self.loaded.volume_node, self.loaded.segmentation_node, *self.loaded.map_nodes.values()]
        for node in nodes:
            related = [node.GetNthDisplayNode(i) for i in range(node.GetNumberOfDisplayNodes())]
            for other in [*related, node.GetStorageNode(), node]:
                if other is not None and other.GetScene() is self.scene:
                    self.scene.RemoveNode(other)
        self.loaded = None

    def fit(self) -> None:
        """Fit the image to the view, staying on the frame shown (fitting alone centres the slice)."""
        offset = self.view.get_slice_value()
        self.view.fit_view_to_content()
        self.view.set_slice_value(offset)
        self.view.schedule_render()

    # --- heatmap -------------------------------------------------------------------------------

    def classes(self) -> list[str]:
        return list(self.loaded.report.classes) if self.loaded else []

    def map_kinds(self, class_name: str | None) -> list[str]:
        """The map kinds written for ``class_name`` (the default heatmap first)."""
        if self.loaded is None or class_name is None:
            return []
        result = self.loaded.report.classes.get(class_name)
        files = result.files if result is not None else {}
        return sorted(files, key=lambda kind: (kind != DEFAULT_HEATMAP, kind))

    def show_heatmap(self, class_name: str | None, kind: str) -> bool:
        """Show the (class, kind) map as the foreground layer; False (no foreground) when there is none."""
        self.class_name, self.kind = class_name, kind or DEFAULT_HEATMAP
        node = None
        if self.loaded is not None and class_name is not None:
            node = heatmap_node(self.scene, self.loaded, class_name, self.kind,
                                inferno_color_node(self.scene, self.color_logic))
        self.view.set_foreground_volume_id(node.GetID() if node is not None else None)
        self.view.schedule_render()
        return node is not None

    def set_opacity(self, opacity: float) -> None:
        self.view.set_foreground_opacity(min(max(float(opacity), 0.0), 1.0))
        self.view.schedule_render()

    # --- frames --------------------------------------------------------------------------------

    def frame_count(self) -> int:
        """Frames (k slices) of the shown image: 1 for a 2D image."""
        image = self.loaded.volume_node.GetImageData() if self.loaded else None
        return image.GetDimensions()[2] if image is not None else 0

    def show_frame(self, frame: int) -> int | None:
        """Move the slice to ``frame`` (clamped to the image); the frame now shown."""
        if self.loaded is None:
            return None
        frame = min(max(int(frame), 0), max(self.frame_count() - 1, 0))
        ijk_to_ras = vtk.vtkMatrix4x4()
        self.loaded.volume_node.GetIJKToRASMatrix(ijk_to_ras)
        centre = ijk_to_ras.MultiplyPoint([0.0, 0.0, float(frame), 1.0])
        slice_to_ras = self.view.get_view_node().GetSliceToRAS()
        normal = [slice_to_ras.GetElement(row, 2) for row in range(3)]
        self.view.set_slice_value(sum(n * c for n, c in zip(normal, centre[:3], strict=True)))
        self.view.schedule_render()
        return self.current_frame()

    def current_frame(self) -> int | None:
        if self.loaded is None:
            return None
        return frame_at_slice(self.loaded.volume_node, self.view.get_view_node())

    def badge_lines(self) -> list[dict]:
        """The badges of the frame shown (the whole input's for a single image): text and colour."""
        if self.loaded is None:
            return []
        frame = self.current_frame() if self.frame_count() > 1 else None
        return [{"text": badge.text(), "color": badge.color} for badge in frame_badges(self.loaded.report, frame)]
