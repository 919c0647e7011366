"""Calibrating a bundle's quality model on labelled cases (``confidenceseg calibrate``, end of ``train``).

Each case is predicted as it is and, with ``degradations`` (:mod:`.degradations`), once per kind
degraded, so that the regressor and its conformal bound see failures; the records keep their kind
and the fit checks (and guarantees on calibration) the bound's level per kind (:mod:`.fit`). The
measurement intervals get a conformal relative margin per class (:func:`measurement_margins`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..annotation.datasets import Case, Dataset, load_dataset
from ..contract import ConfidenceSegError
from ..inference.measurements import interval_scale
from ..io.resources import resources_dir
from ..io.safe_files import check_output_folder
from ..model.bundle import ModelBundle, load_bundle, save_bundle, update_config
from .agreement import assessment_records, fit_assessment
from .conformal import conformal_quantile
from .degradations import CLEAN
from .evaluation import REFERENCE_THRESHOLD, common_classes, predict_labelled, reference_sizes
from .features import is_absent
from .fit import MIN_CASES, QualityRecord, fit_quality_model
from .metrics import dice
from .rca import RcaCase, fit_rca


def collect_records(bundle: ModelBundle, cases: Sequence[Case], classes: Sequence[str], device=None,
                    method: str = "auto", samples: int | None = None, show_progress: bool = True,
                    degradations: Sequence[str] = (), seed: int = 0,
                    assessment: list[QualityRecord] | None = None,
                    rca_cases: list[RcaCase] | None = None) -> tuple[list[QualityRecord], dict]:
    """Predict each case (and its degraded copies); one record per annotated class (summary, true Dice,
    measurements and the reference's), and the prediction settings. ``assessment`` / ``rca_cases``:
    lists that get the agreement records of perturbed reference masks and the RCA cases (model mask,
    reference) of the clean 2D images (:mod:`.agreement`, :mod:`.rca`)."""
    records, settings = [], {}
    perturbation_rng = np.random.default_rng(seed + 1)
    for labelled in predict_labelled(bundle, cases, classes, device, method, samples, show_progress,
                                     degradations, seed):
        settings = {"method": labelled.prediction.method, "samples": labelled.prediction.samples}
        for class_prediction in labelled.prediction.classes:
            reference = labelled.references.get(class_prediction.name)
            if reference is not None:
                true_dice = dice(class_prediction.mask, reference > REFERENCE_THRESHOLD)
                records.append(QualityRecord(
                    class_prediction.name, labelled.case.subject, dict(class_prediction.summary), true_dice,
                    labelled.kind, class_prediction.measurements,
                    reference_sizes(labelled.case, reference, labelled.prediction.image)))
                if assessment is not None and labelled.kind == CLEAN and reference.ndim == 2:
                    assessment.extend(assessment_records(labelled, perturbation_rng, class_prediction,
                                                         reference > REFERENCE_THRESHOLD))
                if rca_cases is not None and labelled.kind == CLEAN and reference.ndim == 2:
                    spacing = labelled.prediction.image.GetSpacing()
                    rca_cases.append(RcaCase(labelled.case.id, class_prediction.name, class_prediction.mask,
                                             reference > REFERENCE_THRESHOLD, (spacing[1], spacing[0])))
    return records, settings


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


def _is_bundled(path: Path) -> bool:
    try:
        return path.resolve().is_relative_to(resources_dir().resolve())
    except ConfidenceSegError:  # no bundled resources here
        return False


def calibrate_bundle(bundle_path: str | os.PathLike, dataset: Dataset | str | os.PathLike,
                     cases: Sequence[Case] | None = None, alpha: float = 0.1, threshold: float = 0.8,
                     device=None, method: str = "auto", samples: int | None = None,
                     show_progress: bool = True, out: str | os.PathLike | None = None,
                     overwrite: bool = False, degradations: Sequence[str] = (), seed: int = 0) -> dict:
    """Fit the quality model on ``cases`` (default: all of ``dataset``), each also degraded once per kind in
    ``degradations``, and store it in a bundle's config.

    With ``out`` a new bundle is written there (the same weights, the new quality model; atomic, an
    existing folder only with ``overwrite``) and ``bundle_path`` is left as it was; without it the
    bundle's own ``config.json`` is rewritten, which is refused for a bundled model. The cases should
    be held out from training (e.g. the validation subjects). Returns the ``"quality"`` entry.
    """
    source = Path(bundle_path)
    if out is None and _is_bundled(source):
        raise ConfidenceSegError(f"{source} is a bundled model and is never modified: pass --out NEW_BUNDLE to "
                                 "calibrate a copy")
    if out is None:
        check_output_folder(source, [], overwrite=True)  # config.json is rewritten in place
    else:
        check_output_folder(Path(out).parent, [Path(out).name], overwrite)
    dataset = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    cases = list(dataset.cases if cases is None else cases)
    if not cases:
        raise ConfidenceSegError(f"no labelled cases to calibrate on in dataset {dataset.name}")
    bundle = load_bundle(bundle_path)
    assessment: list[QualityRecord] = []
    rca_cases: list[RcaCase] = []
    records, settings = collect_records(bundle, cases, common_classes(bundle, dataset), device, method, samples,
                                        show_progress, degradations, seed, assessment, rca_cases)
    quality = fit_quality_model(records, alpha=alpha, threshold=threshold)
    quality["assessment"] = fit_assessment(assessment, alpha, threshold, seed)
    quality["assessment"]["rca"], rca_files = fit_rca(rca_cases, alpha, seed)
    quality["prediction"] = settings
    quality["measurements"] = measurement_calibration(records, alpha)
    dice_values = [record.dice for record in records]
    quality["calibration_data"] = {
        "dataset": dataset.name, "n_cases": len(cases), "n_subjects": len({case.subject for case in cases}),
        "subject_ids": sorted({case.subject for case in cases}), "case_ids": [case.id for case in cases],
        "degradations": list(degradations), "degradation_seed": seed, "n_segments": len(records),
        "dice_range": [round(min(dice_values), 4), round(max(dice_values), 4)] if dice_values else None,
        "segments_below_threshold": sum(value < threshold for value in dice_values)}
    if out is None:
        update_config(source, {"quality": quality}, rca_files)
    else:
        save_bundle(out, dict(bundle.config, quality=quality, derived_from=str(source)), bundle.members, overwrite,
                    rca_files)
    return quality
