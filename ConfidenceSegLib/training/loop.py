"""Training one ensemble member on in-memory frames or volumes, and evaluating members on the image grid."""

from __future__ import annotations

import contextlib
import copy
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from ..model.networks import ConfidenceSegNet, build_network
from ..quality.metrics import dice
from .data import FrameSet
from .losses import ConfidenceLoss
from .volumes import VolumeSet

#: Foreground where the probability (or the reference's confidence) exceeds this.
DECISION_THRESHOLD = 0.5
#: Most torch threads training uses on CPU (the project's machines have 2 cores).
MAX_CPU_THREADS = 2
#: Environment variable that fixes the thread count (results are bit-identical for a seed only at
#: the same thread count: the order of floating-point sums depends on it).
THREADS_ENV = "CONFIDENCESEG_THREADS"


def cpu_threads() -> int:
    """Torch threads for CPU training: ``$CONFIDENCESEG_THREADS``, else the cores that other running
    processes leave free (:func:`busy_cores`), 1 to 2.

    On an oversubscribed CPU every parallel region waits for its slowest, descheduled thread: on a
    2-core machine at load 4-6, one thread trained 2x faster than two.
    """
    if os.environ.get(THREADS_ENV, "").isdigit() and int(os.environ[THREADS_ENV]) > 0:
        return int(os.environ[THREADS_ENV])
    cores = os.cpu_count() or 1
    return max(1, min(MAX_CPU_THREADS, cores - busy_cores()))


def busy_cores(samples: int = 5, interval_s: float = 0.05) -> int:
    """Cores that other processes keep busy now: the median count of runnable tasks in
    ``/proc/loadavg`` over a few samples, less this process (Linux); elsewhere the 1-minute load
    average. (The load average alone lags: just after a test run it still reads 1.3 on an idle
    machine, and a whole training ran on one thread.)"""
    try:
        counts = []
        for _ in range(samples):
            with open("/proc/loadavg", encoding="ascii") as handle:
                counts.append(int(handle.read().split()[3].split("/")[0]) - 1)
            time.sleep(interval_s)
        return max(0, sorted(counts)[len(counts) // 2])
    except (OSError, ValueError, IndexError):
        return int(os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0


@dataclass
class LoopSettings:
    """Optimisation settings of one member."""

    epochs: int
    batch_size: int = 8
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    augment: bool = True
    #: Keep the checkpoint with the best validation Dice; False keeps the last epoch's, so that the
    #: validation cases choose nothing (cross-validation: their Dice stays an out-of-fold estimate).
    select_checkpoint: bool = True


@dataclass
class MemberResult:
    """A trained member (best validation checkpoint loaded) and its learning curve."""

    network: ConfidenceSegNet
    seed: int
    best_epoch: int
    best_dice: float
    history: list[dict] = field(default_factory=list)


@contextlib.contextmanager
def deterministic_algorithms(device: torch.device) -> Iterator[None]:
    """Deterministic kernels on CPU (warn only where an op has none); restored afterwards."""
    previous = torch.are_deterministic_algorithms_enabled()
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def dice_per_class(members: Sequence[torch.nn.Module], cases: FrameSet | VolumeSet) -> np.ndarray:
    """Mean over frames (or volumes) of Dice(probability > 0.5, confidence > 0.5) per class, on the image grid.

    Absent in both counts 1, absent in one only 0 (``metrics.dice``).
    """
    scores = [[dice(p > DECISION_THRESHOLD, c > DECISION_THRESHOLD) for p, c in zip(prob, conf, strict=True)]
              for prob, conf in zip(cases.image_grid_probabilities(members), cases.confidences, strict=True)]
    return np.asarray(scores, dtype=np.float64).mean(axis=0)


def train_member(training: FrameSet | VolumeSet, validation: FrameSet | VolumeSet, architecture: dict, n_classes: int,
                 settings: LoopSettings, seed: int, device: torch.device, description: str = "member",
                 show_progress: bool = True) -> MemberResult:
    """Train one network from ``seed``; keep the checkpoint with the best mean validation Dice (or the
    last one, ``settings.select_checkpoint`` False)."""
    torch.manual_seed(seed)
    network = build_network(architecture, n_classes).to(device)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(network.parameters(), lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    steps_per_epoch = -(-len(training) // settings.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs * steps_per_epoch)
    loss_function = ConfidenceLoss()
    best_dice, best_epoch, best_state, history = -1.0, 0, None, []
    bar = tqdm(range(1, settings.epochs + 1), desc=description, unit="epoch", disable=not show_progress,
               dynamic_ncols=True)
    for epoch in bar:
        network.train()
        loss_sum = 0.0
        for images, targets, weights in training.batches(settings.batch_size, generator, settings.augment):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_function(network(images.to(device)), targets.to(device), weights.to(device))
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(images)
        class_dice = dice_per_class([network], validation)
        mean_dice = float(class_dice.mean())
        history.append({"epoch": epoch, "loss": loss_sum / len(training), "validation_dice": class_dice.tolist()})
        if mean_dice > best_dice if settings.select_checkpoint else epoch == settings.epochs:
            best_dice, best_epoch = mean_dice, epoch
            best_state = copy.deepcopy(network.state_dict())
        bar.set_postfix(loss=f"{loss_sum / len(training):.3f}", val_dice=f"{mean_dice:.3f}",
                        **({"best": f"{best_dice:.3f}"} if settings.select_checkpoint else {}))
    network.load_state_dict(best_state)
    return MemberResult(network=network.eval(), seed=seed, best_epoch=best_epoch, best_dice=best_dice,
                        history=history)
