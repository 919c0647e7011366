"""``confidenceseg predict``: every output and its report, quality tags, progress, bad input, SIGTERM and SIGINT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import SimpleITK as sitk
from tiny_bundles import make_bundle, random_image

from ConfidenceSegLib.cli import main
from ConfidenceSegLib.contract import (
    BADGE_TAG,
    CLASS_REPORT_KEYS,
    CLASS_TAG,
    DICE_LOWER_BOUND_TAG,
    MAP_KINDS,
    PREDICTED_DICE_TAG,
    REPORT_KEYS,
    Key,
    prediction_file_names,
)
from ConfidenceSegLib.inference.predict import predict_image
from ConfidenceSegLib.inference.uncertainty import SUMMARY_KEYS
from ConfidenceSegLib.io.images import read_image, same_geometry
from ConfidenceSegLib.io.segfile import read_segmentation
from ConfidenceSegLib.model.bundle import update_config
from ConfidenceSegLib.model.bundle_config import read_config
from ConfidenceSegLib.outputs.report import read_report
from ConfidenceSegLib.quality.apply import assess_segment
from ConfidenceSegLib.quality.fit import QualityRecord, fit_quality_model

CLASSES = ["organ", "lesion"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "tiny"
    make_bundle(path, classes=CLASSES)
    return path


@pytest.fixture(scope="module")
def calibrated_model(tmp_path_factory):
    """A tiny bundle with a quality model fitted on its own predictions (made-up true Dice values)."""
    path = tmp_path_factory.mktemp("models") / "calibrated"
    bundle = make_bundle(path, classes=CLASSES)
    rng = np.random.default_rng(0)
    records = []
    for case in range(8):
        prediction = predict_image(bundle, random_image((40, 48), seed=100 + case), samples=4, device="cpu")
        records += [QualityRecord(result.name, f"subject-{case}", result.summary, float(rng.uniform(0.5, 1.0)))
                    for result in prediction.classes]
    update_config(path, {"quality": fit_quality_model(records)})
    return path


def write(image: sitk.Image, path) -> str:
    sitk.WriteImage(image, str(path))
    return str(path)


def test_writes_every_output_on_the_input_grid(model, tmp_path, capsys):
    image_2d = write(random_image((40, 56), spacing=(0.3, 0.4), origin=(5.0, -3.0)), tmp_path / "scan.nrrd")
    stack = write(random_image((3, 30, 36), spacing=(0.5, 0.5, 1.0)), tmp_path / "clip.nii.gz")
    out = tmp_path / "out"
    assert main(["predict", "--model", str(model), "--input", image_2d, stack, "--out", str(out),
                 "--samples", "4", "--maps", ",".join(MAP_KINDS)]) == 0
    assert "wrote" in capsys.readouterr().out
    expected = sorted(prediction_file_names("scan", CLASSES, maps=MAP_KINDS) +
                      prediction_file_names("clip", CLASSES, maps=MAP_KINDS))
    assert sorted(p.name for p in out.iterdir()) == expected  # nothing else (no staging leftovers)
    for stem, source in (("scan", image_2d), ("clip", stack)):
        reference = read_image(source)
        report = json.loads((out / f"{stem}.json").read_text(encoding="utf-8"))
        stack = stem == "clip"  # a 3D stack given to a 2D model: predicted slice by slice
        assert tuple(report) == REPORT_KEYS + ((Key.FRAMES,) if stack else ())
        assert report[Key.SLICE_BY_SLICE] is stack
        assert all(tuple(result) == CLASS_REPORT_KEYS + ((Key.FRAMES_SUMMARY,) if stack else ())
                   for result in report["classes"].values())
        if stack:
            assert [frame["index"] for frame in report[Key.FRAMES]] == [0, 1, 2]
            assert all(set(frame["classes"]) == set(CLASSES) for frame in report[Key.FRAMES])
        assert report["method"] == "mcdropout" and report["samples"] == 4 and report["device"] == "cpu"
        assert report["segmentation"] == f"{stem}.seg.nrrd" and report["input"] == source
        assert set(report["timings"]) >= {"inference_s", "write_s"}
        segments = read_segmentation(out / report["segmentation"], reference)
        assert [s.tags[CLASS_TAG] for s in segments] == CLASSES
        for segment in segments:
            result = report["classes"][segment.name]
            assert tuple(result["uncertainty"]) == SUMMARY_KEYS
            assert result["present"] == bool(segment.mask.any())
            assert result["uncertainty"]["volume_voxels"] == segment.mask.sum()
            assert result["badge"] is None and result["predicted_dice"] is None  # no quality model
            for kind in MAP_KINDS:
                assert result["files"][kind] == f"{stem}_{segment.name}_{kind}.nrrd"
                written = read_image(out / result["files"][kind])
                assert same_geometry(written, reference)
            probability = sitk.GetArrayFromImage(read_image(out / result["files"]["probability"]))
            np.testing.assert_array_equal(segment.mask, probability >= 0.5)
    assert main(["predict", "--model", str(model), "--input", image_2d, "--out", str(out)]) == 2
    assert "output exists" in capsys.readouterr().err


def test_quality_fields_and_flags(calibrated_model, tmp_path):
    image = write(random_image((40, 48), seed=7), tmp_path / "case.nrrd")
    out = tmp_path / "out"
    assert main(["predict", "--model", str(calibrated_model), "--input", image, "--out", str(out),
                 "--samples", "4"]) == 0
    report = read_report(out / "case.json")
    quality = read_config(calibrated_model).quality
    segments = {s.name: s for s in read_segmentation(out / "case.seg.nrrd", read_image(image))}
    for name, result in report.classes.items():
        verdict = result.verdict
        assert verdict.badge in ("PASS", "REVIEW", "ABSENT")
        expected = assess_segment(quality, name, result.uncertainty, used=(report.method, report.samples))
        assert (verdict.badge, verdict.reasons) == (expected.badge, expected.reasons)
        assert (verdict.predicted_dice, verdict.dice_lower_bound) == pytest.approx(
            (expected.predicted_dice, expected.dice_lower_bound))
        tags = segments[name].tags
        assert tags[BADGE_TAG] == verdict.badge
        if verdict.predicted_dice is not None:
            assert float(tags[PREDICTED_DICE_TAG]) == pytest.approx(verdict.predicted_dice, abs=1e-4)
            assert float(tags[DICE_LOWER_BOUND_TAG]) == pytest.approx(verdict.dice_lower_bound, abs=1e-4)
        assert (segments[name].status == "flagged") == (verdict.badge == "REVIEW")


def test_json_progress_lines(model, tmp_path, capsys):
    image = write(random_image((5, 30, 36)), tmp_path / "clip.nrrd")
    assert main(["predict", "--model", str(model), "--input", image, "--out", str(tmp_path / "out"),
                 "--progress", "json", "--method", "tta"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all(set(line) == {"stage", "fraction", "message"} for line in lines)
    fractions = [line["fraction"] for line in lines]
    assert fractions == sorted(fractions) and fractions[0] >= 0 and fractions[-1] == 1.0
    assert {"predict", "write"} <= {line["stage"] for line in lines} and lines[-1]["stage"] == "done"


def _four_d(path):
    image = sitk.Image([4, 5, 6, 2], sitk.sitkFloat32)
    return write(image, path / "bad.nrrd")


def _two_channels(path):
    return write(sitk.GetImageFromArray(np.ones((8, 9, 2), np.float32), isVector=True), path / "bad.nrrd")


def _nan(path):
    array = np.ones((8, 9), np.float32)
    array[1, 1] = np.nan
    return write(sitk.GetImageFromArray(array), path / "bad.nrrd")


def _not_an_image(path):
    (path / "bad.nrrd").write_text("this is not an image")
    return str(path / "bad.nrrd")


BAD_INPUTS = {"4D": (_four_d, "4D"), "channels": (_two_channels, "2 channels per pixel"), "NaN": (_nan, "NaN"),
              "corrupt": (_not_an_image, "cannot read image")}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_gives_a_clear_error_and_no_output(model, tmp_path, capsys, name):
    make, message = BAD_INPUTS[name]
    out = tmp_path / "out"
    assert main(["predict", "--model", str(model), "--input", make(tmp_path), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("confidenceseg: error:") and message in error
    assert not out.exists() or not any(out.iterdir())


def test_model_problems_give_a_clear_error_and_no_output(model, tmp_path, capsys):
    volume_model = tmp_path / "tiny3d"
    make_bundle(volume_model, spatial_dims=3, classes=CLASSES)
    image = write(random_image((30, 30)), tmp_path / "img.nrrd")
    out = tmp_path / "out"
    assert main(["predict", "--model", str(volume_model), "--input", image, "--out", str(out)]) == 2
    assert "3D model" in capsys.readouterr().err
    broken = tmp_path / "broken"
    make_bundle(broken, classes=CLASSES)
    (broken / "member_0.safetensors").unlink()
    assert main(["predict", "--model", str(broken), "--input", image, "--out", str(out)]) == 2
    assert "weight file member_0.safetensors is missing" in capsys.readouterr().err
    assert main(["predict", "--model", str(tmp_path / "nowhere"), "--input", image, "--out", str(out)]) == 2
    assert "model not found" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_stops_within_a_second_without_partial_output(tmp_path, stop_signal):
    model = tmp_path / "model"
    make_bundle(model, classes=CLASSES, input_size=(96, 96))
    done = write(random_image((20, 24)), tmp_path / "first.nrrd")
    slow = write(random_image((24, 120, 120)), tmp_path / "second.nrrd")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "ConfidenceSegLib", "predict", "--model", str(model), "--input", done, slow,
               "--out", str(out), "--samples", "40", "--progress", "json", "--device", "cpu"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding="utf-8",
                               env=dict(os.environ, OMP_NUM_THREADS="1"))
    try:
        for line in process.stdout:  # wait until the second input is being predicted
            record = json.loads(line)
            if record["stage"] == "predict" and record["fraction"] > 0.5:
                break
        else:
            pytest.fail(f"no progress from the second input: {process.stderr.read()}")
        signalled = time.monotonic()
        process.send_signal(stop_signal)
        remaining, errors = process.communicate(timeout=10)
        elapsed = time.monotonic() - signalled
    finally:
        process.kill()
    assert process.returncode == 130, errors
    assert elapsed < 1.0, f"took {elapsed:.2f} s to stop"
    assert json.loads(remaining.splitlines()[-1])["stage"] == "stopped"
    assert sorted(p.name for p in out.iterdir()) == sorted(prediction_file_names("first", CLASSES))  # first kept, whole


def test_spacing_gives_an_image_without_one_its_pixel_size(calibrated_model, tmp_path):
    array = sitk.GetArrayFromImage(random_image((40, 48), seed=7))
    png = write(sitk.GetImageFromArray(np.clip(array, 0, 255).astype(np.uint8)), tmp_path / "case.png")
    runs = {}
    for name, extra in (("pixels", []), ("given", ["--spacing", "0.25", "0.5"])):
        assert main(["predict", "--model", str(calibrated_model), "--input", png, "--out", str(tmp_path / name),
                     "--samples", "4", *extra]) == 0
        runs[name] = read_report(tmp_path / name / "case.json")
    pixels, given = runs["pixels"], runs["given"]
    assert pixels.spacing == {"mm": [1.0, 1.0], "source": "none"}
    assert given.spacing == {"mm": [0.25, 0.5], "source": "--spacing"}
    assert read_image(tmp_path / "given" / "case.seg.nrrd").GetSpacing()[:2] == (0.25, 0.5)
    for name, result in given.classes.items():
        codes = [reason.code for reason in pixels.classes[name].verdict.reasons]
        assert "no_spacing" in codes and "--spacing SX SY" in pixels.classes[name].verdict.reasons[
            codes.index("no_spacing")].message
        assert "no_spacing" not in [reason.code for reason in result.verdict.reasons]
        if result.present:  # the same mask, measured in mm: an area in px times 0.25 * 0.5 mm²
            assert result.measurements["area_mm2"]["value"] == pytest.approx(
                pixels.classes[name].measurements["area_px"]["value"] * 0.125, rel=1e-3)


def test_spacing_keeps_an_image_s_own_and_refuses_impossible_sizes(model, tmp_path, capsys):
    image = write(random_image((24, 28), spacing=(0.3, 0.4)), tmp_path / "case.nrrd")
    assert main(["predict", "--model", str(model), "--input", image, "--out", str(tmp_path / "out"),
                 "--samples", "2", "--spacing", "2", "2"]) == 0
    assert read_report(tmp_path / "out" / "case.json").spacing == {"mm": [0.3, 0.4], "source": "image"}
    with pytest.raises(SystemExit) as stop:
        main(["predict", "--model", str(model), "--input", image, "--out", str(tmp_path / "o2"), "--spacing", "0", "1"])
    assert stop.value.code == 2 and "2 or 3 positive sizes" in capsys.readouterr().err
