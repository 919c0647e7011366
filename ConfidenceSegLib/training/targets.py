"""Training targets from a confidence map (label modes).

Each mode returns ``(target, weight)`` float32 arrays of the map's shape; the loss is weighted per
pixel (weight 0 = ignored):

- ``threshold`` (default 0.6): target = confidence >= threshold. Pixels whose confidence lies in
  an optional uncertain band ``(low, high)`` are ignored (weight 0). Shivaram et al. 2025 found
  a 60% threshold better than the naive 50% for lung ultrasound.
- ``soft``: target = confidence itself, weight 1 (use a soft-label-valid loss).
- ``weighted``: target = confidence >= threshold (default 0.5), weight = max(c, 1 - c): the
  fraction of raters (or the annotator's confidence) that agrees with the binary target, so
  certain pixels count fully and disputed ones half.
"""

from __future__ import annotations

import numpy as np

from ..annotation.layers import check_confidence_map
from ..contract import ConfidenceSegError
from .defaults import DEFAULT_THRESHOLD, LABEL_MODES


def make_target(confidence: np.ndarray, mode: str = "threshold", threshold: float | None = None,
                ignore_band: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Target and per-pixel weight for one class's confidence map (see module docstring).

    ``confidence``: any shape ((frames, H, W) or (Z, Y, X)); ``target`` and ``weight``: float32 of that shape."""
    check_confidence_map(confidence)
    confidence = confidence.astype(np.float32, copy=False)
    if mode not in LABEL_MODES:
        raise ConfidenceSegError(f"unknown label mode {mode!r}; choose one of {', '.join(LABEL_MODES)}")
    if threshold is None:
        threshold = DEFAULT_THRESHOLD[mode]
    if threshold is not None and not 0.0 < threshold <= 1.0:
        raise ConfidenceSegError(f"threshold must lie in (0, 1]; got {threshold}")
    weight = np.ones_like(confidence)
    if mode == "soft":
        return confidence.copy(), weight
    target = (confidence >= np.float32(threshold)).astype(np.float32)
    if mode == "weighted":
        return target, np.maximum(confidence, 1.0 - confidence)
    if ignore_band is not None:
        low, high = ignore_band
        if not 0.0 <= low < high <= 1.0:
            raise ConfidenceSegError(f"ignore band must satisfy 0 <= low < high <= 1; got {ignore_band}")
        weight[(confidence > low) & (confidence < high)] = 0.0
    return target, weight
