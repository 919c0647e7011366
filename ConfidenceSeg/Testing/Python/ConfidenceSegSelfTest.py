"""Slicer self-test of the ConfidenceSeg module: the GUI flow on the bundled HC18 sample.

Runs inside 3D Slicer (CTest in a Slicer build, or the Python console):
annotate with the confidence palette, import raters, export a dataset, segment in the background
process, load a batch QC folder, and save/reload the scene with the module state.
"""

import importlib.util
import tempfile
import time
from pathlib import Path

import numpy as np
import qt
import slicer
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleTest

from ConfidenceSegLib.annotation.datasets import load_dataset
from ConfidenceSegLib.contract import BADGE_TAG, REVIEW_COLUMNS, ConfidenceSegError, Key
from ConfidenceSegLib.io.resources import default_model_dir, sample_images
from ConfidenceSegLib.outputs.review_table import review_csv, rows_from_report
from ConfidenceSegLib.slicer import annotation as slicer_annotation
from ConfidenceSegLib.slicer.mrml import segment_tags

PREDICTION_TIMEOUT_S = 300


class ConfidenceSegSelfTest(ScriptedLoadableModuleTest):
    def setUp(self):
        slicer.mrmlScene.Clear()
        self.tempDir = Path(tempfile.mkdtemp(prefix="ConfidenceSegSelfTest-"))
        slicer.util.selectModule("ConfidenceSeg")
        self.widget = slicer.util.getModuleWidget("ConfidenceSeg")
        self.ui = self.widget.ui
        self.image = slicer.util.loadVolume(str(sample_images()[0]))
        self.widget.initializeParameterNode()
        self.widget._parameterNode.inputVolume = self.image

    def runTest(self):
        self.setUp()
        self.test_annotate_palette_exclusivity_raters_export()
        self.setUp()
        self.test_segment_and_review()
        self.setUp()
        self.test_state_survives_scene_save_and_load()

    def paint(self, segmentationNode, segmentId, rows, columns):
        mask = np.zeros(slicer.util.arrayFromVolume(self.image).shape, dtype=np.uint8)
        mask[0, rows, columns] = 1
        slicer.util.updateSegmentBinaryLabelmapFromArray(mask, segmentationNode, segmentId, self.image)
        slicer.app.processEvents()  # exclusivity runs right after the edit

    def paletteButton(self, text):
        return next(b for b in self.ui.paletteFrame.findChildren(qt.QPushButton) if b.text.startswith(text))

    def test_annotate_palette_exclusivity_raters_export(self):
        self.ui.classNameLineEdit.text = "fetal_head"
        self.paletteButton("likely").click()
        annotation = self.widget._parameterNode.annotation
        likely = self.ui.segmentEditorWidget.currentSegmentID()
        self.assertEqual(segment_tags(annotation.GetSegmentation().GetSegment(likely))["ConfidenceSeg.Confidence"],
                         "0.75")
        self.paint(annotation, likely, slice(40, 120), slice(40, 200))
        self.paletteButton("certain").click()
        certain = self.ui.segmentEditorWidget.currentSegmentID()
        self.assertNotEqual(certain, likely)
        self.paint(annotation, certain, slice(80, 160), slice(100, 260))
        likelyArray = slicer.util.arrayFromSegmentBinaryLabelmap(annotation, likely, self.image)
        certainArray = slicer.util.arrayFromSegmentBinaryLabelmap(annotation, certain, self.image)
        self.assertGreater(likelyArray.sum(), 0)
        self.assertEqual(int(np.logical_and(likelyArray, certainArray).sum()), 0)

        labels = sorted((sample_images()[0].parent / "labels").glob("*.nrrd"))[:1]
        raters = [slicer.util.loadLabelVolume(str(labels[0])) for _ in range(2)]
        shifted = slicer.util.arrayFromVolume(raters[1])
        shifted[:] = np.roll(shifted, 10, axis=-1)
        slicer.util.arrayFromVolumeModified(raters[1])
        for rater in raters:
            self.ui.raterNodesComboBox.setCheckState(rater, qt.Qt.Checked)
        self.ui.importRatersButton.click()
        levels = sorted(slicer_annotation.level_segments(annotation, "fetal_head").values())
        self.assertEqual(levels, [0.5, 1.0])

        self.widget._parameterNode.exportDirectory = self.tempDir / "dataset"
        self.ui.exportButton.click()
        dataset = load_dataset(self.tempDir / "dataset")
        confidence = dataset.cases[0].confidence_map("fetal_head")
        self.assertEqual(sorted(np.unique(confidence).tolist()), [0.0, 0.5, 1.0])

    def test_segment_and_review(self):
        try:
            default_model_dir()
        except ConfidenceSegError as error:
            self.skipTest(str(error))
        if importlib.util.find_spec("torch") is None:  # never installed from a test (it would download GBs)
            self.skipTest("torch is not installed: install it with the PyTorch Utils module to run this part")
        self.widget._parameterNode.samples = 4
        self.ui.runButton.click()
        self.assertTrue(self.widget.logic.isRunning())
        self.assertTrue(self.ui.cancelButton.enabled)
        deadline = time.time() + PREDICTION_TIMEOUT_S
        while self.widget.logic.isRunning() and time.time() < deadline:
            slicer.app.processEvents()
            time.sleep(0.05)
        slicer.app.processEvents()
        self.assertFalse(self.widget.logic.isRunning(), "prediction did not finish in time")
        self.assertEqual(self.ui.statusLabel.text, "Done.")
        result = self.widget._parameterNode.result
        heatmap = self.widget._parameterNode.heatmapVolume
        self.assertIsNotNone(result)
        self.assertIsNotNone(heatmap)
        display = heatmap.GetDisplayNode()
        self.assertEqual(display.GetColorNodeID(), "vtkMRMLColorTableNodeFileInferno.txt")
        self.assertTrue(display.GetApplyThreshold())
        composite = slicer.app.layoutManager().sliceWidget("Red").mrmlSliceCompositeNode()
        self.assertEqual(composite.GetForegroundVolumeID(), heatmap.GetID())
        segmentation = result.GetSegmentation()
        for index in range(segmentation.GetNumberOfSegments()):
            tags = segment_tags(segmentation.GetNthSegment(index))
            if tags.get(BADGE_TAG) == "REVIEW":
                self.assertEqual(tags.get("Segmentation.Status"), "flagged")
        self.assertTrue(self.ui.badgeLabel.text)

        shown = self.widget.logic.shown
        report = shown.report
        review = self.tempDir / "review"
        review.mkdir()
        for path in shown.folder.iterdir():  # the run's folder goes when another result is shown
            (review / path.name).write_bytes(path.read_bytes())
        rows = rows_from_report(report.stem, report)
        (review / "review.csv").write_text(review_csv(rows))  # as `confidenceseg review` writes it
        self.assertEqual(tuple(rows[0]), REVIEW_COLUMNS)
        self.widget._parameterNode.reviewFolder = review
        self.ui.openReviewButton.click()
        self.assertEqual(self.ui.reviewTable.rowCount, len(report.classes))
        self.widget.onReviewRowClicked(0, 0)  # as a click on the first row does
        self.assertIsNotNone(self.widget._parameterNode.heatmapVolume)
        self.assertNotEqual(self.widget._parameterNode.heatmapVolume.GetID(), heatmap.GetID())
        self.assertIn(rows[0][Key.CLASS], self.widget.logic.shown.report.classes)

    def test_state_survives_scene_save_and_load(self):
        parameters = self.widget._parameterNode
        parameters.className = "fetal_head"
        parameters.heatmapOpacity = 0.35
        parameters.method = "tta"
        scenePath = self.tempDir / "scene.mrb"
        self.assertTrue(slicer.util.saveScene(str(scenePath)))
        slicer.mrmlScene.Clear()
        slicer.util.loadScene(str(scenePath))
        restored = self.widget.logic.getParameterNode()
        self.assertEqual(restored.className, "fetal_head")
        self.assertAlmostEqual(restored.heatmapOpacity, 0.35)
        self.assertEqual(restored.method, "tta")
        self.assertEqual(restored.inputVolume.GetName(), self.image.GetName())
