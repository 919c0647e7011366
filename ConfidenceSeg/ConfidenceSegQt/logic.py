"""The module's logic: MRML on one side, the library and the background runs (:mod:`.runs`) on the other.

Every action of the panel is one method here; the widget only reads the panel and shows what comes
back. A background run keeps what it needs from the moment it started (the image node, its folder), so
its result loads where it belongs even after the user left the module; a closed scene cancels every run
first (:meth:`ConfidenceSegLogic.sceneClosing`), so no result ever lands in another scene. A result is
read from its run's temporary folder and its nodes are marked to be saved with the scene; the folder
goes when another result replaces it, when the scene closes and when the module is cleaned up.
"""

import pathlib

import slicer
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic

from ConfidenceSegLib.contract import ConfidenceSegError
from ConfidenceSegLib.io.resources import default_model_dir
from ConfidenceSegLib.model.nnunet_folder import is_nnunet_folder
from ConfidenceSegLib.outputs.decisions import load_decisions, record_decision
from ConfidenceSegLib.outputs.review_table import read_review_table
from ConfidenceSegLib.slicer import annotation as slicer_annotation
from ConfidenceSegLib.slicer import mrml
from ConfidenceSegLib.slicer import process as slicer_process
from ConfidenceSegLib.slicer import results as slicer_results

from .parameters import ConfidenceSegParameterNode
from .runs import ModuleRuns


