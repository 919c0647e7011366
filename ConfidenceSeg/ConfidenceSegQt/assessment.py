"""The Assess section: a quality badge for a segmentation the model did not make.

Pick a segmentation node (painted by hand or loaded from another tool) over the input image and
**Assess this segmentation**: the logic writes both to a temporary folder and runs ``confidenceseg
assess`` with the selected model in a background ``PythonSlicer`` process (agreement with the model's
prediction; see the command's help). The result is shown like a prediction's: the badges in the panel
and in every slice view (per frame for stacks). The dependencies are checked first, as for a prediction.
"""

import slicer

from .panel import add_section


class AssessmentSection:
    """A collapsible section appended to the module panel.

    ``context()`` gives (volume node, model folder) or raises; ``prepare()`` installs what is missing (False:
    declined); ``show(report, volume_node)`` displays a result.
    """

    def __init__(self, parent_layout, logic, context, prepare, show):
        self.segmentationSelector = slicer.qMRMLNodeComboBox()
        self.segmentationSelector.nodeTypes = ["vtkMRMLSegmentationNode"]
        self.segmentationSelector.noneEnabled = True
        self.segmentationSelector.addEnabled = False
        self.segmentationSelector.setMRMLScene(slicer.mrmlScene)
        self.segmentationSelector.toolTip = "A segmentation of the input image from another tool or painted by hand."
        self.runButton, self.statusLabel = add_section(parent_layout, "Assess a segmentation",
                                                       [("Segmentation:", self.segmentationSelector)],
                                                       "Assess this segmentation")
        self.runButton.connect("clicked(bool)", self.run)
        self._logic, self._context, self._prepare, self._show = logic, context, prepare, show

    def run(self):
        with slicer.util.tryWithErrorDisplay("Cannot assess the segmentation.", waitCursor=True):
            volume_node, model = self._context()
            if not self._prepare():
                return
            self._logic.startAssessment(volume_node, self.segmentationSelector.currentNode(), model,
                                        lambda report, errors: self._finished(report, errors, volume_node))
            self.runButton.enabled = False
            self.statusLabel.text = "Assessing..."

    def reset(self, text=""):
        """After a cancel (closed scene, module cleanup): the button is usable again."""
        self.runButton.enabled = True
        self.statusLabel.text = text

    def _finished(self, report, errors, volume_node):
        self.reset()
        if errors:
            self.statusLabel.text = "Assessment failed."
            slicer.util.errorDisplay("Assessment failed.", detailedText=errors)
            return
        self.statusLabel.text = "Done."
        self._show(report, volume_node)
