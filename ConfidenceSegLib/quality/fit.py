"""Fitting the quality model: per-class predicted Dice with a conformal lower bound.

Per class, a ridge regression (scikit-learn, standardised features, penalty chosen by
cross-validation) maps the uncertainty features of a predicted segment (:data:`.features.FEATURES`)
to its Dice, clipped to [0, 1]. The model is stored as plain numbers (means, scales, coefficients)
in the bundle config under ``"quality"``; no pickle. :mod:`.apply` uses it at prediction time.

Lower bound (split conformal, cross-fitted by subject): subjects are split into up to 5 folds; each
fold's cases are predicted by a regressor fitted on the other folds, giving held-out scores
``(predicted - true) / sigma(predicted)`` with the difficulty scale ``sigma(p) = 1 - p + 0.05`` (normalised
residuals: bounds are tight where a segment looks good, wide where it looks poor). Their conformal
quantile ``q`` (:mod:`.conformal`, rank ceil((n+1)(1-alpha))) gives ``lower = predicted - q * sigma(predicted)``
for the regressor refitted on all cases. Because every score comes from a model that never saw the
subject, the bound holds for new subjects with probability about 1 - alpha (cross-fitting; exact
split conformal would hold out the calibration folds from the final fit at the cost of data). With too
few cases (or a single subject) ``q = inf`` and the bound is 0: never PASS. With degraded copies
(records' ``kind``), ``q`` is the largest of the pooled and the per-kind quantiles (kinds with
enough segments), so that the bound's level holds for each kind of image on calibration, not only
pooled; the held-out coverage per kind is stored.

Domain: the range seen in calibration (widened by 10% of that range on each side) for the
segment's size (``log_size_fraction``) and the image-level ``mean_entropy_image``, on both sides, and
for every regressor feature on the side where it would raise the predicted Dice beyond what
calibration saw (never extrapolate upwards).

Feature set (per class, :data:`FEATURE_SETS`): all uncertainty features, the samples' pairwise Dice
alone, or mean entropy alone; the one whose cross-fitted predictions rank the calibration segments
best (lowest held-out e-AURC, ties to the earlier set) is kept, with every candidate's figure stored
under ``feature_choice``. Few calibration cases can make the full regressor rank worse than one
well-chosen feature (Zenk et al. 2025 found the ensemble's pairwise Dice the best single ranking).

The mean-entropy baseline is the same pipeline on the single feature ``mean_entropy``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..annotation.datasets import subject_folds
from ..contract import ConfidenceSegError
from .conformal import conformal_quantile, fewest_cases, sigma
from .features import (
    BASELINE_FEATURES,
    FEATURES,
    TWO_SIDED_DOMAIN_FEATURES,
    feature_values,
    in_domain,
    is_absent,
    predict_dice,
)
from .metrics import e_aurc

FORMAT_VERSION = 1
DOMAIN_MARGIN = 0.1
MAX_FOLDS = 5
MIN_CASES = 3
RIDGE_PENALTIES = tuple(np.logspace(-3, 3, 13))
#: The feature sets a class's regressor is chosen from (in order of preference on ties).
FEATURE_SETS = {"all uncertainty features": FEATURES, "pairwise Dice of the samples": ("mean_pairwise_dice",),
                "mean entropy": BASELINE_FEATURES}


@dataclass(frozen=True)
class QualityRecord:
    """One predicted segment of a labelled case: its class, subject, uncertainty summary and true Dice;
    the image kind (``clean`` or a degradation), the measurements, predicted and of the reference, and the
    boundary profile (:mod:`.boundary`; None for an empty segment)."""

    class_name: str
    subject: str
    summary: dict
    dice: float
    kind: str = "clean"
    measurements: dict | None = None
    reference_measurements: dict | None = None
    boundary: np.ndarray | None = None


def _fit_regressor(x: np.ndarray, y: np.ndarray) -> dict:
    pipeline = make_pipeline(StandardScaler(), RidgeCV(alphas=RIDGE_PENALTIES)).fit(x, y)
    scaler, ridge = pipeline[0], pipeline[1]
    return {"feature_mean": scaler.mean_.tolist(), "feature_scale": scaler.scale_.tolist(),
            "coefficients": ridge.coef_.tolist(), "intercept": float(ridge.intercept_),
            "ridge_penalty": float(ridge.alpha_)}


def _domain(x: np.ndarray, names, features, regressor: dict) -> dict:
    """Calibration range of each domain feature, widened by the margin; ``None`` = side not checked."""
    low, high = x.min(axis=0), x.max(axis=0)
    margin = DOMAIN_MARGIN * (high - low)
    effect = dict(zip(features, regressor["coefficients"], strict=True))
    lows, highs = [], []
    for name, lo, hi in zip(names, low - margin, high + margin, strict=True):
        two_sided = name in TWO_SIDED_DOMAIN_FEATURES
        lows.append(float(lo) if two_sided or effect.get(name, 0.0) < 0 else None)
        highs.append(float(hi) if two_sided or effect.get(name, 0.0) > 0 else None)
    return {"features": list(names), "low": lows, "high": highs}


def fit_class_model(records: list[QualityRecord], alpha: float, features=FEATURES, seed: int = 0) -> dict:
    """Fit one class's regressor and conformal quantile on its predicted-present records."""
    domain_features = tuple(features) + tuple(f for f in TWO_SIDED_DOMAIN_FEATURES if f not in features)
    x = np.stack([feature_values(r.summary, features) for r in records])
    x_domain = np.stack([feature_values(r.summary, domain_features) for r in records])
    y = np.array([r.dice for r in records], np.float64)
    subjects = np.array([r.subject for r in records])
    kinds = np.array([r.kind for r in records])
    unique_subjects = sorted(set(subjects))
    scores = np.full(len(records), np.nan)
    held_out_predicted = np.full(len(records), np.nan)
    held_out_in_domain = []
    if len(unique_subjects) >= 2:
        for fold in subject_folds(unique_subjects, min(MAX_FOLDS, len(unique_subjects)), seed):
            held_out = np.isin(subjects, fold)
            regressor = _fit_regressor(x[~held_out], y[~held_out])
            predicted = predict_dice(regressor, x[held_out])
            held_out_predicted[held_out] = predicted
            scores[held_out] = (predicted - y[held_out]) / sigma(predicted)
            fold_domain = _domain(x_domain[~held_out], domain_features, features, regressor)
            held_out_in_domain.extend(in_domain(fold_domain, x_domain[held_out]))
    scored = ~np.isnan(scores)
    pooled = conformal_quantile(scores[scored], alpha)
    by_kind = {kind: conformal_quantile(scores[scored & (kinds == kind)], alpha) for kind in sorted(set(kinds))}
    # the bound must hold for every kind of image, not only pooled: the largest finite per-kind quantile
    quantile = max([pooled, *(q for q in by_kind.values() if math.isfinite(q))])
    if len(unique_subjects) < fewest_cases(alpha):  # copies of a few subjects' images are not more cases
        quantile = pooled = math.inf
    regressor = _fit_regressor(x, y)
    return {
        "features": list(features), **regressor,
        "score_quantile": None if math.isinf(quantile) else quantile,
        "score_quantile_pooled": None if math.isinf(pooled) else pooled,
        "held_out_coverage_by_kind": {kind: float(np.mean(scores[scored & (kinds == kind)] <= quantile))
                                      for kind in by_kind if np.any(scored & (kinds == kind))},
        "domain": _domain(x_domain, domain_features, features, regressor),
        "n_cases": len(records), "n_subjects": len(unique_subjects),
        "held_out_in_domain_fraction": float(np.mean(held_out_in_domain)) if held_out_in_domain else None,
        "held_out_e_aurc": e_aurc(held_out_predicted[scored], y[scored]) if scored.sum() >= MIN_CASES else None,
    }


