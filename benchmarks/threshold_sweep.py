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

Each seed (``--seeds``) repeats the whole cross-validation (its own folds, splits and weights).
Dice and QUBIQ are means over all held-out images; with several seeds the table gives the mean
over seeds ± their standard deviation (the seeds' spread). A paired comparison against threshold
0.5 (the naive majority) averages each image's Dice over the seeds and tests the per-image
differences with the Wilcoxon signed-rank test (scipy). A mode whose training targets equal an
earlier mode's (e.g. 3 raters: thresholds 0.5 and 0.6 both need 2 of 3) reuses its networks.
The table is written into ``docs/results.md`` between markers, with the command that produced it.

    python benchmarks/threshold_sweep.py [--folds 3] [--epochs 30] [--seeds 0 1 2] [--modes ...] [--no-write]
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


def sweep_dataset(folder: Path, folds: int, epochs: int, seeds: list[int], modes, device: torch.device) -> dict:
    """Per mode and seed, every held-out image's Dice and QUBIQ (by case id) and the pooled bins."""
    dataset = load_dataset(folder)
    classes = list(dataset.classes)
    preprocessing = {"spatial_dims": 2, "input_size": default_input_size(first_frame_shape(dataset.cases), LONG_SIDE),
                     "intensity": {"method": "zscore"}}
    results = {name: {seed: {"dice": {}, "qubiq": {}, "bins": None} for seed in seeds} for name, _, _ in modes}
    settings = LoopSettings(epochs=epochs)
    for seed in seeds:
        for fold, test_subjects in enumerate(subject_folds(dataset.subjects(), folds, seed)):
            rest = sorted(set(dataset.subjects()) - set(test_subjects))
            training_subjects, validation_subjects = split_subjects(rest, 0.2, seed)
            test = load_frames(dataset.cases_of_subjects(test_subjects), classes, preprocessing,
                               {"mode": "soft"}, keep_confidence=True)
            trained = []  # (training targets, name) of the modes trained in this fold
            for name, mode, threshold in modes:
                label_mode = {"mode": mode, "threshold": threshold, "ignore_band": None}
                training = load_frames(dataset.cases_of_subjects(training_subjects), classes, preprocessing,
                                       label_mode)
                same = next((other for targets, weights, other in trained if torch.equal(targets, training.targets)
                             and torch.equal(weights, training.weights)), None)
                entry = results[name][seed]
                if same is not None:  # identical targets: identical network
                    source = results[same][seed]
                    for key in ("dice", "qubiq"):
                        entry[key].update({case: source[key][case] for case in test.case_ids})
                    entry["bins"] = source["bins"]
                    print(f"  {dataset.name} seed {seed} fold {fold + 1} {name}: same targets as {same}", flush=True)
                    continue
                validation = load_frames(dataset.cases_of_subjects(validation_subjects), classes, preprocessing,
                                         label_mode, keep_confidence=True)
                started = time.perf_counter()
                with deterministic_algorithms(device):
                    member = train_member(training, validation, ARCHITECTURE, len(classes), settings, seed, device,
                                          description=f"{dataset.name} s{seed} fold {fold + 1}/{folds} {name}")
                dices, qubiq, bins = evaluate(member.network, test)
                entry["dice"].update(zip(test.case_ids, dices, strict=True))
                entry["qubiq"].update(zip(test.case_ids, qubiq, strict=True))
                entry["bins"] = bins if entry["bins"] is None else entry["bins"] + bins
                trained.append((training.targets, training.weights, name))
                print(f"  {dataset.name} seed {seed} fold {fold + 1} {name}: Dice {np.mean(dices):.3f} QUBIQ "
                      f"{np.mean(qubiq):.3f} ({time.perf_counter() - started:.0f} s)", flush=True)
    return {"name": dataset.name, "cases": len(dataset.cases), "subjects": len(dataset.subjects()),
            "input_size": preprocessing["input_size"], "modes": results}


def _seed_means(per_seed: dict, key: str) -> list[float]:
    return [float(np.mean(list(entry[key].values()))) for entry in per_seed.values()]


def _cell(values: list[float], best: float) -> str:
    value = float(np.mean(values))
    text = f"{value:.3f} ± {np.std(values):.3f}" if len(values) > 1 else f"{value:.3f}"
    return f"**{text}**" if round(value, 3) == round(best, 3) else text


def table(sweeps: list[dict]) -> str:
    lines = ["| data set | label mode | Dice vs majority | QUBIQ soft Dice | ECE |", "|---|---|---|---|---|"]
    for sweep in sweeps:
        modes = sweep["modes"]
        dice_means = {name: _seed_means(r, "dice") for name, r in modes.items()}
        qubiq_means = {name: _seed_means(r, "qubiq") for name, r in modes.items()}
        eces = {name: [expected_calibration_error(e["bins"]) for e in r.values()] for name, r in modes.items()}
        best_dice = max(map(np.mean, dice_means.values()))
        best_qubiq = max(map(np.mean, qubiq_means.values()))
        best_ece = min(map(np.mean, eces.values()))
        for name in modes:
            lines.append(f"| {sweep['name']} | {name} | {_cell(dice_means[name], best_dice)} | "
                         f"{_cell(qubiq_means[name], best_qubiq)} | {_cell(eces[name], best_ece)} |")
    return "\n".join(lines)


def _per_image_dice(per_seed: dict, cases: list[str]) -> np.ndarray:
    """Each image's Dice averaged over the seeds: (len(cases),)."""
    return np.array([np.mean([entry["dice"][case] for entry in per_seed.values()]) for case in cases])


def paired_table(sweeps: list[dict], reference: str = "threshold 0.5") -> str:
    """Each mode against ``reference``: per-image Dice averaged over seeds, Wilcoxon signed-rank test."""
    from scipy.stats import wilcoxon

    lines = [f"| data set | mode - {reference} | mean Dice difference | images better / worse | Wilcoxon p |",
             "|---|---|---|---|---|"]
    for sweep in sweeps:
        modes = sweep["modes"]
        if reference not in modes:
            continue
        cases = sorted(next(iter(modes[reference].values()))["dice"])
        base = _per_image_dice(modes[reference], cases)
        for name in modes:
            if name == reference:
                continue
            difference = _per_image_dice(modes[name], cases) - base
            nonzero = difference[np.abs(difference) > 1e-9]
            p = float(wilcoxon(nonzero).pvalue) if len(nonzero) >= 6 else None
            lines.append(f"| {sweep['name']} | {name} | {difference.mean():+.4f} | {(difference > 1e-9).sum()} / "
                         f"{(difference < -1e-9).sum()} | {'identical targets' if not len(nonzero) else f'{p:.3g}'} |")
    return "\n".join(lines)


def section(sweeps: list[dict], command: str, folds: int, epochs: int, seeds: list[int], seconds: float) -> str:
    sets = "; ".join(f"{s['name']}: {s['cases']} images of {s['subjects']} subjects, model grid "
                     f"{s['input_size'][0]}x{s['input_size'][1]}" for s in sweeps)
    return f"""{START_MARKER}
## Label modes on multi-rater data (threshold sweep)

Produced by `{command}` ({seconds / 60:.0f} min, {torch.get_num_threads()} torch thread(s) on a shared CPU).

{folds}-fold cross-validation by subject, repeated for {len(seeds)} seed(s) ({', '.join(map(str, seeds))}:
each its own folds, splits and weights); in each fold one network per label mode (same seed,
architecture {'-'.join(map(str, ARCHITECTURE['channels']))}, {epochs} epochs, best epoch picked on a
fifth of the training subjects) is evaluated on the held-out subjects' images ({sets}).
Dice: prediction > 0.5 against the rater majority (fraction > 0.5), mean over images; with several
seeds, the mean over seeds ± the seeds' standard deviation.
QUBIQ soft Dice: Dice of prediction and rater fraction both binarised at 0.1..0.9, averaged.
ECE: 10 bins, probability against the rater fraction, pooled over held-out images, in the region
where p > 0.05 or any rater marked the pixel (`ConfidenceSegLib.quality.metrics`). Best per data set in bold.
Modes whose targets are identical (3 raters: thresholds 0.5 and 0.6 both need 2 of 3) share networks.

{table(sweeps)}

Paired comparison with the naive threshold 0.5: each image's Dice averaged over the seeds, the
per-image differences tested with the two-sided Wilcoxon signed-rank test (images with no difference
left out).

{paired_table(sweeps)}
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
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--modes", nargs="+", default=[name for name, _, _ in MODES],
                        help="label modes to compare (names as in the table, e.g. 'threshold 0.6' soft)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "docs" / "results.md")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    torch.set_num_threads(cpu_threads())
    device = pick_device(args.device)
    started = time.perf_counter()
    unknown = sorted(set(args.modes) - {name for name, _, _ in MODES})
    if unknown:
        parser.error(f"unknown mode(s) {unknown}")
    modes = [mode for mode in MODES if mode[0] in args.modes]
    sweeps = [sweep_dataset(args.data_root / name, args.folds, args.epochs, args.seeds, modes, device)
              for name in args.datasets]
    command = shlex.join(["python", "benchmarks/threshold_sweep.py", *(argv if argv is not None else sys.argv[1:])])
    text = section(sweeps, command, args.folds, args.epochs, args.seeds, time.perf_counter() - started)
    print(text)
    if not args.no_write:
        write_section(args.results, text)
        print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
