"""Mask postprocessing chosen on validation and stored in the bundle (as nnU-Net does).

Per class, two optional steps: keep the largest connected component, fill holes (both 2D per
frame: 8-connected components, holes = background not connected to the frame border). Training
tries every combination on the validation subjects and keeps the one with the best mean Dice,
none unless a step raises it (:func:`choose_postprocessing`). The bundle's ``config.json`` holds
``"postprocessing": {CLASS: {"keep_largest_component": bool, "fill_holes": bool, ...}}``.

At prediction time the steps apply to every uncertainty sample (so that the maps describe what is
shown) and to the final mask. A sample's pixels that a step switches keep their entropy: their
logit changes sign (p -> 1 - p), see :func:`postprocess_sample_logits`. 3D models (volumes
streamed slab by slab) apply the steps to the final mask only, in 3D.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import product

import numpy as np
import torch
from scipy import ndimage

STEPS = ("keep_largest_component", "fill_holes")


def keep_largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest connected component of a boolean mask (any dimension; full connectivity)."""
    labels, count = ndimage.label(mask, structure=np.ones((3,) * mask.ndim, dtype=bool))
    if count <= 1:
        return mask.astype(bool, copy=True)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """The mask with every enclosed hole filled (background not connected to the border)."""
    return ndimage.binary_fill_holes(mask)


def class_steps(config: dict, classes: Sequence[str]) -> list[dict | None]:
    """Each class's postprocessing entry of a bundle config (None where it has none)."""
    stored = config.get("postprocessing") or {}
    return [stored.get(name) for name in classes]


def apply_steps(mask: np.ndarray, steps: dict | None) -> np.ndarray:
    """``mask`` after the chosen steps (``steps``: a class's postprocessing entry, None = nothing)."""
    if not steps or not mask.any():
        return mask
    if steps.get("keep_largest_component"):
        mask = keep_largest_component(mask)
    if steps.get("fill_holes"):
        mask = fill_holes(mask)
    return mask


def apply_per_frame(mask: np.ndarray, steps: dict | None) -> np.ndarray:
    """:func:`apply_steps` on each 2D frame of (..., H, W) masks."""
    if not steps or not any(steps.get(step) for step in STEPS):
        return mask
    flat = mask.reshape(-1, *mask.shape[-2:])
    return np.stack([apply_steps(frame, steps) for frame in flat]).reshape(mask.shape)


def postprocess_sample_logits(logits: torch.Tensor, class_steps: Sequence[dict | None]) -> torch.Tensor:
    """Logits of samples (S, B, C, h, w) whose masks (logit >= 0) follow each class's steps.

    Pixels a step switches get the negated logit (p -> 1 - p): the mask changes, the sample's
    entropy there does not.
    """
    active = [c for c, steps in enumerate(class_steps) if steps and any(steps.get(s) for s in STEPS)]
    if not active:
        return logits
    masks = (logits[:, :, active] >= 0).cpu().numpy()
    kept = apply_per_frame(masks, class_steps[active[0]]) if len(active) == 1 else np.stack(
        [apply_per_frame(masks[:, :, i], class_steps[c]) for i, c in enumerate(active)], axis=2)
    switched = torch.from_numpy(kept != masks).to(logits.device)
    logits = logits.clone()
    logits[:, :, active] = torch.where(switched, -logits[:, :, active], logits[:, :, active])
    return logits


def choose_postprocessing(probabilities: Sequence[np.ndarray], references: Sequence[np.ndarray],
                          dice: Callable[[np.ndarray, np.ndarray], float], threshold: float = 0.5) -> dict:
    """Per class index, the steps with the best mean validation Dice (none unless a step raises it).

    ``probabilities`` / ``references``: per case (C, ...) arrays on the image grid (reference
    already binary). Returns ``{c: {"keep_largest_component", "fill_holes", "validation_dice": {...}}}``.
    """
    n_classes = probabilities[0].shape[0]
    chosen = {}
    for c in range(n_classes):
        scores = {}
        for combination in product((False, True), repeat=len(STEPS)):
            steps = dict(zip(STEPS, combination, strict=True))
            scores[combination] = float(np.mean([dice(apply_per_frame(p[c] >= threshold, steps), r[c])
                                                 for p, r in zip(probabilities, references, strict=True)]))
        best = max(scores, key=lambda key: (scores[key], -sum(key)))  # ties: fewer steps
        if scores[best] <= scores[(False,) * len(STEPS)]:
            best = (False,) * len(STEPS)
        chosen[c] = {**dict(zip(STEPS, best, strict=True)),
                     "validation_dice": {"+".join(s for s, on in zip(STEPS, key, strict=True) if on) or "none": round(v, 4)
                                         for key, v in scores.items()}}
    return chosen
