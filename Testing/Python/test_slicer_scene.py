"""The per-case Slicer scene of a review (``S.mrml``), loaded with Slicer's own MRML classes (slicer-core):
image, segmentation and heatmap appear, each volume read as a single file, and no file changes."""

from __future__ import annotations

import hashlib

import pytest
import SimpleITK as sitk
from tiny_bundles import make_bundle, random_image

from ConfidenceSegLib.jobs.review import run_review

slicer = pytest.importorskip("slicer", reason="the slicer-core wheel is not installed")


def hashes(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


def test_a_case_scene_loads_image_segmentation_and_heatmap(tmp_path):
    make_bundle(tmp_path / "model", classes=("organ", "lesion"), input_size=(32, 32))
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    for seed in (1, 2):  # similar names: a series-merging reader would stack them
        sitk.WriteImage(random_image((30, 44), spacing=(0.5, 0.7), seed=seed), str(cohort / f"case{seed}.nrrd"))
    out = tmp_path / "qc"
    run_review(tmp_path / "model", [cohort], out, samples=3, progress=False)
    assert (out / "case1.mrml").is_file() and 'Slicer scene</a>' in (out / "index.html").read_text(encoding="utf-8")
    before = hashes(out) | hashes(cohort)

    scene = slicer.vtkMRMLScene()
    scene.SetURL(str(out / "case1.mrml"))
    assert scene.Connect() == 1
    volumes = {scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode").GetName():
               scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode")
               for i in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode"))}
    assert set(volumes) == {"case1", "case1 organ entropy"}
    for volume in volumes.values():
        assert volume.GetImageData() is not None and volume.GetImageData().GetDimensions() == (44, 30, 1)
    assert volumes["case1"].GetSpacing()[:2] == pytest.approx((0.5, 0.7))
    segmentation = scene.GetFirstNodeByClass("vtkMRMLSegmentationNode")
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 2
    composite = scene.GetSingletonNode("Red", "vtkMRMLSliceCompositeNode")
    assert composite.GetBackgroundVolumeID() == volumes["case1"].GetID()
    assert composite.GetForegroundVolumeID() == volumes["case1 organ entropy"].GetID()
    heatmap_display = volumes["case1 organ entropy"].GetDisplayNode()
    assert heatmap_display.GetApplyThreshold() and heatmap_display.GetLowerThreshold() == pytest.approx(0.1)
    assert hashes(out) | hashes(cohort) == before  # opening the scene changes nothing
