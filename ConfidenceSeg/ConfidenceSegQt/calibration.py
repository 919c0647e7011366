"""The Calibrate section: recalibrate the quality badge on your labelled cases into a new model.

Labelled cases are the image / segmentation pairs of the scene (exported with their confidence
layers to a temporary dataset, as Annotate's Export does) or a dataset folder (``dataset.json``).
The calibration runs in a background ``PythonSlicer`` process (``confidenceseg calibrate --out NEW
--degrade all``: the same weights, a new quality model fitted on the cases and their degraded
copies); the source model, bundled or not, is never modified. When it finishes the module switches
to the new model (``on_calibrated(path)``).
"""

import pathlib
import tempfile

import ctk
import qt
import slicer

from ConfidenceSegLib.slicer import annotation as slicer_annotation
from ConfidenceSegLib.slicer import process as slicer_process

from .panel import add_section
from .predictions import Predictions
from .process_runner import BackgroundProcess

SCENE_CASES, DATASET_FOLDER = "labelled cases in the scene", "a dataset folder"


class CalibrationSection:
    """A collapsible section appended to the module panel; ``current_model()`` gives the model folder."""

    def __init__(self, parent_layout, current_model, on_calibrated):
        self.sourceComboBox = qt.QComboBox()
        self.sourceComboBox.addItems([SCENE_CASES, DATASET_FOLDER])
        self.datasetButton = ctk.ctkDirectoryButton()
        self.outputButton = ctk.ctkDirectoryButton()
        self.nameLineEdit = qt.QLineEdit("recalibrated_model")
        rows = [("Cases:", self.sourceComboBox), ("Dataset folder:", self.datasetButton),
                ("New model in:", self.outputButton), ("New model name:", self.nameLineEdit)]
        self.runButton, self.statusLabel = add_section(parent_layout, "Calibrate", rows, "Calibrate into a new model")
        self.runButton.toolTip = ("Fit the badge on these cases into a new model folder; "
                                  "the current model is not changed.")
        self.runButton.clicked.connect(self.run)
        self._current_model = current_model
        self._on_calibrated = on_calibrated
        self._process = None

    def _dataset(self):
        if self.sourceComboBox.currentText == DATASET_FOLDER:
            return pathlib.Path(self.datasetButton.directory)
        folder = pathlib.Path(tempfile.mkdtemp(prefix="ConfidenceSeg-calibration-"))
        return slicer_annotation.export_scene_dataset(slicer.mrmlScene, folder, "scene cases").parent

    def run(self):
        with slicer.util.tryWithErrorDisplay("Cannot calibrate.", waitCursor=True):
            out = pathlib.Path(self.outputButton.directory) / self.nameLineEdit.text.strip()
            command = slicer_process.calibrate_command(Predictions.pythonExecutable(), self._current_model(),
                                                       self._dataset(), out)
            self.runButton.enabled = False
            self.statusLabel.text = "Calibrating (predicts every case, clean and degraded)..."
            self._process = BackgroundProcess(command, lambda line: None,
                                              lambda code, errors: self._finished(code, errors, out))

    def _finished(self, exit_code, errors, out):
        self.runButton.enabled = True
        if exit_code != 0:
            self.statusLabel.text = "Calibration failed."
            slicer.util.errorDisplay("Calibration failed.", detailedText=errors)
            return
        self.statusLabel.text = f"New model: {out}"
        self._on_calibrated(out)
