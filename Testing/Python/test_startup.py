"""Start-up: building the parser, --help and argument or missing-file errors load no heavy module.

Heavy modules (torch, MONAI, scikit-learn, VTK, SimpleITK, numpy, ...) load only when a command
needs them, so that ``confidenceseg --help`` and a mistyped path answer at once. The times
themselves are measured in ``benchmarks/startup.py`` (never asserted here).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO_ROOT

from ConfidenceSegLib.cli.console import ERROR_HANDLER, make_console_safe

HEAVY = ("torch", "monai", "sklearn", "vtk", "SimpleITK", "numpy", "scipy", "matplotlib", "slicerio", "nrrd",
         "safetensors", "skimage", "PIL", "tqdm")
BUNDLED = str(REPO_ROOT / "Resources" / "models" / "fetal_head")


def loaded_heavy_modules(argv: list[str] | None) -> tuple[list[str], int]:
    """Run ``main(argv)`` (or only build the parser) in a fresh interpreter; the heavy modules it loaded."""
    code = ("import json, sys\n"
            "from ConfidenceSegLib.cli import build_parser, main\n"
            f"argv = {argv!r}\n"
            "code = 0\n"
            "if argv is None:\n"
            "    build_parser()\n"
            "else:\n"
            "    try:\n"
            "        code = main(argv)\n"
            "    except SystemExit as exit:\n"
            "        code = exit.code\n"
            f"print(json.dumps([sorted(m for m in {HEAVY!r} if m in sys.modules), code]))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, encoding="utf-8", timeout=120)
    assert result.returncode == 0, result.stderr
    modules, code = json.loads(result.stdout.strip().splitlines()[-1])
    return modules, code


@pytest.mark.parametrize("argv", [
    None, ["--help"], ["--version"], ["predict", "--help"], ["review", "--help"], ["train", "--help"],
    ["predict", "--model", BUNDLED, "--input", "/no/such/image.nrrd", "--out", "/tmp/unused"],
    ["review", "--model", BUNDLED, "--inputs", "/no/such/folder", "--out", "/tmp/unused"],
    ["quickstart", "--image", "/no/such/image.nrrd"],
    ["predict", "--model", "/no/such/model", "--input", "/no/such/image.nrrd", "--out", "/tmp/unused"],
    ["predict", "--method", "bogus"],
    ["confidence", "--seg", "/no/such.seg.nrrd", "--class", "x", "--map-out", "/tmp/unused.nrrd"],
], ids=lambda argv: "build_parser" if argv is None else " ".join(argv[:2]) + ("" if len(argv) < 3 else " ..."))
def test_no_heavy_module_before_it_is_needed(argv):
    modules, code = loaded_heavy_modules(argv)
    assert modules == [], f"loaded {modules}"
    if argv and "--help" not in argv and "--version" not in argv:
        assert code == 2


def test_the_check_sees_a_heavy_import():
    modules, _ = loaded_heavy_modules(["confidence", "--raters", "/no/such.nrrd", "--class", "x", "--out", "x.nrrd"])
    assert modules == []
    modules, code = loaded_heavy_modules(["evaluate", "--model", BUNDLED, "--dataset", str(REPO_ROOT),
                                          "--out", "/tmp/x"])
    assert code == 2 and "numpy" in modules  # reading dataset.json needs numpy: the check does see imports


def test_an_ascii_console_gets_the_line_not_a_traceback(tmp_path):
    """Under an ASCII locale (Python's UTF-8 mode off) an error naming a non-ASCII file is one line, exit 2."""
    ascii_locale = {"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0", "PYTHONIOENCODING": ""}
    image = "/no/such/Müller.nrrd".encode()  # what a UTF-8 file system passes; the ASCII locale cannot decode it
    result = subprocess.run([sys.executable, "-m", "ConfidenceSegLib", "predict", "--model", BUNDLED, "--input",
                             image, "--out", str(tmp_path)], capture_output=True, timeout=120,
                            env={**{k: v for k, v in os.environ.items() if not k.startswith("LC_")}, **ascii_locale})
    assert result.returncode == 2, result.stderr.decode("ascii", "replace")
    assert result.stderr.decode("ascii").strip().endswith("/no/such/M\\xc3\\xbcller.nrrd"), result.stderr


def test_the_product_s_units_get_their_ascii_spelling():
    make_console_safe()
    assert "volume 4880 mm³ ± 12, ≥ 0.8 ü".encode("ascii", ERROR_HANDLER) == b"volume 4880 mm3 +/- 12, >= 0.8 \\xfc"
