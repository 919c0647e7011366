"""Size and shape measurements of a segment, with an interval from the uncertainty samples.

2D (a frame): area (mm^2) and the circumference of the ellipse with the segment's second moments
(mm; for a filled ellipse its own circumference: the HC18 head circumference). 3D: volume (mm^3).
Each measurement is ``{"value", "p05", "p95"}``: the value of the shown mask (image grid) and the
5th / 95th percentiles over the samples' masks (model grid, scaled to mm), widened to contain the
value. A calibrated bundle corrects the measurement's bias and widens the interval by a conformal
margin (:mod:`ConfidenceSegLib.quality.measurement_intervals`).

Ellipse from moments: a filled ellipse of semi-axes a, b has variances a^2/4 and b^2/4 along its
axes, so a = 2 sqrt(l1), b = 2 sqrt(l2) from the eigenvalues of the coordinate covariance (mm^2);
circumference by Ramanujan's second approximation (relative error < 1e-9 for HC18 shapes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..contract import AREA, CIRCUMFERENCE, VOLUME

#: Moment sums per mask: count, sum y, sum x, sum yy, sum xy, sum xx (pixel coordinates).
N_MOMENTS = 6
LOW, HIGH = 5.0, 95.0


def moment_basis(shape: Sequence[int]) -> np.ndarray:
    """(H * W, 6) float64 rows [1, y, x, yy, xy, xx] of a frame's pixels (row-major)."""
    yy, xx = np.mgrid[:shape[0], :shape[1]].astype(np.float64)
    y, x = yy.ravel(), xx.ravel()
    return np.stack([np.ones_like(y), y, x, y * y, x * y, x * x], axis=1)


def mask_moments(mask: np.ndarray) -> np.ndarray:
    """Moment sums (6,) float64 of a 2D boolean mask (H, W)."""
    y, x = np.nonzero(mask)
    y, x = y.astype(np.float64), x.astype(np.float64)
    return np.array([y.size, y.sum(), x.sum(), (y * y).sum(), (x * y).sum(), (x * x).sum()])


def moment_ellipse(moments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre (2,) and coordinate covariance (2, 2), (y, x) in pixels, of moment sums (6,) of a
    non-empty mask; + 1/12 on the diagonal: a pixel is a unit square, not a point (variance of a
    uniform unit interval). The moment ellipse is d^T C^-1 d <= 4 (semi-axes 2 sqrt(eigenvalues))."""
    count = moments[0]
    my, mx = moments[1] / count, moments[2] / count
    cxy = moments[4] / count - my * mx
    covariance = np.array([[moments[3] / count - my * my + 1.0 / 12.0, cxy],
                           [cxy, moments[5] / count - mx * mx + 1.0 / 12.0]])
    return np.array([my, mx]), covariance


def area_and_circumference(moments: np.ndarray, pixel_mm: Sequence[float]) -> tuple[float, float]:
    """Area (mm^2) and moment-ellipse circumference (mm) of ``moments``, moment sums of shape (6,), pixels of
    ``pixel_mm`` (y, x) mm."""
    count = moments[0]
    if count <= 0:
        return 0.0, 0.0
    sy, sx = float(pixel_mm[0]), float(pixel_mm[1])
    covariance = moment_ellipse(moments)[1]
    cyy, cxx, cxy = covariance[0, 0] * sy * sy, covariance[1, 1] * sx * sx, covariance[0, 1] * sy * sx
    half_trace, det = (cyy + cxx) / 2.0, cyy * cxx - cxy * cxy
    root = math.sqrt(max(half_trace * half_trace - det, 0.0))
    a, b = 2.0 * math.sqrt(max(half_trace + root, 0.0)), 2.0 * math.sqrt(max(half_trace - root, 0.0))
    h = ((a - b) / (a + b)) ** 2 if a + b > 0 else 0.0
    circumference = math.pi * (a + b) * (1.0 + 3.0 * h / (10.0 + math.sqrt(4.0 - 3.0 * h)))
    return float(count * sy * sx), float(circumference)


def interval(value: float, samples: Sequence[float]) -> dict[str, float]:
    """``{"value", "p05", "p95"}`` from the samples' values, widened to contain ``value``."""
    samples = np.asarray(samples, np.float64)
    low, high = (np.percentile(samples, [LOW, HIGH]) if samples.size else (value, value))
    return {"value": float(value), "p05": float(min(low, value)), "p95": float(max(high, value))}


def frame_measurements(mask: np.ndarray, sample_moments: np.ndarray, image_pixel_mm: Sequence[float],
                       sample_pixel_mm: Sequence[float]) -> dict[str, dict[str, float]]:
    """Area and ellipse circumference of a 2D mask (H, W), intervals from samples' moments (M, 6).

    ``image_pixel_mm`` / ``sample_pixel_mm``: (y, x) pixel size in mm of the image grid / model grid.
    """
    area, circumference = area_and_circumference(mask_moments(mask), image_pixel_mm)
    per_sample = [area_and_circumference(m, sample_pixel_mm) for m in sample_moments if m[0] > 0]
    return {AREA: interval(area, [s[0] for s in per_sample]),
            CIRCUMFERENCE: interval(circumference, [s[1] for s in per_sample])}


def volume_measurement(voxels: int, sample_voxels: Sequence[float], image_voxel_mm3: float,
                       sample_voxel_mm3: float) -> dict[str, dict[str, float]]:
    """Volume of a 3D mask (``voxels`` image voxels), interval from the samples' voxel counts."""
    return {VOLUME: interval(voxels * image_voxel_mm3, [v * sample_voxel_mm3 for v in sample_voxels if v > 0])}


def reference_measurements(mask: np.ndarray, spacing: Sequence[float]) -> dict[str, float]:
    """The measurements of a reference mask (2D (H, W): area and circumference; 3D: volume), by name;
    ``spacing``: SimpleITK order (x, y[, z]) mm."""
    if mask.ndim == 2:
        area, circumference = area_and_circumference(mask_moments(mask), (spacing[1], spacing[0]))
        return {AREA: area, CIRCUMFERENCE: circumference}
    return {VOLUME: float(mask.sum()) * float(np.prod(spacing))}
