"""The bundled model's badge on HC18 images it never used, clean and degraded, and on images where
no fetal head exists.

Prints the badge metrics on the test subjects of the bundle's own split (never trained on, never
chose a checkpoint, never calibrated the badge), clean and with every degradation of
``quality.degradations``, and counts the PASS badges (and REVIEW badges without a reason) on images
of other organs and modalities in ``../shared/data``: lung ultrasound (every third frame), neonatal
brain MRI and microscopy. A trustworthy badge never passes there.

    python benchmarks/badge_domain.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from ConfidenceSegLib.annotation.datasets import load_dataset
from ConfidenceSegLib.io.inputs import InputFacts
from ConfidenceSegLib.jobs.evaluate import evaluate_cases
from ConfidenceSegLib.jobs.labelled import LabelledRun
from ConfidenceSegLib.jobs.predict_job import run_prediction
from ConfidenceSegLib.jobs.settings import PredictionSettings
from ConfidenceSegLib.model.bundle import load_bundle
from ConfidenceSegLib.quality.degradations import DEGRADATIONS

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT.parent / "shared" / "data"
#: Other organs and modalities, and the stride through their cases.
OTHER_DOMAINS = {"lus_pleural": 3, "qubiq_brain_growth": 1, "oocytes_3raters": 1}


def main() -> int:
    bundle = load_bundle(REPO_ROOT / "Resources" / "models" / "fetal_head")
    hc18 = load_dataset(DATA / "hc18")
    test = hc18.cases_of_subjects(bundle.config.training["split"]["test"]["subject_ids"])
    cpu = PredictionSettings(device="cpu", maps=())
    result = evaluate_cases(bundle, hc18, test, LabelledRun(cpu, tuple(DEGRADATIONS), show_progress=False)
                            ).classes["fetal_head"]
    kinds = ["pooled", *result["by_kind"]]
    columns = {"pooled": result, **result["by_kind"]}
    print(f"| {len(test)} unseen test images x {len(kinds) - 1} kinds | " + " | ".join(kinds) + " |")
    print("|---|" + "---:|" * len(kinds))
    print("| mean Dice | " + " | ".join(f"{columns[k]['mean_dice']:.3f}" for k in kinds) + " |")
    for key in ("pass_rate", "pass_precision", "lower_bound_coverage", "auroc_dice_below_threshold", "spearman",
                "mae_predicted_dice", "aurc"):
        print(f"| {key} | " + " | ".join(_fmt(columns[k]["method"].get(key)) for k in kinds) + " |")
    print("| AURC mean-entropy baseline | " + " | ".join(
        _fmt(columns[k]["baseline_mean_entropy"]["aurc"]) for k in kinds) + " |")
    print("\n| images without a fetal head | images | PASS | REVIEW without a reason |\n|---|---:|---:|---:|")
    for name, stride in OTHER_DOMAINS.items():
        cases = load_dataset(DATA / name).cases[::stride]
        passes = unexplained = 0
        for case in cases:
            verdict = run_prediction(bundle, InputFacts.of(case.image_path), cpu).classes[0].verdict
            passes += verdict.badge == "PASS"
            unexplained += verdict.badge == "REVIEW" and not verdict.reasons
        print(f"| {name} | {len(cases)} | {passes} | {unexplained} |")
    return 0


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    sys.exit(main())
