"""Label modes compared on the multi-rater sets, cross-validated by subject.

For each data set (default ``qubiq_brain_growth`` and ``oocytes_3raters``) the subjects are split
into ``--folds`` folds; for each fold, one network per label mode (threshold 0.3 / 0.5 / 0.6 / 0.7,
soft, weighted) is trained on the other folds (a fifth of those subjects held out to pick the best
epoch) with the same seed, architecture and epochs, and evaluated on the held-out fold's images,
on the image grid:

- Dice of (probability > 0.5) against the rater majority (rater fraction > 0.5);
- QUBIQ soft Dice: Dice of prediction and rater fraction both binarised at 0.1, ..., 0.9, averaged;
- ECE (10 bins) of the probability against the rater fraction, pooled over all held-out images, in
  the foreground region (probability > 0.05 or any rater), from :mod:`ConfidenceSegLib.quality.metrics`.

Dice and QUBIQ are means (± standard deviation) over the held-out images of all folds. The table
is written into ``docs/results.md`` between markers, with the command that produced it.

    python benchmarks/threshold_sweep.py [--folds 3] [--epochs 30] [--seed 0] [--no-write]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ConfidenceSegLib.annotation.datasets import load_dataset, split_subjects, subject_folds
from ConfidenceSegLib.io.safe_files import write_text_atomic
from ConfidenceSegLib.model.devices import pick_device
from ConfidenceSegLib.quality.metrics import (
    calibration_bins,
    dice,
    expected_calibration_error,
    qubiq_soft_dice,
)
from ConfidenceSegLib.training.data import default_input_size, first_frame_shape, load_frames
from ConfidenceSegLib.training.defaults import DEFAULT_ARCHITECTURE
from ConfidenceSegLib.training.loop import LoopSettings, cpu_threads, deterministic_algorithms, train_member

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = REPO_ROOT.parent / "shared" / "data"
DATASETS = ("qubiq_brain_growth", "oocytes_3raters")
MODES = (("threshold 0.3", "threshold", 0.3), ("threshold 0.5", "threshold", 0.5),
         ("threshold 0.6", "threshold", 0.6), ("threshold 0.7", "threshold", 0.7),
         ("soft", "soft", None), ("weighted", "weighted", 0.5))
#: The sweep trains small networks at a modest resolution so the whole table takes minutes.
LONG_SIDE = 128
ARCHITECTURE = dict(DEFAULT_ARCHITECTURE, channels=[16, 32, 64, 128], strides=[2, 2, 2])
START_MARKER = "<!-- threshold-sweep:start -->"
END_MARKER = "<!-- threshold-sweep:end -->"


def evaluate(network: torch.nn.Module, frames) -> tuple[list[float], list[float], object]:
    """Per-image Dice vs majority and QUBIQ soft Dice, and the pooled calibration bins."""
    dices, qubiq, bins = [], [], None
    for probability, fraction in zip(frames.image_grid_probabilities([network]), frames.confidences, strict=True):
        dices.append(dice(probability[0] > 0.5, fraction[0] > 0.5))
        qubiq.append(qubiq_soft_dice(probability[0], fraction[0]))
        image_bins = calibration_bins(probability[0], fraction[0])
        bins = image_bins if bins is None else bins + image_bins
    return dices, qubiq, bins


def sweep_dataset(folder: Path, folds: int, epochs: int, seed: int, device: torch.device) -> dict:
    """{mode name: {"dice": [...], "qubiq": [...], "bins": CalibrationBins}} over all held-out images."""
    dataset = load_dataset(folder)
    classes = list(dataset.classes)
    preprocessing = {"spatial_dims": 2, "input_size": default_input_size(first_frame_shape(dataset.cases), LONG_SIDE),
                     "intensity": {"method": "zscore"}}
    results = {name: {"dice": [], "qubiq": [], "bins": None} for name, _, _ in MODES}
    settings = LoopSettings(epochs=epochs)
    for fold, test_subjects in enumerate(subject_folds(dataset.subjects(), folds, seed)):
        rest = sorted(set(dataset.subjects()) - set(test_subjects))
        training_subjects, validation_subjects = split_subjects(rest, 0.2, seed)
        test = load_frames(dataset.cases_of_subjects(test_subjects), classes, preprocessing,
                           {"mode": "soft"}, keep_confidence=True)
        for name, mode, threshold in MODES:
            label_mode = {"mode": mode, "threshold": threshold, "ignore_band": None}
            training = load_frames(dataset.cases_of_subjects(training_subjects), classes, preprocessing, label_mode)
            validation = load_frames(dataset.cases_of_subjects(validation_subjects), classes, preprocessing,
                                     label_mode, keep_confidence=True)
            started = time.perf_counter()
            with deterministic_algorithms(device):
                member = train_member(training, validation, ARCHITECTURE, len(classes), settings, seed, device,
                                      description=f"{dataset.name} fold {fold + 1}/{folds} {name}")
            dices, qubiq, bins = evaluate(member.network, test)
            entry = results[name]
            entry["dice"] += dices
            entry["qubiq"] += qubiq
            entry["bins"] = bins if entry["bins"] is None else entry["bins"] + bins
            print(f"  {dataset.name} fold {fold + 1} {name}: Dice {np.mean(dices):.3f} QUBIQ {np.mean(qubiq):.3f} "
                  f"ECE {expected_calibration_error(bins):.3f} ({time.perf_counter() - started:.0f} s)", flush=True)
    return {"name": dataset.name, "cases": len(dataset.cases), "subjects": len(dataset.subjects()),
            "input_size": preprocessing["input_size"], "modes": results}


def _cell(values, best: float) -> str:
    value = float(np.mean(values))
    text = f"{value:.3f} ± {np.std(values):.3f}" if len(np.atleast_1d(values)) > 1 else f"{value:.3f}"
    return f"**{text}**" if value == best else text


def table(sweeps: list[dict]) -> str:
    lines = ["| data set | label mode | Dice vs majority | QUBIQ soft Dice | ECE |", "|---|---|---|---|---|"]
    for sweep in sweeps:
        modes = sweep["modes"]
        eces = {name: expected_calibration_error(r["bins"]) for name, r in modes.items()}
        best_dice = max(float(np.mean(r["dice"])) for r in modes.values())
        best_qubiq = max(float(np.mean(r["qubiq"])) for r in modes.values())
        best_ece = min(eces.values())
        for name, r in modes.items():
            lines.append(f"| {sweep['name']} | {name} | {_cell(r['dice'], best_dice)} | "
                         f"{_cell(r['qubiq'], best_qubiq)} | {_cell(eces[name], best_ece)} |")
    return "\n".join(lines)


def section(sweeps: list[dict], command: str, folds: int, epochs: int, seconds: float) -> str:
    sets = "; ".join(f"{s['name']}: {s['cases']} images of {s['subjects']} subjects, model grid "
                     f"{s['input_size'][0]}x{s['input_size'][1]}" for s in sweeps)
    return f"""{START_MARKER}
