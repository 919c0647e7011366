"""3D volumes for 3D models: the minimal training path.

Each volume is normalised as a whole (z-score) and resampled (trilinear) to the model spacing, as
:mod:`ConfidenceSegLib.inference` does; targets are made on the image grid and resampled the same
way (target-then-resize, see :mod:`.data`). Training samples random ``roi_size`` crops (volumes
smaller than the ROI are zero-padded with weight 0); evaluation runs MONAI sliding-window inference
over the whole volume and resamples the probabilities back to the image grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..annotation.datasets import Case
from ..contract import ConfidenceSegError
from ..model.preprocessing import (
    image_frames,
    resample_volume,
    sliding_window,
    spacing_zyx,
    to_image_grid,
    volume_to_model_input,
)
from .targets import make_target

#: Random crops per volume and epoch.
CROPS_PER_VOLUME = 4


def _pad_to(tensor: torch.Tensor, roi_size: Sequence[int]) -> torch.Tensor:
    padding = []
    for size, roi in zip(reversed(tensor.shape[-3:]), reversed(roi_size), strict=True):
        padding += [0, max(0, int(roi) - int(size))]
    return F.pad(tensor, padding) if any(padding) else tensor


@dataclass
class VolumeSet:
    """Volumes on the model spacing: inputs (1, D, H, W), targets and weights (C, D, H, W)."""

    images: list[torch.Tensor]
    targets: list[torch.Tensor]
    weights: list[torch.Tensor]
    confidences: list[np.ndarray] | None  # per volume (C, Z, Y, X) on the image grid
    case_ids: list[str]
    roi_size: list[int]

    def __len__(self) -> int:
        """Training samples per epoch (random crops)."""
        return len(self.images) * CROPS_PER_VOLUME

    def batches(self, batch_size: int, generator: torch.Generator, augment: bool):
        order = torch.randperm(len(self), generator=generator) % len(self.images)
        for start in range(0, len(self), batch_size):
            crops = [self._random_crop(int(index), generator, augment) for index in order[start:start + batch_size]]
            yield tuple(torch.stack(parts) for parts in zip(*crops, strict=True))

    def _random_crop(self, index: int, generator: torch.Generator, augment: bool):
        tensors = [_pad_to(t, self.roi_size) for t in (self.images[index], self.targets[index], self.weights[index])]
        starts = [int(torch.randint(0, n - r + 1, (1,), generator=generator))
                  for n, r in zip(tensors[0].shape[1:], self.roi_size, strict=True)]
        window = (slice(None), *(slice(s, s + r) for s, r in zip(starts, self.roi_size, strict=True)))
        crops = [t[window] for t in tensors]
        if augment and float(torch.rand(1, generator=generator)) < 0.5:
            crops = [torch.flip(c, dims=(-1,)) for c in crops]
        return crops

    @torch.no_grad()
    def image_grid_probabilities(self, members: Sequence[torch.nn.Module]):
        """Each volume's (C, Z, Y, X) ensemble probabilities on its image grid (sliding windows)."""
        device = next(members[0].parameters()).device
        for image, confidence in zip(self.images, self.confidences, strict=True):
            x = image[None].to(device)
            probability = torch.stack([torch.sigmoid(sliding_window(x, self.roi_size, member.eval()))
                                       for member in members]).mean(0)
            yield to_image_grid(probability.cpu(), confidence.shape[-3:])[0].numpy()


def load_volumes(cases: Sequence[Case], classes: Sequence[str], preprocessing: dict, label_mode: dict,
                 keep_confidence: bool = False, progress=None) -> VolumeSet:
    """Read ``cases`` once, resampled to ``preprocessing["spacing"]`` ((z, y, x) mm)."""
    if not cases:
        raise ConfidenceSegError("no cases to load")
    images, targets, weights, confidences = [], [], [], []
    for case in cases:
        image = case.read_image()
        if image.GetDimension() != 3:
            raise ConfidenceSegError(f"image of case {case.id} is {image.GetDimension()}D; a 3D model trains on "
                                     "3D volumes")
        x = volume_to_model_input(image_frames(image, f"image of case {case.id}"), spacing_zyx(image), preprocessing)
        images.append(x[0])
        size = x.shape[-3:]
        maps = np.stack([case.confidence_map(name, image) for name in classes])
        pairs = [make_target(maps[c], label_mode["mode"], label_mode.get("threshold"), label_mode.get("ignore_band"))
                 for c in range(len(classes))]
        for index, store in enumerate((targets, weights)):
            stacked = torch.as_tensor(np.stack([pair[index] for pair in pairs]))[None]
            store.append(resample_volume(stacked, size)[0].clamp_(0.0, 1.0))
        if keep_confidence:
            confidences.append(maps.astype(np.float32))
        if progress is not None:
            progress.update(1)
    return VolumeSet(images=images, targets=targets, weights=weights,
                     confidences=confidences if keep_confidence else None,
                     case_ids=[case.id for case in cases], roi_size=[int(r) for r in preprocessing["roi_size"]])
