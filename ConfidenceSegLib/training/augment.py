"""Light, batched, seeded augmentation of (image, target, weight) batches on the model grid.

Horizontal flips (ultrasound and MRI frames are plausible mirrored; vertical flips are not, the
probe sits on top), a small random affine (rotation, scale, shift) and a small intensity gain and
offset. Geometry is applied with one ``grid_sample`` per tensor; pixels that come from outside the
frame get weight 0, so they are ignored by the loss. All randomness comes from the given generator.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MAX_ROTATION_DEGREES = 10.0
MAX_SCALE_CHANGE = 0.1
MAX_SHIFT = 0.05  # fraction of the frame (grid coordinates span 2)
MAX_INTENSITY_CHANGE = 0.1


def _uniform(generator: torch.Generator, n: int, bound: float) -> torch.Tensor:
    return (torch.rand(n, generator=generator) * 2.0 - 1.0) * bound


def augment_batch(images: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Augmented copies of a 2D batch (N, 1, h, w), (N, C, h, w), (N, C, h, w)."""
    n = images.shape[0]
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    angle = _uniform(generator, n, math.radians(MAX_ROTATION_DEGREES))
    scale = 1.0 + _uniform(generator, n, MAX_SCALE_CHANGE)
    shift = torch.stack([_uniform(generator, n, 2 * MAX_SHIFT), _uniform(generator, n, 2 * MAX_SHIFT)], dim=1)
    gain = 1.0 + _uniform(generator, n, MAX_INTENSITY_CHANGE)
    offset = _uniform(generator, n, MAX_INTENSITY_CHANGE)

    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], dim=1),
                         torch.stack([sin * flip, cos, shift[:, 1]], dim=1)], dim=1).to(images)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)

    def warp(tensor: torch.Tensor) -> torch.Tensor:
        return F.grid_sample(tensor, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    images = warp(images) * gain.to(images).view(-1, 1, 1, 1) + offset.to(images).view(-1, 1, 1, 1)
    return images, warp(targets), warp(weights)
