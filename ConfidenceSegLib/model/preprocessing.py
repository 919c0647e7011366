"""Between the image grid and the model's input grid, shared by training and inference (2D and 3D).

2D models see frames: a 2D image is one frame, a multi-frame stack (3D image) is one frame per
slice. Each frame is normalised on its own (``zscore``: zero mean, unit standard deviation) and
resized to the bundle's ``input_size`` (y, x) with antialiased bilinear interpolation; model
outputs go back to the image grid with bilinear interpolation of probabilities.

3D models see volumes: normalised as a whole, resampled trilinearly to the bundle's ``spacing``
((z, y, x) mm) when it has one, and run with MONAI sliding windows of ``roi_size``
(:func:`sliding_window`, the settings below); outputs go back with trilinear interpolation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F

from ..contract import ConfidenceSegError
from ..io.images import as_scalar_image

INTENSITY_METHODS = ("zscore",)
#: Sliding-window inference of 3D models (training validation and prediction alike).
SLIDING_WINDOW_BATCH = 2
SLIDING_WINDOW_OVERLAP = 0.25
SLIDING_WINDOW_MODE = "gaussian"


def image_frames(image: sitk.Image, source: str = "image") -> np.ndarray:
    """The frames of a 2D image or multi-frame stack as a float32 array (N, H, W), checked.

    Refuses 4D images, colour channels other than RGB(A), empty images and NaN/infinite values.
    """
    if image.GetDimension() not in (2, 3):
        raise ConfidenceSegError(f"{source} is {image.GetDimension()}D; expected a 2D image or a 3D stack/volume")
    array = sitk.GetArrayFromImage(as_scalar_image(image, source))
    frames = array[np.newaxis] if array.ndim == 2 else array
    if frames.size == 0 or min(frames.shape) == 0:
        raise ConfidenceSegError(f"{source} is empty (size {image.GetSize()})")
    if not np.all(np.isfinite(frames)):
        raise ConfidenceSegError(f"{source} contains NaN or infinite values")
    return frames


def normalize_intensity(frames: np.ndarray | torch.Tensor, intensity: dict) -> torch.Tensor:
    """Per-frame normalisation of (N, H, W) frames -> float32 tensor (N, H, W)."""
    method = intensity.get("method", "zscore")
    if method not in INTENSITY_METHODS:
        raise ConfidenceSegError(f"unknown intensity normalisation {method!r}")
    tensor = torch.as_tensor(frames, dtype=torch.float32)
    mean = tensor.mean(dim=(-2, -1), keepdim=True)
    std = tensor.std(dim=(-2, -1), keepdim=True).clamp_min(1e-6)
    return (tensor - mean) / std


def to_model_input(frames: np.ndarray | torch.Tensor, preprocessing: dict) -> torch.Tensor:
    """(N, H, W) frames -> normalised, resized model input (N, 1, h, w)."""
    normalized = normalize_intensity(frames, preprocessing.get("intensity", {}))[:, None]
    return resize(normalized, preprocessing["input_size"])


def resize(tensor: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear resize of an (N, C, H, W) tensor to ``size`` (antialiased when shrinking)."""
    size = tuple(int(s) for s in size)
    if tuple(tensor.shape[-2:]) == size:
        return tensor
    shrinking = any(s < t for s, t in zip(size, tensor.shape[-2:], strict=True))
    return F.interpolate(tensor, size=size, mode="bilinear", align_corners=False, antialias=shrinking)


def to_image_grid(probabilities: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Model-grid maps -> image grid, clamped to [0, 1]: (N, C, h, w) -> (N, C, H, W) bilinear for
    frames, (N, C, d, h, w) -> (N, C, D, H, W) trilinear for volumes."""
    if len(shape) == 2:
        return resize(probabilities, shape).clamp_(0.0, 1.0)
    return resample_volume(probabilities, shape).clamp_(0.0, 1.0)


def confidence_to_model_grid(confidence: np.ndarray, input_size: Sequence[int]) -> torch.Tensor:
    """Resize (..., H, W) confidence maps to the model grid; values stay in [0, 1]."""
    tensor = torch.as_tensor(confidence, dtype=torch.float32)
    shape = tensor.shape
    flat = tensor.reshape(-1, 1, *shape[-2:])
    return resize(flat, input_size).clamp_(0.0, 1.0).reshape(*shape[:-2], *[int(s) for s in input_size])


# --- volumes (3D models) -------------------------------------------------------------------------

def spacing_zyx(image: sitk.Image) -> list[float]:
    """Voxel spacing in array order (z, y, x), mm."""
    return [float(s) for s in reversed(image.GetSpacing())]


def model_grid_size(shape: Sequence[int], spacing: Sequence[float], target: Sequence[float] | None) -> list[int]:
    """(Z, Y, X) voxels on the model grid: ``shape`` resampled from ``spacing`` to ``target`` (mm)."""
    if not target:
        return [int(n) for n in shape]
    return [max(2, round(n * s / t)) for n, s, t in zip(shape, spacing, target, strict=True)]


def resample_volume(tensor: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Trilinear resampling of (N, C, Z, Y, X) to ``size`` (Z, Y, X)."""
    size = [int(s) for s in size]
    if list(tensor.shape[-3:]) == size:
        return tensor
    return F.interpolate(tensor, size=size, mode="trilinear", align_corners=False)


def volume_to_model_input(volume: np.ndarray, spacing: Sequence[float], preprocessing: dict) -> torch.Tensor:
    """(Z, Y, X) volume with ``spacing`` (z, y, x) mm -> normalised model input (1, 1, z, y, x)."""
    normalized = normalize_intensity(volume.reshape(1, volume.shape[0], -1), preprocessing.get("intensity", {}))
    size = model_grid_size(volume.shape, spacing, preprocessing.get("spacing"))
    return resample_volume(normalized.reshape(1, 1, *volume.shape), size)


def sliding_window(volume: torch.Tensor, roi_size: Sequence[int], predictor) -> torch.Tensor:
    """``predictor`` run over (N, C, Z, Y, X) in overlapping ``roi_size`` windows, blended (Gaussian)."""
    # MONAI loads when first used: an nnU-Net prediction never needs it
    from monai.inferers import sliding_window_inference

    return sliding_window_inference(volume, [int(r) for r in roi_size], SLIDING_WINDOW_BATCH, predictor,
                                    overlap=SLIDING_WINDOW_OVERLAP, mode=SLIDING_WINDOW_MODE)
