"""ConfidenceSeg: segmentation with honest uncertainty in 3D Slicer.

A thin GUI over ``ConfidenceSegLib``: every action calls a library function that takes the scene or
nodes as arguments (tested outside Slicer with slicer-core). The model runs in a background
``PythonSlicer`` process, never in the GUI process: a warm ``confidenceseg worker`` that keeps the model
loaded between predictions, or a one-shot ``confidenceseg predict --progress json`` if the worker fails.
"""

import importlib.util
import pathlib
import sys
import tempfile
from typing import Annotated

import qt
import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from ConfidenceSegLib.annotation.layers import DEFAULT_LEVELS, format_level
from ConfidenceSegLib.contract import (
    DEVICE_CHOICES,
    HEATMAP_DISPLAY_THRESHOLD,
    HEATMAP_OPACITY,
    METHODS,
    ConfidenceSegError,
)
from ConfidenceSegLib.io.resources import default_model_dir
from ConfidenceSegLib.model.registry import available_models, resolve_model
from ConfidenceSegLib.outputs.decisions import load_decisions, record_decision
from ConfidenceSegLib.outputs.review_table import read_review_table
from ConfidenceSegLib.slicer import annotation as slicer_annotation
from ConfidenceSegLib.slicer import mrml
from ConfidenceSegLib.slicer import process as slicer_process
from ConfidenceSegLib.slicer import results as slicer_results
from ConfidenceSegQt import dependencies, slice_views
from ConfidenceSegQt.assessment import AssessmentSection
from ConfidenceSegQt.calibration import CalibrationSection
from ConfidenceSegQt.predictions import Predictions
from ConfidenceSegQt.review_table import DECISION_COLUMN, fill_review_table

#: The model selector's last entry: use the bundle folder chosen beside it.
MODEL_FOLDER_CHOICE = "model folder..."


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


@parameterNodeWrapper
class ConfidenceSegParameterNode:
    """Module state, saved with the scene."""

    inputVolume: vtkMRMLScalarVolumeNode
    annotation: vtkMRMLSegmentationNode
    className: str = "structure"
    exportDirectory: pathlib.Path
    exportName: str = "annotations"
    modelPath: pathlib.Path
    method: Annotated[str, Choice(list(METHODS))] = "auto"
    samples: Annotated[int, WithinRange(0, 200)] = 0
    device: Annotated[str, Choice(list(DEVICE_CHOICES))] = "auto"
    heatmap: Annotated[str, Choice(list(slicer_results.HEATMAP_MAPS))] = slicer_results.HEATMAP_MAPS[0]
    heatmapOpacity: Annotated[float, WithinRange(0.0, 1.0)] = HEATMAP_OPACITY
    heatmapThreshold: Annotated[float, WithinRange(0.0, 0.95)] = HEATMAP_DISPLAY_THRESHOLD
    heatmapVolume: vtkMRMLScalarVolumeNode
    result: vtkMRMLSegmentationNode
    reviewFolder: pathlib.Path


class ConfidenceSegWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._observedAnnotation = None
        self._editedSegmentIds = set()
        self._reviewRows = []
        self._loaded = None  # the prediction shown (its maps are loaded on demand)
        self.sliceBadges = slice_views.SliceBadges()

    # --- set-up ------------------------------------------------------------------------------

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/ConfidenceSeg.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = ConfidenceSegLogic()
        self.ui.segmentEditorWidget.setMRMLSegmentEditorNode(self.logic.segmentEditorNode())
        for name, level in DEFAULT_LEVELS.items():
            button = qt.QPushButton(f"{name} ({format_level(level)})")
            button.clicked.connect(lambda _checked=False, level=level: self.onLevelClicked(level))
            self.ui.paletteFrame.layout().addWidget(button)
        self.ui.importRatersButton.clicked.connect(self.onImportRaters)
        self.ui.exportButton.clicked.connect(self.onExport)
        self.ui.modelComboBox.addItems([entry.name for entry in available_models()] + [MODEL_FOLDER_CHOICE])
        self.ui.modelComboBox.currentIndexChanged.connect(lambda _index: self.onParameterNodeModified())
        self.ui.heatmapClassComboBox.currentTextChanged.connect(lambda _text: self.onParameterNodeModified())
        self.ui.runButton.clicked.connect(self.onRun)
        self.ui.cancelButton.clicked.connect(self.onCancel)
        self.ui.openReviewButton.clicked.connect(self.onOpenReview)
        self.ui.reviewTable.cellClicked.connect(self.onReviewRowClicked)
        for button, decision in ((self.ui.acceptButton, "accept"), (self.ui.needsCorrectionButton, "needs_correction"),
                                 (self.ui.rejectButton, "reject")):
            button.clicked.connect(lambda _checked=False, decision=decision: self.onDecision(decision))
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.calibration = CalibrationSection(self.layout, self.selectedModel, self.onCalibrated)
        self.assessment = AssessmentSection(self.layout,
                                            lambda: (self._parameterNode.inputVolume, self.selectedModel()),
                                            self.showBadges)
        self.initializeParameterNode()
        self.probeDevice()

    def onReload(self):
        """Reload and Test picks up edits of the library too, not only of this file."""
        self.sliceBadges.clear()
        self.logic.shutdown()
        for name in [name for name in sys.modules if name.split(".")[0] in ("ConfidenceSegLib", "ConfidenceSegQt")]:
            del sys.modules[name]
        ScriptedLoadableModuleWidget.onReload(self)

    def cleanup(self):
        self.sliceBadges.clear()
        self.logic.shutdown()
        self.removeObservers()

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        self.ui.segmentEditorWidget.setActiveEffect(None)
        self.setParameterNode(None)

    def onSceneStartClose(self, caller, event):
        self.setParameterNode(None)
        self._loaded = None

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
            self.onParameterNodeModified()

    def onParameterNodeModified(self, caller=None, event=None):
        node = self._parameterNode
        self.ui.modelPathLineEdit.enabled = self.ui.modelComboBox.currentText == MODEL_FOLDER_CHOICE
        self.ui.runButton.enabled = bool(node.inputVolume) and not self.logic.isRunning()
        self.ui.paletteFrame.enabled = bool(node.inputVolume) and bool(node.className.strip())
        self.observeAnnotation(node.annotation)
        colors = slicer_results.inferno_color_node(slicer.mrmlScene)
        if self._loaded is not None:  # class and map kind switch the heatmap at once
            shown = slicer_results.heatmap_node(slicer.mrmlScene, self._loaded,
                                                self.ui.heatmapClassComboBox.currentText, node.heatmap, colors,
                                                node.heatmapThreshold)
            if shown is not None and shown is not node.heatmapVolume:
                node.heatmapVolume = shown
                slicer.util.setSliceViewerLayers(foreground=shown)
                slicer.modules.colors.logic().AddDefaultColorLegendDisplayNode(shown)
        if node.heatmapVolume:
            slicer_results.setup_heatmap_display(node.heatmapVolume, colors, node.heatmapThreshold)
            slicer.util.setSliceViewerLayers(foregroundOpacity=node.heatmapOpacity)

    # --- annotate ----------------------------------------------------------------------------

    def onLevelClicked(self, level):
        with slicer.util.tryWithErrorDisplay("Cannot select the confidence level.", waitCursor=True):
            node = self._parameterNode
            if not node.annotation:
                node.annotation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Annotation")
            node.annotation.SetReferenceImageGeometryParameterFromVolumeNode(node.inputVolume)
            node.annotation.CreateDefaultDisplayNodes()
            segmentId = slicer_annotation.select_or_create_level_segment(node.annotation, node.className.strip(), level)
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
        if self._observedAnnotation is not None:
            self._observedAnnotation.GetSegmentation().RemoveObserver(self._annotationObserverTag)
        self._observedAnnotation = segmentationNode
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
            node = self._parameterNode
            if not node.annotation:
                node.annotation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Annotation")
            node.annotation.SetReferenceImageGeometryParameterFromVolumeNode(node.inputVolume)
            raters = list(self.ui.raterNodesComboBox.checkedNodes())
            reference = mrml.image_from_volume_node(node.inputVolume)
            slicer_annotation.import_raters(node.annotation, node.className.strip(), raters, reference)
            node.annotation.CreateDefaultDisplayNodes()

    def onExport(self):
        with slicer.util.tryWithErrorDisplay("Cannot export the dataset.", waitCursor=True):
            node = self._parameterNode
            path = slicer_annotation.export_scene_dataset(slicer.mrmlScene, node.exportDirectory, node.exportName)
            slicer.util.showStatusMessage(f"Training dataset written: {path}", 10000)

    # --- segment -----------------------------------------------------------------------------

    def probeDevice(self):
        self.ui.deviceLabel.text = "detecting..."
        self.logic.probeDevice(lambda text: setattr(self.ui.deviceLabel, "text", f"auto = {text}"))

    def onRun(self):
        node = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Cannot start the segmentation.", waitCursor=True):
            if not dependencies.ensure_dependencies(self.resourcePath("requirements.txt"),
                                                    self.resourcePath("torch-requirement.txt")):
                return
            self.logic.startPrediction(node.inputVolume, self.selectedModel(), node.method, node.samples, node.device,
                                       self.onProgress, self.onPredictionFinished)
            self.setRunning(True)

    def selectedModel(self):
        name = self.ui.modelComboBox.currentText
        return self._parameterNode.modelPath if name == MODEL_FOLDER_CHOICE else resolve_model(name)

    def onCalibrated(self, modelFolder):
        self.ui.modelComboBox.currentText, self._parameterNode.modelPath = MODEL_FOLDER_CHOICE, modelFolder

    def onCancel(self):
        self.logic.cancel()
        self.ui.statusLabel.text = "Cancelled."
        self.setRunning(False)

    def setRunning(self, running):
        self.ui.runButton.enabled = not running
        self.ui.cancelButton.enabled = running
        self.ui.progressBar.value = 0

    def onProgress(self, progress):
        self.ui.progressBar.value = int(100 * progress.fraction)
        self.ui.statusLabel.text = f"{progress.stage}: {progress.message}"

    def onPredictionFinished(self, reportPath, errorText):
        self.setRunning(False)
        if errorText:
            self.ui.statusLabel.text = "Segmentation failed."
            slicer.util.errorDisplay("Segmentation failed.", detailedText=errorText)
            return
        with slicer.util.tryWithErrorDisplay("Cannot load the results.", waitCursor=True):
            self.showResult(self.logic.loadResult(reportPath, self._parameterNode.inputVolume))
            self.ui.statusLabel.text = "Done."

    def showResult(self, loaded):
        node, self._loaded = self._parameterNode, loaded
        wasBlocked = self.ui.heatmapClassComboBox.blockSignals(True)
        self.ui.heatmapClassComboBox.clear()
        self.ui.heatmapClassComboBox.addItems(list(loaded.report.classes))
        self.ui.heatmapClassComboBox.blockSignals(wasBlocked)
        node.heatmapVolume = None
        slicer.util.setSliceViewerLayers(background=loaded.volume_node, foregroundOpacity=node.heatmapOpacity, fit=True)
        node.result = loaded.segmentation_node  # onParameterNodeModified shows the selected class's heatmap
        self.showBadges(loaded.report, loaded.volume_node, loaded.badges)

    def showBadges(self, report, volumeNode, badges):
        self.ui.badgeLabel.text = "<br>".join(f'<span style="color:{b.color}"><b>{b.text()}</b></span>' for b in badges)
        self.sliceBadges.show(report, volumeNode)

    # --- review ------------------------------------------------------------------------------

    def onOpenReview(self):
        with slicer.util.tryWithErrorDisplay("Cannot open the batch QC folder.", waitCursor=True):
            self._reviewRows = read_review_table(self._parameterNode.reviewFolder)
            fill_review_table(self.ui.reviewTable, self._reviewRows, load_decisions(self._parameterNode.reviewFolder))

    def onDecision(self, decision):
        """Record the reviewer's decision on the selected row (written at once, atomically)."""
        with slicer.util.tryWithErrorDisplay("Cannot record the decision.", waitCursor=True):
            row = self.ui.reviewTable.currentRow()
            if row < 0 or row >= len(self._reviewRows):
                raise ConfidenceSegError("select a case in the review table first")
            entry = self._reviewRows[row]
            record_decision(self._parameterNode.reviewFolder, entry.case, entry.class_name, decision,
                            self.ui.decisionNoteLineEdit.text)
            self.ui.reviewTable.setItem(row, DECISION_COLUMN, qt.QTableWidgetItem(decision))
            self.ui.decisionNoteLineEdit.text = ""

    def onReviewRowClicked(self, row, column):
        with slicer.util.tryWithErrorDisplay("Cannot load the case.", waitCursor=True):
            loaded = self.logic.loadResult(self._reviewRows[row].report_path)
            self._parameterNode.inputVolume = loaded.volume_node
            self.showResult(loaded)


