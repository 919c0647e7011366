"""The badge text in the slice views, beside the image.

Written into each slice view's upper-right corner annotation. Slicer's Data Probe also writes the
corner annotations (on slice events), so the text can be overwritten while the user scrolls; the
panel keeps the badge in any case. See the Slicer-module issue for the planned text actor.
"""

import slicer
import vtk


def show_badge(text):
    """Put ``text`` (one line per class) in every slice view's upper-right corner."""
    layout_manager = slicer.app.layoutManager()
    if layout_manager is None:
        return
    for view_name in layout_manager.sliceViewNames():
        view = layout_manager.sliceWidget(view_name).sliceView()
        view.cornerAnnotation().SetText(vtk.vtkCornerAnnotation.UpperRight, text)
        view.forceRender()
