"""Quality of a given mask (imported or hand-painted) from its agreement with the model's prediction.

For a mask the model did not make, the model's own prediction (mean probability over the samples,
its mask, its entropy) is a second opinion: where they agree and the model is sure, the given mask
is likely right. Features of one class of one image (frame) compare the given mask with it:

- ``dice_with_prediction``: Dice of the given mask with the model's mask,
- ``soft_dice_with_probability``: 2 sum(g p) / (sum g + sum p) with the mean probability p,
- ``mean_probability_inside``: mean p inside the given mask (low where it covers background),
- ``mean_probability_outside_band``: mean p in a band just outside it (high where it misses a part),
- ``mean_entropy_on_contour``: entropy along the given boundary (high where the model is unsure there),
- ``log_area_ratio``: log of (given area + 1) / (predicted area + 1),
- ``mean_pairwise_dice``: how much the model's samples agree among themselves,

plus the domain descriptors of the badge (size fraction of the given mask, image entropy). A
per-class ridge regressor with a conformal lower bound (:mod:`.fit`, the same machinery as the
badge) maps them to the given mask's Dice; it is calibrated on reference masks perturbed
realistically (:mod:`.perturbations`) and stored in the bundle under ``"assessment"``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..inference.uncertainty import boundary_band
from .metrics import dice
from .perturbations import PERTURBATIONS, perturb

#: Regressor features of an agreement assessment.
AGREEMENT_FEATURES = ("dice_with_prediction", "soft_dice_with_probability", "mean_probability_inside",
                      "mean_probability_outside_band", "mean_entropy_on_contour", "log_area_ratio",
                      "mean_pairwise_dice")
BAND_WIDTH = 3


def _mean(values: np.ndarray, region: np.ndarray) -> float:
    return float(values[region].mean(dtype=np.float64)) if region.any() else 0.0


def agreement_features(given: np.ndarray, class_prediction, summary: dict | None = None) -> dict[str, float]:
    """Features of a given mask against one class's prediction; ``given``: bool on the prediction's grid,
    (H, W) for a 2D image or one frame of a stack, (Z, Y, X) for a 3D model.

    ``summary``: the class's uncertainty summary for this image (default ``class_prediction.summary``;
    pass a frame's for one frame of a stack). Also carries ``volume_voxels`` / ``present_fraction`` of
    the given mask (for the ABSENT rule) and the badge's domain descriptors.
    """
    summary = summary or class_prediction.summary
    return agreement_from_maps(given, class_prediction.mask, class_prediction.probability,
                               class_prediction.entropy, summary)


def agreement_from_maps(given: np.ndarray, mask: np.ndarray, probability: np.ndarray, entropy: np.ndarray,
                        summary: dict) -> dict[str, float]:
    """:func:`agreement_features` from the arrays (all one grid, 2D or a frame): ``given`` / ``mask`` bool,
    ``probability`` / ``entropy`` float32, each (H, W) (or (Z, Y, X) for a 3D model)."""
    given = np.asarray(given, dtype=bool)
    area = int(given.sum())
    outside = ndimage.binary_dilation(given, iterations=BAND_WIDTH) & ~given if area else np.zeros_like(given)
    total = float(given.sum() + probability.sum(dtype=np.float64))
    return {
        "volume_voxels": float(area), "present_fraction": 1.0 if area else 0.0,
        "size_fraction": area / given.size, "mean_entropy_image": float(summary["mean_entropy_image"]),
        "dice_with_prediction": dice(given, mask),
        "soft_dice_with_probability": float(2.0 * probability[given].sum(dtype=np.float64) / total) if total else 1.0,
        "mean_probability_inside": _mean(probability, given),
        "mean_probability_outside_band": _mean(probability, outside),
        "mean_entropy_on_contour": _mean(entropy, boundary_band(given, width=1)),
        "log_area_ratio": float(np.log((area + 1.0) / (float(mask.sum()) + 1.0))),
        "mean_pairwise_dice": float(summary["mean_pairwise_dice"]),
    }


def assessment_records(labelled, rng: np.random.Generator, class_prediction, reference: np.ndarray) -> list:
    """Calibration records of one class of one clean labelled prediction: the reference mask itself and
    one realistic perturbation of it per kind (:mod:`.perturbations`), each with its true Dice. ``reference``:
    (H, W) bool (clean 2D images only)."""
    from .fit import QualityRecord

    records = []
    for kind in ("reference", *PERTURBATIONS):
        given = reference if kind == "reference" else perturb(reference, kind, rng)
        records.append(QualityRecord(class_prediction.name, labelled.case.subject,
                                     agreement_features(given, class_prediction), dice(given, reference), kind))
    return records


def fit_assessment(records: list, alpha: float, threshold: float, seed: int = 0) -> dict:
    """The bundle's ``"assessment"`` entry: per class the agreement regressor with its conformal bound
    (:func:`.fit.fit_class_model` on :data:`AGREEMENT_FEATURES`), fitted on perturbed reference masks."""
    from .fit import MIN_CASES, fit_class_model

    by_class: dict[str, list] = {}
    for record in records:
        by_class.setdefault(record.class_name, []).append(record)
    classes = {name: fit_class_model(found, alpha, AGREEMENT_FEATURES, seed)
               for name, found in sorted(by_class.items()) if len(found) >= MIN_CASES}
    return {"method": "agreement with the model's prediction: ridge regression + cross-fitted split conformal "
                      "by subject, calibrated on perturbed reference masks", "alpha": alpha, "threshold": threshold,
            "perturbations": ["reference", *PERTURBATIONS], "classes": classes,
            "n_segments": len(records)}