## Label modes on multi-rater data (threshold sweep)

Produced by `{command}` ({seconds / 60:.0f} min, {torch.get_num_threads()} torch thread(s) on a shared CPU).

{folds}-fold cross-validation by subject; in each fold one network per label mode (same seed,
architecture {'-'.join(map(str, ARCHITECTURE['channels']))}, {epochs} epochs, best epoch picked on a
fifth of the training subjects) is evaluated on the held-out subjects' images ({sets}).
Dice: prediction > 0.5 against the rater majority (fraction > 0.5), mean ± SD over images.
QUBIQ soft Dice: Dice of prediction and rater fraction both binarised at 0.1..0.9, averaged.
ECE: 10 bins, probability against the rater fraction, pooled over held-out images, in the region
where p > 0.05 or any rater marked the pixel (`ConfidenceSegLib.quality.metrics`). Best per data set in bold.
Thresholds that keep the same rater counts give identical targets and rows (7 raters: 0.6 and 0.7
both need 5 of 7; 3 raters: 0.5 and 0.6 both need 2 of 3).

{table(sweeps)}
{END_MARKER}
"""


def write_section(path: Path, text: str) -> None:
    """Replace the sweep's section of ``path`` (between its markers), or append it; other sections stay."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Results\n"
    if START_MARKER in old and END_MARKER in old:
        head, rest = old.split(START_MARKER, 1)
        new = head + text.rstrip("\n") + rest.split(END_MARKER, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + text
    write_text_atomic(path, new, overwrite=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "docs" / "results.md")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    torch.set_num_threads(cpu_threads())
    device = pick_device(args.device)
    started = time.perf_counter()
    sweeps = [sweep_dataset(args.data_root / name, args.folds, args.epochs, args.seed, device)
              for name in args.datasets]
    command = shlex.join(["python", "benchmarks/threshold_sweep.py", *(argv if argv is not None else sys.argv[1:])])
    text = section(sweeps, command, args.folds, args.epochs, time.perf_counter() - started)
    print(text)
    if not args.no_write:
        write_section(args.results, text)
        print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
