"""Scoring predictions of labelled cases: per-segment rows and the metrics behind ``confidenceseg evaluate``.

The reference of a class is its confidence map (:meth:`Case.confidence_map`) binarised by
:func:`~ConfidenceSegLib.contract.reference_mask`: the annotator's mask, or the strict majority of raters.
True Dice follows :func:`metrics.dice` (both empty = 1). Ranking metrics (AURC, e-AURC, AUROC, Spearman,
MAE, coverage, PASS) are computed over the segments predicted present; segments predicted absent are
counted separately (``absent``: how many, and the fraction whose reference is empty too). The
predictions come from :mod:`ConfidenceSegLib.jobs.labelled` (this module runs no model).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..annotation.datasets import Case
from ..contract import CIRCUMFERENCE, reference_mask
from ..inference.measurements import reference_measurements
from ..model.bundle_config import QualityConfig
from . import metrics
from .apply import assess_segment
from .assessed import AssessedPrediction
from .degradations import CLEAN
from .features import baseline_confidence, is_absent
from .measurement_intervals import calibrated
from .verdict import Verdict


@dataclass
class LabelledPrediction:
    """One case's assessed prediction (of the image as it is, or degraded: ``kind``) with each evaluated
    class's reference confidence map (image grid, the prediction's shape)."""

    case: Case
    assessed: AssessedPrediction
    references: dict[str, np.ndarray]
    kind: str = CLEAN

    @property
    def prediction(self):
        return self.assessed.prediction


@dataclass
class SegmentRow:
    """One class of one labelled prediction: true Dice, the badge's and the mean-entropy baseline's
    verdicts, the scores the rankings use, the measurements against the reference."""

    case: str
    subject: str
    class_name: str
    kind: str
    true_dice: float
    reference_present: bool
    verdict: Verdict
    baseline: Verdict
    baseline_confidence: float
    uncertainty: dict[str, float]
    ece: float | None = None
    measurements: dict[str, dict] = field(default_factory=dict)
    qubiq_soft_dice: float | None = None

    @property
    def absent(self) -> bool:
        return is_absent(self.uncertainty)


def segment_rows(labelled: LabelledPrediction,
                 quality: QualityConfig | None) -> list[tuple[SegmentRow, metrics.CalibrationBins]]:
    """Per evaluated class of one case: its row and the class's calibration bins."""
    rows = []
    assessed = labelled.assessed
    used = (assessed.prediction.method, assessed.prediction.samples)
    for result in assessed.classes:
        reference = labelled.references.get(result.name)
        if reference is None:
            continue
        maps = assessed.maps(result.name)
        bins = metrics.calibration_bins(maps.probability, reference)
        row = SegmentRow(
            labelled.case.id, labelled.case.subject, result.name, labelled.kind,
            true_dice=metrics.dice(maps.mask, reference_mask(reference)),
            reference_present=bool(reference_mask(reference).any()), verdict=result.verdict,
            baseline=assess_segment(quality, result.name, result.uncertainty, baseline=True, used=used,
                                    has_spacing=assessed.source.has_spacing),
            baseline_confidence=baseline_confidence(result.uncertainty), uncertainty=dict(result.uncertainty),
            ece=metrics.expected_calibration_error(bins),
            measurements=measurement_rows(labelled, maps, reference, quality),
            qubiq_soft_dice=metrics.qubiq_soft_dice(maps.probability, reference) if labelled.case.rater_paths
            else None)
        rows.append((row, bins))
    return rows


def reference_sizes(case: Case, reference: np.ndarray, image) -> dict[str, float]:
    """Reference measurements of a class: from its mask, the circumference replaced by the dataset's own
    ``head_circumference_mm`` where the case has one (HC18). ``reference``: the confidence map (float32 in
    [0, 1], image grid): (H, W) gives area and circumference, (frames, H, W) or (Z, Y, X) a volume."""
    sizes = reference_measurements(reference_mask(reference), image.GetSpacing())
    if "head_circumference_mm" in case.extra and CIRCUMFERENCE in sizes:
        sizes[CIRCUMFERENCE] = float(case.extra["head_circumference_mm"])
    return sizes


def measurement_rows(labelled: LabelledPrediction, class_prediction, reference: np.ndarray,
                     quality: QualityConfig | None) -> dict[str, dict]:
    """Per measurement: the reported value and interval (calibrated), the reference, the absolute
    difference and whether the interval covers the reference. ``reference``: the class's confidence map
    (float32 in [0, 1]) of the prediction's shape, (H, W), (frames, H, W) or (Z, Y, X)."""
    if not reference.any() or not class_prediction.mask.any():
        return {}
    calibration = quality.measurement_calibration(class_prediction.name) if quality is not None else None
    reported = calibrated(class_prediction.measurements or {}, calibration)
    rows = {}
    for name, truth in reference_sizes(labelled.case, reference, labelled.prediction.image).items():
        entry = reported.get(name)
        if entry is not None:
            rows[name] = {**entry, "reference": truth, "abs_error": abs(entry["value"] - truth),
                          "covered": bool(entry["p05"] <= truth <= entry["p95"])}
    return rows


