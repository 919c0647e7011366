"""An nnU-Net v2 2D model trained on HC18 next to the bundled ConfidenceSeg model: Dice, the badge and the
three rankings on the same unseen test subjects, and the time per image of 5 folds against one.

The subjects follow the bundled model's recorded split (``Resources/models/fetal_head/config.json``):
nnU-Net trains on its training and validation subjects (nnU-Net's own 5-fold cross-validation inside
them), ConfidenceSeg calibrates the nnU-Net model on the 48 calibration subjects, and both models are
evaluated on the 48 test subjects, which neither trained, chose nor calibrated anything. The plan is
nnU-Net's own, shrunk to fit a CPU budget (``--stages``, ``--features``, ``--patch``, ``--spacing``; epochs and
iterations per epoch set in Python, as the tests do). Every step is skipped when its output exists
under ``--work``, so an interrupted run goes on where it stopped.

    python benchmarks/nnunet_hc18.py --work /tmp/nnunet-hc18 [--epochs 20 --iterations 25 --timed 8]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Testing" / "Python"))
from nnunet_models import plan_shrunk, train_fold, use_nnunet_root  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "hc18"
BUNDLED = REPO / "Resources" / "models" / "fetal_head"
NUMBER, NAME, CONFIGURATION = 518, "HC18", "2d"
DATASET_NAME = f"Dataset{NUMBER}_{NAME}"
FOLDS = (0, 1, 2, 3, 4)


def split_of_bundled_model() -> dict[str, list[str]]:
    """``{role: [subject id, ...]}`` as the bundled model recorded them."""
    split = json.loads((BUNDLED / "config.json").read_text(encoding="utf-8"))["training"]["split"]
    return {role: list(part["subject_ids"]) for role, part in split.items()}


def hc18_cases(subjects: list[str]) -> list[dict]:
    """The ``../shared/data/hc18`` case entries of ``subjects``, paths made absolute."""
    meta = json.loads((DATA / "dataset.json").read_text(encoding="utf-8"))
    wanted = set(subjects)
    cases = [dict(case) for case in meta["cases"] if case["subject"] in wanted]
    for case in cases:
        case["image"] = str(DATA / case["image"])
        case["labels"] = {name: str(DATA / path) for name, path in case["labels"].items()}
    return cases


def subset_dataset(folder: Path, name: str, cases: list[dict]) -> Path:
    """A ConfidenceSeg ``dataset.json`` listing ``cases`` where they lie (no image is copied)."""
    meta = json.loads((DATA / "dataset.json").read_text(encoding="utf-8"))
    folder.mkdir(parents=True, exist_ok=True)
    subset = {key: value for key, value in meta.items() if key != "cases"}
    subset.update(name=f"hc18-{name}", allow_external_paths=True, cases=cases)
    (folder / "dataset.json").write_text(json.dumps(subset, indent=1))
    return folder


def nnunet_raw(raw: Path, cases: list[dict]) -> None:
    """nnU-Net's raw layout of ``cases`` (``imagesTr/ID_0000.nrrd``, ``labelsTr/ID.nrrd``, links to the data)."""
    for part in ("imagesTr", "labelsTr"):
        (raw / part).mkdir(parents=True, exist_ok=True)
    for case in cases:
        for link, target in ((raw / "imagesTr" / f"{case['id']}_0000.nrrd", case["image"]),
                             (raw / "labelsTr" / f"{case['id']}.nrrd", case["labels"]["fetal_head"])):
            if not link.exists():
                link.symlink_to(target)
    (raw / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "ultrasound"}, "labels": {"background": 0, "fetal_head": 1},
        "numTraining": len(cases), "file_ending": ".nrrd", "name": NAME}, indent=1))


