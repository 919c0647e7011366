"""The bundled model's badge on its calibration cases, and on images where no fetal head exists.

Prints the badge metrics on the 65 validation cases of the bundle's own split (they chose its
checkpoints and calibrated the badge, so these are optimistic) and counts the PASS badges on
images of other organs and modalities in ``../shared/data``: lung ultrasound (every third frame),
neonatal brain MRI and microscopy. A trustworthy badge never passes there.

    python benchmarks/badge_domain.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from ConfidenceSegLib.annotation.datasets import load_dataset
from ConfidenceSegLib.inference.predict import predict_image
from ConfidenceSegLib.model.bundle import load_bundle
from ConfidenceSegLib.quality.apply import assess_segment
from ConfidenceSegLib.quality.evaluation import evaluate_cases

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT.parent / "shared" / "data"
#: Other organs and modalities, and the stride through their cases.
OTHER_DOMAINS = {"lus_pleural": 3, "qubiq_brain_growth": 1, "oocytes_3raters": 1}


def main() -> int:
    bundle = load_bundle(REPO_ROOT / "Resources" / "models" / "fetal_head")
    hc18 = load_dataset(DATA / "hc18")
    validation = hc18.cases_of_subjects(bundle.config["training"]["split"]["validation"]["subject_ids"])
    metrics = evaluate_cases(bundle, hc18, validation, device="cpu", show_progress=False).classes["fetal_head"]
    print(f"| {len(validation)} validation cases (calibrated on them) | value |\n|---|---:|")
    for key, value in metrics["method"].items():
        print(f"| {key} | {value:.4f} |" if isinstance(value, float) else f"| {key} | {value} |")
    print("\n| images without a fetal head | images | PASS |\n|---|---:|---:|")
    for name, stride in OTHER_DOMAINS.items():
        cases = load_dataset(DATA / name).cases[::stride]
        passes = 0
        for case in cases:
            prediction = predict_image(bundle, case.read_image(), device="cpu")
            settings = {"method": prediction.method, "samples": prediction.samples}
            result = assess_segment(bundle.config["quality"], "fetal_head", prediction.classes[0].summary,
                                    settings=settings)
            passes += result["badge"] == "PASS"
        print(f"| {name} | {len(cases)} | {passes} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
