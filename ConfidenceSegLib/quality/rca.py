"""Reverse classification accuracy (RCA; Valindria et al., IEEE TMI 2017; Robinson et al., JCMR 2019)
for a given 2D mask, with the registration driven by the model's own segmentation.

RCA treats the image with the segmentation under test as an atlas: it is registered to reference
images whose true segmentation is known, the segmentation is carried over, and the best Dice
reached on a reference is the prediction (a good segmentation transfers well to at least one
similar reference; a bad one to none). Registering the ultrasound images themselves (similarity,
Mattes mutual information) failed here: on perturbed HC18 masks the transferred Dice was 0.4-0.55
whatever the mask (Spearman -0.34; ``docs/results.md``). So the transform is found between the
model's mask of the test image and each reference's true mask (similarity: rotation, scale,
shift; mean squares of the smoothed masks, initialised on their moments), which does not depend on
the mask under test; that mask is then carried over with it. References (their masks only, at
about :data:`GRID_LONG_SIDE` px, with the pixel size) are data in the bundle
(``rca_references_K.safetensors``, one per class); the lower bound is the conformal quantile of the residuals
(predicted - true) on perturbed masks of other calibration cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from safetensors.torch import load, save
from scipy import ndimage

from ..contract import ConfidenceSegError
from ..model.bundle_config import member_path
from .conformal import conformal_quantile
from .metrics import dice
from .perturbations import PERTURBATIONS, perturb

GRID_LONG_SIDE = 128
N_REFERENCES = 8
#: Most calibration cases (each with every perturbation) that fit the RCA bound.
MAX_CALIBRATION_CASES = 16
ITERATIONS = 50
SMOOTHING_PX = 2.0


@dataclass
class RcaCase:
    """One labelled 2D case for RCA: the model's mask, the reference mask, the (y, x) pixel size in mm."""

    case_id: str
    class_name: str
    model_mask: np.ndarray
    reference: np.ndarray
    pixel_mm: tuple[float, float]


def _coarse(mask: np.ndarray, pixel_mm: Sequence[float]) -> tuple[np.ndarray, tuple[float, float]]:
    """The mask subsampled to about GRID_LONG_SIDE px on its long side, and its new pixel size."""
    step = max(1, round(max(mask.shape) / GRID_LONG_SIDE))
    return mask[::step, ::step], (float(pixel_mm[0]) * step, float(pixel_mm[1]) * step)


def _image(mask: np.ndarray, pixel_mm: Sequence[float], smooth: bool) -> sitk.Image:
    values = mask.astype(np.float32)
    image = sitk.GetImageFromArray(ndimage.gaussian_filter(values, SMOOTHING_PX) if smooth else values)
    image.SetSpacing((pixel_mm[1], pixel_mm[0]))
    return image


def transfer_dice(model_mask: np.ndarray, given: np.ndarray, pixel_mm, reference: np.ndarray, reference_mm) -> float:
    """Dice on one reference of ``given`` carried over by the model-mask-to-reference-mask transform.

    ``model_mask``, ``given``: (H, W) bool on one grid; ``reference``: (H, W) bool of its own; pixel sizes (y, x) mm."""
    fixed, moving = _image(reference, reference_mm, True), _image(model_mask, pixel_mm, True)
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMeanSquares()
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(learningRate=1.0, minStep=1e-3, numberOfIterations=ITERATIONS)
    method.SetOptimizerScalesFromPhysicalShift()
    try:
        method.SetInitialTransform(sitk.CenteredTransformInitializer(
            fixed, moving, sitk.Similarity2DTransform(), sitk.CenteredTransformInitializerFilter.MOMENTS),
            inPlace=False)
        transform = method.Execute(fixed, moving)
    except RuntimeError:  # nothing to align
        return 0.0
    carried = sitk.Resample(_image(given, pixel_mm, False), fixed, transform, sitk.sitkNearestNeighbor, 0.0)
    return dice(sitk.GetArrayFromImage(carried) > 0.5, reference)