def presence_metrics(rows: list[SegmentRow]) -> dict:
    """False-positive rate (cases without the structure given a segment) and miss rate (cases with it
    predicted absent), each with its number of cases (rates None where there are none)."""
    without = [row for row in rows if not row.reference_present]
    with_structure = [row for row in rows if row.reference_present]
    return {"false_positive_rate": _mean([float(not row.absent) for row in without]),
            "cases_without_structure": len(without),
            "miss_rate": _mean([float(row.absent) for row in with_structure]),
            "cases_with_structure": len(with_structure)}


def measurement_metrics(rows: list[SegmentRow]) -> dict[str, dict]:
    """Per measurement over the rows that have it: mean absolute difference and interval coverage."""
    result = {}
    for name in sorted({name for row in rows for name in row.measurements}):
        entries = [row.measurements[name] for row in rows if name in row.measurements]
        result[name] = {"n": len(entries), "mean_abs_error": _mean(e["abs_error"] for e in entries),
                        "interval_coverage": _mean(float(e["covered"]) for e in entries),
                        "mean_interval_width": _mean(e["p95"] - e["p05"] for e in entries)}
    return result


def _ranking_metrics(confidence, true, predicted, lower, badges, threshold: float) -> dict:
    result = {"spearman": metrics.spearman(confidence, true),
              "auroc_dice_below_threshold": metrics.failure_auroc(confidence, true, threshold),
              "aurc": metrics.aurc(confidence, true), "e_aurc": metrics.e_aurc(confidence, true)}
    if predicted is not None:
        result.update(mae_predicted_dice=metrics.mean_absolute_error(predicted, true),
                      lower_bound_coverage=metrics.lower_bound_coverage(lower, true),
                      pass_rate=metrics.pass_rate(badges),
                      pass_precision=metrics.pass_precision(badges, true, threshold))
    return result


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def or_zero(value: float | None) -> float:
    """A predicted Dice or bound; out of the calibration domain (``None``) it counts as 0: no trust."""
    return 0.0 if value is None else float(value)


def rated(verdict) -> bool:
    """Whether a verdict comes from a quality model (not unrated, nor an uncalibrated nnU-Net model's REVIEW)."""
    return verdict.badge is not None and verdict.reasons[0].code != "not_calibrated"


def class_metrics(rows: list[SegmentRow], pooled_bins: metrics.CalibrationBins | None, threshold: float) -> dict:
    """Per-class summary: mean Dice, the method's and the baselines' failure-detection metrics."""
    present = [row for row in rows if not row.absent]
    absent = [row for row in rows if row.absent]
    true = [row.true_dice for row in present]
    result = {"n_cases": len(rows), "n_present": len(present), "mean_dice": _mean(row.true_dice for row in rows),
              "absent": {"n": len(absent), "reference_empty_fraction": _mean([float(row.true_dice == 1.0)
                                                                              for row in absent])},
              "presence": presence_metrics(rows)}
    if present and all(rated(row.verdict) for row in present):
        predicted = [or_zero(row.verdict.predicted_dice) for row in present]
        result["method"] = _ranking_metrics(predicted, true, predicted,
                                            [or_zero(row.verdict.dice_lower_bound) for row in present],
                                            [row.verdict.badge for row in present], threshold)
        result["method"]["out_of_domain"] = sum(row.verdict.predicted_dice is None for row in present)
        baseline_predicted = [or_zero(row.baseline.predicted_dice) for row in present]
        result["baseline_mean_entropy"] = _ranking_metrics(
            [row.baseline_confidence for row in present], true, baseline_predicted,
            [or_zero(row.baseline.dice_lower_bound) for row in present],
            [row.baseline.badge for row in present], threshold)
    else:  # no quality model for this class: rank by the raw scores only
        result["method"] = None
        result["baseline_mean_entropy"] = _ranking_metrics(
            [row.baseline_confidence for row in present], true, None, None, None, threshold)
    result["raw_mean_pairwise_dice"] = _ranking_metrics(
        [row.uncertainty["mean_pairwise_dice"] for row in present], true, None, None, None, threshold)
    result["measurements"] = measurement_metrics(rows)
    result["ece_mean"] = _mean(row.ece for row in rows)
    result["ece_pooled"] = metrics.expected_calibration_error(pooled_bins) if pooled_bins is not None else None
    if any(row.qubiq_soft_dice is not None for row in rows):
        result["qubiq_soft_dice_mean"] = _mean(row.qubiq_soft_dice for row in rows)
    return result


@dataclass
class Evaluation:
    """Everything ``evaluate`` writes: per-segment rows, per-class metrics and pooled calibration bins."""

    rows: list[SegmentRow]
    classes: dict[str, dict]
    bins: dict[str, metrics.CalibrationBins]
    prediction_settings: dict


def summarise(rows: list[SegmentRow], bins: dict[str, metrics.CalibrationBins], classes: list[str],
              threshold: float, degradations=()) -> dict[str, dict]:
    """Per class: :func:`class_metrics` pooled, and per image kind (``by_kind``) when there are degradations."""
    per_class = {name: class_metrics([row for row in rows if row.class_name == name], bins.get(name), threshold)
                 for name in classes}
    if degradations:
        for name in classes:
            per_class[name]["by_kind"] = {
                kind: class_metrics([row for row in rows if row.class_name == name and row.kind == kind], None,
                                    threshold) for kind in (CLEAN, *degradations)}
    return per_class
