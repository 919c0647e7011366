"""Ablation: the bundled model's badge calibrated with and without degraded copies of its
calibration images, both evaluated on its unseen test subjects, clean and degraded.

The networks and the 48 calibration subjects are the same; only ``--degrade`` differs. Prints one
table row per calibration and test set (pooled over the 9 image kinds, and clean only).

    python benchmarks/badge_ablation.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from ConfidenceSegLib.annotation.datasets import load_dataset
from ConfidenceSegLib.jobs.calibrate import calibrate_bundle
from ConfidenceSegLib.jobs.evaluate import evaluate_cases
from ConfidenceSegLib.jobs.labelled import LabelledRun
from ConfidenceSegLib.jobs.settings import PredictionSettings
from ConfidenceSegLib.model.bundle import load_bundle
from ConfidenceSegLib.quality.degradations import DEGRADATIONS

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT.parent / "shared" / "data"
BUNDLED = REPO_ROOT / "Resources" / "models" / "fetal_head"


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def main() -> int:
    hc18 = load_dataset(DATA / "hc18")
    split = load_bundle(BUNDLED).config.training["split"]
    cpu = PredictionSettings(device="cpu", maps=())
    test = hc18.cases_of_subjects(split["test"]["subject_ids"])
    with tempfile.TemporaryDirectory() as folder:
        clean_only = Path(folder) / "clean_only"
        calibrate_bundle(BUNDLED, hc18, hc18.cases_of_subjects(split["calibration"]["subject_ids"]), out=clean_only,
                         run=LabelledRun(cpu, show_progress=False))
        for name, path in (("clean only", clean_only), ("clean + degraded (shipped)", BUNDLED)):
            result = evaluate_cases(load_bundle(path), hc18, test, LabelledRun(
                cpu, tuple(DEGRADATIONS), show_progress=False)).classes["fetal_head"]
            for kind, part in (("clean + degraded", result), ("clean", result["by_kind"]["clean"])):
                m = part["method"]
                print(f"| {name} | {kind} | {_fmt(m['pass_rate'])} | {_fmt(m['pass_precision'])} | "
                      f"{_fmt(m['lower_bound_coverage'])} | {_fmt(m['auroc_dice_below_threshold'])} | "
                      f"{_fmt(m['spearman'])} | {_fmt(m['mae_predicted_dice'])} | {m['aurc']:.4f} | "
                      f"{m['e_aurc']:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
