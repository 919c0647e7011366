"""The Slicer module's logic against the real MRML classes of slicer-core (no Slicer, no Qt)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import dataset_dir
from slicer_scene import load_seg_nrrd_in_scene, make_image, scene_with_logics

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")

from ConfidenceSegLib.annotation.datasets import load_dataset  # noqa: E402
from ConfidenceSegLib.contract import (  # noqa: E402
    BADGE_TAG,
    CLASS_TAG,
    CONFIDENCE_TAG,
    DICE_LOWER_BOUND_TAG,
    PREDICTED_DICE_TAG,
    STATUS_TAG,
    ConfidenceSegError,  # noqa: E402
)
from ConfidenceSegLib.io import segfile  # noqa: E402
from ConfidenceSegLib.io.images import write_image  # noqa: E402
from ConfidenceSegLib.io.segments import Segment  # noqa: E402
from ConfidenceSegLib.outputs.report import PredictionReport, report_json  # noqa: E402
from ConfidenceSegLib.outputs.review_table import read_review_table  # noqa: E402
from ConfidenceSegLib.quality.verdict import ClassResult, Reason, Verdict  # noqa: E402
from ConfidenceSegLib.slicer import mrml  # noqa: E402
from ConfidenceSegLib.slicer.annotation import (  # noqa: E402
    AnnotatedCase,
    annotated_classes,
    enforce_level_exclusivity,
    export_dataset,
    import_raters,
    level_segments,
    observe_segment_edits,
    select_or_create_level_segment,
)
from ConfidenceSegLib.slicer.results import (  # noqa: E402
    badge_text,
    flag_review_segments,
    heatmap_node,
    inferno_color_node,
    load_prediction,
    remove_prediction,
    segment_badges,
    setup_heatmap_display,
)
from ConfidenceSegLib.slicer.storage import (  # noqa: E402
    load_segmentation,
    load_volume,
    save_segmentation,
)


@pytest.fixture()
def scene():
    return scene_with_logics()


def rect(shape, rows, cols) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[rows, cols] = True
    return mask


def paint(segmentation_node, segment_id, mask, reference):
    """Replace a segment's labelmap with ``mask``, as a Segment Editor effect does."""
    scratch = segmentation_node.GetScene().AddNewNodeByClass("vtkMRMLSegmentationNode")
    (scratch_id,) = mrml.add_segments(scratch, [Segment("stroke", mask)], reference)
    labelmap = slicer.vtkOrientedImageData()
    scratch.GetBinaryLabelmapRepresentation(scratch_id, labelmap)
    slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
        labelmap, segmentation_node, segment_id, slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE)
    segmentation_node.GetScene().RemoveNode(scratch)


def new_annotation(scene, image):
    volume = mrml.add_volume_from_image(scene, image, "image")
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "annotation")
    node.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    return volume, node


def test_palette_creates_each_level_once_with_confidence_metadata(scene):
    _, node = new_annotation(scene, make_image())
    certain = select_or_create_level_segment(node, "head", 1.0)
    likely = select_or_create_level_segment(node, "head", 0.75)
    other_class = select_or_create_level_segment(node, "skull", 0.75)
    assert select_or_create_level_segment(node, "head", 1.0) == certain
    assert len({certain, likely, other_class}) == 3
    assert node.GetSegmentation().GetNumberOfSegments() == 3
    assert level_segments(node, "head") == {certain: 1.0, likely: 0.75}
    assert annotated_classes(node) == ["head", "skull"]
    segment = node.GetSegmentation().GetSegment(likely)
    assert segment.GetName() == "head @ 75%"
    assert mrml.segment_tags(segment) == {CLASS_TAG: "head", CONFIDENCE_TAG: "0.75"}
    # paler colour for the lower level of the same class
    certain_color = node.GetSegmentation().GetSegment(certain).GetColor()
    assert np.ptp(segment.GetColor()) < np.ptp(certain_color)
    with pytest.raises(ConfidenceSegError, match="confidence levels"):
        select_or_create_level_segment(node, "head", 1.5)
    with pytest.raises(ConfidenceSegError, match="invalid class name"):
        select_or_create_level_segment(node, "a|b", 0.5)


