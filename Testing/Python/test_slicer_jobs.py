"""The background jobs the Slicer module starts, run as it runs them: recalibration into a new bundle
(the source model left as it was) and the assessment of a segmentation node (tiny random-weight
model, synthetic labelled discs; slicer-core MRML nodes)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest
from test_training import write_disc_dataset
from tiny_bundles import make_bundle

from ConfidenceSegLib.contract import ConfidenceSegError
from ConfidenceSegLib.model.bundle import load_bundle
from ConfidenceSegLib.slicer.process import (
    assess_command,
    calibrate_command,
    subprocess_environment,
    write_assessment_input,
)


def hashes(folder):
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())}


def test_recalibration_from_slicer_goes_into_a_new_bundle(tmp_path):
    model = tmp_path / "model"
    make_bundle(model, classes=("disc",), input_size=(32, 48))
    dataset = write_disc_dataset(tmp_path / "discs", n_subjects=4, frames_per_subject=2, seed=2)
    before = hashes(model)
    command = calibrate_command(sys.executable, model, dataset, tmp_path / "new")
    assert command[command.index("--out") + 1] == str(tmp_path / "new") and "--degrade" in command
    done = subprocess.run(command, capture_output=True, encoding="utf-8", errors="replace",
                          env=subprocess_environment(), timeout=600)
    assert done.returncode == 0, done.stderr
    assert hashes(model) == before  # the source is never modified
    config = json.loads((tmp_path / "new" / "config.json").read_text(encoding="utf-8"))
    assert config["derived_from"] == str(model) and config["quality"]["calibration_data"]["n_cases"] == 8
    assert len(load_bundle(tmp_path / "new").members) == 1
    with pytest.raises(ConfidenceSegError, match="exists"):
        calibrate_command(sys.executable, model, dataset, tmp_path / "new")
    with pytest.raises(ConfidenceSegError, match="exists"):
        calibrate_command(sys.executable, model, dataset, model)


def test_assessing_a_segmentation_node_runs_assess_on_what_the_module_writes(tmp_path):
    slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")
    import numpy as np
    import SimpleITK as sitk

    from ConfidenceSegLib.io.segments import Segment
    from ConfidenceSegLib.slicer import mrml
    from ConfidenceSegLib.slicer.storage import load_volume

    dataset = write_disc_dataset(tmp_path / "discs", n_subjects=4, frames_per_subject=2, seed=2)
    model = tmp_path / "model"
    make_bundle(model, classes=("disc",), input_size=(32, 48))
    done = subprocess.run(calibrate_command(sys.executable, model, dataset, tmp_path / "calibrated"),
                          capture_output=True, encoding="utf-8", errors="replace", env=subprocess_environment())
    assert done.returncode == 0, done.stderr
    scene = slicer.vtkMRMLScene()
    image_path = dataset / "images" / "s0-f0.nrrd"
    volume = load_volume(scene, image_path, "disc image")
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(dataset / "labels" / "s0-f0_disc.nrrd"))) > 0
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    mrml.add_segments(segmentation, [Segment("painted by hand", mask, (1.0, 0.0, 0.0))],
                      sitk.ReadImage(str(image_path)))
    (tmp_path / "job").mkdir()
    image, seg = write_assessment_input(volume, segmentation, tmp_path / "job")
    command = assess_command(sys.executable, tmp_path / "calibrated", image, seg, tmp_path / "job" / "results", "disc")
    done = subprocess.run(command, capture_output=True, encoding="utf-8", errors="replace",
                          env=subprocess_environment())
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "job" / "results" / f"{image.stem}.json").read_text(encoding="utf-8"))
    assert report["assessed_segmentation"] == str(seg) and report["classes"]["disc"]["present"]
    assert report["classes"]["disc"]["reasons"] and np.isfinite(report["classes"]["disc"]["methods"]["agreement"]
                                                                ["features"]["dice_with_prediction"])
