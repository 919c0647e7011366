"""ConfidenceSeg: segmentation with honest uncertainty in 3D Slicer.

A thin GUI: every action is one method of the logic (``ConfidenceSegQt/logic.py``), which calls the
library (``ConfidenceSegLib``, tested outside Slicer with slicer-core) and the background runs
(``ConfidenceSegQt/runs.py``, tested on a real PythonQt). The model runs in a background ``PythonSlicer``
process, never in the GUI process: a warm ``confidenceseg worker`` that keeps the model loaded between
predictions, or a one-shot ``confidenceseg predict --progress json`` once a worker failed. Qt signals are
connected by signature: PythonQt binds a signal attribute to its first overload.
"""

import importlib.util
import pathlib
import sys

import qt
import slicer
import vtk
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from ConfidenceSegLib.annotation.layers import DEFAULT_LEVELS, format_level
from ConfidenceSegLib.contract import ConfidenceSegError
from ConfidenceSegLib.model.registry import available_models, resolve_model
from ConfidenceSegLib.slicer import annotation as slicer_annotation
from ConfidenceSegLib.slicer import results as slicer_results
from ConfidenceSegLib.slicer.sample_data import sample_data_sources
from ConfidenceSegQt import dependencies, slice_views
from ConfidenceSegQt.assessment import AssessmentSection
from ConfidenceSegQt.calibration import CalibrationSection
from ConfidenceSegQt.logic import ConfidenceSegLogic
from ConfidenceSegQt.review_table import DECISION_COLUMN, fill_review_table
from ConfidenceSegQt.structure_table import fill_structure_table, structure_at

#: The model selector's last entry: use the bundle folder chosen beside it.
MODEL_FOLDER_CHOICE = "model folder..."
#: An nnU-Net v2 trained-model folder (its folds are the ensemble; uncalibrated its badge is REVIEW).
NNUNET_FOLDER_CHOICE = "nnU-Net model folder..."
#: Structures whose badges get a line each above the table; more get a summary line.
BADGE_LINES = 3