class ConfidenceSegLogic(ScriptedLoadableModuleLogic):
    """``runs``: the background runs (a :class:`~.runs.ModuleRuns` in Slicer's temporary folder by default)."""

    def __init__(self, runs=None):
        ScriptedLoadableModuleLogic.__init__(self)
        self.runs = runs if runs is not None else ModuleRuns(slicer.app.temporaryPath)
        self.shown = None  # the LoadedPrediction shown by the module
        self._shownFolder = None  # its run's temporary folder (None for a review case)

    def getParameterNode(self):
        return ConfidenceSegParameterNode(super().getParameterNode())

    def segmentEditorNode(self):
        node = slicer.mrmlScene.GetSingletonNode("ConfidenceSeg", "vtkMRMLSegmentEditorNode")
        if node is None:
            node = slicer.vtkMRMLSegmentEditorNode()
            node.SetSingletonTag("ConfidenceSeg")
            node = slicer.mrmlScene.AddNode(node)
        return node

    # --- annotate ------------------------------------------------------------------------------

    def annotationNode(self, parameters):
        """The parameter node's annotation (created on first use) on the input image's geometry."""
        if parameters.inputVolume is None:
            raise ConfidenceSegError("select the input image first")
        if not parameters.annotation:
            parameters.annotation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Annotation")
        parameters.annotation.SetReferenceImageGeometryParameterFromVolumeNode(parameters.inputVolume)
        parameters.annotation.CreateDefaultDisplayNodes()
        return parameters.annotation

    def selectLevel(self, parameters, level):
        """The segment of the class at confidence ``level`` (created if needed); its ID."""
        return slicer_annotation.select_or_create_level_segment(self.annotationNode(parameters),
                                                                parameters.className.strip(), level)

    def importRaters(self, parameters, raterNodes):
        reference = mrml.image_from_volume_node(parameters.inputVolume)
        return slicer_annotation.import_raters(self.annotationNode(parameters), parameters.className.strip(),
                                               raterNodes, reference)

    def exportDataset(self, parameters):
        """Write the scene's annotated cases as a training dataset; the path of its ``dataset.json``."""
        return slicer_annotation.export_scene_dataset(slicer.mrmlScene, parameters.exportDirectory,
                                                      parameters.exportName)

    # --- segment -------------------------------------------------------------------------------

    def isRunning(self, name="predict"):
        return self.runs.is_running(name)

    def startPrediction(self, volumeNode, model, method, samples, device, onProgress, onFinished):
        """Write the image and predict it in the background; ``onFinished(loaded, errorText)`` once, with the
        result loaded on ``volumeNode`` (not after a cancel)."""
        if volumeNode is None:
            raise ConfidenceSegError("select an image first")
        model = model if model is not None else default_model_dir()
        folder = self.runs.new_folder("predict")
        try:
            inputPath = slicer_process.write_prediction_input(volumeNode, folder)
        except Exception:
            self.runs.release(folder)
            raise

        def finished(reportPath, errorText):
            if errorText:
                onFinished(None, errorText)
                return
            try:
                loaded = self.loadResult(reportPath, volumeNode, folder)
            except ConfidenceSegError as error:
                self.runs.release(folder)
                onFinished(None, str(error))
                return
            onFinished(loaded, None)

        self.runs.predict(model, inputPath, folder, method, samples, device, onProgress, finished)

    def loadResult(self, reportPath, volumeNode=None, folder=None):
        """Show a ``predict`` result in place of the one shown before (whose nodes and folder go)."""
        parameters = self.getParameterNode()
        loaded = slicer_results.load_prediction(slicer.mrmlScene, reportPath, volumeNode, parameters.heatmap,
                                                lower_threshold=parameters.heatmapThreshold,
                                                temporary=folder is not None)
        self.forgetShown(removeNodes=volumeNode is None)
        self.shown, self._shownFolder = loaded, folder
        parameters.heatmapVolume = None
        parameters.result = loaded.segmentation_node
        return loaded

    def forgetShown(self, removeNodes=False):
        """Release the shown result's folder (``removeNodes``: and its nodes, e.g. the previous review case)."""
        if self.shown is not None and removeNodes and self._shownFolder is None:
            slicer_results.remove_prediction(slicer.mrmlScene, self.shown)
        self.runs.release(self._shownFolder)
        self.shown, self._shownFolder = None, None

    def cancelPrediction(self):
        self.runs.cancel_prediction()

    # --- assess and calibrate ------------------------------------------------------------------

    def startAssessment(self, volumeNode, segmentationNode, model, onFinished):
        """Rate ``segmentationNode`` of ``volumeNode`` in the background: ``onFinished(report, errorText)``."""
        if volumeNode is None or segmentationNode is None:
            raise ConfidenceSegError("select the input image and the segmentation to assess")
        folder = self.runs.new_folder("assess")
        try:
            image, segmentation = slicer_process.write_assessment_input(volumeNode, segmentationNode, folder)
            classes = slicer_process.bundle_classes(model)
        except Exception:
            self.runs.release(folder)
            raise
        self.runs.assess(model, image, segmentation, folder, classes[0] if len(classes) == 1 else None, onFinished)

    def startCalibration(self, model, datasetFolder, out, onFinished):
        """Recalibrate ``model`` into ``out`` on a dataset folder, or (None) on the scene's annotated cases:
        ``onFinished(outFolder, errorText)``."""
        scratch = None
        if datasetFolder is None:
            scratch = self.runs.new_folder("calibrate")
            try:
                datasetFolder = slicer_annotation.export_scene_dataset(slicer.mrmlScene, scratch, "scene cases").parent
            except Exception:
                self.runs.release(scratch)
                raise
        try:
            self.runs.calibrate(model, datasetFolder, out, onFinished, scratch)
        except Exception:
            self.runs.release(scratch)
            raise

    # --- review --------------------------------------------------------------------------------

    @staticmethod
    def openReview(folder):
        """The rows of ``folder/review.csv`` in review order, and the latest decision per case and class."""
        return read_review_table(folder), load_decisions(folder)

    @staticmethod
    def recordDecision(folder, row, decision, note):
        return record_decision(folder, row.case, row.class_name, decision, note)

    def loadCase(self, row):
        """Show a review case (its image, segmentation and heatmaps) in place of the one shown before."""
        return self.loadResult(row.report_path)

    # --- ending --------------------------------------------------------------------------------

    def sceneClosing(self):
        """The scene closes: every run stops (no result lands in the next scene); the shown result goes."""
        self.runs.cancel_all()
        self.forgetShown()

    def shutdown(self, wait=False):
        """Module cleanup (``wait``: application exit): no process, no temporary folder is left."""
        self.runs.shutdown(wait)
        self.shown, self._shownFolder = None, None

    @staticmethod
    def modelFolder(path, nnunet=False):
        """A model folder chosen by the user, checked to be one: a ConfidenceSeg bundle (with a config.json),
        or with ``nnunet`` an nnU-Net trained-model folder (plans.json, dataset.json, fold_K)."""
        path = pathlib.Path(path) if path else None
        if nnunet:
            if path is None or str(path) in ("", ".") or not is_nnunet_folder(path):
                raise ConfidenceSegError("choose an nnU-Net trained-model folder (with plans.json, dataset.json "
                                         "and fold_0, ...: e.g. .../nnUNetTrainer__nnUNetPlans__3d_fullres) "
                                         "beside the model selector")
            return path
        if path is None or str(path) in ("", ".") or not (path / "config.json").is_file():
            raise ConfidenceSegError("choose a model folder (one with a config.json) beside the model selector")
        return path