def fit_chosen_class_model(records: list[QualityRecord], alpha: float, seed: int = 0) -> dict:
    """:func:`fit_class_model` on each of :data:`FEATURE_SETS`; the one with the lowest held-out e-AURC."""
    candidates = {name: fit_class_model(records, alpha, features, seed) for name, features in FEATURE_SETS.items()}
    figures = {name: model["held_out_e_aurc"] for name, model in candidates.items()}
    ranked = [name for name in FEATURE_SETS if figures[name] is not None]
    chosen = min(ranked, key=figures.get) if ranked else next(iter(FEATURE_SETS))
    return {**candidates[chosen], "feature_choice": {"chosen": chosen, "held_out_e_aurc": figures}}


def fit_quality_model(records, alpha: float = 0.1, threshold: float = 0.8, seed: int = 0) -> dict:
    """Fit the per-class quality models (and the mean-entropy baseline) on labelled records.

    Records of segments predicted absent are left out (they get the ABSENT badge, no Dice). A class with
    fewer than :data:`MIN_CASES` present records gets no model (listed under ``"skipped"``).
    Returns the JSON-serialisable ``"quality"`` entry of a bundle config.
    """
    if not 0 < alpha < 1:
        raise ConfidenceSegError(f"--alpha must lie strictly between 0 and 1, got {alpha}")
    if not 0 < threshold <= 1:
        raise ConfidenceSegError(f"--threshold must lie in (0, 1], got {threshold}")
    by_class: dict[str, list[QualityRecord]] = {}
    for record in records:
        if not 0 <= record.dice <= 1:
            raise ConfidenceSegError(f"true Dice must lie in [0, 1], got {record.dice} ({record.class_name})")
        by_class.setdefault(record.class_name, [])
        if not is_absent(record.summary):
            by_class[record.class_name].append(record)
    if not by_class:
        raise ConfidenceSegError("no labelled cases to calibrate the quality model on")
    config = {"format_version": FORMAT_VERSION, "alpha": alpha, "threshold": threshold,
              "method": "ridge regression on the feature set that ranks best held out + cross-fitted split "
                        "conformal by subject (normalised residuals)",
              "classes": {}, "baseline": {}, "skipped": {}}
    for name, present in sorted(by_class.items()):
        if len(present) < MIN_CASES:
            config["skipped"][name] = f"only {len(present)} labelled cases with the class predicted present"
            continue
        config["classes"][name] = fit_chosen_class_model(present, alpha, seed)
        config["baseline"][name] = fit_class_model(present, alpha, BASELINE_FEATURES, seed)
    return config