def rca_dice(model_mask: np.ndarray, given: np.ndarray, pixel_mm, references: list[tuple[np.ndarray, tuple]]
             ) -> tuple[float, list[float]]:
    """The RCA predicted Dice of a 2D ``given`` mask (the best over ``references``) and each reference's.

    ``model_mask``, ``given``: (H, W) bool on the image grid of pixel size ``pixel_mm`` (y, x) mm;
    ``references``: ((H, W) bool mask, (y, x) mm) pairs, each of its own size."""
    if not model_mask.any() or not given.any():
        return 0.0, []
    model_small, small_mm = _coarse(model_mask, pixel_mm)
    given_small, _ = _coarse(given, pixel_mm)
    scores = [transfer_dice(model_small, given_small, small_mm, reference, reference_mm)
              for reference, reference_mm in references]
    return max(scores), scores


def references_bytes(coarse: Sequence[tuple[np.ndarray, tuple]]) -> bytes:
    """Coarse reference masks with their pixel sizes as a safetensors file (masks padded to one shape,
    their shapes, pixel sizes)."""
    height, width = max(m.shape[0] for m, _ in coarse), max(m.shape[1] for m, _ in coarse)
    masks = np.zeros((len(coarse), height, width), np.uint8)
    for index, (mask, _) in enumerate(coarse):
        masks[index, :mask.shape[0], :mask.shape[1]] = mask
    return save({"masks": torch.from_numpy(masks), "shapes": torch.tensor([m.shape for m, _ in coarse]),
                 "pixel_mm": torch.tensor([size for _, size in coarse], dtype=torch.float64)})


def load_references(folder: Path, entry: dict) -> list[tuple[np.ndarray, tuple]]:
    """A class's references from the bundle file named in its ``assessment.rca`` entry."""
    path = member_path(folder, entry["references"])
    if not path.is_file():
        raise ConfidenceSegError(f"model bundle {folder} lacks its RCA references {entry['references']}: "
                                 "recalibrate it")
    tensors = load(path.read_bytes())
    return [(tensors["masks"][i, :int(h), :int(w)].numpy() > 0, tuple(float(v) for v in tensors["pixel_mm"][i]))
            for i, (h, w) in enumerate(tensors["shapes"].tolist())]


def fit_rca(cases: Sequence[RcaCase], alpha: float, seed: int = 0) -> tuple[dict, dict[str, bytes]]:
    """Per class: references from its first :data:`N_REFERENCES` cases, the bound from perturbed masks of
    the next :data:`MAX_CALIBRATION_CASES`. Returns the ``assessment.rca`` entry and the files to store."""
    rng = np.random.default_rng(seed + 2)
    entry, files = {}, {}
    for class_name in sorted({case.class_name for case in cases}):
        found = [case for case in cases if case.class_name == class_name and case.reference.any()]
        if len(found) < N_REFERENCES + 3:
            continue
        chosen, rest = found[:N_REFERENCES], found[N_REFERENCES:N_REFERENCES + MAX_CALIBRATION_CASES]
        name = f"rca_references_{len(files)}.safetensors"
        references = [_coarse(case.reference, case.pixel_mm) for case in chosen]
        files[name] = references_bytes(references)
        residuals = []
        for case in rest:
            for kind in ("reference", *PERTURBATIONS):
                given = case.reference if kind == "reference" else perturb(case.reference, kind, rng)
                residuals.append(rca_dice(case.model_mask, given, case.pixel_mm, references)[0]
                                 - dice(given, case.reference))
        quantile = conformal_quantile(residuals, alpha)
        entry[class_name] = {"references": name, "reference_cases": [case.case_id for case in chosen],
                             "calibration_cases": [case.case_id for case in rest], "n_masks": len(residuals),
                             "score_quantile": float(quantile) if np.isfinite(quantile) else None}
    return entry, files
