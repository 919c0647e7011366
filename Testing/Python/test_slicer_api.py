"""Every Slicer, Qt, CTK and PyTorchUtils name the Slicer module uses exists in the oldest supported
Slicer release: a renamed or misspelt API fails here, without Slicer (fixture: names with the file of
Slicer's own source, at the release it names, that defines or uses them)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import REPO_ROOT
from slicer_api_names import module_names, used_names

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "slicer_api.json").read_text(encoding="utf-8"))


def test_every_slicer_api_name_the_module_uses_is_in_the_oldest_supported_release():
    used = module_names(REPO_ROOT / "ConfidenceSeg")
    assert len(used) > 30  # the reader found the module's calls
    unknown = sorted(used - set(FIXTURE["names"]))
    assert not unknown, (f"not in Slicer {FIXTURE['slicer_release']} (per the fixture): {unknown}; if they exist "
                         "there, rebuild the fixture with Testing/Python/fixtures/make_slicer_api.py")


def test_the_reader_sees_calls_imports_and_the_torch_logic_and_would_catch_a_misspelling():
    source = ("import slicer, qt\nfrom slicer.util import VTKObservationMixin\nimport PyTorchUtils\n"
              "logic = PyTorchUtils.PyTorchUtilsLogic()\nlogic.installTorch()\n"
              "slicer.util.loadVolumez('x')\ntimer = qt.QTimer()\n")
    found = used_names(source)
    assert {"slicer.util.loadVolumez", "qt.QTimer", "slicer.util.VTKObservationMixin",
            "PyTorchUtils.PyTorchUtilsLogic.installTorch"} <= found
    assert "slicer.util.loadVolumez" not in FIXTURE["names"] and "slicer.util.loadVolume" in FIXTURE["names"]
