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
from dataclasses import dataclass

import numpy as np

from ..contract import reference_mask
from .agreement import assessment_records, fit_assessment
from .boundary import REFERENCES_FILE as BOUNDARY_FILE
from .boundary import ProfileImage, fit_boundary
from .conformal import conformal_quantile, fewest_cases
from .degradations import CLEAN
from .domain import fit_domain
from .evaluation import LabelledPrediction, reference_sizes
from .features import is_absent
from .fit import MIN_CASES, QualityRecord, fit_quality_model
from .measurement_intervals import interval_scale, plausible_range
from .metrics import dice
from .presence import fit_presence
from .rca import RcaCase, fit_rca


@dataclass(frozen=True)
class DomainRecord:
    """One calibration image (or frame) for the domain check: its subject, what the encoder saw (per layer,
    (D,)) and the model's uncertainty over it."""

    subject: str
    embeddings: dict[str, np.ndarray]
    image_uncertainty: float


def domain_records(labelled: LabelledPrediction) -> list[DomainRecord]:
    """The domain records of one labelled prediction: one per frame of a 2D model, one for a volume."""
    prediction = labelled.prediction
    if prediction.embeddings is None:
        return []
    by_frame = [c.frame_summaries or [c.summary] for c in prediction.classes]
    return [DomainRecord(labelled.case.subject, {name: values[k] for name, values in prediction.embeddings.items()},
                         float(np.mean([summaries[k]["mean_entropy_image"] for summaries in by_frame])))
            for k in range(len(by_frame[0]))]


def labelled_records(labelled: LabelledPrediction, perturbation_rng: np.random.Generator,
                     assessment: list[QualityRecord], rca_cases: list[RcaCase]) -> list[QualityRecord]:
    """One record per annotated class of a labelled prediction (summary, true Dice, measurements and the
    reference's); ``assessment`` / ``rca_cases`` get the agreement records of perturbed reference masks and
    the RCA cases (model mask, reference) of the clean 2D images (:mod:`.agreement`, :mod:`.rca`)."""
    records = []
    profile_image = ProfileImage.of(labelled.prediction.image)
    for class_prediction in labelled.prediction.classes:
        reference = labelled.references.get(class_prediction.name)
        if reference is None:
            continue
        truth = reference_mask(reference)
        # a stack predicted frame by frame is checked per frame; its calibration record has no single profile
        (profile,) = profile_image.profiles(class_prediction.mask, frames=False) \
            if class_prediction.frame_summaries is None else (None,)
        records.append(QualityRecord(
            class_prediction.name, labelled.case.subject, dict(class_prediction.summary),
            dice(class_prediction.mask, truth), labelled.kind, class_prediction.measurements,
            reference_sizes(labelled.case, reference, labelled.prediction.image), profile))
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
    of new segments, wide where the samples disagree. Too few segments, or segments of fewer subjects than
    :func:`.conformal.fewest_cases`: no entry."""
    pairs: dict[tuple[str, str], list[tuple[dict, float, str]]] = {}
    for record in records:
        if not record.measurements or not record.reference_measurements or is_absent(record.summary):
            continue
        for name, truth in record.reference_measurements.items():
            entry = record.measurements.get(name)
            if entry is not None and entry["value"] > 0 and truth > 0:
                pairs.setdefault((record.class_name, name), []).append((entry, truth, record.kind, record.subject))
    result: dict[str, dict[str, dict]] = {}
    for (class_name, name), found in sorted(pairs.items()):
        if len({subject for *_, subject in found}) < fewest_cases(alpha):  # copies of a few subjects' images
            continue
        ratios = [truth / entry["value"] for entry, truth, kind, _ in found if kind == CLEAN]
        factor = float(np.median(ratios)) if len(ratios) >= MIN_CASES else 1.0
        scaled = [({key: value * factor for key, value in entry.items()}, truth) for entry, truth, *_ in found]
        quantile = conformal_quantile([max(e["p05"] - t, t - e["p95"]) / interval_scale(e) for e, t in scaled], alpha)
        if math.isfinite(quantile):
            result.setdefault(class_name, {})[name] = {
                "scale": round(factor, 5), "margin": round(quantile, 5),
                "plausible": plausible_range([truth for _, truth, kind, _ in found if kind == CLEAN] or
                                             [truth for _, truth, *_ in found])}
    return result


def boundary_checks(records: Sequence[QualityRecord]) -> tuple[dict[str, dict], dict[str, np.ndarray]]:
    """Per class the boundary check (:mod:`.boundary`) of its calibration segments that have a profile,
    for classes with at least MIN_CASES of them from two subjects or more: (sections, references by class)."""
    by_class: dict[str, list[QualityRecord]] = {}
    for record in records:
        if record.boundary is not None:
            by_class.setdefault(record.class_name, []).append(record)
    fitted = {name: fit_boundary(np.stack([r.boundary for r in found]), [r.subject for r in found])
              for name, found in sorted(by_class.items())
              if len(found) >= MIN_CASES and len({r.subject for r in found}) >= 2}
    return {name: section for name, (section, _) in fitted.items()}, {name: refs for name, (_, refs) in fitted.items()}


def fit_calibration(records: Sequence[QualityRecord], assessment: Sequence[QualityRecord],
                    rca_cases: Sequence[RcaCase], settings: dict, alpha: float, threshold: float,
                    seed: int = 0, domain: Sequence[DomainRecord] = ()) -> tuple[dict, dict[str, bytes]]:
    """The ``quality`` section of a bundle config (badge, presence tests, domain check, boundary checks,
    assessment of given masks, prediction settings, measurement intervals) and the data files it names
    (RCA references, the domain check's calibration descriptors)."""
    from safetensors.numpy import save

    quality = fit_quality_model(records, alpha=alpha, threshold=threshold)
    quality["presence"] = fit_presence(records)
    quality["assessment"] = fit_assessment(list(assessment), alpha, threshold, seed)
    quality["assessment"]["rca"], files = fit_rca(list(rca_cases), alpha, seed)
    quality["prediction"] = settings
    quality["measurements"] = measurement_calibration(records, alpha)
    quality["boundary"], boundary_references = boundary_checks(records)
    if len({record.subject for record in domain}) >= 2:
        section, references = fit_domain(
            {name: np.stack([record.embeddings[name] for record in domain]) for name in domain[0].embeddings},
            np.array([record.image_uncertainty for record in domain]), [record.subject for record in domain])
        quality["domain"] = section
        files[section["references"]] = save(references)
    if boundary_references:
        files[BOUNDARY_FILE] = save(boundary_references)
    return quality, files
