"""Predicted Dice with a conformal lower bound, and the PASS / REVIEW / ABSENT badge.

Per class, a ridge regression (scikit-learn, standardised features, penalty chosen by cross-validation)
maps the uncertainty summary of a predicted segment (:data:`FEATURES`, from
``inference.ClassPrediction.summary``) to its Dice, clipped to [0, 1]. The model is stored as plain numbers
(means, scales, coefficients) in the bundle config under ``"quality"``; no pickle.

Lower bound (split conformal, cross-fitted by subject): subjects are split into up to 5 folds; each
fold's cases are predicted by a regressor fitted on the other folds, giving held-out scores
``(predicted - true) / sigma(predicted)`` with the difficulty scale ``sigma(p) = 1 - p + 0.05`` (normalised
residuals: bounds are tight where a segment looks good, wide where it looks poor). Their conformal
quantile ``q`` (:mod:`.conformal`, rank ceil((n+1)(1-alpha))) gives ``lower = predicted - q * sigma(predicted)``
for the regressor refitted on all cases. Because every score comes from a model that never saw the
subject, the bound holds for new subjects with probability about 1 - alpha (cross-fitting; exact
split conformal would hold out the calibration folds from the final fit at the cost of data). With too
few cases (or a single subject) ``q = inf`` and the bound is 0: never PASS.

Badge: ``PASS`` iff ``lower >= threshold`` (default 0.8) and the segment is *in domain*, i.e. within the
range seen in calibration (widened by 10% of that range on each side) for: the segment's size
(``log_volume_mm``) and the image-level ``mean_entropy_image``, on both sides (another organ, another
scanner or a phantom changes them); and every regressor feature on the side where it would raise the
predicted Dice beyond what calibration saw (never extrapolate upwards; values beyond the range on the
other side only lower the prediction). Outside the domain the conformal guarantee does not apply, so
the bound is reported as 0 and the badge is ``REVIEW`` (conservative by design: out-of-domain segments
must not PASS). A class predicted absent (empty mask, or non-empty in fewer than half of the
samples) is ``ABSENT`` with no Dice.

The mean-entropy baseline (the published reference that disagreement-based quality must beat) is the
same pipeline on the single feature ``mean_entropy``; its raw ranking score is :func:`baseline_confidence`.
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
from .conformal import conformal_quantile

FORMAT_VERSION = 1
#: Features of the quality regressor, computed from the summary by :func:`feature_values`.
FEATURES = ("mean_pairwise_dice", "samples_iou", "volume_cv", "mean_entropy", "mean_entropy_boundary",
            "mean_mutual_information", "log_volume_mm", "mean_probability")
BASELINE_FEATURES = ("mean_entropy",)
#: Domain descriptors, checked on both sides of their calibration range.
TWO_SIDED_DOMAIN_FEATURES = ("log_volume_mm", "mean_entropy_image")
DOMAIN_MARGIN = 0.1
SIGMA_FLOOR = 0.05
MAX_FOLDS = 5
MIN_CASES = 3
RIDGE_PENALTIES = tuple(np.logspace(-3, 3, 13))
BADGES = ("PASS", "REVIEW", "ABSENT")


@dataclass(frozen=True)
class QualityRecord:
    """One predicted segment of a labelled case: its class, subject, uncertainty summary and true Dice."""

    class_name: str
    subject: str
    summary: dict
    dice: float


def is_absent(summary: dict) -> bool:
    """Predicted absent: empty mask, or non-empty in fewer than half of the samples."""
    return _value(summary, "volume_voxels") <= 0 or _value(summary, "present_fraction") < 0.5


def baseline_confidence(summary: dict) -> float:
    """Ranking score of the mean-entropy baseline: lower mean entropy inside the segment = more confident."""
    return -_value(summary, "mean_entropy")


def _value(summary: dict, key: str) -> float:
    if key == "log_volume_mm":
        return math.log1p(max(_value(summary, "volume_mm"), 0.0))
    if key not in summary:
        raise ConfidenceSegError(f"uncertainty summary lacks {key!r} (needed by the quality model)")
    value = float(summary[key])
    if not math.isfinite(value):
        raise ConfidenceSegError(f"uncertainty summary has a non-finite {key!r}: {value}")
    return value


def feature_values(summary: dict, names) -> np.ndarray:
    """The named features of one summary (``log_volume_mm`` = log(1 + volume_mm))."""
    return np.array([_value(summary, name) for name in names], np.float64)


def sigma(predicted):
    """Difficulty scale of the conformal scores: larger where the predicted Dice is lower."""
    return 1.0 - np.asarray(predicted, np.float64) + SIGMA_FLOOR


def _fit_regressor(x: np.ndarray, y: np.ndarray) -> dict:
    pipeline = make_pipeline(StandardScaler(), RidgeCV(alphas=RIDGE_PENALTIES)).fit(x, y)
    scaler, ridge = pipeline[0], pipeline[1]
    return {"feature_mean": scaler.mean_.tolist(), "feature_scale": scaler.scale_.tolist(),
            "coefficients": ridge.coef_.tolist(), "intercept": float(ridge.intercept_),
            "ridge_penalty": float(ridge.alpha_)}


def _predict(regressor: dict, x: np.ndarray) -> np.ndarray:
    z = (x - np.asarray(regressor["feature_mean"])) / np.asarray(regressor["feature_scale"])
    return np.clip(z @ np.asarray(regressor["coefficients"]) + regressor["intercept"], 0.0, 1.0)


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


def _in_domain(domain: dict, x: np.ndarray) -> np.ndarray:
    low = np.array([-np.inf if v is None else v for v in domain["low"]])
    high = np.array([np.inf if v is None else v for v in domain["high"]])
    return np.all((x >= low) & (x <= high), axis=-1)


def fit_class_model(records: list[QualityRecord], alpha: float, features=FEATURES, seed: int = 0) -> dict:
    """Fit one class's regressor and conformal quantile on its predicted-present records."""
    domain_features = tuple(features) + tuple(f for f in TWO_SIDED_DOMAIN_FEATURES if f not in features)
    x = np.stack([feature_values(r.summary, features) for r in records])
    x_domain = np.stack([feature_values(r.summary, domain_features) for r in records])
    y = np.array([r.dice for r in records], np.float64)
    subjects = np.array([r.subject for r in records])
    unique_subjects = sorted(set(subjects))
    scores, in_domain = [], []
    if len(unique_subjects) >= 2:
        for fold in subject_folds(unique_subjects, min(MAX_FOLDS, len(unique_subjects)), seed):
            held_out = np.isin(subjects, fold)
            regressor = _fit_regressor(x[~held_out], y[~held_out])
            predicted = _predict(regressor, x[held_out])
            scores.extend((predicted - y[held_out]) / sigma(predicted))
            fold_domain = _domain(x_domain[~held_out], domain_features, features, regressor)
            in_domain.extend(_in_domain(fold_domain, x_domain[held_out]))
    quantile = conformal_quantile(scores, alpha)
    regressor = _fit_regressor(x, y)
    return {
        "features": list(features), **regressor,
        "score_quantile": None if math.isinf(quantile) else quantile,
        "domain": _domain(x_domain, domain_features, features, regressor),
        "n_cases": len(records), "n_subjects": len(unique_subjects),
        "held_out_in_domain_fraction": float(np.mean(in_domain)) if in_domain else None,
    }


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
              "method": "ridge regression + cross-fitted split conformal by subject (normalised residuals)",
              "classes": {}, "baseline": {}, "skipped": {}}
    for name, present in sorted(by_class.items()):
        if len(present) < MIN_CASES:
            config["skipped"][name] = f"only {len(present)} labelled cases with the class predicted present"
            continue
        config["classes"][name] = fit_class_model(present, alpha, FEATURES, seed)
        config["baseline"][name] = fit_class_model(present, alpha, BASELINE_FEATURES, seed)
    return config


def assess_segment(quality_config: dict | None, class_name: str, summary: dict, baseline: bool = False) -> dict:
    """Predicted Dice, its lower bound and the badge of one predicted segment (contract 2).

    All ``None`` when there is no quality model for the class; ``baseline=True`` uses the mean-entropy
    baseline model instead (for the evaluation).
    """
    result = {"predicted_dice": None, "dice_lower_bound": None, "badge": None}
    model = (quality_config or {}).get("baseline" if baseline else "classes", {}).get(class_name)
    if model is None:
        return result
    if is_absent(summary):
        return dict(result, badge="ABSENT")
    predicted = float(_predict(model, feature_values(summary, model["features"])))
    quantile = model["score_quantile"]
    bound = 0.0 if quantile is None else float(np.clip(predicted - quantile * sigma(predicted), 0.0, 1.0))
    if not _in_domain(model["domain"], feature_values(summary, model["domain"]["features"])):
        bound = 0.0
    badge = "PASS" if bound >= quality_config["threshold"] else "REVIEW"
    return {"predicted_dice": predicted, "dice_lower_bound": bound, "badge": badge}
