"""``confidenceseg assess`` with known answers: the reference mask of an HC18 image the bundled model
never used, a heavily eroded copy, an empty mask, and masks that do not fit the image."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import REPO_ROOT, dataset_dir
from scipy import ndimage

from ConfidenceSegLib.cli import main
from ConfidenceSegLib.io.segfile import write_segmentation
from ConfidenceSegLib.io.segments import Segment
from ConfidenceSegLib.quality.metrics import dice

BUNDLED = REPO_ROOT / "Resources" / "models" / "fetal_head"


@pytest.fixture(scope="module")
def unseen_case(tmp_path_factory):
    if not (BUNDLED / "config.json").is_file():
        pytest.skip("the bundled fetal_head model is not in this checkout")
    hc18 = dataset_dir("hc18")
    config = json.loads((BUNDLED / "config.json").read_text(encoding="utf-8"))
    test_subjects = config["training"]["split"]["test"]["subject_ids"]
    folder = tmp_path_factory.mktemp("assess")
    cases = json.loads((hc18 / "dataset.json").read_text(encoding="utf-8"))["cases"]
    case = next(c for c in cases if c["subject"] in test_subjects
                and model_passes(hc18 / c["image"], folder / c["subject"]))
    image = sitk.ReadImage(str(hc18 / case["image"]))
    reference = sitk.GetArrayFromImage(sitk.ReadImage(str(hc18 / case["labels"]["fetal_head"]))) > 0
    return hc18 / case["image"], image, reference, folder


def model_passes(image_path, out) -> bool:
    """Whether the model's own segmentation of an image gets PASS: agreement rates a given mask
    against the model's, so the known answers below need an image the model segments well (the
    first test image, hc18-000, is the model's worst: Dice 0.71)."""
    assert main(["predict", "--model", str(BUNDLED), "--input", str(image_path), "--out", str(out)]) == 0
    report = json.loads(next(out.glob("*.json")).read_text(encoding="utf-8"))
    return report["classes"]["fetal_head"]["badge"] == "PASS"


def write_mask(folder, name, mask, image):
    path = folder / f"{name}.nrrd"
    out = sitk.GetImageFromArray(mask.astype(np.uint8))
    out.CopyInformation(image)
    sitk.WriteImage(out, str(path))
    return path


def assess(image_path, seg, out, *extra):
    code = main(["assess", "--model", str(BUNDLED), "--image", str(image_path), "--seg", str(seg), "--out", str(out),
                 *extra])
    return code, (json.loads(next(out.glob("*.json")).read_text(encoding="utf-8")) if code == 0 else None)


def test_the_reference_mask_rates_high_and_an_eroded_one_low(unseen_case, capsys):
    image_path, image, reference, folder = unseen_case
    seg = folder / "reference.seg.nrrd"
    write_segmentation(seg, [Segment(name="head outline", mask=reference, color=(1, 0, 0))], image)
    code, report = assess(image_path, seg, folder / "good", "--class", "fetal_head")
    assert code == 0 and report["assessed_segmentation"] == str(seg)
    good = report["classes"]["fetal_head"]
    assert good["predicted_dice"] >= 0.85 and good["reasons"] and "agreement" in good["methods"]
    radius = np.sqrt(reference.sum() / np.pi)  # eroded by 30% of the equivalent radius: about half the area
    eroded = ndimage.binary_erosion(reference, iterations=int(0.3 * radius))
    true_dice = dice(eroded, reference)
    assert true_dice < 0.75
    code, report = assess(image_path, write_mask(folder, "eroded", eroded, image), folder / "eroded")
    bad = report["classes"]["fetal_head"]
    assert bad["badge"] == "REVIEW" and (bad["predicted_dice"] is None
                                         or bad["predicted_dice"] < good["predicted_dice"] - 0.1)
    assert "fetal_head REVIEW" in capsys.readouterr().out


def test_an_empty_mask_is_review_and_a_mask_on_another_grid_is_refused(unseen_case, capsys):
    image_path, image, reference, folder = unseen_case
    code, report = assess(image_path, write_mask(folder, "empty", np.zeros_like(reference), image), folder / "empty")
    empty = report["classes"]["fetal_head"]
    assert code == 0 and empty["badge"] == "REVIEW" and empty["reasons"][0]["code"] == "given_mask_empty"
    small = sitk.GetImageFromArray(reference[::2, ::2].astype(np.uint8))
    sitk.WriteImage(small, str(folder / "half.nrrd"))
    assert main(["assess", "--model", str(BUNDLED), "--image", str(image_path), "--seg", str(folder / "half.nrrd"),
                 "--out", str(folder / "half")]) == 2
    error = capsys.readouterr().err
    assert "segmentation" in error and "Traceback" not in error and len(error.strip().splitlines()) == 1
    assert not (folder / "half").exists()  # nothing left behind
    assert main(["assess", "--model", str(BUNDLED), "--image", str(image_path), "--seg", str(folder / "nope.nrrd"),
                 "--out", str(folder / "x")]) == 2
    assert "file not found" in capsys.readouterr().err


def test_rca_rates_the_reference_above_a_shifted_copy(unseen_case):
    image_path, image, reference, folder = unseen_case
    shifted = np.roll(reference, 40, axis=1)
    code, good = assess(image_path, write_mask(folder, "ref2", reference, image), folder / "rca_good",
                        "--method", "both")
    code_bad, bad = assess(image_path, write_mask(folder, "shifted", shifted, image), folder / "rca_bad",
                           "--method", "rca")
    assert code == code_bad == 0
    rca_good, rca_bad = good["classes"]["fetal_head"]["methods"]["rca"], bad["classes"]["fetal_head"]["methods"]["rca"]
    assert len(rca_good["per_reference"]) >= 3
    assert rca_good["predicted_dice"] > rca_bad["predicted_dice"] + 0.1
    assert bad["classes"]["fetal_head"]["badge"] == "REVIEW"
    both = good["classes"]["fetal_head"]
    assert both["badge"] == ("PASS" if rca_good["badge"] == good["classes"]["fetal_head"]["methods"]["agreement"][
        "badge"] == "PASS" else "REVIEW")
