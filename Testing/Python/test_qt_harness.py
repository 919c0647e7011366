"""The Slicer module's Qt layer on a real PythonQt and CTKAppLauncher: runs ``Testing/QtHarness`` inside
the PythonQt host that ``Testing/prepare.sh`` builds (one test per file there)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import REPO_ROOT

HARNESS = Path(os.environ.get("CONFIDENCESEG_QT_HARNESS", Path.home() / ".cache" / "confidenceseg" / "qt-harness"))
HOST = HARNESS / "bin" / "qt-python-host"
HARNESS_TESTS = sorted((REPO_ROOT / "Testing" / "QtHarness").glob("test_*.py"))


@pytest.mark.skipif(not HOST.is_file(), reason=f"the PythonQt harness is not built at {HARNESS}: run "
                    "`bash Testing/prepare.sh` (the README's test command does; CONFIDENCESEG_QT_HARNESS moves it)")
@pytest.mark.parametrize("test_file", HARNESS_TESTS, ids=[path.stem for path in HARNESS_TESTS])
def test_under_real_pythonqt(test_file, tmp_path):
    result = subprocess.run([str(HOST), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp",
                             str(tmp_path / "basetemp"), str(test_file)], cwd=REPO_ROOT, capture_output=True,
                            encoding="utf-8", errors="replace", timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    assert " passed" in result.stdout and " skipped" not in result.stdout, result.stdout[-2000:]