def test_painting_a_level_removes_that_area_from_the_other_levels_of_its_class_only(scene):
    image = make_image()
    shape = sitk.GetArrayViewFromImage(image).shape
    _, node = new_annotation(scene, image)
    certain = select_or_create_level_segment(node, "head", 1.0)
    likely = select_or_create_level_segment(node, "head", 0.75)
    skull = select_or_create_level_segment(node, "skull", 1.0)
    first = rect(shape, slice(2, 12), slice(3, 20))
    second = rect(shape, slice(8, 20), slice(10, 28))
    paint(node, likely, first, image)
    paint(node, skull, first, image)
    edits = []
    tag = observe_segment_edits(node, edits.append)
    paint(node, certain, second, image)  # the user paints "certain" over part of "likely"
    node.GetSegmentation().RemoveObserver(tag)
    assert certain in edits
    assert enforce_level_exclusivity(node, certain) == [likely]
    assert enforce_level_exclusivity(node, certain) == []  # already exclusive
    np.testing.assert_array_equal(mrml.segment_mask(node, certain, image), second)
    np.testing.assert_array_equal(mrml.segment_mask(node, likely, image), first & ~second)
    np.testing.assert_array_equal(mrml.segment_mask(node, skull, image), first)  # other class untouched
    confidence = mrml.read_confidence_map(node, "head", image)
    assert set(np.unique(confidence)) == {0.0, 0.75, 1.0}
    assert confidence[second].min() == 1.0


def test_rater_import_gives_the_fraction_of_raters(scene):
    case = load_dataset(dataset_dir("oocytes_3raters")).cases[0]
    image = case.read_image()
    volume = load_volume(scene, case.image_path, "image")
    raters = [load_volume(scene, path, path.stem, labelmap=True) for path in case.rater_paths]
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "annotation")
    node.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    select_or_create_level_segment(node, "oocyte", 0.5)  # replaced by the import
    ids = import_raters(node, "oocyte", raters, image)
    assert sorted(level_segments(node, "oocyte")) == sorted(ids)
    expected = case.confidence_map("oocyte", image)
    np.testing.assert_allclose(mrml.read_confidence_map(node, "oocyte", image), expected, atol=1e-6)
    assert np.count_nonzero((expected > 0) & (expected < 1)) > 0  # raters disagree somewhere
    with pytest.raises(ConfidenceSegError, match="at least 2"):
        import_raters(node, "oocyte", raters[:1], image)


def test_heatmap_display_uses_inferno_fixed_window_and_lower_threshold(scene):
    volume = mrml.add_volume_from_image(scene, make_image(), "entropy")
    color = inferno_color_node(scene, scene.color_logic)
    assert inferno_color_node(scene) is color  # found again without loading twice
    display = setup_heatmap_display(volume, color, lower_threshold=0.2)
    assert display.GetColorNodeID() == color.GetID()
    assert color.GetNumberOfColors() == 256
    dark, bright = [0.0] * 4, [0.0] * 4
    color.GetColor(0, dark)
    color.GetColor(255, bright)
    assert sum(dark[:3]) < 0.1 < 2.5 < sum(bright[:3])  # inferno: black to pale yellow
    assert not display.GetAutoWindowLevel()
    assert (display.GetWindowLevelMin(), display.GetWindowLevelMax()) == pytest.approx((0.0, 1.0))
    assert display.GetApplyThreshold()
    assert display.GetLowerThreshold() == pytest.approx(0.2)
    with pytest.raises(ConfidenceSegError, match="threshold"):
        setup_heatmap_display(volume, color, lower_threshold=1.0)


def write_prediction(folder, image, with_status=True):
    """Outputs in the format of ``confidenceseg predict``, written with the library's writers."""
    shape = sitk.GetArrayViewFromImage(image).shape
    write_image(image, folder / "case.nrrd")
    classes = {"head": ("PASS", 0.93, 0.88), "skull": ("REVIEW", 0.71, 0.55)}
    segments, report_classes = [], {}
    for number, (name, (badge, dice, bound)) in enumerate(classes.items()):
        mask = rect(shape, slice(2 + 5 * number, 12 + 5 * number), slice(4, 20))
        tags = {CLASS_TAG: name, PREDICTED_DICE_TAG: repr(dice), DICE_LOWER_BOUND_TAG: repr(bound), BADGE_TAG: badge}
        status = "flagged" if badge == "REVIEW" and with_status else None
        segments.append(Segment(name, mask, (0.9, 0.2, 0.1 * number), tags, status, id=name))
        files = {}
        for kind in ("probability", "entropy", "mutual_information"):
            values = sitk.GetImageFromArray(np.linspace(0, 1, mask.size, dtype=np.float32).reshape(shape))
            values.CopyInformation(image)
            files[kind] = f"case_{name}_{kind}.nrrd"
            write_image(values, folder / files[kind])
        why = Reason("lower_bound_above_threshold" if badge == "PASS" else "lower_bound_below_threshold",
                     f"lower bound {bound:.2f}")
        report_classes[name] = ClassResult(name, True, {}, Verdict(badge, dice, bound, (why,)), files=files)
    segfile.write_segmentation(folder / "case.seg.nrrd", segments, image)
    report = PredictionReport("case.nrrd", "m", "mcdropout", 8, "cpu", report_classes, segmentation="case.seg.nrrd")
    (folder / "case.json").write_text(json.dumps(report_json(report)))
    return folder / "case.json"


