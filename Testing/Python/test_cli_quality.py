"""``calibrate`` and ``evaluate`` end to end with a tiny model trained briefly on synthetic discs."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT
from test_training import tiny_options, write_disc_dataset

from ConfidenceSegLib.annotation.datasets import load_dataset
from ConfidenceSegLib.cli import main
from ConfidenceSegLib.inference.predict import predict_image
from ConfidenceSegLib.jobs.calibrate import calibrate_bundle
from ConfidenceSegLib.jobs.labelled import LabelledRun
from ConfidenceSegLib.jobs.settings import PredictionSettings
from ConfidenceSegLib.model.bundle import load_bundle
from ConfidenceSegLib.model.bundle_config import read_config
from ConfidenceSegLib.quality import metrics
from ConfidenceSegLib.training.trainer import train_bundle


@pytest.fixture(scope="module")
def discs(tmp_path_factory):
    root = tmp_path_factory.mktemp("quality")
    torch.set_num_threads(min(2, torch.get_num_threads()))
    labelled = write_disc_dataset(root / "discs", n_subjects=9, frames_per_subject=1, seed=5)
    raters = write_disc_dataset(root / "raters", n_subjects=3, frames_per_subject=1, raters=3, seed=6)
    bundle = root / "bundle"
    train_bundle(tiny_options(labelled, bundle, epochs=2))
    return labelled, raters, bundle


@pytest.mark.slow
def test_calibrate_then_evaluate(discs, tmp_path, capsys):
    labelled, raters, bundle = discs
    assert main(["calibrate", "--model", str(bundle), "--dataset", str(labelled), "--device", "cpu",
                 "--alpha", "0.2", "--threshold", "0.7", "--degrade", "blur", "shadow"]) == 0
    assert "each also degraded (blur, shadow)" in capsys.readouterr().out
    quality = read_config(bundle).quality.data
    assert quality["alpha"] == 0.2 and quality["threshold"] == 0.7
    data = quality["calibration_data"]
    assert (data["dataset"], data["n_cases"], data["n_subjects"], data["n_segments"]) == ("synthetic_discs", 9, 9, 27)
    assert data["degradations"] == ["blur", "shadow"] and len(data["subject_ids"]) == 9
    assert set(quality["classes"]) | set(quality["skipped"]) == {"disc"}
    if "disc" in quality["classes"]:
        model = quality["classes"]["disc"]
        assert set(model["held_out_coverage_by_kind"]) <= {"clean", "blur", "shadow"}
        if model["score_quantile"] is not None:  # the bound is the largest per-kind one
            assert model["score_quantile"] >= model["score_quantile_pooled"]

    out = tmp_path / "eval"
    # every subject was used (training, validation, calibration): the default refuses to evaluate on them
    assert main(["evaluate", "--model", str(bundle), "--dataset", str(labelled), "--out", str(out),
                 "--device", "cpu"]) == 2
    assert "pass --cases all" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(bundle), "--dataset", str(labelled), "--out", str(out),
                 "--device", "cpu", "--cases", "all", "--degrade", "noise"]) == 0
    report = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert report["n_cases"] == 9 and len(report["cases"]) == 18  # each case clean and with noise
    assert set(report["classes"]["disc"]["by_kind"]) == {"clean", "noise"}
    report["cases"] = [row for row in report["cases"] if row["kind"] == "clean"]
    assert report["quality_model"] == {"alpha": 0.2, "threshold": 0.7}
    for row in report["cases"]:
        assert 0 <= row["true_dice"] <= 1
        if row["badge"] in ("PASS", "REVIEW"):
            assert row["badge"] == ("PASS" if row["dice_lower_bound"] >= 0.7 else "REVIEW")
            assert row["dice_lower_bound"] <= row["predicted_dice"]
    disc = report["classes"]["disc"]["by_kind"]["clean"]
    assert disc["n_cases"] == 9
    assert disc["mean_dice"] == pytest.approx(np.mean([row["true_dice"] for row in report["cases"]]))
    for name in report["plots"]:
        assert (out / name).read_bytes().startswith(b"\x89PNG")
    assert "disc_risk_coverage.png" in report["plots"] and "disc_reliability.png" in report["plots"]

    # The true Dice of a case, recomputed independently from a direct prediction and the label file.
    dataset = load_dataset(labelled)
    case = next(c for c in dataset.cases if c.id == report["cases"][0]["case"])
    image = case.read_image()
    prediction = predict_image(load_bundle(bundle), image, device="cpu")
    label = case.confidence_map("disc", image) > 0.5
    assert report["cases"][0]["true_dice"] == pytest.approx(metrics.dice(prediction.classes[0].mask, label))

    # --cases test needs a recorded test split; --limit takes the first N of the selected cases
    assert main(["evaluate", "--model", str(bundle), "--dataset", str(labelled), "--out", str(tmp_path / "t"),
                 "--device", "cpu", "--cases", "test"]) == 2
    assert "no test subjects" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(bundle), "--dataset", str(labelled), "--out", str(tmp_path / "two"),
                 "--device", "cpu", "--cases", "all", "--limit", "2"]) == 0
    two = json.loads((tmp_path / "two" / "metrics.json").read_text(encoding="utf-8"))
    assert two["case_ids"] == [c.id for c in dataset.cases[:2]]

    # Existing outputs are kept unless --overwrite.
    before = (out / "metrics.json").read_bytes()
    assert main(["evaluate", "--model", str(bundle), "--dataset", str(raters), "--out", str(out),
                 "--device", "cpu"]) == 2
    assert "output exists" in capsys.readouterr().err
    assert (out / "metrics.json").read_bytes() == before
    assert main(["evaluate", "--model", str(bundle), "--dataset", str(raters), "--out", str(out),
                 "--device", "cpu", "--overwrite", "--cases", "all"]) == 0  # same name and subject IDs
    multi = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["classes"]["disc"]
    assert 0 <= multi["qubiq_soft_dice_mean"] <= 1
    assert multi["ece_pooled"] is not None and 0 <= multi["ece_pooled"] <= 1


@pytest.mark.slow
def test_calibrate_bundle_on_chosen_cases_and_clear_errors(discs, tmp_path, capsys):
    labelled, _, bundle = discs
    dataset = load_dataset(labelled)
    quality = calibrate_bundle(bundle, dataset, cases=dataset.cases[:6], alpha=0.1, threshold=0.8,
                               run=LabelledRun(PredictionSettings(device="cpu", maps=()), show_progress=False))
    assert quality["calibration_data"]["n_cases"] == 6
    for model in quality["classes"].values():  # 6 cases: ceil(7 * 0.9) = 7 > 6, no finite quantile
        assert model["score_quantile"] is None
    assert read_config(bundle).quality.data == json.loads(json.dumps(quality))

    other = tmp_path / "other"
    other.mkdir()
    (other / "dataset.json").write_text(json.dumps({"classes": ["liver"], "cases": []}))
    assert main(["calibrate", "--model", str(bundle), "--dataset", str(other)]) == 2
    assert "no labelled cases" in capsys.readouterr().err
    (other / "dataset.json").write_text(json.dumps(
        {"classes": ["liver"], "cases": [{"id": "a", "image": "images/s0-f0.nrrd"}]}))
    assert main(["evaluate", "--model", str(bundle), "--dataset", str(other), "--out", str(tmp_path / "o")]) == 2
    assert "nothing in common" in capsys.readouterr().err


def folder_hashes(folder) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())}


def test_calibrate_into_a_new_bundle_leaves_the_source_untouched(discs, tmp_path, capsys):
    labelled, _, bundle = discs
    before = folder_hashes(bundle)
    new = tmp_path / "recalibrated"
    assert main(["calibrate", "--model", str(bundle), "--dataset", str(labelled), "--out", str(new),
                 "--alpha", "0.3", "--samples", "4"]) == 0
    assert folder_hashes(bundle) == before
    config = read_config(new)
    assert config.quality.alpha == 0.3 and config.data["derived_from"] == str(bundle)
    assert load_bundle(new).members and config.members == read_config(bundle).members
    assert main(["calibrate", "--model", str(bundle), "--dataset", str(labelled), "--out", str(new)]) == 2
    assert "output exists" in capsys.readouterr().err


def test_the_bundled_model_is_never_calibrated_in_place(discs, capsys):
    labelled, _, _ = discs
    bundled = REPO_ROOT / "Resources" / "models" / "fetal_head"
    if not bundled.is_dir():
        pytest.skip("no bundled model in this checkout")
    before = folder_hashes(bundled)
    assert main(["calibrate", "--model", "fetal_head", "--dataset", str(labelled)]) == 2
    assert "never modified" in capsys.readouterr().err
    assert folder_hashes(bundled) == before
