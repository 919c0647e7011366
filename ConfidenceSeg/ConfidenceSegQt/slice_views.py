"""The quality badge in the slice views, beside the image, kept there while the user works.

Mechanism: a ``vtkTextActor`` of our own in each slice view's renderer (upper right, dark box),
re-applied on every ModifiedEvent of the view's slice node (scrolling, offset, orientation, fit)
and re-created when the layout changes. Slicer's corner annotations are not used: they belong to
the Data Probe (``DataProbeLib.SliceAnnotations`` rewrites them on slice events; the upper-right
corner also shows thick-slab information; Slicer issue 7184), so a badge written there vanishes
when the user scrolls. For a stack assessed frame by frame the text is the shown frame's badge
(``results.frame_at_slice`` / ``frame_badges``), else the whole input's. Closing the scene removes
the actors and observers.
"""

import slicer
import vtk

from ConfidenceSegLib.slicer.results import badge_text, frame_at_slice, frame_badges

POSITION = (0.99, 0.97)  # normalized viewport, right / top aligned
FONT_SIZE = 14


def _rgb(hex_color):
    return tuple(int(hex_color[i:i + 2], 16) / 255.0 for i in (1, 3, 5))


class SliceBadges:
    """The badge text actors of every slice view, following the frame each view shows."""

    def __init__(self):
        self._views = {}  # view name -> (view, actor, slice node, observer tag)
        self._report = None
        self._volume = None
        self._scene_tag = None
        self._layout_connected = False

    def show(self, report, volume_node):
        """Show ``report``'s badges (a ``predict`` report) over ``volume_node`` in every slice view."""
        self.clear()
        self._report, self._volume = report, volume_node
        layout_manager = slicer.app.layoutManager()
        if layout_manager is None:
            return
        if not self._layout_connected:
            layout_manager.connect("layoutChanged(int)", self._on_layout_changed)
            self._layout_connected = True
        for name in layout_manager.sliceViewNames():
            self._add_view(name, layout_manager.sliceWidget(name))
        self._scene_tag = slicer.mrmlScene.AddObserver(slicer.mrmlScene.EndCloseEvent,
                                                       lambda caller, event: self.clear())

    def _add_view(self, name, widget):
        view = widget.sliceView()
        renderer = view.renderWindow().GetRenderers().GetFirstRenderer()
        actor = vtk.vtkTextActor()
        text = actor.GetTextProperty()
        text.SetFontSize(FONT_SIZE)
        text.SetJustificationToRight()
        text.SetVerticalJustificationToTop()
        text.SetBackgroundColor(0.07, 0.07, 0.09)
        text.SetBackgroundOpacity(0.75)
        text.BoldOn()
        actor.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()
        actor.SetPosition(*POSITION)
        renderer.AddActor2D(actor)
        slice_node = widget.mrmlSliceNode()
        tag = slice_node.AddObserver(vtk.vtkCommand.ModifiedEvent, lambda caller, event, n=name: self._update(n))
        self._views[name] = (view, renderer, actor, slice_node, tag)
        self._update(name)

    def _update(self, name):
        view, _, actor, slice_node, _ = self._views[name]
        frame = frame_at_slice(self._volume, slice_node) if self._report.frames else None
        badges = frame_badges(self._report, frame)
        actor.SetInput(badge_text(badges))
        actor.GetTextProperty().SetColor(*_rgb(badges[0].color) if badges else (1.0, 1.0, 1.0))
        view.scheduleRender()

    def _on_layout_changed(self, *args):
        if self._report is not None:
            self.show(self._report, self._volume)

    def clear(self):
        """Remove every actor and observer (kept: the layout connection, harmless without a report)."""
        for view, renderer, actor, slice_node, tag in self._views.values():
            renderer.RemoveActor2D(actor)
            slice_node.RemoveObserver(tag)
            view.scheduleRender()
        self._views = {}
        if self._scene_tag is not None:
            slicer.mrmlScene.RemoveObserver(self._scene_tag)
            self._scene_tag = None
        self._report = None
