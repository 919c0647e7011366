"""The review station's page: the cohort list beside a Slicer slice view, served by trame.

Left: the cases of ``review.csv`` in review order (REVIEW first) with badge, predicted Dice, lower
bound, first reason, measurement and the latest decision. Right: the selected case in a slice view
rendered by trame-slicer (image, segmentation outline, heatmap), the class and map selectors, the
heatmap opacity, a frame slider for stacks with that frame's badge, and the decision buttons.

Keys: ``j`` / ``k`` next / previous flagged (REVIEW) case, down / up next / previous case, left /
right previous / next frame, ``a`` accept, ``c`` needs correction, ``r`` reject (each with the
note typed, then on to the next case), ``n`` write a note, ``h`` hide / show the heatmap. A decision
carries the case and frame the page shows; it is recorded only when that is the case the view has
loaded and the frame it shows (:func:`~ConfidenceSegLib.station.cohort.decision_target`). A case that
cannot be shown says why in the view and takes no decision. All browser tabs of one station share one
view (trame keeps one state per server); each reviewer runs a station of their own, and decisions from
every station and from the Slicer module go to the same ``decisions.csv`` safely.
"""

from __future__ import annotations

import contextlib
import os

from trame.app import get_server
from trame.ui.vuetify3 import SinglePageWithDrawerLayout
from trame.widgets import html
from trame.widgets import trame as trame_widgets
from trame.widgets import vuetify3 as v3
from trame_slicer.core import LayoutManager, SlicerApp
from trame_slicer.rca_view import register_rca_factories
from trame_slicer.views import Layout, LayoutDirection, ViewLayoutDefinition

from ..contract import HEATMAP_OPACITY, ConfidenceSegError, Key
from .access import Access, secure_server, station_token
from .cohort import Cohort, decision_target
from .viewer import CaseView

LAYOUT_NAME = "review"
#: Key bindings: (keys, event name); the events' actions are in ``ReviewStation._keyboard``.
KEYS = ((["j"], "NextFlagged"), (["k"], "PreviousFlagged"), (["down"], "NextCase"), (["up"], "PreviousCase"),
        (["right"], "NextFrame"), (["left"], "PreviousFrame"), (["a"], "Accept"), (["c"], "NeedsCorrection"),
        (["r"], "Reject"), (["n"], "Note"), (["h"], "ToggleHeatmap"))


@contextlib.contextmanager
def vtk_warnings_off():
    """VTK's warnings not printed within (restored after): for third-party calls whose warnings no
    reviewer can act on."""
    import vtk

    shown = vtk.vtkObject.GetGlobalWarningDisplay()
    vtk.vtkObject.GlobalWarningDisplayOff()
    try:
        yield
    finally:
        vtk.vtkObject.SetGlobalWarningDisplay(shown)


