"""Why a segment got its badge: reason codes with a message a reader understands.

Every assessment carries ``reasons``: a list of ``{"code", "message"}``, the deciding one first. Words a
clinician reads: "uncertainty" (the predictive entropy, named so only in small print), the bound's level
("90% lower bound"), and numbers rounded so that they never contradict the verdict (a bound of 0.7965
is "0.797 < 0.80", never "0.80 below 0.80"). Standard library only (every front end formats with it). Codes (in
:data:`~ConfidenceSegLib.contract.REASON_CODES`): ``lower_bound_above_threshold`` (PASS),
``out_of_domain`` (which descriptor, its value, the calibrated range), ``lower_bound_below_threshold``,
``too_few_calibration_cases``, ``absent``, ``method_differs_from_calibration``, ``no_spacing``,
``no_quality_model``, ``frames_need_review`` and ``quality_model_outdated``.
"""

from __future__ import annotations

from ..contract import ABSENT, CIRCUMFERENCE, PASS, PIXEL_NAMES, REVIEW, VOLUME
from .verdict import ClassResult, FrameResult, Reason, Verdict

#: Readable names of the quality descriptors (others are shown as they are named).
DESCRIPTOR_NAMES = {"mean_entropy_image": "uncertainty over the image",
                    "log_size_fraction": "segment size (log10 fraction of the image)",
                    "mean_pairwise_dice": "agreement of the samples", "samples_iou": "overlap of all samples",
                    "volume_cv": "variation of the segment size", "mean_entropy": "uncertainty in the segment",
                    "mean_entropy_boundary": "uncertainty on the boundary",
                    "mean_mutual_information": "disagreement of the samples", "mean_probability": "mean probability"}
#: Most decimals a number in a reason gets while it still prints equal to the threshold it is compared with.
MAX_DECIMALS = 6


def compared(value: float, threshold: float) -> str:
    """``value`` with as many decimals (2 to 6) as it takes to print on its true side of ``threshold``
    (shown with 2): 0.7965 vs 0.80 is "0.797", 0.8 vs 0.80 is "0.80"."""
    for decimals in range(2, MAX_DECIMALS + 1):
        text = f"{value:.{decimals}f}"
        if (float(text) >= threshold) == (value >= threshold):
            return text
    return f"{value:.{MAX_DECIMALS}f}"


def bound_name(alpha: float | None) -> str:
    """``90% lower bound`` for alpha 0.1 (``lower bound`` when the level is unknown)."""
    return "lower bound" if alpha is None else f"{round(100 * (1 - alpha)):d}% lower bound"


def bound_reason(bound: float, threshold: float, alpha: float | None) -> Reason:
    """The deciding reason of a numeric badge: the bound against the PASS threshold, in words."""
    passed = bound >= threshold
    return reason("lower_bound_above_threshold" if passed else "lower_bound_below_threshold",
                  f"{bound_name(alpha)} {compared(bound, threshold)} {'>=' if passed else '<'} {threshold:.2f} "
                  "(the PASS threshold)")


def reason(code: str, message: str) -> Reason:
    return Reason(code, message)


def out_of_domain(domain: dict, values) -> Reason | None:
    """The first descriptor outside its calibrated range (value and range in the message), or None."""
    for name, value, low, high in zip(domain["features"], values, domain["low"], domain["high"], strict=True):
        if (low is not None and value < low) or (high is not None and value > high):
            separator = " to " if low is not None and low < 0 or high is not None and high < 0 else "-"
            calibrated = (f"{low:.3g}{separator}{high:.3g}" if low is not None and high is not None
                          else f">= {low:.3g}" if low is not None else f"<= {high:.3g}")
            return reason("out_of_domain", f"image unlike the calibration images ({DESCRIPTOR_NAMES.get(name, name)} "
                                           f"{value:.3g}, calibrated {calibrated})")
    return None


