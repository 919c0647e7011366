"""The bundled model's badge on HC18 images it never used, clean and degraded, and on images it was not made for.

Prints, on the test subjects of the bundle's own split (never trained on, never chose a checkpoint,
never calibrated the badge), clean and with every degradation of ``quality.degradations``: the badge's
metrics, the share of images the domain check flags, the e-AURC of the predicted Dice against that of
mean entropy. Then, per source of foreign images, the share of images (frames) that get a numeric
predicted Dice and the share that is ABSENT or out of domain: lung ultrasound (every third frame),
neonatal brain MRI, microscopy (``../shared/data``), pixel-shuffled and Gaussian noise, blank images,
smooth gradients, HC18 test frames with the head blanked out, and a synthetic CT-like volume (every
slice, as a stack run frame by frame). A trustworthy badge gives no number there. For the blanked
frames that get a number, the last column says how well the outline matches the head that was removed
(the blanking keeps the skull's outer rim, so the model may still outline the head it belonged to).

    python benchmarks/badge_domain.py [--model Resources/models/fetal_head]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ConfidenceSegLib.annotation.datasets import load_dataset
from ConfidenceSegLib.contract import ABSENT, PASS, reference_mask
from ConfidenceSegLib.io.inputs import InputFacts
from ConfidenceSegLib.jobs.evaluate import evaluate_cases
from ConfidenceSegLib.jobs.labelled import LabelledRun
from ConfidenceSegLib.jobs.predict_job import run_prediction
from ConfidenceSegLib.jobs.settings import PredictionSettings
from ConfidenceSegLib.model.bundle import load_bundle
from ConfidenceSegLib.quality import metrics
from ConfidenceSegLib.quality.degradations import CLEAN, DEGRADATIONS

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT.parent / "shared" / "data"
#: Other organs and modalities in ../shared/data, and the stride through their cases.
OTHER_DOMAINS = {"lus_pleural": 3, "qubiq_brain_growth": 1, "oocytes_3raters": 1}
CPU = PredictionSettings(device="cpu", maps=())


def image(array: np.ndarray, spacing=(0.15, 0.15)) -> sitk.Image:
    result = sitk.GetImageFromArray(array)
    result.SetSpacing(spacing if array.ndim == 2 else (*spacing, 1.0))
    return result


def synthetic_sources(hc18_test, rng: np.random.Generator) -> Iterator[tuple[str, sitk.Image, np.ndarray | None]]:
    """Foreign images made here: noise, blank, gradients, HC18 frames without their head, a CT-like volume;
    each with the blanked head's mask (None but for the blanked frames)."""
    for case in hc18_test[:20]:
        frame = case.read_image()
        array = sitk.GetArrayFromImage(frame)
        shuffled = image(rng.permutation(array.ravel()).reshape(array.shape).astype(np.uint8), frame.GetSpacing())
        yield "noise (pixel-shuffled HC18)", shuffled, None
        head = reference_mask(case.confidence_map("fetal_head", frame))
        blanked = array.astype(np.float32)
        blanked[head] = rng.normal(np.median(array[~head]), array[~head].std() / 2, head.sum())
        yield "HC18 frame, head blanked out", image(blanked.clip(0, 255).astype(np.uint8), frame.GetSpacing()), head
    for k in range(8):
        yield "noise (Gaussian)", image(rng.normal(100, 30, (270, 400)).clip(0, 255).astype(np.uint8)), None
        yield "blank", image(np.full((270, 400), 20 * k, np.uint8)), None
        yy, xx = np.mgrid[:270, :400]
        yield "gradient", image(((xx * (k + 1) + yy) % 256).astype(np.uint8)), None
    zz, yy, xx = np.mgrid[:40, :256, :256]
    body = ((yy - 128) / 100.0) ** 2 + ((xx - 128) / 120.0) ** 2 < 1
    bone = body & (((yy - 128) / 90.0) ** 2 + ((xx - 128) / 110.0) ** 2 > 0.85)
    volume = np.where(body, 40.0, -1000.0) + np.where(bone, 900.0, 0.0) + rng.normal(0, 20, body.shape)
    yield "CT-like volume (40 slices)", image(volume.astype(np.int16), (0.7, 0.7)), None