class ReviewStation:
    """One review folder served as a page; ``server.start()`` serves it."""

    def __init__(self, folder: str | os.PathLike, access: Access | None = None, server=None):
        self.cohort = Cohort.open(folder)
        self.access = access or Access.for_host("127.0.0.1", "127.0.0.1", station_token(None))
        self.shown_key: str | None = None  # the case the view has loaded (None: none, or it failed)
        self.view_error = ""
        self.server = server or get_server(client_type="vue3")
        self.server.cli.set_defaults(authKey=self.access.secret)  # wslink's secret: this run's, not its default
        self.state, self.ctrl = self.server.state, self.server.controller
        with vtk_warnings_off():  # trame-slicer observes a resize event that VTK 9.5 deprecates: 2 lines at start
            self.slicer_app = SlicerApp()
            register_rca_factories(self.slicer_app.view_manager, self.server, slice_view_ui_f=lambda *_: None)
            self.layout_manager = LayoutManager(self.slicer_app.scene, self.slicer_app.view_manager, self.server)
            self.layout_manager.register_layout_dict(
                {LAYOUT_NAME: Layout(LayoutDirection.Vertical, [ViewLayoutDefinition.axial_view()])})
            self.layout_manager.set_layout(LAYOUT_NAME)
        self.case_view = CaseView(self.slicer_app, self.slicer_app.view_manager.get_slice_views()[0])
        self.ctrl.on_server_bind.add(lambda wslink_server: secure_server(wslink_server, self.cohort.folder,
                                                                         self.access))
        self.ctrl.on_client_connected.add(self.case_view.fit)
        self._initial_state()
        self._watch_state()
        self._build_page()
        self._select(self.cohort.step(None, 1, flagged_only=False))

    # --- state ---------------------------------------------------------------------------------

    def _initial_state(self) -> None:
        self.state.update({
            "items": self.cohort.items(), "selected": None, "shown": None, "shown_frame": None, "view_error": "",
            "classes": [], "heatmap_class": None, "maps": [],
            "heatmap_map": None, "opacity": HEATMAP_OPACITY, "heatmap_visible": True, "frame": 0, "frame_count": 1,
            "badge_lines": [], "note": "", "note_open": False, "message": "", "message_color": "", "files": {},
            "trame__mousetrap": [], "trame__title": f"ConfidenceSeg review: {self.cohort.folder.name}"})

    def _watch_state(self) -> None:
        self.state.change("selected")(lambda selected, **_: self._select(selected))
        self.state.change("heatmap_class", "heatmap_map")(lambda **_: self._show_heatmap())
        self.state.change("opacity", "heatmap_visible")(lambda **_: self._set_opacity())
        self.state.change("frame")(lambda frame, **_: self._show_frame(frame))

    def _select(self, key: str | None) -> None:
        """Show the case ``key`` (a ``case/class`` row key)."""
        if key is None:
            return
        self.shown_key = None  # until the case is loaded: no decision goes to the case shown before
        try:
            row = self.cohort.row(key)
            # a note typed for the case shown before never rides along with a decision on this one
            self.state.update({"shown": None, "note": "", "note_open": False,
                               "files": {name: f"files/{path}" for name, path in row.paths.items()}})
            self.case_view.show_case(row.report_path, row.class_name)
        except Exception as error:  # any failure to show a case is shown in the view, not raised
            self.case_view.clear()
            self.view_error = f"cannot show {key}: {error}"
            self.state.update({"selected": key, "shown": None, "shown_frame": None, "view_error": self.view_error,
                               "classes": [], "heatmap_class": None, "maps": [], "heatmap_map": None,
                               "frame": 0, "frame_count": 1, "badge_lines": [], "items": self.cohort.items()})
            self._say(self.view_error, "error")
            return
        view = self.case_view
        kinds = view.map_kinds(row.class_name)
        self.shown_key, self.view_error = key, ""
        self.state.update({"selected": key, "classes": view.classes(), "heatmap_class": row.class_name,
                           "maps": kinds, "heatmap_map": kinds[0] if kinds else None, "frame": 0,
                           "frame_count": view.frame_count(), "items": self.cohort.items(), "view_error": "",
                           "shown": key, "shown_frame": view.current_frame()})
        if self.state.message_color == "error" and self.state.message.startswith("cannot show"):
            self._say("")
        # show_case showed frame 0 and the row's class in the map kind in use; the state watchers redo the heatmap or
        # the frame only where the values above changed.
        self._set_opacity()
        self.state.badge_lines = view.badge_lines()

    def _show_heatmap(self) -> None:
        kinds = self.case_view.map_kinds(self.state.heatmap_class)
        if self.state.heatmap_map not in kinds:
            self.state.maps, self.state.heatmap_map = kinds, kinds[0] if kinds else None
        self.case_view.show_heatmap(self.state.heatmap_class, self.state.heatmap_map)
        self._set_opacity()

    def _set_opacity(self) -> None:
        self.case_view.set_opacity(self.state.opacity if self.state.heatmap_visible else 0.0)

    def _show_frame(self, frame) -> None:
        shown = self.case_view.show_frame(int(frame or 0))
        if shown is not None and shown != self.state.frame:
            self.state.frame = shown
        self.state.shown_frame = self.case_view.current_frame() if self.shown_key else None
        self.state.badge_lines = self.case_view.badge_lines()

    def _say(self, text: str, color: str = "") -> None:
        self.state.message, self.state.message_color = text, color

    # --- actions -------------------------------------------------------------------------------

    def step(self, offset: int, flagged_only: bool) -> None:
        self.state.selected = self.cohort.step(self.state.selected, offset, flagged_only)

    def step_frame(self, offset: int) -> None:
        self.state.frame = min(max(int(self.state.frame) + offset, 0), self.state.frame_count - 1)

    def decide(self, decision: str, selected: str | None = None, shown: str | None = None, frame=None,
               note: str | None = None) -> None:
        """Record ``decision`` with ``note`` on the case on the reviewer's screen (the browser sends the row
        selected there, the case and frame its view shows, and the note, with the key press), when the view
        has that case loaded at that frame; then show the next case. Otherwise record nothing and say why."""
        try:
            view_frame = self.case_view.current_frame() if self.shown_key else None
            key = decision_target(selected, shown, frame, self.shown_key, view_frame, self.view_error)
            self.cohort.decide(key, decision, self.state.note if note is None else note)
        except ConfidenceSegError as error:
            self._say(str(error), "error")
            return
        self._say(f"{decision.replace('_', ' ')}: {key} (saved to decisions.csv)", "success")
        self.state.note, self.state.note_open, self.state.items = "", False, self.cohort.items()
        self.step(1, flagged_only=False)

    # --- page ----------------------------------------------------------------------------------

    def _build_page(self) -> None:
        with SinglePageWithDrawerLayout(self.server, full_height=True) as layout:
            layout.title.set_text(f"ConfidenceSeg review: {self.cohort.folder.name}")
            self._keyboard()
            with layout.toolbar:
                v3.VSpacer()
                html.Div("{{ message }}", classes=("`text-${message_color} me-4`",), id="message")
            with layout.drawer as drawer:
                drawer.width = 420
                self._case_list()
            with layout.content, html.Div(classes="pa-2 d-flex flex-column",
                                          style="height: calc(100vh - 90px); width: 100%;"):
                self._controls()
                html.Div("{{ shown || (view_error ? selected + ' (cannot be shown)' : '') }}", id="shown-case",
                         classes="text-subtitle-2 flex-grow-0", style="min-height: 1.5em;")
                with html.Div(id="slice-view",
                              style="flex: 1 1 auto; min-height: 360px; width: 100%; position: relative;"):
                    self.layout_manager.initialize_layout_grid(layout)
                    html.Div("{{ view_error }}", v_if="view_error", id="view-error", classes="text-error text-h6 pa-6",
                             style="position: absolute; inset: 0; z-index: 5; display: flex; align-items: center; "
                                   "justify-content: center; text-align: center; background: #121212;")
                self._decision_bar()
            self._note_dialog()
        self.layout = layout

    def _decision_call(self, decision: str) -> str:
        """The page's call of :meth:`decide`: with the case and note on screen, then the note cleared there
        (so that a note typed for one case never rides along with the next decision)."""
        return (f"trigger('{self.server.trigger_name(self.decide)}', ['{decision}', selected, shown, shown_frame, "
                f"note]); note = ''")

    def _keyboard(self) -> None:
        actions = {"NextFlagged": (self.step, "[1, true]"), "PreviousFlagged": (self.step, "[-1, true]"),
                   "NextCase": (self.step, "[1, false]"), "PreviousCase": (self.step, "[-1, false]"),
                   "NextFrame": (self.step_frame, "[1]"), "PreviousFrame": (self.step_frame, "[-1]"),
                   "Accept": self._decision_call("accept"), "NeedsCorrection": self._decision_call("needs_correction"),
                   "Reject": self._decision_call("reject"), "Note": "note_open = true",
                   "ToggleHeatmap": "heatmap_visible = !heatmap_visible"}
        trap = trame_widgets.MouseTrap(**actions)
        for keys, event in KEYS:
            trap.bind(keys, event, stop_propagation=True)

    def _case_list(self) -> None:
        with v3.VList(density="compact", id="case-list"), v3.VListItem(
                v_for="item in items", key="item.key", classes="case-row", active=("item.key === selected",),
                click="selected = item.key", lines="three"):
            with html.Div(classes="d-flex align-center"):
                v3.VChip("{{ item.badge }}", color=("item.color",), size="small", variant="flat",
                         classes="me-2 case-badge")
                html.Span("{{ item.key }}", classes="font-weight-medium case-key")
                v3.VSpacer()
                html.Span("Dice {{ item.dice || '-' }}, bound {{ item.bound || '-' }}", classes="text-caption")
            html.Div("{{ item.reason }}", classes="text-caption text-medium-emphasis")
            html.Div("{{ [item.measurement, item.frames].filter(Boolean).join('; ') }}", classes="text-caption")
            html.Div("decision: {{ item.decision.replace('_', ' ') }}{{ item.note ? ' (' + item.note + ')' : '' }}",
                     v_if="item.decision", classes="text-caption font-weight-bold case-decision")

    def _controls(self) -> None:
        with v3.VRow(dense=True, classes="flex-grow-0", style="width: 100%;"):
            with v3.VCol(cols=3):
                v3.VSelect(label="class", v_model=("heatmap_class",), items=("classes",), density="compact",
                           hide_details=True)
            with v3.VCol(cols=3):
                v3.VSelect(label="map", v_model=("heatmap_map",), items=("maps",), density="compact",
                           hide_details=True)
            with v3.VCol(cols=3):
                v3.VSlider(label="heatmap (h)", v_model=("opacity",), min=0, max=1, step=0.05, density="compact",
                           hide_details=True, id="opacity")
            with v3.VCol(cols=3, v_show="frame_count > 1"):
                v3.VSlider(label="frame", v_model=("frame",), min=0, max=("frame_count - 1",), step=1,
                           thumb_label=True, density="compact", hide_details=True, id="frame")
        # a fixed height: the slice view below must not change size when a frame's badge lines differ
        with html.Div(id="badges", classes="py-1", style="height: 4.8em; overflow-y: auto; flex: 0 0 auto;"):
            html.Div("{{ line.text }}", v_for="line in badge_lines", style=("{color: line.color}",),
                     classes="font-weight-bold badge-line")

    def _decision_bar(self) -> None:
        with html.Div(classes="d-flex align-center pt-2 flex-grow-0"):
            for label, decision, color in (("accept (a)", "accept", "success"),
                                           ("needs correction (c)", "needs_correction", "warning"),
                                           ("reject (r)", "reject", "error")):
                v3.VBtn(label, color=color, classes="me-2 decision-button", click=self._decision_call(decision),
                        disabled=("!shown || shown !== selected",))
            v3.VTextField(v_model=("note",), label="note (n)", density="compact", hide_details=True, id="note",
                          classes="mx-2")
            for name, label in ((Key.JSON, "report"), (Key.SEGMENTATION, "segmentation")):
                html.A(label, href=(f"files.{name}",), v_if=f"files.{name}", target="_blank", classes="mx-2")

    def _note_dialog(self) -> None:
        with v3.VDialog(v_model=("note_open",), max_width=480), v3.VCard(title=("`note on ${selected}`",)):
            with v3.VCardText():
                v3.VTextField(v_model=("note",), autofocus=True, label="note", hide_details=True,
                              keydown_enter="note_open = false; $event.target.blur()", id="note-dialog",
                              __events=[("keydown_enter", "keydown.enter")])
            with v3.VCardActions():
                v3.VBtn("done", click="note_open = false")
