"""Confidence layers: the data model behind confidence-layered annotation.

A structure (class) is annotated at confidence levels. Each (class, level) is one segment of a
Slicer segmentation, tagged ``ConfidenceSeg.Class`` (class name) and ``ConfidenceSeg.Confidence``
(level as a decimal), named like ``pleural_line @ 75%`` and coloured with the class's hue, paler
for lower levels. A pixel's confidence for a class is the highest level painted there, so a
layered segmentation converts to a per-class confidence map (float32 in [0, 1]) and back.

Several raters' binary masks of one image give the same kind of map: the fraction of raters who
marked each pixel (k/R), with one level per distinct fraction.
"""

from __future__ import annotations

import colorsys
import hashlib
from collections.abc import Sequence

import numpy as np

from ..contract import CLASS_TAG, CONFIDENCE_TAG, ConfidenceSegError
from ..io.segments import Segment

#: Default annotation levels: name -> confidence. ``possible`` lies below the default training
#: threshold (0.6), so it only counts for soft or weighted training.
DEFAULT_LEVELS: dict[str, float] = {"certain": 1.0, "likely": 0.75, "possible": 0.5}


def validate_levels(levels: Sequence[float]) -> list[float]:
    """Return the levels sorted high to low; each must lie in (0, 1] and be distinct."""
    values = [float(v) for v in levels]
    if not values:
        raise ConfidenceSegError("at least one confidence level is needed")
    bad = [v for v in values if not 0.0 < v <= 1.0 or not np.isfinite(v)]
    if bad:
        raise ConfidenceSegError(f"confidence levels must lie in (0, 1]; got {bad}")
    if len(set(values)) != len(values):
        raise ConfidenceSegError(f"confidence levels must be distinct; got {values}")
    return sorted(values, reverse=True)


def format_level(level: float) -> str:
    """Human-readable level: ``75%``, ``33.3%``."""
    percent = 100.0 * level
    return f"{percent:.0f}%" if abs(percent - round(percent)) < 0.05 else f"{percent:.1f}%"


def segment_name(class_name: str, level: float) -> str:
    return f"{class_name} @ {format_level(level)}"


def class_hue(class_name: str) -> float:
    """A stable hue in [0, 1) for a class name (the same in every file and session)."""
    digest = hashlib.sha1(class_name.encode("utf-8")).digest()
    return digest[0] / 256.0


def level_color(class_name: str, level: float) -> tuple[float, float, float]:
    """The class's hue with saturation following the level: full colour at 1.0, pale near 0."""
    saturation = 0.15 + 0.85 * float(level)
    return tuple(round(c, 6) for c in colorsys.hsv_to_rgb(class_hue(class_name), saturation, 0.95))


def rater_fraction(masks: Sequence[np.ndarray]) -> np.ndarray:
    """Fraction of raters who marked each pixel (float32 k/R). Masks must be binary and the same shape."""
    if not masks:
        raise ConfidenceSegError("no rater masks given")
    shape = masks[0].shape
    count = np.zeros(shape, dtype=np.int32)
    for number, mask in enumerate(masks):
        if mask.shape != shape:
            raise ConfidenceSegError(f"rater mask {number + 1} has shape {mask.shape}, expected {shape}")
        count += np.asarray(mask, dtype=bool)
    return (count / len(masks)).astype(np.float32)


def check_binary(array: np.ndarray, source: str) -> None:
    """Raise if ``array`` (any shape) holds values other than 0 and one foreground value."""
    values = np.unique(array)
    if values.size > 2 or (values.size == 2 and values[0] != 0):
        shown = ", ".join(f"{v:g}" for v in values[:6]) + (" ..." if values.size > 6 else "")
        raise ConfidenceSegError(f"{source} is not a binary mask (values: {shown})")


def check_confidence_map(confidence: np.ndarray, source: str = "confidence map") -> None:
    """Raise for NaNs or values outside [0, 1] in ``confidence`` (any shape)."""
    if not np.all(np.isfinite(confidence)):
        raise ConfidenceSegError(f"{source} contains NaN or infinite values")
    if confidence.size and (confidence.min() < 0 or confidence.max() > 1):
        raise ConfidenceSegError(
            f"{source} has values outside [0, 1] (min {confidence.min():g}, max {confidence.max():g})")


def quantize_to_levels(confidence: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    """Round each pixel down to the highest level not above it (0 below the lowest level).

    ``confidence``: any shape; returns float32 of the same shape."""
    check_confidence_map(confidence)
    ordered = sorted(validate_levels(levels))
    result = np.zeros(confidence.shape, dtype=np.float32)
    for level in ordered:  # ascending: higher levels overwrite lower ones
        result[confidence >= np.float32(level)] = np.float32(level)
    return result


def segments_from_confidence_map(class_name: str, confidence: np.ndarray,
                                 levels: Sequence[float] | None = None) -> list[Segment]:
    """One segment per level of ``class_name``, highest level first; pixels are exclusive.

    Without ``levels`` every distinct non-zero value of the map is a level (the rater fractions
    k/R of a multi-rater map); with ``levels`` the map is first rounded down to them, and each
    level gets a segment even where it is empty (a palette ready for painting). ``confidence``: float
    in [0, 1], (H, W) or (Z, Y, X) SimpleITK order; each segment's ``mask`` is bool of its shape.
    """
    check_confidence_map(confidence, f"confidence map of {class_name!r}")
    if levels is None:
        values = [float(v) for v in np.unique(confidence) if v > 0]
        quantized = confidence.astype(np.float32)
    else:
        values = validate_levels(levels)
        quantized = quantize_to_levels(confidence, values)
    segments = []
    for level in sorted(values, reverse=True):
        segments.append(Segment(
            name=segment_name(class_name, level),
            mask=quantized == np.float32(level),
            color=level_color(class_name, level),
            tags={CLASS_TAG: class_name, CONFIDENCE_TAG: repr(float(level))},
        ))
    return segments


def segments_from_raters(class_name: str, masks: Sequence[np.ndarray]) -> list[Segment]:
    """Layered segments from R raters' masks: one level per fraction k/R present, tagged exactly.

    ``masks``: R binary arrays of one shape, (H, W) or (Z, Y, X) SimpleITK order."""
    fraction = rater_fraction(masks)
    present = {int(round(float(v) * len(masks))) for v in np.unique(fraction) if v > 0}
    levels = [k / len(masks) for k in sorted(present)]
    return segments_from_confidence_map(class_name, fraction, levels) if levels else []


def confidence_classes(segments: Sequence[Segment]) -> list[str]:
    """Class names that have at least one confidence segment, in first-seen order."""
    names: list[str] = []
    for segment in segments:
        if segment.class_name is not None and segment.confidence is not None and segment.class_name not in names:
            names.append(segment.class_name)
    return names


def confidence_map_from_segments(segments: Sequence[Segment], class_name: str) -> np.ndarray:
    """Per-pixel confidence of ``class_name``: the highest level painted there (float32, 0 elsewhere)."""
    layers = [s for s in segments if s.class_name == class_name and s.confidence is not None]
    if not layers:
        known = ", ".join(confidence_classes(segments)) or "none"
        raise ConfidenceSegError(f"unknown class {class_name!r}: the segmentation has confidence layers for {known}")
    confidence = np.zeros(layers[0].mask.shape, dtype=np.float32)
    for segment in layers:
        level = segment.confidence
        if not 0.0 < level <= 1.0:
            raise ConfidenceSegError(f"segment {segment.name!r} has confidence {level}, outside (0, 1]")
        np.maximum(confidence, np.where(segment.mask, np.float32(level), np.float32(0)), out=confidence)
    return confidence
