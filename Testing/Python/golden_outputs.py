"""Reference outputs of the bundled model on the bundled samples, to hold a refactoring to "behaviour unchanged".

``python Testing/Python/golden_outputs.py`` (re)writes ``fixtures/golden/``: the comparable part of each
``S.json`` and ``review.csv`` that ``confidenceseg review`` writes for the three bundled HC18 samples, a
3-frame stack (a 2D model run frame by frame) and a PNG copy (no physical spacing). Run it only when a
change of the results is intended, and say why in the commit. ``test_golden_outputs.py`` compares.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "fixtures" / "golden"
SAMPLES = HERE.parents[1] / "Resources" / "SampleData"
#: Report entries that depend on the machine, the run or the folder, not on the method.
VOLATILE_KEYS = ("input", "model", "device", "timings")


def write_inputs(folder: Path) -> list[Path]:
    """The bundled samples, a 3-frame stack of the first (itself, shifted, mirrored) and a PNG copy."""
    folder.mkdir(parents=True, exist_ok=True)
    samples = sorted(SAMPLES.glob("hc18-*.nrrd"))
    image = sitk.ReadImage(str(samples[0]))
    array = sitk.GetArrayFromImage(image)
    stack = sitk.GetImageFromArray(np.stack([array, np.roll(array, 25, axis=1), array[:, ::-1]]))
    stack.SetSpacing((*image.GetSpacing(), 1.0))
    sitk.WriteImage(stack, str(folder / "stack3.nrrd"))
    sitk.WriteImage(sitk.Cast(sitk.ReadImage(str(samples[1])), sitk.sitkUInt8), str(folder / "plain.png"))
    return [*samples, folder / "stack3.nrrd", folder / "plain.png"]


def comparable_report(path: Path) -> dict:
    report = json.loads(path.read_text(encoding="utf-8"))
    return {key: value for key, value in report.items() if key not in VOLATILE_KEYS}


def comparable_table(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def run_review(inputs: list[Path], out: Path) -> None:
    from ConfidenceSegLib.cli import main

    code = main(["review", "--model", "fetal_head", "--inputs", *map(str, inputs), "--out", str(out)])
    if code != 0:
        raise SystemExit(f"review failed with exit code {code}")


def collect(out: Path) -> dict[str, object]:
    """Every comparable output of a review folder, by file name."""
    found: dict[str, object] = {"review.csv": comparable_table(out / "review.csv")}
    for report in sorted(out.glob("*.json")):
        found[report.name] = comparable_report(report)
    return found


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        run_review(write_inputs(scratch / "inputs"), scratch / "out")
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for name, content in collect(scratch / "out").items():
            (GOLDEN / f"{name}.golden.json").write_text(json.dumps(content, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN}", file=sys.stderr)
