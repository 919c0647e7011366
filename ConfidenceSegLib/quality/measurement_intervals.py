"""Reported measurements: a bundle's calibration applied to the samples' intervals, and their names.

A calibrated bundle stores per class and measurement ``{"scale", "margin"}`` (fitted by
:func:`ConfidenceSegLib.quality.calibration.measurement_calibration`): the value and its interval are
multiplied by the scale (the measurement's bias against the reference), then the interval is widened by a
conformal margin times :func:`interval_scale`; intervals never go below 0 (no negative area). A value
outside the range of the calibration references widened by :data:`PLAUSIBLE_MARGIN` is implausible
(:func:`implausible`): it is marked ``"plausible": false``, never shown as a headline, and the badge says
why. Images without spacing are measured in pixels; the report then names them ``*_px`` (:func:`report_names`).
"""

from __future__ import annotations

from ..contract import PIXEL_NAMES
from .verdict import Reason

#: Floor of an interval's scale, as a fraction of the value (samples that all agree still get a margin).
SCALE_FLOOR = 0.01
#: A measurement is plausible from min / (1 + m) to max * (1 + m) of the calibration references.
PLAUSIBLE_MARGIN = 0.5
#: Readable names of the measurements.
MEASUREMENT_WORDS = {"area_mm2": ("area", "mm²"), "ellipse_circumference_mm": ("circumference", "mm"),
                     "volume_mm3": ("volume", "mm³")}


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
        result[name] = {"value": scaled["value"], "p05": max(0.0, min(scaled["value"], low)),
                        "p95": max(scaled["value"], high)}
    return result


def plausible_range(references: list[float]) -> list[float]:
    """[low, high] a measurement may take, from the calibration references' values (> 0)."""
    return [round(min(references) / (1 + PLAUSIBLE_MARGIN), 3), round(max(references) * (1 + PLAUSIBLE_MARGIN), 3)]


def implausible(measurements: dict, calibration: dict | None, class_name: str) -> tuple[dict, Reason | None]:
    """Measurements (calibrated, mm) with those outside their calibrated plausible range marked
    ``"plausible": false``, and the reason naming the first (None when all are plausible)."""
    found, marked = None, dict(measurements)
    for name, entry in measurements.items():
        bounds = ((calibration or {}).get(name) or {}).get("plausible")
        if bounds and entry["value"] > 0 and not bounds[0] <= entry["value"] <= bounds[1]:
            marked[name] = dict(entry, plausible=False)
            label, unit = MEASUREMENT_WORDS.get(name, (name, ""))
            found = found or Reason("measurement_implausible", (
                f"{class_name} {label} {entry['value']:.4g} {unit} is outside what the calibration cases make "
                f"plausible ({bounds[0]:.4g}-{bounds[1]:.4g} {unit}): not shown as a measurement").replace(" )", ")"))
    return marked, found


def report_names(measurements: dict, has_spacing: bool) -> dict:
    """Measurements as reported: rounded; ``*_px`` names (and a ``no_spacing`` note) without spacing."""
    rounded = {name: {key: round(value, 2) if isinstance(value, float) else value for key, value in entry.items()}
               for name, entry in measurements.items()}
    if has_spacing:
        return rounded
    return {**{PIXEL_NAMES[name]: entry for name, entry in rounded.items()},
            "note": "no_spacing: the image has no physical spacing; sizes are in pixels (give --spacing SX SY in mm)"}
