"""The badge shown in a slice view follows the frame the view shows (real slicer-core MRML nodes)."""

from __future__ import annotations

import json

import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")
vtk = pytest.importorskip("vtk")

from ConfidenceSegLib.outputs.report import PredictionReport, report_from_json, report_json  # noqa: E402
from ConfidenceSegLib.quality.verdict import ClassResult, FrameResult, Reason, Verdict  # noqa: E402
from ConfidenceSegLib.slicer.results import frame_at_slice, frame_badges  # noqa: E402


def stack_volume(scene, frames: int = 16):
    image = vtk.vtkImageData()
    image.SetDimensions(40, 30, frames)
    image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
    node.SetAndObserveImageData(image)
    node.SetSpacing(0.2, 0.2, 1.5)
    node.SetOrigin(-4.0, -3.0, 10.0)
    return node


def axial_slice(scene, offset: float):
    node = scene.AddNewNodeByClass("vtkMRMLSliceNode")
    node.SetOrientation("Axial")
    node.SetSliceOffset(offset)
    return node


def report(frames: int = 16) -> PredictionReport:
    """A stack's report as the writer makes it: frame 7 REVIEW, the others PASS."""
    def verdict(k):
        return Verdict("REVIEW" if k == 7 else "PASS", 0.5 if k == 7 else 0.95, 0.3 if k == 7 else 0.9,
                       (Reason("x", f"frame {k} reason"),))

    per_frame = [{"fetal_head": FrameResult(True, verdict(k), {"ellipse_circumference_mm": {
        "value": 100.0 + k, "p05": 99.0 + k, "p95": 101.0 + k}})} for k in range(frames)]
    whole = ClassResult("fetal_head", True, {}, Verdict("REVIEW", 0.5, 0.3, (Reason("frames_need_review", "1 of 16"),)))
    written = PredictionReport("stack.nrrd", "model", "ensemble", 3, "cpu", {"fetal_head": whole},
                               segmentation="stack.seg.nrrd", frames=per_frame)
    return report_from_json(json.loads(json.dumps(report_json(written))))  # as read back from S.json


def test_the_slice_offset_selects_the_frame_and_its_badge():
    scene = slicer.vtkMRMLScene()
    volume = stack_volume(scene)
    # RAS z of frame k: origin 10 + 1.5 k (the volume's IJK-to-RAS flips x and y, not z)
    assert frame_at_slice(volume, axial_slice(scene, 10.0 + 1.5 * 7)) == 7
    assert frame_at_slice(volume, axial_slice(scene, 10.0 + 1.5 * 7 + 0.6)) == 7  # nearest frame
    assert frame_at_slice(volume, axial_slice(scene, 10.0 + 1.5 * 15)) == 15
    assert frame_at_slice(volume, axial_slice(scene, 10.0 - 3.0)) is None  # before the first frame
    sagittal = axial_slice(scene, 0.0)
    sagittal.SetOrientation("Sagittal")
    assert frame_at_slice(volume, sagittal) is None  # not across the frames
    shown = frame_badges(report(), 7)[0]
    assert shown.badge == "REVIEW" and "frame 7 reason" in shown.text() and "107.0 mm" in shown.text()
    assert frame_badges(report(), 3)[0].badge == "PASS"
    assert frame_badges(report(), None)[0].text().startswith("fetal_head: REVIEW")


def test_the_panel_text_has_the_frame_counts():
    from ConfidenceSegLib.quality.reasons import frame_counts
    from ConfidenceSegLib.slicer.results import Badge

    counts = frame_counts({"PASS": 14, "REVIEW": 2, "ABSENT": 0, "worst_frame": 3})
    assert counts == "frames 14 PASS, 2 REVIEW, 0 ABSENT" and frame_counts(None) == ""
    text = Badge("fetal_head", "REVIEW", 0.7, 0.5, "2 of 16 frames need review", "circumference 1 mm (1-2)",
                 counts).text()
    assert text.endswith("; circumference 1 mm (1-2); frames 14 PASS, 2 REVIEW, 0 ABSENT")


def test_structure_badges_put_the_ones_to_review_first_and_count_them():
    from ConfidenceSegLib.contract import ABSENT, PASS, REVIEW
    from ConfidenceSegLib.outputs.report import PredictionReport
    from ConfidenceSegLib.quality.verdict import ClassResult, Reason, Verdict
    from ConfidenceSegLib.slicer.results import badges_summary, structure_badges

    verdicts = {"liver": Verdict(PASS, 0.95, 0.9, (Reason("lower_bound_above_threshold", "ok"),)),
                "pancreas": Verdict(REVIEW, 0.7, 0.5, (Reason("lower_bound_below_threshold", "low"),)),
                "spleen": Verdict(ABSENT, reasons=(Reason("absent", "not found"),)),
                "kidney": Verdict(REVIEW, 0.85, 0.75, (Reason("lower_bound_below_threshold", "low"),))}
    classes = {name: ClassResult(name, name != "spleen", {}, verdict) for name, verdict in verdicts.items()}
    report = PredictionReport("in.nii.gz", "model", "ensemble", 5, "cpu", classes)
    badges = structure_badges(report)
    assert [badge.class_name for badge in badges] == ["pancreas", "kidney", "spleen", "liver"]
    assert badges_summary(badges) == "4 structures: 2 REVIEW, 1 ABSENT, 1 PASS"
