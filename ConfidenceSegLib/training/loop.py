"""Training one ensemble member on in-memory frames, and evaluating members on the image grid."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from ..losses import ConfidenceLoss
from ..metrics import dice
from ..networks import ConfidenceSegNet, build_network
from ..preprocessing import to_image_grid
from .augment import augment_batch
from .data import FrameSet

#: Foreground where the probability (or the reference's confidence) exceeds this.
DECISION_THRESHOLD = 0.5


@dataclass
class LoopSettings:
    """Optimisation settings of one member."""

    epochs: int
    batch_size: int = 8
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    augment: bool = True


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


@torch.no_grad()
def predict_model_grid(members: Sequence[torch.nn.Module], images: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """Ensemble-mean sigmoid probabilities (N, C, h, w) on the model grid, members in eval mode, on CPU."""
    device = next(members[0].parameters()).device
    chunks = []
    for start in range(0, images.shape[0], batch_size):
        batch = images[start:start + batch_size].to(device)
        chunks.append(torch.stack([torch.sigmoid(m.eval()(batch)) for m in members]).mean(0).cpu())
    return torch.cat(chunks)


def image_grid_probabilities(probabilities: torch.Tensor, frames: FrameSet) -> Iterator[np.ndarray]:
    """Each frame's (C, H, W) probabilities resized to its image grid."""
    for index, confidence in enumerate(frames.confidences):
        yield to_image_grid(probabilities[index:index + 1], confidence.shape[-2:])[0].numpy()


def dice_per_class(probabilities: torch.Tensor, frames: FrameSet) -> np.ndarray:
    """Mean over frames of Dice(probability > 0.5, confidence > 0.5) per class, on the image grid.

    A frame where the class is absent in both counts 1, absent in one only 0 (``metrics.dice``).
    """
    scores = [[dice(p > DECISION_THRESHOLD, c > DECISION_THRESHOLD) for p, c in zip(prob, conf, strict=True)]
              for prob, conf in zip(image_grid_probabilities(probabilities, frames), frames.confidences, strict=True)]
    return np.asarray(scores, dtype=np.float64).mean(axis=0)


def train_member(training: FrameSet, validation: FrameSet, architecture: dict, n_classes: int,
                 settings: LoopSettings, seed: int, device: torch.device, description: str = "member",
                 show_progress: bool = True) -> MemberResult:
    """Train one network from ``seed``; keep the checkpoint with the best mean validation Dice."""
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
        order = torch.randperm(len(training), generator=generator)
        loss_sum = 0.0
        for start in range(0, len(training), settings.batch_size):
            index = order[start:start + settings.batch_size]
            images, targets, weights = training.images[index], training.targets[index], training.weights[index]
            if settings.augment:
                images, targets, weights = augment_batch(images, targets, weights, generator)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_function(network(images.to(device)), targets.to(device), weights.to(device))
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(index)
        class_dice = dice_per_class(predict_model_grid([network], validation.images), validation)
        mean_dice = float(class_dice.mean())
        history.append({"epoch": epoch, "loss": loss_sum / len(training), "validation_dice": class_dice.tolist()})
        if mean_dice > best_dice:
            best_dice, best_epoch = mean_dice, epoch
            best_state = copy.deepcopy(network.state_dict())
        bar.set_postfix(loss=f"{loss_sum / len(training):.3f}", val_dice=f"{mean_dice:.3f}", best=f"{best_dice:.3f}")
    network.load_state_dict(best_state)
    return MemberResult(network=network.eval(), seed=seed, best_epoch=best_epoch, best_dice=best_dice,
                        history=history)