def foreign_sources(hc18_test, rng) -> Iterator[tuple[str, sitk.Image, np.ndarray | None]]:
    for name, stride in OTHER_DOMAINS.items():
        if (DATA / name / "dataset.json").is_file():
            for case in load_dataset(DATA / name).cases[::stride]:
                yield name, case.read_image(), None
    yield from synthetic_sources(hc18_test, rng)


def foreign_table(bundle, hc18_test) -> None:
    counts: dict[str, list[int]] = {}
    outlines: dict[str, list[float]] = {}  # a blanked frame's numeric outline against the head that was removed
    for source, shown, removed in foreign_sources(hc18_test, np.random.default_rng(0)):
        assessed = run_prediction(bundle, InputFacts(Path(source), True, False), CPU, image=shown)
        verdicts = ([frame["fetal_head"].verdict for frame in assessed.frames] if assessed.frames
                    else [assessed.classes[0].verdict])
        total = counts.setdefault(source, [0, 0, 0, 0, 0])
        total[0] += len(verdicts)
        total[1] += sum(v.predicted_dice is not None for v in verdicts)
        total[2] += sum(v.badge == ABSENT for v in verdicts)
        total[3] += sum(any(r.code == "out_of_domain" for r in v.reasons) for v in verdicts)
        total[4] += sum(v.badge == PASS for v in verdicts)
        if removed is not None and verdicts[0].predicted_dice is not None:
            outlines.setdefault(source, []).append(metrics.dice(assessed.maps("fetal_head").mask, removed))
    print("\n| images without a fetal head | images | numeric predicted Dice | ABSENT | out of domain | PASS "
          "| numeric ones: Dice of the outline with the removed head |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for source, (n, numeric, absent, outside, passed) in counts.items():
        found = outlines.get(source)
        outline = f"median {np.median(found):.2f}, {np.mean(np.array(found) >= 0.8):.0%} >= 0.8" if found else ""
        print(f"| {source} | {n} | {numeric} ({numeric / n:.0%}) | {absent} | {outside} | {passed} | {outline} |")
    n, numeric = sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values())
    print(f"| all | {n} | {numeric} ({numeric / n:.1%}) | | | {sum(c[4] for c in counts.values())} | |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(REPO_ROOT / "Resources" / "models" / "fetal_head"))
    args = parser.parse_args()
    bundle = load_bundle(args.model)
    hc18 = load_dataset(DATA / "hc18")
    test = hc18.cases_of_subjects(bundle.config.training["split"]["test"]["subject_ids"])
    evaluation = evaluate_cases(bundle, hc18, test, LabelledRun(CPU, tuple(DEGRADATIONS), show_progress=False))
    result = evaluation.classes["fetal_head"]
    kinds = ["pooled", *result["by_kind"]]
    columns = {"pooled": result, **result["by_kind"]}
    print(f"| {len(test)} unseen test images x {len(kinds) - 1} kinds | " + " | ".join(kinds) + " |")
    print("|---|" + "---:|" * len(kinds))
    print("| mean Dice | " + " | ".join(f"{columns[k]['mean_dice']:.3f}" for k in kinds) + " |")
    for key in ("pass_rate", "pass_precision", "lower_bound_coverage", "auroc_dice_below_threshold", "spearman",
                "mae_predicted_dice", "aurc", "e_aurc", "out_of_domain"):
        print(f"| {key} | " + " | ".join(_fmt(columns[k]["method"].get(key)) for k in kinds) + " |")
    print("| e-AURC mean entropy | " + " | ".join(_fmt(columns[k]["baseline_mean_entropy"]["e_aurc"]) for k in kinds)
          + " |")
    for name, rows in (("clean", [r for r in evaluation.rows if r.kind == CLEAN]),
                       ("degraded", [r for r in evaluation.rows if r.kind != CLEAN])):
        flagged = np.mean([any(x.code == "out_of_domain" for x in r.verdict.reasons) for r in rows])
        present = [r for r in rows if not r.absent]
        ratio = metrics.e_aurc([r.verdict.predicted_dice or 0.0 for r in present], [r.true_dice for r in present]) / \
            metrics.e_aurc([r.baseline_confidence for r in present], [r.true_dice for r in present])
        print(f"\n{name} unseen HC18: {flagged:.1%} flagged out of domain; e-AURC of the predicted Dice "
              f"{ratio:.2f}x that of mean entropy")
    foreign_table(bundle, test)
    return 0


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    sys.exit(main())
