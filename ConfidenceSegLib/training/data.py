"""A dataset's cases loaded once into memory tensors on the model grid (2D models: one frame per slice).

Targets are made on the image grid, where the annotation lives, and then resized to the model grid
(target-then-resize): ``make_target`` applies the label mode (threshold, ignore band, weights) to
the annotator's or raters' confidence exactly as annotated, and the resize turns the binary target
into partial-volume fractions at edges, which the soft-label-valid loss accepts. Thresholding the
resized confidence instead (resize-then-target) would erode thin structures such as the pleural
line, because their resized edge pixels fall below the threshold.

For evaluation each frame also keeps its confidence map on the image grid: Dice is measured
there against the majority reference (confidence > 0.5; the mask itself for one annotator), the
way predictions are used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..annotation.datasets import Case
from ..contract import ConfidenceSegError
from ..model.preprocessing import confidence_to_model_grid, image_frames, to_image_grid, to_model_input
from .augment import augment_batch
from .targets import make_target

#: Model input grid sides are multiples of this (the network downsamples by 2 per level).
SIZE_MULTIPLE = 16


@dataclass
class FrameSet:
    """Frames of some cases: model-grid inputs, targets and weights; image-grid confidence for evaluation."""

    images: torch.Tensor  # (N, 1, h, w) normalised
    targets: torch.Tensor  # (N, C, h, w) in [0, 1]
    weights: torch.Tensor  # (N, C, h, w) in [0, 1]; 0 = ignored
    confidences: list[np.ndarray] | None  # per frame (C, H, W) float32 on the image grid, or None
    case_ids: list[str]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def batches(self, batch_size: int, generator: torch.Generator, augment: bool):
        """One epoch of (images, targets, weights) batches in a seeded random order."""
        order = torch.randperm(len(self), generator=generator)
        for start in range(0, len(self), batch_size):
            index = order[start:start + batch_size]
            batch = self.images[index], self.targets[index], self.weights[index]
            yield augment_batch(*batch, generator) if augment else batch

    @torch.no_grad()
    def model_grid_probabilities(self, members: Sequence[torch.nn.Module], batch_size: int = 16) -> torch.Tensor:
        """Ensemble-mean sigmoid probabilities (N, C, h, w) on the model grid (members in eval mode), on CPU."""
        device = next(members[0].parameters()).device
        chunks = []
        for start in range(0, len(self), batch_size):
            batch = self.images[start:start + batch_size].to(device)
            chunks.append(torch.stack([torch.sigmoid(m.eval()(batch)) for m in members]).mean(0).cpu())
        return torch.cat(chunks)

    def image_grid_probabilities(self, members: Sequence[torch.nn.Module]):
        """Each frame's (C, H, W) ensemble probabilities on its image grid (needs ``keep_confidence``)."""
        probabilities = self.model_grid_probabilities(members)
        for index, confidence in enumerate(self.confidences):
            yield to_image_grid(probabilities[index:index + 1], confidence.shape[-2:])[0].numpy()


def default_input_size(frame_shape: Sequence[int], long_side: int) -> list[int]:
    """Model grid (y, x) keeping the frame's aspect ratio, long side ``long_side``, multiples of 16."""
    height, width = (int(s) for s in frame_shape[-2:])
    scale = long_side / max(height, width)
    return [max(SIZE_MULTIPLE, int(round(side * scale / SIZE_MULTIPLE)) * SIZE_MULTIPLE) for side in (height, width)]


def first_frame_shape(cases: Sequence[Case]) -> tuple[int, int]:
    """(H, W) of the first case's frames (sets the default model grid)."""
    return tuple(image_frames(cases[0].read_image(), str(cases[0].image_path)).shape[-2:])


def load_frames(cases: Sequence[Case], classes: Sequence[str], preprocessing: dict, label_mode: dict,
                keep_confidence: bool = False, progress=None) -> FrameSet:
    """Read ``cases`` once: normalised resized frames, label-mode targets and weights for ``classes``."""
    if not cases:
        raise ConfidenceSegError("no cases to load")
    input_size = preprocessing["input_size"]
    images, targets, weights, confidences, case_ids = [], [], [], [], []
    for case in cases:
        image = case.read_image()
        frames = image_frames(image, f"image of case {case.id}")
        maps = np.stack([case.confidence_map(name, image).reshape(frames.shape) for name in classes], axis=1)
        pairs = [make_target(maps[:, c], label_mode["mode"], label_mode.get("threshold"),
                             label_mode.get("ignore_band")) for c in range(len(classes))]
        images.append(to_model_input(frames, preprocessing))
        targets.append(confidence_to_model_grid(np.stack([t for t, _ in pairs], axis=1), input_size))
        weights.append(confidence_to_model_grid(np.stack([w for _, w in pairs], axis=1), input_size))
        if keep_confidence:
            confidences.extend(maps.astype(np.float32))
        case_ids.extend([case.id] * len(frames))
        if progress is not None:
            progress.update(1)
    return FrameSet(images=torch.cat(images), targets=torch.cat(targets), weights=torch.cat(weights),
                    confidences=confidences if keep_confidence else None, case_ids=case_ids)


def concat_frames(sets: Sequence[FrameSet], keep_confidence: bool = False) -> FrameSet:
    """The frames of several sets as one (e.g. the training folds of one cross-validation member)."""
    return FrameSet(images=torch.cat([s.images for s in sets]), targets=torch.cat([s.targets for s in sets]),
                    weights=torch.cat([s.weights for s in sets]),
                    confidences=[c for s in sets for c in s.confidences] if keep_confidence else None,
                    case_ids=[case for s in sets for case in s.case_ids])