def confidenceseg(*arguments: str) -> float:
    """Run the command-line tool; its wall seconds (it must succeed)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ConfidenceSegLib", *arguments], check=True, cwd=REPO,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def one_fold_copy(model: Path, folder: Path) -> Path:
    """``model`` with fold 0 only (hard links: no file is copied)."""
    single = folder / DATASET_NAME / model.name
    if not (single / "fold_0" / "checkpoint_final.pth").is_file():
        (single / "fold_0").mkdir(parents=True, exist_ok=True)
        for name in ("plans.json", "dataset.json", "dataset_fingerprint.json"):
            os.link(model / name, single / name)
        os.link(model / "fold_0" / "checkpoint_final.pth", single / "fold_0" / "checkpoint_final.pth")
    return single


def shown(value, digits: int = 3) -> str:
    """A figure for the table ("n/a" where the metric is undefined, e.g. PASS precision without a PASS)."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def ranking_rows(report: Path) -> dict[str, str]:
    """``{row: value}`` of an evaluation's ``metrics.json``: Dice, the badge's figures, AURC / e-AURC."""
    figures = json.loads(report.read_text(encoding="utf-8"))["classes"]["fetal_head"]
    method = figures["method"]
    rows = {"mean Dice": shown(figures["mean_dice"]),
            "PASS precision (Dice >= 0.8)": shown(method["pass_precision"]),
            "coverage (fraction PASS)": shown(method["pass_rate"]),
            "AUROC of predicted Dice (failure: Dice < 0.8)": shown(method["auroc_dice_below_threshold"])}
    for label, key in (("predicted Dice (the badge)", "method"), ("pairwise Dice", "raw_mean_pairwise_dice"),
                       ("mean entropy", "baseline_mean_entropy")):
        rows[f"AURC / e-AURC: {label}"] = f"{shown(figures[key]['aurc'], 4)} / {shown(figures[key]['e_aurc'], 4)}"
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for nnU-Net's folders and the outputs")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=25, help="training iterations per epoch")
    parser.add_argument("--stages", type=int, default=6)
    parser.add_argument("--features", type=int, default=16, help="features of the first stage (doubling)")
    parser.add_argument("--patch", type=int, nargs=2, default=(128, 192))
    parser.add_argument("--spacing", type=float, default=0.5, help="nnU-Net's target pixel size, mm")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--timed", type=int, default=8, help="test images timed with 5 folds and with one")
    args = parser.parse_args()
    if not (DATA / "dataset.json").is_file():
        raise SystemExit(f"needs the HC18 data at {DATA}")
    work = args.work.resolve()
    use_nnunet_root(work)
    split = split_of_bundled_model()
    model = work / "nnUNet_results" / DATASET_NAME / f"nnUNetTrainer__nnUNetPlans__{CONFIGURATION}"
    log = {}
    if not all((model / f"fold_{fold}" / "checkpoint_final.pth").is_file() for fold in FOLDS):
        nnunet_raw(work / "nnUNet_raw" / DATASET_NAME, hc18_cases(split["training"] + split["validation"]))
        preprocessed = work / "nnUNet_preprocessed" / DATASET_NAME
        if not (preprocessed / "nnUNetPlans.json").is_file():
            plan_shrunk(NUMBER, DATASET_NAME, CONFIGURATION, args.patch, args.stages, args.features, args.batch, work,
                        [args.spacing] * 2)
        for fold in FOLDS:
            if not (model / f"fold_{fold}" / "checkpoint_final.pth").is_file():
                started = time.perf_counter()
                train_fold(preprocessed, CONFIGURATION, fold, args.epochs, args.iterations)
                log[f"fold {fold} training s"] = round(time.perf_counter() - started)
    calibration = subset_dataset(work / "calibration", "calibration", hc18_cases(split["calibration"]))
    test = subset_dataset(work / "test", "test", hc18_cases(split["test"]))
    bundle = work / "bundle"
    if not (bundle / "config.json").is_file():
        log["calibrate s"] = round(confidenceseg("calibrate", "--model", str(model), "--dataset", str(calibration),
                                                 "--out", str(bundle)))
    for name, which, dataset in (("nnunet", bundle, test), ("bundled", BUNDLED, DATA)):
        if not (work / f"evaluate-{name}" / "metrics.json").is_file():
            cases = ["--cases", "all"] if name == "nnunet" else ["--cases", "test"]
            log[f"evaluate {name} s"] = round(confidenceseg("evaluate", "--model", str(which), "--dataset",
                                                            str(dataset), "--out", str(work / f"evaluate-{name}"),
                                                            *cases, "--overwrite"))
    images = [case["image"] for case in hc18_cases(split["test"])][:args.timed]
    for name, which in (("5 folds", model), ("fold 0", one_fold_copy(model, work / "one_fold"))):
        seconds = confidenceseg("predict", "--model", str(which), "--input", *images, "--out",
                                str(work / f"timed-{name.replace(' ', '-')}"), "--overwrite")
        log[f"predict {name}: s per image ({len(images)} images, startup included)"] = round(seconds / len(images), 2)
    print(json.dumps(log, indent=1))
    rows = {name: ranking_rows(work / f"evaluate-{name}" / "metrics.json") for name in ("nnunet", "bundled")}
    print("| 48 unseen HC18 test subjects | nnU-Net 2D, 5 folds | bundled ConfidenceSeg model |")
    print("|---|---:|---:|")
    for row in rows["nnunet"]:
        print(f"| {row} | {rows['nnunet'][row]} | {rows['bundled'][row]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
