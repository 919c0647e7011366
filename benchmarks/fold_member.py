"""One cross-validation fold member at a chosen model grid: does a finer grid help a thin structure?

Trains one member on every subject of a dataset but one (last epoch kept, as ``train --folds``
does) and prints its Dice per class on the held-out subject, on the image grid, as JSON.

    python benchmarks/fold_member.py --dataset ../shared/data/lus_pleural --classes pleural_line rib_shadow \
        --held-out man-02 --long-side 384 --epochs 18
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ConfidenceSegLib.annotation.datasets import load_dataset
from ConfidenceSegLib.training.data import load_frames
from ConfidenceSegLib.training.defaults import DEFAULT_ARCHITECTURE
from ConfidenceSegLib.training.loop import (
    LoopSettings,
    deterministic_algorithms,
    dice_per_class,
    train_member,
)
from ConfidenceSegLib.training.trainer import TrainOptions, label_mode_config, model_preprocessing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--classes", nargs="+", required=True)
    parser.add_argument("--held-out", required=True, metavar="SUBJECT")
    parser.add_argument("--long-side", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=18)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    dataset = load_dataset(args.dataset)
    options = TrainOptions(dataset=Path(args.dataset), out=Path("unused"), long_side=args.long_side,
                           epochs=args.epochs)
    preprocessing, label_mode = model_preprocessing(options, dataset), label_mode_config(options)
    others = [subject for subject in dataset.subjects() if subject != args.held_out]
    training = load_frames(dataset.cases_of_subjects(others), args.classes, preprocessing, label_mode)
    held_out = load_frames(dataset.cases_of_subjects([args.held_out]), args.classes, preprocessing, label_mode,
                           keep_confidence=True)
    device = torch.device("cpu")
    started = time.perf_counter()
    with deterministic_algorithms(device):
        member = train_member(training, held_out, DEFAULT_ARCHITECTURE, len(args.classes),
                              LoopSettings(epochs=args.epochs, select_checkpoint=False), seed=args.seed,
                              device=device, show_progress=False)
    dice = dice_per_class([member.network], held_out)
    print(json.dumps({"held_out": args.held_out, "input_size": preprocessing["input_size"], "epochs": args.epochs,
                      "dice": dict(zip(args.classes, (round(float(d), 4) for d in dice), strict=True)),
                      "seconds": round(time.perf_counter() - started)}))


if __name__ == "__main__":
    main()
