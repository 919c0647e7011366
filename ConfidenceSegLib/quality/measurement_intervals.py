"""Reported measurements: a bundle's calibration applied to the samples' intervals, and their names.

A calibrated bundle stores per class and measurement ``{"scale", "margin"}`` (fitted by
:func:`ConfidenceSegLib.quality.calibration.measurement_calibration`): the value and its interval are
multiplied by the scale (the measurement's bias against the reference), then the interval is widened by a
conformal margin times :func:`interval_scale`. Images without spacing are measured in pixels; the report
then names them ``*_px`` (:func:`report_names`).
"""

from __future__ import annotations

from ..contract import PIXEL_NAMES

#: Floor of an interval's scale, as a fraction of the value (samples that all agree still get a margin).
SCALE_FLOOR = 0.01


def interval_scale(entry: dict[str, float]) -> float:
    """The scale calibrated margins multiply: the samples' spread p95 - p05, floored at 1% of the value."""
    return entry["p95"] - entry["p05"] + SCALE_FLOOR * abs(entry["value"])


def calibrated(measurements: dict, calibration: dict | None) -> dict:
    """Measurements with a bundle's calibration ``{name: {"scale": s, "margin": q}}`` applied: value and
    interval times s (the median reference / value on the calibration cases: the measurement's bias),
    then the interval widened to [p05 - q w, p95 + q w] with w = :func:`interval_scale` (conformal),
    still containing the value (a negative q narrows it)."""
    result = {}
    for name, entry in measurements.items():
        settings = (calibration or {}).get(name)
        if not settings:
            result[name] = entry
            continue
        factor = float(settings.get("scale", 1.0))
        scaled = {key: value * factor for key, value in entry.items()}
        margin = settings.get("margin")
        width = interval_scale(scaled) if margin is not None else 0.0
        low, high = scaled["p05"] - (margin or 0.0) * width, scaled["p95"] + (margin or 0.0) * width
        result[name] = {"value": scaled["value"], "p05": min(scaled["value"], low), "p95": max(scaled["value"], high)}
    return result


def report_names(measurements: dict, has_spacing: bool) -> dict:
    """Measurements as reported: rounded; ``*_px`` names (and a ``no_spacing`` note) without spacing."""
    rounded = {name: {key: round(value, 2) for key, value in entry.items()} for name, entry in measurements.items()}
    if has_spacing:
        return rounded
    return {**{PIXEL_NAMES[name]: entry for name, entry in rounded.items()},
            "note": "no_spacing: the image has no physical spacing; sizes are in pixels"}
