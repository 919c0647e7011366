"""The Slicer module's background process without Qt: progress lines, the device probe, missing
requirements, and a prediction run in a subprocess then loaded into a real MRML scene (slicer-core)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
from slicer_scene import make_image, scene_with_logics
from tiny_bundles import make_bundle

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")

from ConfidenceSegLib.contract import ConfidenceSegError  # noqa: E402
from ConfidenceSegLib.io import segfile  # noqa: E402
from ConfidenceSegLib.slicer import mrml  # noqa: E402
from ConfidenceSegLib.slicer.process import (  # noqa: E402
    device_probe_command,
    find_report,
    missing_requirements,
    parse_progress,
    predict_command,
    subprocess_environment,
    write_prediction_input,
)
from ConfidenceSegLib.slicer.results import load_prediction  # noqa: E402
from ConfidenceSegLib.slicer.storage import image_from_volume  # noqa: E402


@pytest.fixture()
def scene():
    return scene_with_logics()


def test_progress_lines_are_parsed_and_other_output_ignored():
    progress = parse_progress('{"stage": "predict", "fraction": 0.4, "message": "frame 2 of 5"}\n')
    assert (progress.stage, progress.fraction, progress.message) == ("predict", 0.4, "frame 2 of 5")
    assert parse_progress('{"stage": "x", "fraction": 1.7}').fraction == 1.0
    for line in ("Loading model...", "{not json", '{"message": "no stage"}', ""):
        assert parse_progress(line) is None


def test_device_probe_runs_in_a_subprocess_from_any_folder(tmp_path):
    from ConfidenceSegLib.model.devices import describe_device, pick_device

    result = subprocess.run(device_probe_command(sys.executable), capture_output=True, encoding="utf-8", timeout=120,
                            cwd=tmp_path, env=subprocess_environment({"PATH": "/usr/bin:/bin"}))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == describe_device(pick_device("auto"))


def test_missing_requirements_lists_only_absent_distributions(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# comment\nnumpy>=1.0\nSimpleITK\nconfidenceseg-no-such-package>=2 ; python_version>'3'\n"
                            "numpy>=999\nscipy ; python_version<'3'\n")
    assert missing_requirements(requirements) == ["confidenceseg-no-such-package>=2 ; python_version>'3'",
                                                  "numpy>=999"]  # absent, or too old; markers respected


def test_predict_in_a_subprocess_then_load_in_the_scene(scene, tmp_path):
    """The Segment flow without Qt: write the volume, run predict --progress json, load its outputs."""
    from ConfidenceSegLib.cli import COMMANDS

    if "predict" not in COMMANDS:
        pytest.skip("the predict command is not registered yet")
    image = make_image(shape=(40, 56))
    volume = mrml.add_volume_from_image(scene, image, "my image #1")
    input_path = write_prediction_input(volume, tmp_path)
    assert input_path.name == "my_image_1.nrrd"
    written = sitk.ReadImage(str(input_path))
    assert written.GetDimension() == 2 and written.GetSize() == image.GetSize()
    np.testing.assert_allclose(written.GetOrigin(), image.GetOrigin())
    out_dir = tmp_path / "results"
    out_dir.mkdir()
    with pytest.raises(ConfidenceSegError, match="expected one prediction report"):
        find_report(out_dir)
    make_bundle(tmp_path / "model", classes=("fetal_head",), input_size=(32, 48))
    command = predict_command(sys.executable, tmp_path / "model", input_path, out_dir, "mcdropout", 3)
    result = subprocess.run(command, capture_output=True, encoding="utf-8", timeout=300, cwd=tmp_path,
                            env=subprocess_environment())
    assert result.returncode == 0, result.stderr
    stages = [p.stage for p in map(parse_progress, result.stdout.splitlines()) if p is not None]
    assert stages and stages[-1] == "done"
    loaded = load_prediction(scene, find_report(out_dir), volume_node=volume, color_logic=scene.color_logic)
    assert loaded.report.samples == 3
    assert loaded.volume_node is volume
    assert sorted(loaded.heatmap_nodes) == ["fetal_head"]
    segments = mrml.read_segments(loaded.segmentation_node, image)
    assert [s.class_name for s in segments] == ["fetal_head"]
    np.testing.assert_array_equal(segments[0].mask, segfile.read_segmentation(out_dir / "my_image_1.seg.nrrd",
                                                                              image)[0].mask)
    entropy = sitk.GetArrayFromImage(image_from_volume(loaded.heatmap_nodes["fetal_head"]))
    assert entropy.shape == segments[0].mask.shape and 0 <= entropy.min() <= entropy.max() <= 1
    with pytest.raises(ConfidenceSegError, match="unknown method"):
        predict_command(sys.executable, "m", input_path, out_dir, method="dropout")

