"""Batched, seeded augmentation of (image, target, weight) batches on the model grid.

Geometry: horizontal flips (ultrasound and MRI frames are plausible mirrored; vertical flips are
not, the probe sits on top) and a random affine (rotation, scale, shift), one ``grid_sample`` per
tensor; pixels that come from outside the frame get weight 0, so the loss ignores them. Rotation
and scale turn about the frame's centre or, for half of the images, about the top centre, where
an ultrasound probe's apex sits (a probe tilted on the skin; a depth setting changed).

Intensity (the image only; targets unchanged), each drawn per image with probability
``ULTRASOUND_PROBABILITY``: a gamma change, a depth gain ramp (time-gain compensation set
differently), multiplicative speckle and an acoustic shadow (a darkened band from the top of the
frame down); then a small gain and offset. Images arrive z-scored; the intensity changes work on a
[0, 1] rescaling of each image and the result is z-scored again, so the input statistics the
network sees do not drift. All randomness comes from the given generator.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MAX_ROTATION_DEGREES = 15.0
MAX_SCALE_CHANGE = 0.15
MAX_SHIFT = 0.05  # fraction of the frame (grid coordinates span 2)
APEX_PROBABILITY = 0.5  # rotation and scale about the top centre (the probe's apex) instead of the centre
MAX_INTENSITY_CHANGE = 0.1
ULTRASOUND_PROBABILITY = 0.3
GAMMA_RANGE = (0.6, 1.6)
MAX_DEPTH_GAIN = 0.5  # gain varies linearly from 1 - g at the top to 1 + g at the bottom
MAX_SPECKLE = 0.3  # standard deviation of the multiplicative noise
SHADOW_WIDTH = (0.1, 0.3)  # fraction of the frame width
SHADOW_DEPTH = (0.3, 0.8)  # intensity kept inside the shadow
#: Recorded in the bundle.
AUGMENTATION_SUMMARY = (f"horizontal flip, rotation {MAX_ROTATION_DEGREES:g} deg, scale {MAX_SCALE_CHANGE:.0%} "
                        f"(about the top centre with p {APEX_PROBABILITY}), "
                        f"shift {MAX_SHIFT:.0%}, gain/offset {MAX_INTENSITY_CHANGE:.0%}; each with p "
                        f"{ULTRASOUND_PROBABILITY}: gamma {GAMMA_RANGE[0]}-{GAMMA_RANGE[1]}, "
                        f"depth gain +-{MAX_DEPTH_GAIN:.0%}, speckle sigma <= {MAX_SPECKLE}, acoustic shadow")


def _uniform(generator: torch.Generator, n: int, bound: float) -> torch.Tensor:
    return (torch.rand(n, generator=generator) * 2.0 - 1.0) * bound


def _between(generator: torch.Generator, n: int, low: float, high: float) -> torch.Tensor:
    return low + torch.rand(n, generator=generator) * (high - low)


def _zscore(images: torch.Tensor) -> torch.Tensor:
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    std = images.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    return (images - mean) / std


def ultrasound_intensity(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Gamma, depth gain, speckle and shadow changes of z-scored images (N, 1, h, w), z-scored again."""
    n, _, height, width = images.shape
    low = images.amin(dim=(1, 2, 3), keepdim=True)
    high = images.amax(dim=(1, 2, 3), keepdim=True)
    x = (images - low) / (high - low).clamp_min(1e-6)

    def chosen() -> torch.Tensor:
        return (torch.rand(n, generator=generator) < ULTRASOUND_PROBABILITY).to(images).view(-1, 1, 1, 1)

    gamma = _between(generator, n, *GAMMA_RANGE).to(images).view(-1, 1, 1, 1)
    x = torch.lerp(x, x.clamp_min(0.0) ** gamma, chosen())
    depth = torch.linspace(-1.0, 1.0, height, dtype=images.dtype).view(1, 1, -1, 1)
    ramp = 1.0 + _uniform(generator, n, MAX_DEPTH_GAIN).to(images).view(-1, 1, 1, 1) * depth
    x = torch.lerp(x, x * ramp, chosen())
    noise = torch.randn(images.shape, generator=generator).to(images)
    speckle = 1.0 + _between(generator, n, 0.0, MAX_SPECKLE).to(images).view(-1, 1, 1, 1) * noise
    x = torch.lerp(x, x * speckle.clamp_min(0.0), chosen())
    columns = torch.linspace(0.0, 1.0, width, dtype=images.dtype).view(1, 1, 1, -1)
    centre = torch.rand(n, generator=generator).to(images).view(-1, 1, 1, 1)
    half = _between(generator, n, *SHADOW_WIDTH).to(images).view(-1, 1, 1, 1) / 2
    kept = _between(generator, n, *SHADOW_DEPTH).to(images).view(-1, 1, 1, 1)
    start = _between(generator, n, 0.0, 0.5).to(images).view(-1, 1, 1, 1)
    rows = torch.linspace(0.0, 1.0, height, dtype=images.dtype).view(1, 1, -1, 1)
    band = ((columns - centre).abs() < half) & (rows > start)
    x = torch.lerp(x, torch.where(band, x * kept, x), chosen())
    return _zscore(x)


def pivoted_affine(angle: torch.Tensor, scale: torch.Tensor, flip: torch.Tensor, pivot_y: torch.Tensor,
                   shift: torch.Tensor) -> torch.Tensor:
    """``affine_grid`` matrices (N, 2, 3) that mirror (``flip`` -1), rotate by ``angle`` and zoom by
    ``scale`` about the point (0, ``pivot_y``) of normalised coordinates (-1 = top row), then shift.
    Output coordinates map to input ones: p_in = M (p_out - c) + c + shift."""
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    move_x = shift[:, 0] + sin * pivot_y  # c - M c, with c = (0, pivot_y)
    move_y = shift[:, 1] + pivot_y * (1.0 - cos)
    return torch.stack([torch.stack([cos * flip, -sin, move_x], dim=1),
                        torch.stack([sin * flip, cos, move_y], dim=1)], dim=1)


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

    pivot_y = torch.where(torch.rand(n, generator=generator) < APEX_PROBABILITY, -1.0, 0.0)
    theta = pivoted_affine(angle, scale, flip, pivot_y, shift).to(images)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)

    def warp(tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` (N, 1, h, w) or (N, C, h, w) resampled through the batch's affine grid; the same shape."""
        return F.grid_sample(tensor, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    images = ultrasound_intensity(images, generator)
    images = warp(images) * gain.to(images).view(-1, 1, 1, 1) + offset.to(images).view(-1, 1, 1, 1)
    return images, warp(targets), warp(weights)
