"""Fitting a bundle's quality section from labelled predictions (the pure part of ``calibrate``).

Each labelled case is predicted as it is and, with degradations (:mod:`.degradations`), once per kind
degraded (:mod:`ConfidenceSegLib.jobs.calibrate` runs the model), so that the regressor and its conformal
bound see failures; the records keep their kind and the fit checks (and guarantees on calibration) the
bound's level per kind (:mod:`.fit`). The measurement intervals get a conformal relative margin per class
(:func:`measurement_calibration`); given masks are rated by agreement (:mod:`.agreement`) and RCA (:mod:`.rca`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..contract import reference_mask
from .agreement import assessment_records, fit_assessment
from .conformal import conformal_quantile
from .degradations import CLEAN
from .evaluation import LabelledPrediction, reference_sizes
from .features import is_absent
from .fit import MIN_CASES, QualityRecord, fit_quality_model
from .measurement_intervals import interval_scale
from .metrics import dice
from .rca import RcaCase, fit_rca


def labelled_records(labelled: LabelledPrediction, perturbation_rng: np.random.Generator,
                     assessment: list[QualityRecord], rca_cases: list[RcaCase]) -> list[QualityRecord]:
    """One record per annotated class of a labelled prediction (summary, true Dice, measurements and the
    reference's); ``assessment`` / ``rca_cases`` get the agreement records of perturbed reference masks and
    the RCA cases (model mask, reference) of the clean 2D images (:mod:`.agreement`, :mod:`.rca`)."""
    records = []
    for class_prediction in labelled.prediction.classes:
        reference = labelled.references.get(class_prediction.name)
        if reference is None:
            continue
        truth = reference_mask(reference)
        records.append(QualityRecord(
            class_prediction.name, labelled.case.subject, dict(class_prediction.summary),
            dice(class_prediction.mask, truth), labelled.kind, class_prediction.measurements,
            reference_sizes(labelled.case, reference, labelled.prediction.image)))
        if labelled.kind == CLEAN and reference.ndim == 2:
            assessment.extend(assessment_records(labelled, perturbation_rng, class_prediction, truth))
            spacing = labelled.prediction.image.GetSpacing()
            rca_cases.append(RcaCase(labelled.case.id, class_prediction.name, class_prediction.mask, truth,
                                     (spacing[1], spacing[0])))
    return records


def measurement_calibration(records: Sequence[QualityRecord], alpha: float) -> dict[str, dict[str, dict]]:
    """Per class and measurement ``{"scale", "margin"}``: the scale is the median reference / value over
    the clean segments (the measurement's bias against the reference, e.g. an annotation convention);
    the margin is the conformal quantile q (normalised conformalised quantile regression, Romano et
    al. 2019) of ``max(p05 - y, y - p95) / w`` over all segments after scaling, w = the samples' spread
    floored at 1% of the value, so [p05 - q w, p95 + q w] covers the reference for about 1 - alpha
    of new segments, wide where the samples disagree. Too few segments: no entry."""
    pairs: dict[tuple[str, str], list[tuple[dict, float, str]]] = {}
    for record in records:
        if not record.measurements or not record.reference_measurements or is_absent(record.summary):
            continue
        for name, truth in record.reference_measurements.items():
            entry = record.measurements.get(name)
            if entry is not None and entry["value"] > 0 and truth > 0:
                pairs.setdefault((record.class_name, name), []).append((entry, truth, record.kind))
    result: dict[str, dict[str, dict]] = {}
    for (class_name, name), found in sorted(pairs.items()):
        ratios = [truth / entry["value"] for entry, truth, kind in found if kind == CLEAN]
        factor = float(np.median(ratios)) if len(ratios) >= MIN_CASES else 1.0
        scaled = [({key: value * factor for key, value in entry.items()}, truth) for entry, truth, _ in found]
        quantile = conformal_quantile([max(e["p05"] - t, t - e["p95"]) / interval_scale(e) for e, t in scaled], alpha)
        if math.isfinite(quantile):
            result.setdefault(class_name, {})[name] = {"scale": round(factor, 5), "margin": round(quantile, 5)}
    return result


def fit_calibration(records: Sequence[QualityRecord], assessment: Sequence[QualityRecord],
                    rca_cases: Sequence[RcaCase], settings: dict, alpha: float, threshold: float,
                    seed: int = 0) -> tuple[dict, dict[str, bytes]]:
    """The ``quality`` section of a bundle config (badge, assessment of given masks, prediction settings,
    measurement intervals) and the RCA reference files it names."""
    quality = fit_quality_model(records, alpha=alpha, threshold=threshold)
    quality["assessment"] = fit_assessment(list(assessment), alpha, threshold, seed)
    quality["assessment"]["rca"], rca_files = fit_rca(list(rca_cases), alpha, seed)
    quality["prediction"] = settings
    quality["measurements"] = measurement_calibration(records, alpha)
    return quality, rca_files
