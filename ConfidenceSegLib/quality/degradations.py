"""Realistic image degradations for calibrating the quality badge on failures (labels unchanged).

A calibration set of good images teaches the quality regressor nothing about failures. Each
labelled calibration image is therefore also predicted after degradations that real ultrasound
(and other) images suffer, at a random strength drawn per image from a range wide enough to make
the model fail sometimes:

- ``noise``: additive Gaussian noise (sigma 10-80% of the intensity range),
- ``speckle``: multiplicative noise (sigma 0.5-1.5), smoothed over 1-2 pixels like real speckle,
- ``blur``: Gaussian blur (sigma 2-12 pixels),
- ``low_contrast``: intensities compressed towards their mean (kept 5-30%), with noise of 3% of the range,
- ``gamma``: gamma 0.2-5,
- ``low_resolution``: down- then up-sampled by a factor 4-16,
- ``shadow``: an acoustic shadow, a band from the top down darkened to 0-20% (25-60% of the width),
- ``occlusion``: a dark disc (radius 20-45% of the short side) over a random spot.

The ranges were set so that a good part of the degraded calibration images fail (Dice < 0.8), judged
on the calibration images only.

Frames (N, H, W) or single images are degraded frame by frame; randomness from the given generator.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..contract import ConfidenceSegError


def _range(frame: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(frame, [1, 99])
    return float(low), float(max(high, low + 1e-6))


def _noise(frame, rng):
    low, high = _range(frame)
    return frame + rng.normal(0.0, rng.uniform(0.1, 0.8) * (high - low), frame.shape)


def _speckle(frame, rng):
    noise = ndimage.gaussian_filter(rng.normal(size=frame.shape), rng.uniform(1.0, 2.0))
    noise /= max(float(noise.std()), 1e-9)
    return frame * np.clip(1.0 + rng.uniform(0.5, 1.5) * noise, 0.0, None)


def _blur(frame, rng):
    return ndimage.gaussian_filter(frame, rng.uniform(2.0, 12.0))


def _low_contrast(frame, rng):
    mean = frame.mean()
    low, high = _range(frame)
    return mean + rng.uniform(0.05, 0.3) * (frame - mean) + rng.normal(0.0, 0.03 * (high - low), frame.shape)


def _gamma(frame, rng):
    low, high = _range(frame)
    scaled = np.clip((frame - low) / (high - low), 0.0, 1.0)
    return low + (high - low) * scaled ** np.exp(rng.uniform(np.log(0.2), np.log(5.0)))


def _low_resolution(frame, rng):
    factor = rng.uniform(4.0, 16.0)
    small = ndimage.zoom(frame, 1.0 / factor, order=1)
    return ndimage.zoom(small, np.array(frame.shape) / np.array(small.shape), order=1)[:frame.shape[0], :frame.shape[1]]


def _shadow(frame, rng):
    height, width = frame.shape
    half = rng.uniform(0.25, 0.6) * width / 2
    centre, top = rng.uniform(0, width), int(rng.uniform(0.0, 0.4) * height)
    columns = np.abs(np.arange(width) - centre) < half
    shaded = frame.copy()
    shaded[top:, columns] *= rng.uniform(0.0, 0.2)
    return shaded


def _occlusion(frame, rng):
    height, width = frame.shape
    yy, xx = np.mgrid[:height, :width]
    radius = rng.uniform(0.2, 0.45) * min(height, width)
    inside = np.hypot(yy - rng.uniform(0, height), xx - rng.uniform(0, width)) < radius
    occluded = frame.copy()
    occluded[inside] = _range(frame)[0]
    return occluded


#: Degradation kinds, in the order calibration applies them.
DEGRADATIONS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "noise": _noise, "speckle": _speckle, "blur": _blur, "low_contrast": _low_contrast, "gamma": _gamma,
    "low_resolution": _low_resolution, "shadow": _shadow, "occlusion": _occlusion}
CLEAN = "clean"


def check_kinds(kinds) -> list[str]:
    """The requested degradation kinds, checked (``all`` = every kind)."""
    kinds = list(DEGRADATIONS) if list(kinds) == ["all"] else list(kinds)
    unknown = [kind for kind in kinds if kind not in DEGRADATIONS]
    if unknown:
        raise ConfidenceSegError(f"unknown degradation {', '.join(unknown)}; "
                                 f"choose from all, {', '.join(DEGRADATIONS)}")
    return kinds


def degrade(image: sitk.Image, kind: str, rng: np.random.Generator) -> sitk.Image:
    """A degraded copy of a scalar 2D image or stack (same geometry, float32), frame by frame."""
    array = sitk.GetArrayFromImage(image).astype(np.float64)
    frames = array.reshape(-1, *array.shape[-2:])
    degraded = np.stack([DEGRADATIONS[kind](frame, rng) for frame in frames]).reshape(array.shape)
    low, high = float(array.min()), float(array.max())
    result = sitk.GetImageFromArray(np.clip(degraded, low, high).astype(np.float32))
    result.CopyInformation(image)
    return result
