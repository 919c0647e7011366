"""Prediction on labelled cases, and the quality evaluation behind ``confidenceseg evaluate``.

The reference of a class is its confidence map (:meth:`Case.confidence_map`) binarised at > 0.5: the
annotator's mask, or the strict majority of raters. True Dice follows :func:`metrics.dice` (both empty = 1).
Ranking metrics (AURC, e-AURC, AUROC, Spearman, MAE, coverage, PASS) are computed over the segments
predicted present; segments predicted absent are counted separately (``absent``: how many, and the
fraction whose reference is empty too).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from ..annotation.datasets import Case, Dataset
from ..contract import CIRCUMFERENCE, ConfidenceSegError
from ..inference.measurements import calibrated, reference_measurements
from ..io.inputs import has_physical_spacing
from ..model.bundle import ModelBundle
from . import metrics
from .apply import assess_segment
from .degradations import CLEAN, degrade
from .features import baseline_confidence, is_absent

#: Reference foreground: confidence (annotator mask or rater fraction) above this.
REFERENCE_THRESHOLD = 0.5


@dataclass
class LabelledPrediction:
    """One case's prediction (of the image as it is, or degraded: ``kind``) with each evaluated class's
    reference confidence map (image grid)."""

    case: Case
    prediction: object  # inference.Prediction
    references: dict[str, np.ndarray]
    kind: str = CLEAN


def common_classes(bundle: ModelBundle, dataset: Dataset) -> list[str]:
    """Classes the model predicts and the dataset annotates (in the model's order)."""
    classes = [name for name in bundle.classes if name in dataset.classes]
    if not classes:
        raise ConfidenceSegError(f"the model's classes ({', '.join(bundle.classes)}) and the dataset's "
                                 f"({', '.join(dataset.classes)}) have nothing in common")
    return classes


def predict_labelled(bundle: ModelBundle, cases: Sequence[Case], classes: Sequence[str], device=None,
                     method: str = "auto", samples: int | None = None, show_progress: bool = True,
                     degradations: Sequence[str] = (), seed: int = 0) -> Iterator[LabelledPrediction]:
    """Run :func:`~ConfidenceSegLib.inference.predict.predict_image` on each case (and on one copy per
    kind in ``degradations``, :mod:`.degradations`, strengths drawn from ``seed``) and pair it with its
    references (unchanged by a degradation)."""
    from ..inference.predict import predict_image  # heavy import, only needed here

    rng = np.random.default_rng(seed)
    bar = tqdm(total=len(cases) * (1 + len(degradations)), desc="predicting", unit="image", disable=not show_progress)
    with bar:
        for case in cases:
            image = case.read_image()
            references = {name: case.confidence_map(name, image) for name in classes
                          if name in case.label_paths or case.rater_paths}
            for kind in (CLEAN, *degradations):
                shown = image if kind == CLEAN else degrade(image, kind, rng)
                prediction = predict_image(bundle, shown, method=method, samples=samples, device=device)
                bar.update()
                yield LabelledPrediction(case, prediction, references, kind)


def segment_rows(labelled: LabelledPrediction,
                 quality_config: dict | None) -> list[tuple[dict, metrics.CalibrationBins]]:
    """Per class of one case: a row (true Dice, quality assessment of method and baseline, soft scores)
    and the class's calibration bins."""
    rows = []
    settings = {"method": labelled.prediction.method, "samples": labelled.prediction.samples}
    has_spacing = has_physical_spacing(labelled.case.image_path)
    for class_prediction in labelled.prediction.classes:
        reference = labelled.references.get(class_prediction.name)
        if reference is None:
            continue
        summary = class_prediction.summary
        bins = metrics.calibration_bins(class_prediction.probability, reference)
        row = {"case": labelled.case.id, "subject": labelled.case.subject, "class": class_prediction.name,
               "kind": labelled.kind,
               "true_dice": metrics.dice(class_prediction.mask, reference > REFERENCE_THRESHOLD),
               "reference_present": bool((reference > REFERENCE_THRESHOLD).any()),
               **assess_segment(quality_config, class_prediction.name, summary, settings=settings,
                                has_spacing=has_spacing),
               "baseline": assess_segment(quality_config, class_prediction.name, summary, baseline=True,
                                          settings=settings, has_spacing=has_spacing),
               "baseline_confidence": baseline_confidence(summary),
               "ece": metrics.expected_calibration_error(bins),
               "uncertainty": {key: float(value) for key, value in summary.items()},
               "measurements": measurement_rows(labelled, class_prediction, reference, quality_config)}
        if labelled.case.rater_paths:
            row["qubiq_soft_dice"] = metrics.qubiq_soft_dice(class_prediction.probability, reference)
        rows.append((row, bins))
    return rows


def reference_sizes(case: Case, reference: np.ndarray, image) -> dict[str, float]:
    """Reference measurements of a class: from its mask, the circumference replaced by the dataset's own
    ``head_circumference_mm`` where the case has one (HC18)."""
    sizes = reference_measurements(reference > REFERENCE_THRESHOLD, image.GetSpacing())
    if "head_circumference_mm" in case.extra and CIRCUMFERENCE in sizes:
        sizes[CIRCUMFERENCE] = float(case.extra["head_circumference_mm"])
    return sizes


def measurement_rows(labelled: LabelledPrediction, class_prediction, reference: np.ndarray,
                     quality_config: dict | None) -> dict[str, dict]:
    """Per measurement: the reported value and interval (calibrated), the reference, the absolute
    difference and whether the interval covers the reference."""
    if not reference.any() or not class_prediction.mask.any():
        return {}
    calibration = ((quality_config or {}).get("measurements") or {}).get(class_prediction.name)
    reported = calibrated(class_prediction.measurements or {}, calibration)
    rows = {}
    for name, truth in reference_sizes(labelled.case, reference, labelled.prediction.image).items():
        entry = reported.get(name)
        if entry is not None:
            rows[name] = {**entry, "reference": truth, "abs_error": abs(entry["value"] - truth),
                          "covered": bool(entry["p05"] <= truth <= entry["p95"])}
    return rows


def presence_metrics(rows: list[dict]) -> dict:
    """False-positive rate (cases without the structure given a segment) and miss rate (cases with it
    predicted absent), each with its number of cases (rates None where there are none)."""
    without = [row for row in rows if not row["reference_present"]]
    with_structure = [row for row in rows if row["reference_present"]]
    return {"false_positive_rate": _mean([float(not is_absent(row["uncertainty"])) for row in without]),
            "cases_without_structure": len(without),
            "miss_rate": _mean([float(is_absent(row["uncertainty"])) for row in with_structure]),
            "cases_with_structure": len(with_structure)}


def measurement_metrics(rows: list[dict]) -> dict[str, dict]:
    """Per measurement over the rows that have it: mean absolute difference and interval coverage."""
    result = {}
    for name in sorted({name for row in rows for name in row.get("measurements", {})}):
        entries = [row["measurements"][name] for row in rows if name in row.get("measurements", {})]
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


def class_metrics(rows: list[dict], pooled_bins: metrics.CalibrationBins | None, threshold: float) -> dict:
    """Per-class summary: mean Dice, the method's and the baselines' failure-detection metrics."""
    true_all = [row["true_dice"] for row in rows]
    absent = [row for row in rows if is_absent(row["uncertainty"])]
    present = [row for row in rows if not is_absent(row["uncertainty"])]
    true = [row["true_dice"] for row in present]
    result = {"n_cases": len(rows), "n_present": len(present), "mean_dice": _mean(true_all),
              "absent": {"n": len(absent),
                         "reference_empty_fraction": _mean([float(row["true_dice"] == 1.0) for row in absent])},
              "presence": presence_metrics(rows)}
    rated = [row for row in present if row["badge"] is not None]
    if rated and len(rated) == len(present):
        predicted = [or_zero(row["predicted_dice"]) for row in present]
        result["method"] = _ranking_metrics(predicted, true, predicted,
                                            [or_zero(row["dice_lower_bound"]) for row in present],
                                            [row["badge"] for row in present], threshold)
        result["method"]["out_of_domain"] = sum(row["predicted_dice"] is None for row in present)
        baseline_predicted = [or_zero(row["baseline"]["predicted_dice"]) for row in present]
        result["baseline_mean_entropy"] = _ranking_metrics(
            [row["baseline_confidence"] for row in present], true, baseline_predicted,
            [or_zero(row["baseline"]["dice_lower_bound"]) for row in present],
            [row["baseline"]["badge"] for row in present], threshold)
    else:  # no quality model for this class: rank by the raw scores only
        result["method"] = None
        result["baseline_mean_entropy"] = _ranking_metrics(
            [row["baseline_confidence"] for row in present], true, None, None, None, threshold)
    result["raw_mean_pairwise_dice"] = _ranking_metrics(
        [row["uncertainty"]["mean_pairwise_dice"] for row in present], true, None, None, None, threshold)
    result["measurements"] = measurement_metrics(rows)
    result["ece_mean"] = _mean(row["ece"] for row in rows)
    result["ece_pooled"] = metrics.expected_calibration_error(pooled_bins) if pooled_bins is not None else None
    if any("qubiq_soft_dice" in row for row in rows):
        result["qubiq_soft_dice_mean"] = _mean(row.get("qubiq_soft_dice") for row in rows)
    return result


@dataclass
class Evaluation:
    """Everything ``evaluate`` writes: per-segment rows, per-class metrics and pooled calibration bins."""

    rows: list[dict]
    classes: dict[str, dict]
    bins: dict[str, metrics.CalibrationBins]
    prediction_settings: dict


def evaluate_cases(bundle: ModelBundle, dataset: Dataset, cases: Sequence[Case], device=None,
                   method: str = "auto", samples: int | None = None, show_progress: bool = True,
                   degradations: Sequence[str] = (), seed: int = 0) -> Evaluation:
    """Predict every case (and its degraded copies), assess each segment with the bundle's quality model,
    and compute the metrics: pooled, and per image kind (``by_kind``) when there are degradations."""
    if not cases:
        raise ConfidenceSegError(f"dataset {dataset.name} has no cases to evaluate")
    classes = common_classes(bundle, dataset)
    quality_config = bundle.config.get("quality")
    threshold = float((quality_config or {}).get("threshold", metrics.GOOD_DICE))
    rows, bins, settings = [], {}, {}
    for labelled in predict_labelled(bundle, cases, classes, device, method, samples, show_progress,
                                     degradations, seed):
        settings = {"method": labelled.prediction.method, "samples": labelled.prediction.samples,
                    "device": labelled.prediction.device}
        for row, case_bins in segment_rows(labelled, quality_config):
            rows.append(row)
            bins[row["class"]] = bins[row["class"]] + case_bins if row["class"] in bins else case_bins
    per_class = {name: class_metrics([row for row in rows if row["class"] == name], bins.get(name), threshold)
                 for name in classes}
    if degradations:
        for name in classes:
            per_class[name]["by_kind"] = {
                kind: class_metrics([row for row in rows if row["class"] == name and row["kind"] == kind], None,
                                    threshold) for kind in (CLEAN, *degradations)}
    return Evaluation(rows=rows, classes=per_class, bins=bins, prediction_settings=settings)