def method_mismatch(calibrated: tuple[str, int] | None, used: tuple[str, int] | None) -> Reason | None:
    """A reason when the prediction's (method, samples) differ from the calibration's."""
    if not used or not calibrated:
        return None
    expected = tuple(calibrated)
    if tuple(used) == expected:
        return None
    return reason("method_differs_from_calibration",
                  f"predicted with {used[0]}, {used[1]} samples; the badge was calibrated with {expected[0]}, "
                  f"{expected[1]} samples")


def further_reasons(verdict: Verdict) -> list[str]:
    """The messages of a verdict's reasons after the first, but for those the first already says (a stack's
    first reason quotes its worst frame's)."""
    first = verdict.reasons[0].message if verdict.reasons else ""
    return [r.message for r in verdict.reasons[1:] if r.message not in first]


def more_reasons(verdict: Verdict) -> str:
    """`` (+2 more)`` when a verdict has reasons besides the first ("" otherwise)."""
    further = further_reasons(verdict)
    return f" (+{len(further)} more)" if further else ""


def verdict_words(verdict: Verdict) -> str:
    """``predicted Dice 0.96; 90% lower bound 0.91 >= 0.80 (the PASS threshold)`` (the deciding reason and how
    many more), or the first reason alone when there is no number (absent, out of domain, no quality model)."""
    if verdict.badge == ABSENT:
        return verdict.first_reason + more_reasons(verdict)
    if verdict.predicted_dice is None:
        return verdict.first_reason + more_reasons(verdict)
    if verdict.reasons[0].code in ("lower_bound_above_threshold", "lower_bound_below_threshold"):
        return f"predicted Dice {verdict.predicted_dice:.2f}; {verdict.first_reason}{more_reasons(verdict)}"
    bound = "n/a" if verdict.dice_lower_bound is None else f"{verdict.dice_lower_bound:.2f}"
    text = f"predicted Dice {verdict.predicted_dice:.2f}, lower bound {bound}"
    return f"{text}; {verdict.first_reason}{more_reasons(verdict)}"


def all_reasons(verdict: Verdict) -> str:
    """Every reason of a verdict, the deciding one first, separated by `` · ``."""
    return " · ".join([verdict.reasons[0].message, *further_reasons(verdict)] if verdict.reasons else [])


def result_words(result: ClassResult) -> str:
    """:func:`verdict_words` of one class, then its headline measurement."""
    words = verdict_words(result.verdict)
    measured = headline_measurement(result)
    return f"{words}; {measured}" if measured else words


def headline_measurement(result: ClassResult | FrameResult) -> str:
    """:func:`measurement_words` of one class or frame ("" when it is ABSENT or out of domain: no number the
    product cannot stand behind); a stack's class: ``frame 3 of 6: circumference ...`` (frames from 1)."""
    if result.verdict.badge == ABSENT or any(r.code == "out_of_domain" for r in result.verdict.reasons):
        return ""
    words = measurement_words(result.measurements)
    frame = getattr(result, "measured_frame", None)
    return f"frame {frame + 1} of {result.frame_count}: {words}" if words and frame is not None else words


def measurement_words(measurements: dict | None) -> str:
    """The headline measurement of a reported class in words: ``circumference 172.4 mm (169.8-175.1)``
    (2D; the volume for 3D), pixels for images without spacing; "" when there is none."""
    for name, label, unit in ((CIRCUMFERENCE, "circumference", "mm"),
                              (PIXEL_NAMES[CIRCUMFERENCE], "circumference", "px"),
                              (VOLUME, "volume", "mm³"), (PIXEL_NAMES[VOLUME], "volume", "voxels")):
        entry = (measurements or {}).get(name)
        if entry and entry["value"] > 0 and entry.get("plausible", True):
            digits = 1 if entry["value"] < 1000 else 0
            return (f"{label} {entry['value']:.{digits}f} {unit} "
                    f"({entry['p05']:.{digits}f}-{entry['p95']:.{digits}f})")
    return ""


def frame_counts(summary: dict | None) -> str:
    """``frames 14 PASS, 2 REVIEW, 0 ABSENT`` from a class's ``frames_summary`` ("" without one)."""
    if not summary:
        return ""
    return "frames " + ", ".join(f"{summary.get(badge, 0)} {badge}" for badge in (PASS, REVIEW, ABSENT))