class ConfidenceSegLogic(ScriptedLoadableModuleLogic):
    """Slicer-side glue (parameter node, processes, views); the work is done by ConfidenceSegLib."""

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        self.predictions = Predictions()

    def getParameterNode(self):
        return ConfidenceSegParameterNode(super().getParameterNode())

    def segmentEditorNode(self):
        node = slicer.mrmlScene.GetSingletonNode("ConfidenceSeg", "vtkMRMLSegmentEditorNode")
        if node is None:
            node = slicer.vtkMRMLSegmentEditorNode()
            node.SetSingletonTag("ConfidenceSeg")
            node = slicer.mrmlScene.AddNode(node)
        return node

    def loadResult(self, reportPath, volumeNode=None):
        parameters = self.getParameterNode()
        return slicer_results.load_prediction(slicer.mrmlScene, reportPath, volumeNode, parameters.heatmap,
                                              lower_threshold=parameters.heatmapThreshold)

    # --- background predictions (ConfidenceSegQt.predictions) --------------------------------

    def probeDevice(self, onFound):
        self.predictions.probeDevice(onFound)

    def startPrediction(self, volumeNode, model, method, samples, device, onProgress, onFinished):
        """Write the image and predict it in the background; ``onFinished(reportPath, errorText)``."""
        if volumeNode is None:
            raise ConfidenceSegError("select an image first")
        model = model if model is not None else default_model_dir()
        workDir = pathlib.Path(tempfile.mkdtemp(prefix="ConfidenceSeg-"))
        inputPath = slicer_process.write_prediction_input(volumeNode, workDir)
        self.predictions.start(model, inputPath, workDir / "results", method, samples, device, onProgress, onFinished)

    @property
    def lastReportPath(self):
        return self.predictions.lastReportPath

    def isRunning(self):
        return self.predictions.isRunning()

    def cancel(self):
        self.predictions.cancel()

    def shutdown(self):
        self.predictions.shutdown()


class ConfidenceSegTest(ScriptedLoadableModuleTest):
    """What "Reload and Test" runs: the shipped self-test (Testing/Python/ConfidenceSegSelfTest.py, bundled sample)."""

    def runTest(self):
        spec = importlib.util.spec_from_file_location(
            "ConfidenceSegSelfTest",
            pathlib.Path(__file__).resolve().parent / "Testing/Python/ConfidenceSegSelfTest.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.ConfidenceSegSelfTest().runTest()