class ConfidenceSeg(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "ConfidenceSeg"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = []
        self.parent.contributors = ["ConfidenceSeg developers"]
        self.parent.helpText = (
            "Confidence-layered annotation, segmentation with uncertainty heatmaps and a predicted-Dice "
            "quality badge (PASS only when the conformal lower bound of predicted Dice is at least 0.8). "
            'See the <a href="https://github.com/confidenceseg/ConfidenceSeg">documentation</a>.')
        self.parent.acknowledgementText = (
            "The bundled sample images and default model come from the HC18 challenge data "
            "(van den Heuvel et al., PLOS ONE 2018, CC BY 4.0).")
        slicer.app.connect("startupCompleted()", registerSampleData)


def registerSampleData():
    """The bundled HC18 samples in the Sample Data module (local files, checked by SHA-256)."""
    import SampleData

    icon = pathlib.Path(__file__).resolve().parent / "Resources" / "Icons" / "ConfidenceSeg.png"
    for source in sample_data_sources(icon):
        SampleData.SampleDataLogic.registerCustomSampleDataSource(**source)


class ConfidenceSegWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """``logic``: the logic to use (tests pass their own); by default a new :class:`ConfidenceSegLogic`."""

    def __init__(self, parent=None, logic=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = logic
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._observedAnnotation = None
        self._annotationObserverTag = None
        self._editedSegmentIds = set()
        self._reviewRows = []
        self.sliceBadges = slice_views.SliceBadges()

    # --- set-up and lifetime -------------------------------------------------------------------

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/ConfidenceSeg.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = self.logic or ConfidenceSegLogic()
        self.ui.segmentEditorWidget.setMRMLSegmentEditorNode(self.logic.segmentEditorNode())
        self.effectFactory = slicer.qSlicerSegmentEditorEffectFactory.instance()
        self.effectFactory.connect("effectRegistered(QString)", self.onEffectRegistered)
        for name, level in DEFAULT_LEVELS.items():
            button = qt.QPushButton(f"{name} ({format_level(level)})")
            button.connect("clicked(bool)", lambda _checked=False, level=level: self.onLevelClicked(level))
            self.ui.paletteFrame.layout().addWidget(button)
        self.ui.importRatersButton.connect("clicked(bool)", self.onImportRaters)
        self.ui.exportButton.connect("clicked(bool)", self.onExport)
        self.ui.modelComboBox.addItems([entry.name for entry in available_models()]
                                       + [MODEL_FOLDER_CHOICE, NNUNET_FOLDER_CHOICE])
        self.ui.modelComboBox.connect("currentIndexChanged(int)", self.onModelChosen)
        self.ui.heatmapClassComboBox.connect("currentTextChanged(QString)",
                                             lambda _text: self.onParameterNodeModified())
        self.ui.runButton.connect("clicked(bool)", self.onRun)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancel)
        self.ui.openReviewButton.connect("clicked(bool)", self.onOpenReview)
        self.ui.reviewTable.connect("cellClicked(int,int)", self.onReviewRowClicked)
        self.ui.structureTable.connect("cellClicked(int,int)", self.onStructureClicked)
        for button, decision in ((self.ui.acceptButton, "accept"), (self.ui.needsCorrectionButton, "needs_correction"),
                                 (self.ui.rejectButton, "reject")):
            button.connect("clicked(bool)", lambda _checked=False, decision=decision: self.onDecision(decision))
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.calibration = CalibrationSection(self.layout, self.logic, self.selectedModel, self.prepareDependencies,
                                              self.onCalibrated)
        self.assessment = AssessmentSection(self.layout, self.logic, lambda: (self._parameterNode.inputVolume,
                                                                              self.selectedModel()),
                                            self.prepareDependencies, self.showBadges)
        self.initializeParameterNode()
        self.probeDevice()

    def onEffectRegistered(self, _name):
        self.ui.segmentEditorWidget.updateEffectList()

    def releaseViewsAndObservers(self):
        """What the embedded Segment Editor and the observers hold on to (exit, scene close, cleanup)."""
        editor = self.ui.segmentEditorWidget
        editor.setActiveEffect(None)
        editor.removeViewObservations()
        self.observeAnnotation(None)

    def cleanup(self):
        """Module cleanup and application exit: no process, no observer, no temporary folder is left."""
        self.releaseViewsAndObservers()
        self.ui.segmentEditorWidget.uninstallKeyboardShortcuts()
        self.effectFactory.disconnect("effectRegistered(QString)", self.onEffectRegistered)
        self.sliceBadges.clear()
        self.logic.shutdown(wait=True)
        self.setParameterNode(None)
        self.removeObservers()

    def onReload(self):
        """Reload and Test picks up edits of the library too, not only of this file."""
        self.cleanup()
        for name in [name for name in sys.modules if name.split(".")[0] in ("ConfidenceSegLib", "ConfidenceSegQt")]:
            del sys.modules[name]
        ScriptedLoadableModuleWidget.onReload(self)

    def enter(self):
        self.initializeParameterNode()
        self.ui.segmentEditorWidget.installKeyboardShortcuts()

    def exit(self):
        """Leaving the module: runs go on (their results load where they belong); the editor lets go."""
        self.releaseViewsAndObservers()
        self.ui.segmentEditorWidget.uninstallKeyboardShortcuts()
        self.setParameterNode(None)

    def onSceneStartClose(self, caller, event):
        self.logic.sceneClosing()
        self.setRunning(False)
        self.ui.statusLabel.text = ""
        for section in (self.assessment, self.calibration):
            section.reset()
        self.sliceBadges.clear()
        self.releaseViewsAndObservers()
        self.ui.segmentEditorWidget.setSegmentationNode(None)
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event):
        self.ui.segmentEditorWidget.setMRMLSegmentEditorNode(self.logic.segmentEditorNode())
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            self._parameterNode.inputVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")

    def setParameterNode(self, parameterNode):
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
        self._parameterNode = parameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
            if self._parameterNode.modelName and self.ui.modelComboBox.findText(self._parameterNode.modelName) >= 0:
                self.ui.modelComboBox.currentText = self._parameterNode.modelName
            self.onParameterNodeModified()

    def onModelChosen(self, _index):
        if self._parameterNode:
            self._parameterNode.modelName = self.ui.modelComboBox.currentText

    def onParameterNodeModified(self, caller=None, event=None):
        node = self._parameterNode
        if node is None:
            return
        self.ui.modelPathLineEdit.enabled = self.ui.modelComboBox.currentText in (MODEL_FOLDER_CHOICE,
                                                                                  NNUNET_FOLDER_CHOICE)
        self.ui.runButton.enabled = bool(node.inputVolume) and not self.logic.isRunning()
        self.ui.paletteFrame.enabled = bool(node.inputVolume) and bool(node.className.strip())
        self.observeAnnotation(node.annotation)
        colors = slicer_results.inferno_color_node(slicer.mrmlScene)
        shown = self.logic.shown
        if shown is not None:  # class and map kind switch the heatmap at once
            heatmap = slicer_results.heatmap_node(slicer.mrmlScene, shown, self.ui.heatmapClassComboBox.currentText,
                                                  node.heatmap, colors, node.heatmapThreshold)
            if heatmap is not None and heatmap is not node.heatmapVolume:
                node.heatmapVolume = heatmap
                slicer.util.setSliceViewerLayers(foreground=heatmap)
                slicer.modules.colors.logic().AddDefaultColorLegendDisplayNode(heatmap)
        if node.heatmapVolume:
            slicer_results.setup_heatmap_display(node.heatmapVolume, colors, node.heatmapThreshold)
            slicer.util.setSliceViewerLayers(foregroundOpacity=node.heatmapOpacity)

    # --- annotate ------------------------------------------------------------------------------

    def onLevelClicked(self, level):
        with slicer.util.tryWithErrorDisplay("Cannot select the confidence level.", waitCursor=True):
            node = self._parameterNode
            segmentId = self.logic.selectLevel(node, level)
            editor = self.ui.segmentEditorWidget
            editor.setSegmentationNode(node.annotation)
            editor.setSourceVolumeNode(node.inputVolume)
            editor.mrmlSegmentEditorNode().SetOverwriteMode(slicer.vtkMRMLSegmentEditorNode.OverwriteNone)
            editor.setCurrentSegmentID(segmentId)
            if not editor.activeEffect():
                editor.setActiveEffectByName("Paint")

    def observeAnnotation(self, segmentationNode):
        """Enforce exclusivity between a class's levels after every edit of the annotation."""
        if segmentationNode is self._observedAnnotation:
            return
        if self._observedAnnotation is not None and self._annotationObserverTag is not None:
            self._observedAnnotation.GetSegmentation().RemoveObserver(self._annotationObserverTag)
        self._observedAnnotation, self._annotationObserverTag = segmentationNode, None
        if segmentationNode is not None:
            self._annotationObserverTag = slicer_annotation.observe_segment_edits(segmentationNode,
                                                                                  self.onSegmentEdited)

    def onSegmentEdited(self, segmentId):
        if not self._editedSegmentIds:
            qt.QTimer.singleShot(0, self.enforceExclusivity)  # after the effect has finished its edit
        self._editedSegmentIds.add(segmentId)

    def enforceExclusivity(self):
        segmentIds, self._editedSegmentIds = self._editedSegmentIds, set()
        node = self._observedAnnotation
        for segmentId in segmentIds:
            if node is not None and node.GetSegmentation().GetSegment(segmentId) is not None:
                slicer_annotation.enforce_level_exclusivity(node, segmentId)
        self._editedSegmentIds.clear()  # our own changes above are exclusive already

    def onImportRaters(self):
        with slicer.util.tryWithErrorDisplay("Cannot import the raters.", waitCursor=True):
            self.logic.importRaters(self._parameterNode, list(self.ui.raterNodesComboBox.checkedNodes()))

    def onExport(self):
        with slicer.util.tryWithErrorDisplay("Cannot export the dataset.", waitCursor=True):
            path = self.logic.exportDataset(self._parameterNode)
            slicer.util.showStatusMessage(f"Training dataset written: {path}", 10000)

    # --- segment -------------------------------------------------------------------------------

    def probeDevice(self):
        self.ui.deviceLabel.text = "detecting..."
        self.logic.runs.probe_device(lambda text: setattr(self.ui.deviceLabel, "text", f"auto = {text}"))

    def prepareDependencies(self):
        """Install what the background processes need (asks first; never in testing mode); False: declined."""
        return dependencies.ensure_dependencies(self.resourcePath("requirements.txt"),
                                                self.resourcePath("torch-requirement.txt"))

    def onRun(self):
        node = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Cannot start the segmentation.", waitCursor=True):
            model = self.selectedModel()
            if not self.prepareDependencies():
                return
            self.logic.startPrediction(node.inputVolume, model, node.method, node.samples, node.device,
                                       self.onProgress, self.onPredictionFinished)
            self.setRunning(True)

    def selectedModel(self):
        name = self.ui.modelComboBox.currentText
        if name in (MODEL_FOLDER_CHOICE, NNUNET_FOLDER_CHOICE):
            return self.logic.modelFolder(self._parameterNode.modelPath if self._parameterNode else None,
                                          nnunet=name == NNUNET_FOLDER_CHOICE)
        return resolve_model(name)

    def onCalibrated(self, modelFolder):
        node = self.logic.getParameterNode()
        node.modelPath, node.modelName = modelFolder, MODEL_FOLDER_CHOICE
        self.ui.modelComboBox.currentText = MODEL_FOLDER_CHOICE

    def onCancel(self):
        self.logic.cancelPrediction()
        self.ui.statusLabel.text = "Cancelled."
        self.setRunning(False)

    def setRunning(self, running):
        self.ui.runButton.enabled = not running and bool(self._parameterNode and self._parameterNode.inputVolume)
        self.ui.cancelButton.enabled = running
        self.ui.progressBar.value = 0

    def onProgress(self, progress):
        self.ui.progressBar.value = int(100 * progress.fraction)
        self.ui.statusLabel.text = f"{progress.stage}: {progress.message}"

    def onPredictionFinished(self, loaded, errorText):
        """The result of the run, loaded on the image it was started with (even if the user left the module)."""
        self.setRunning(False)
        if errorText:
            self.ui.statusLabel.text = "Segmentation failed."
            slicer.util.errorDisplay("Segmentation failed.", detailedText=errorText)
            return
        self.showResult(loaded)
        self.ui.statusLabel.text = "Done."

    def showResult(self, loaded):
        node = self.logic.getParameterNode()
        wasBlocked = self.ui.heatmapClassComboBox.blockSignals(True)
        self.ui.heatmapClassComboBox.clear()
        self.ui.heatmapClassComboBox.addItems(list(loaded.report.classes))
        self.ui.heatmapClassComboBox.blockSignals(wasBlocked)
        slicer.util.setSliceViewerLayers(background=loaded.volume_node, foregroundOpacity=node.heatmapOpacity, fit=True)
        self.onParameterNodeModified()  # shows the selected class's heatmap
        self.showBadges(loaded.report, loaded.volume_node)

    def showBadges(self, report, volumeNode):
        """The badges: one line each for a few structures, else a summary line; every structure in the table."""
        badges = slicer_results.structure_badges(report)
        lines = [f'<span style="color:{b.color}"><b>{b.text()}</b></span>' for b in badges]
        self.ui.badgeLabel.text = "<br>".join(lines) if len(lines) <= BADGE_LINES else \
            f"<b>{slicer_results.badges_summary(badges)}</b> (the table lists them, the ones to review first)"
        fill_structure_table(self.ui.structureTable, badges)
        self.ui.structureTable.visible = len(badges) > 1
        self.sliceBadges.show(report, volumeNode)

    def onStructureClicked(self, row, _column):
        name = structure_at(self.ui.structureTable, row)
        if name:
            self.ui.heatmapClassComboBox.setCurrentText(name)  # shows its heatmap

    # --- review --------------------------------------------------------------------------------

    def onOpenReview(self):
        with slicer.util.tryWithErrorDisplay("Cannot open the batch QC folder.", waitCursor=True):
            self._reviewRows, decisions = self.logic.openReview(self._parameterNode.reviewFolder)
            fill_review_table(self.ui.reviewTable, self._reviewRows, decisions)

    def onDecision(self, decision):
        """Record the reviewer's decision on the selected row (written at once, atomically)."""
        with slicer.util.tryWithErrorDisplay("Cannot record the decision.", waitCursor=True):
            row = self.ui.reviewTable.currentRow()
            if row < 0 or row >= len(self._reviewRows):
                raise ConfidenceSegError("select a case in the review table first")
            self.logic.recordDecision(self._parameterNode.reviewFolder, self._reviewRows[row], decision,
                                      self.ui.decisionNoteLineEdit.text)
            self.ui.reviewTable.setItem(row, DECISION_COLUMN, qt.QTableWidgetItem(decision))
            self.ui.decisionNoteLineEdit.text = ""

    def onReviewRowClicked(self, row, column):
        with slicer.util.tryWithErrorDisplay("Cannot load the case.", waitCursor=True):
            loaded = self.logic.loadCase(self._reviewRows[row])
            self._parameterNode.inputVolume = loaded.volume_node
            self.showResult(loaded)


class ConfidenceSegTest(ScriptedLoadableModuleTest):
    """What "Reload and Test" runs: the shipped self-test (Testing/Python/ConfidenceSegSelfTest.py, bundled sample)."""

    def runTest(self):
        spec = importlib.util.spec_from_file_location(
            "ConfidenceSegSelfTest",
            pathlib.Path(__file__).resolve().parent / "Testing/Python/ConfidenceSegSelfTest.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.ConfidenceSegSelfTest().runTest()
