"""The Assess section: a quality badge for a segmentation the model did not make.

Pick a segmentation node (painted by hand or loaded from another tool) over the input image and
**Assess this segmentation**: the image and the segmentation are written to a temporary folder and a
background ``PythonSlicer`` process runs ``confidenceseg assess`` with the selected model (agreement
with the model's prediction; see the command's help). The result is shown like a prediction's: the
badges in the panel and in every slice view (per frame for stacks), REVIEW segments flagged.
"""

import pathlib
import tempfile

import slicer

from ConfidenceSegLib.contract import ConfidenceSegError
from ConfidenceSegLib.model.bundle_config import read_config
from ConfidenceSegLib.outputs.report import read_report
from ConfidenceSegLib.slicer import process as slicer_process
from ConfidenceSegLib.slicer import results as slicer_results

from .panel import add_section
from .predictions import Predictions
from .process_runner import BackgroundProcess


class AssessmentSection:
    """A collapsible section appended to the module panel.

    ``context()`` gives (volume node, model folder); ``show(report, volume_node, badges)`` displays.
    """

    def __init__(self, parent_layout, context, show):
        self.segmentationSelector = slicer.qMRMLNodeComboBox()
        self.segmentationSelector.nodeTypes = ["vtkMRMLSegmentationNode"]
        self.segmentationSelector.noneEnabled = True
        self.segmentationSelector.addEnabled = False
        self.segmentationSelector.setMRMLScene(slicer.mrmlScene)
        self.segmentationSelector.toolTip = "A segmentation of the input image from another tool or painted by hand."
        self.runButton, self.statusLabel = add_section(parent_layout, "Assess a segmentation",
                                                       [("Segmentation:", self.segmentationSelector)],
                                                       "Assess this segmentation")
        self.runButton.clicked.connect(self.run)
        self._context, self._show = context, show
        self._process = None

    def run(self):
        with slicer.util.tryWithErrorDisplay("Cannot assess the segmentation.", waitCursor=True):
            volume_node, model = self._context()
            segmentation_node = self.segmentationSelector.currentNode()
            if volume_node is None or segmentation_node is None:
                raise ConfidenceSegError("select the input image and the segmentation to assess")
            folder = pathlib.Path(tempfile.mkdtemp(prefix="ConfidenceSeg-assess-"))
            image, segmentation = slicer_process.write_assessment_input(volume_node, segmentation_node, folder)
            classes = read_config(model).classes
            command = slicer_process.assess_command(Predictions.pythonExecutable(), model, image, segmentation,
                                                    folder / "results", classes[0] if len(classes) == 1 else None)
            self.runButton.enabled = False
            self.statusLabel.text = "Assessing..."
            report_path = folder / "results" / f"{image.stem}.json"
            self._process = BackgroundProcess(command, lambda line: None,
                                              lambda code, errors: self._finished(code, errors, report_path,
                                                                                  volume_node, segmentation_node))

    def _finished(self, exit_code, errors, report_path, volume_node, segmentation_node):
        self.runButton.enabled = True
        if exit_code != 0 or not report_path.is_file():
            self.statusLabel.text = "Assessment failed."
            slicer.util.errorDisplay("Assessment failed.", detailedText=errors)
            return
        report = read_report(report_path, need_segmentation=False)
        badges = slicer_results.frame_badges(report, None)
        self.statusLabel.text = "Done."
        self._show(report, volume_node, badges)
