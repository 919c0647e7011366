"""Recalibration from the Slicer module: the exact command it starts writes a new bundle and leaves
the source model as it was (tiny random-weight model, synthetic labelled discs)."""

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
from ConfidenceSegLib.slicer.process import calibrate_command, subprocess_environment


def hashes(folder):
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())}


def test_recalibration_from_slicer_goes_into_a_new_bundle(tmp_path):
    model = tmp_path / "model"
    make_bundle(model, classes=("disc",), input_size=(32, 48))
    dataset = write_disc_dataset(tmp_path / "discs", n_subjects=4, frames_per_subject=2, seed=2)
    before = hashes(model)
    command = calibrate_command(sys.executable, model, dataset, tmp_path / "new")
    assert command[command.index("--out") + 1] == str(tmp_path / "new") and "--degrade" in command
    done = subprocess.run(command, capture_output=True, encoding="utf-8", errors="replace", env=subprocess_environment(),
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert hashes(model) == before  # the source is never modified
    config = json.loads((tmp_path / "new" / "config.json").read_text())
    assert config["derived_from"] == str(model) and config["quality"]["calibration_data"]["n_cases"] == 8
    assert len(load_bundle(tmp_path / "new").members) == 1
    with pytest.raises(ConfidenceSegError, match="exists"):
        calibrate_command(sys.executable, model, dataset, tmp_path / "new")
    with pytest.raises(ConfidenceSegError, match="exists"):
        calibrate_command(sys.executable, model, dataset, model)
