"""Realistic perturbations of a reference mask, to calibrate and test the quality of given masks.

A mask imported from another tool or painted by hand is wrong in typical ways; each kind below is
applied at a random strength so that the perturbed masks cover the whole Dice range:

- ``erosion`` / ``dilation``: the boundary moved in or out by 1-12% of the structure's size,
- ``shift``: the whole mask moved by 2-25% of its size,
- ``missing_part``: the part beyond a random chord removed (10-50% of the area),
- ``spurious_blob``: an extra disc (radius 10-40% of the structure's) somewhere off the structure,
- ``rater_boundary``: a different rater's boundary: the signed distance to the boundary plus smooth
  random noise (amplitude 1-10% of the size), thresholded again.

All on a 2D frame (H, W) bool; randomness from the given generator; the reference is never changed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage


def _size(mask: np.ndarray) -> float:
    """Equivalent diameter of the mask in pixels (at least 2)."""
    return max(2.0, 2.0 * np.sqrt(mask.sum() / np.pi))


def _erosion(mask, rng):
    depth = max(1, round(rng.uniform(0.01, 0.12) * _size(mask)))
    return ndimage.binary_erosion(mask, iterations=depth)


def _dilation(mask, rng):
    depth = max(1, round(rng.uniform(0.01, 0.12) * _size(mask)))
    return ndimage.binary_dilation(mask, iterations=depth)


def _shift(mask, rng):
    distance = rng.uniform(0.02, 0.25) * _size(mask)
    angle = rng.uniform(0, 2 * np.pi)
    return ndimage.shift(mask.astype(np.float32), (distance * np.sin(angle), distance * np.cos(angle)), order=0) > 0.5


def _missing_part(mask, rng):
    y, x = np.nonzero(mask)
    angle = rng.uniform(0, 2 * np.pi)
    along = (y - y.mean()) * np.sin(angle) + (x - x.mean()) * np.cos(angle)
    cut = np.quantile(along, 1.0 - rng.uniform(0.1, 0.5))
    kept = mask.copy()
    kept[y[along > cut], x[along > cut]] = False
    return kept


def _spurious_blob(mask, rng):
    height, width = mask.shape
    radius = rng.uniform(0.1, 0.4) * _size(mask) / 2
    outside = np.argwhere(~ndimage.binary_dilation(mask, iterations=max(1, int(radius))))
    centre = outside[rng.integers(len(outside))] if len(outside) else (height / 2, width / 2)
    yy, xx = np.mgrid[:height, :width]
    return mask | (np.hypot(yy - centre[0], xx - centre[1]) <= radius)


def _rater_boundary(mask, rng):
    inside = ndimage.distance_transform_edt(mask)
    outside = ndimage.distance_transform_edt(~mask)
    signed = inside - outside
    noise = ndimage.gaussian_filter(rng.normal(size=mask.shape), 0.15 * _size(mask))
    noise /= max(np.abs(noise).max(), 1e-9)
    return signed + rng.uniform(0.01, 0.1) * _size(mask) * noise > 0


#: Perturbation kinds, in the order calibration applies them.
PERTURBATIONS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "erosion": _erosion, "dilation": _dilation, "shift": _shift, "missing_part": _missing_part,
    "spurious_blob": _spurious_blob, "rater_boundary": _rater_boundary}


def perturb(mask: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A perturbed copy of a 2D mask, or of each frame of (N, H, W) masks (empty frames stay empty)."""
    frames = mask.reshape(-1, *mask.shape[-2:]).astype(bool)
    perturbed = [PERTURBATIONS[kind](frame, rng) if frame.any() else frame.copy() for frame in frames]
    return np.stack(perturbed).reshape(mask.shape)