def test_a_result_from_a_temporary_folder_is_saved_with_the_scene_and_removed_whole(scene, tmp_path):
    image = make_image()
    user_volume = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "mine")
    (tmp_path / "review").mkdir()
    (tmp_path / "run").mkdir()
    kept = load_prediction(scene, write_prediction(tmp_path / "review", image, with_status=False),
                           color_logic=scene.color_logic)
    shown = load_prediction(scene, write_prediction(tmp_path / "run", image), volume_node=user_volume,
                            color_logic=scene.color_logic, temporary=True)
    assert shown.segmentation_node.GetModifiedSinceRead() and shown.heatmap_nodes["head"].GetModifiedSinceRead()
    assert not kept.heatmap_nodes["head"].GetModifiedSinceRead()  # files the user keeps: nothing to save again
    assert kept.owns_volume and not shown.owns_volume
    before = scene.GetNumberOfNodes()
    remove_prediction(scene, shown)
    assert scene.IsNodePresent(user_volume), "the user's own image went with the result"
    assert not any(scene.IsNodePresent(node) for node in shown.nodes()[1:])
    assert scene.GetNumberOfNodes() == before - len(shown.nodes())
    remove_prediction(scene, kept)
    assert not any(scene.IsNodePresent(node) for node in kept.nodes())


def test_loading_predict_outputs_gives_segments_badges_flags_and_heatmaps(scene, tmp_path):
    image = make_image()
    report = write_prediction(tmp_path, image)
    loaded = load_prediction(scene, report, color_logic=scene.color_logic, lower_threshold=0.3)
    segmentation = loaded.segmentation_node.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == 2
    # the input image (relative to the report's folder) was loaded on its own geometry
    np.testing.assert_allclose(mrml.image_from_volume_node(loaded.volume_node).GetOrigin()[:2], image.GetOrigin())
    statuses = {segmentation.GetNthSegmentID(i): mrml.segment_tags(segmentation.GetNthSegment(i)).get(STATUS_TAG)
                for i in range(2)}
    assert statuses == {"head": None, "skull": "flagged"}
    assert [b.badge for b in segment_badges(loaded.segmentation_node)] == ["PASS", "REVIEW"]
    assert [b.text() for b in loaded.badges] == ["head: PASS (Dice 0.93, >= 0.88)",
                                                 "skull: REVIEW (Dice 0.71, >= 0.55): lower bound 0.55"]
    assert badge_text(loaded.badges).count("\n") == 1
    assert sorted(loaded.heatmap_nodes) == ["head", "skull"]
    heatmap = loaded.heatmap_nodes["skull"]
    assert heatmap.GetDisplayNode().GetLowerThreshold() == pytest.approx(0.3)
    np.testing.assert_allclose(mrml.image_from_volume_node(heatmap).GetSpacing()[:2], image.GetSpacing())
    np.testing.assert_array_equal(mrml.segment_mask(loaded.segmentation_node, "skull", image),
                                  segfile.read_segmentation(tmp_path / "case.seg.nrrd", image)[1].mask)
    with pytest.raises(ConfidenceSegError, match="unknown heatmap"):
        load_prediction(scene, report, heatmap="variance")
    # switching class and map kind loads that map once, then reuses its node
    color = inferno_color_node(scene, scene.color_logic)
    probability = heatmap_node(scene, loaded, "head", "probability", color, 0.3)
    assert probability is not heatmap_node(scene, loaded, "head", "entropy", color)
    assert heatmap_node(scene, loaded, "head", "probability", color) is probability
    assert heatmap_node(scene, loaded, "skull", "entropy", color) is heatmap
    assert heatmap_node(scene, loaded, "brain", "entropy", color) is None


def test_review_badges_are_flagged_even_when_the_file_has_no_status(scene, tmp_path):
    image = make_image()
    write_prediction(tmp_path, image, with_status=False)
    node = load_segmentation(scene, tmp_path / "case.seg.nrrd")
    assert flag_review_segments(node) == ["skull"]
    assert mrml.segment_tags(node.GetSegmentation().GetSegment("skull")).get(STATUS_TAG) == "flagged"
    assert STATUS_TAG not in mrml.segment_tags(node.GetSegmentation().GetSegment("head"))


