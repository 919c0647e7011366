"""The Calibrate section: recalibrate the quality badge on your labelled cases into a new model.

Labelled cases are the image / segmentation pairs of the scene (exported with their confidence
layers to a temporary dataset, as Annotate's Export does) or a dataset folder (``dataset.json``).
The calibration runs in a background ``PythonSlicer`` process (``confidenceseg calibrate --out NEW
--degrade all``: the same weights, a new quality model fitted on the cases and their degraded
copies); the source model, bundled or not, is never modified. When it finishes the module switches
to the new model (``on_calibrated(path)``). The dependencies are checked first, as for a prediction.
"""

import pathlib

import ctk
import qt
import slicer

from ConfidenceSegLib.contract import ConfidenceSegError

from .panel import add_section

SCENE_CASES, DATASET_FOLDER = "labelled cases in the scene", "a dataset folder"


class CalibrationSection:
    """A collapsible section appended to the module panel; ``current_model()`` gives the model folder,
    ``prepare()`` installs what is missing (False: declined)."""

    def __init__(self, parent_layout, logic, current_model, prepare, on_calibrated):
        self.sourceComboBox = qt.QComboBox()
        self.sourceComboBox.addItems([SCENE_CASES, DATASET_FOLDER])
        self.datasetButton = ctk.ctkDirectoryButton()
        self.outputButton = ctk.ctkDirectoryButton()
        self.nameLineEdit = qt.QLineEdit("recalibrated_model")
        rows = [("Cases:", self.sourceComboBox), ("Dataset folder:", self.datasetButton),
                ("New model in:", self.outputButton), ("New model name:", self.nameLineEdit)]
        self.runButton, self.statusLabel = add_section(parent_layout, "Calibrate", rows, "Calibrate into a new model")
        self.runButton.toolTip = ("Fit the badge on these cases into a new model folder; the current model is not "
                                  "changed.")
        self.runButton.connect("clicked(bool)", self.run)
        self._logic, self._current_model, self._prepare = logic, current_model, prepare
        self._on_calibrated = on_calibrated

    def run(self):
        with slicer.util.tryWithErrorDisplay("Cannot calibrate.", waitCursor=True):
            name = self.nameLineEdit.text.strip()
            if not name or not self.outputButton.directory:
                raise ConfidenceSegError("choose a folder and a name for the new model")
            out = pathlib.Path(self.outputButton.directory) / name
            dataset = pathlib.Path(self.datasetButton.directory) if self.sourceComboBox.currentText == DATASET_FOLDER \
                else None
            model = self._current_model()
            if not self._prepare():
                return
            self._logic.startCalibration(model, dataset, out, self._finished)
            self.runButton.enabled = False
            self.statusLabel.text = "Calibrating (predicts every case, clean and degraded)..."

    def reset(self, text=""):
        """After a cancel (closed scene, module cleanup): the button is usable again."""
        self.runButton.enabled = True
        self.statusLabel.text = text

    def _finished(self, out, errors):
        self.reset()
        if errors:
            self.statusLabel.text = "Calibration failed."
            slicer.util.errorDisplay("Calibration failed.", detailedText=errors)
            return
        self.statusLabel.text = f"New model: {out}"
        self._on_calibrated(out)
