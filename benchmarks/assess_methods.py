"""Quality of given masks: the agreement assessment against simple baselines, on perturbed masks of
images a model never used (its test subjects), with known true Dice; on a multi-rater set also each
single rater's mask assessed against the majority (a real, non-synthetic case).

Each test image's reference mask is assessed as it is and after each realistic perturbation
(``quality.perturbations``: erosion, dilation, shift, missing part, spurious blob, a rater's
boundary). Methods: ``agreement`` (the calibrated regressor of ``confidenceseg assess``), ``rca``
(reverse classification accuracy against the bundle's reference masks, with its conformal bound),
``both`` (PASS only when both pass), the raw ``dice_with_prediction`` feature, and the mean-entropy
baseline (the model's entropy inside the given mask, lower = better). Prints Spearman, MAE (where a
method predicts a Dice), AUROC for Dice < 0.8, PASS rate and precision, and the time per case.

    python benchmarks/assess_methods.py                      # the bundled model on HC18
    python benchmarks/assess_methods.py --model M --dataset ../shared/data/qubiq_brain_growth
    python benchmarks/assess_methods.py --model M --dataset ../shared/data/lus_pleural --class rib_shadow
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ConfidenceSegLib.annotation.datasets import load_dataset
from ConfidenceSegLib.contract import reference_mask
from ConfidenceSegLib.inference.predict import predict_image
from ConfidenceSegLib.jobs.assess import combined, rca_result
from ConfidenceSegLib.model.bundle import load_bundle
from ConfidenceSegLib.quality import metrics
from ConfidenceSegLib.quality.agreement import agreement_features
from ConfidenceSegLib.quality.apply import assess_segment
from ConfidenceSegLib.quality.perturbations import PERTURBATIONS, perturb

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT.parent / "shared" / "data"


def given_masks(case, reference, rng):
    """(kind, mask) pairs to assess: the reference, one perturbation per kind, each rater's own mask."""
    masks = [("reference", reference)] + [(kind, perturb(reference, kind, rng)) for kind in PERTURBATIONS]
    return masks + [(f"rater {number + 1}", sitk.GetArrayFromImage(sitk.ReadImage(str(path))) > 0)
                    for number, path in enumerate(case.rater_paths)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(REPO_ROOT / "Resources" / "models" / "fetal_head"))
    parser.add_argument("--dataset", default=str(DATA / "hc18"))
    parser.add_argument("--class", dest="class_name", help="the class to assess (default: the model's first)")
    args = parser.parse_args()
    bundle = load_bundle(args.model)
    class_name = args.class_name or bundle.classes[0]
    if class_name not in bundle.classes:
        parser.error(f"the model has no class {class_name!r} (it has {', '.join(bundle.classes)})")
    index = bundle.classes.index(class_name)
    config = bundle.config.quality.assessment
    dataset = load_dataset(args.dataset)
    cases = dataset.cases_of_subjects(bundle.config.training["split"]["test"]["subject_ids"])
    rng = np.random.default_rng(7)
    rows, seconds = [], []
    rca_seconds = []
    for case in cases:
        started = time.perf_counter()
        image = case.read_image()
        prediction = predict_image(bundle, image, device="cpu")
        used = (prediction.method, prediction.samples)
        reference = reference_mask(case.confidence_map(class_name, image))
        for kind, given in given_masks(case, reference, rng):
            features = agreement_features(given, prediction.classes[index])
            result = assess_segment(config, class_name, features, used=used)
            entropy = prediction.classes[index].entropy[given].mean() if given.any() else 1.0
            rca_started = time.perf_counter()
            pixel_mm = (image.GetSpacing()[1], image.GetSpacing()[0])
            rca, _ = rca_result(config, bundle.path, prediction.classes[index], given, pixel_mm)
            rca_seconds.append(time.perf_counter() - rca_started)
            rows.append({"kind": kind, "true": metrics.dice(given, reference), "agreement": result, "rca": rca,
                         "both": combined(result, rca), "raw": features["dice_with_prediction"],
                         "entropy": -float(entropy)})
        seconds.append(time.perf_counter() - started)
    true = [row["true"] for row in rows]
    print(f"{len(cases)} unseen {dataset.name} images, class {class_name}, {len(rows)} masks; true Dice "
          f"{min(true):.2f}-{max(true):.2f}, {sum(t < 0.8 for t in true)} below 0.8; "
          f"{np.sum(seconds) / len(rows):.2f} s per mask with one prediction per image; RCA "
          f"{np.mean(rca_seconds):.2f} s per mask\n")
    print("| method | Spearman | MAE | AUROC (Dice < 0.8) | PASS rate | PASS precision | bound coverage |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for method in ("agreement", "rca", "both"):
        predicted = [row[method].predicted_dice or 0.0 for row in rows]
        bounds = [row[method].dice_lower_bound or 0.0 for row in rows]
        badges = [row[method].badge for row in rows]
        print(f"| {method} (calibrated) | {_fmt(metrics.spearman(predicted, true))} | "
              f"{_fmt(metrics.mean_absolute_error(predicted, true))} | "
              f"{_fmt(metrics.failure_auroc(predicted, true, 0.8))} | "
              f"{_fmt(metrics.pass_rate(badges))} | {_fmt(metrics.pass_precision(badges, true, 0.8))} | "
              f"{_fmt(metrics.lower_bound_coverage(bounds, true))} |")
    raw = [row["raw"] for row in rows]
    print(f"| Dice with the model's mask (raw) | {metrics.spearman(raw, true):.3f} | "
          f"{metrics.mean_absolute_error(raw, true):.3f} | {metrics.failure_auroc(raw, true, 0.8):.3f} | - | - | - |")
    entropy = [row["entropy"] for row in rows]
    print(f"| mean entropy inside the mask | {metrics.spearman(entropy, true):.3f} | - | "
          f"{metrics.failure_auroc(entropy, true, 0.8):.3f} | - | - | - |")
    print("\n| perturbation | masks | mean true Dice | MAE (agreement) | PASS | PASS with Dice < 0.8 |\n"
          "|---|---:|---:|---:|---:|---:|")
    for kind in dict.fromkeys(row["kind"] if not row["kind"].startswith("rater ") else "single rater vs majority"
                              for row in rows):
        part = [row for row in rows
                if row["kind"] == kind or (kind.startswith("single") and row["kind"].startswith("rater "))]
        errors = [abs((row["agreement"].predicted_dice or 0.0) - row["true"]) for row in part]
        passes = [row for row in part if row["agreement"].badge == "PASS"]
        print(f"| {kind} | {len(part)} | {np.mean([r['true'] for r in part]):.3f} | {np.mean(errors):.3f} | "
              f"{len(passes)} | {sum(r['true'] < 0.8 for r in passes)} |")
    return 0


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    sys.exit(main())