def test_review_table_puts_review_cases_first_and_finds_their_reports(tmp_path):
    rows = [("a", "head", "0.95", "0.90", "PASS", "a.json"), ("b", "head", "0.70", "0.60", "REVIEW", "b.json"),
            ("c", "head", "", "", "ABSENT", "c.json"), ("d", "head", "0.80", "0.50", "REVIEW", "d.json")]
    with (tmp_path / "review.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["case", "class", "predicted_dice", "dice_lower_bound", "badge", "json"])
        writer.writerows(rows)
    table = read_review_table(tmp_path)
    assert [row.case for row in table] == ["d", "b", "c", "a"]
    assert table[0].report_path == tmp_path / "d.json"
    assert table[2].predicted_dice is None
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "review.csv").write_text("case,badge\nx,PASS\n")
    with pytest.raises(ConfidenceSegError, match="lacks the column"):
        read_review_table(tmp_path / "bad")


def test_export_writes_a_dataset_that_load_dataset_reads_back(scene, tmp_path):
    image = make_image()
    shape = sitk.GetArrayViewFromImage(image).shape
    volume, node = new_annotation(scene, image)
    paint(node, select_or_create_level_segment(node, "head", 0.5), rect(shape, slice(0, 10), slice(0, 10)), image)
    paint(node, select_or_create_level_segment(node, "head", 1.0), rect(shape, slice(4, 8), slice(4, 8)), image)
    cases = [AnnotatedCase("case1", volume, node, subject="patient1")]
    export_dataset(tmp_path / "out", cases, ["head", "skull"], "exported")
    dataset = load_dataset(tmp_path / "out")
    assert dataset.classes == ("head", "skull")
    (case,) = dataset.cases
    assert case.subject == "patient1"
    reread = case.read_image()
    assert reread.GetDimension() == 2
    np.testing.assert_allclose(reread.GetSpacing(), image.GetSpacing())
    np.testing.assert_allclose(reread.GetOrigin(), image.GetOrigin())
    np.testing.assert_allclose(case.confidence_map("head", reread), mrml.read_confidence_map(node, "head", image))
    assert set(np.unique(case.confidence_map("head", reread))) == {0.0, 0.5, 1.0}
    assert not case.confidence_map("skull", reread).any()  # a class nobody painted is absent
    with pytest.raises(ConfidenceSegError, match="output exists"):
        export_dataset(tmp_path / "out", cases, ["head"], "exported")


def test_acceptance_module_seg_nrrd_round_trips_in_a_fresh_scene(scene, tmp_path):
    """A .seg.nrrd saved by the module logic loads with every segment, tag and status intact."""
    image = make_image()
    shape = sitk.GetArrayViewFromImage(image).shape
    _, node = new_annotation(scene, image)
    for level, rows in ((1.0, slice(4, 8)), (0.75, slice(8, 12)), (0.5, slice(12, 16))):
        paint(node, select_or_create_level_segment(node, "head", level), rect(shape, rows, slice(2, 30)), image)
    skull = select_or_create_level_segment(node, "skull", 1.0)
    paint(node, skull, rect(shape, slice(0, 20), slice(5, 9)), image)  # overlaps the head layers
    slicer.vtkSlicerSegmentationsModuleLogic.SetSegmentStatus(
        node.GetSegmentation().GetSegment(skull), slicer.vtkSlicerSegmentationsModuleLogic.Flagged)
    expected = mrml.read_segments(node, image)
    path = save_segmentation(node, tmp_path / "annotation.seg.nrrd")
    with pytest.raises(ConfidenceSegError, match="output exists"):
        save_segmentation(node, path)

    _, fresh_node = load_seg_nrrd_in_scene(path)  # a fresh scene, read by vtkMRMLSegmentationStorageNode
    reloaded = mrml.read_segments(fresh_node, image)
    assert [s.name for s in reloaded] == [s.name for s in expected]
    for before, after in zip(expected, reloaded, strict=True):
        assert after.tags == before.tags and after.status == before.status
        np.testing.assert_array_equal(after.mask, before.mask)
    assert [s.status for s in reloaded] == [None, None, None, "flagged"]
    # slicerio (the library's own reader) sees the same segments and tags
    assert [s.tags for s in segfile.read_segmentation(path, image)] == [s.tags for s in expected]
