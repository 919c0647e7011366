"""Is an input like the images the badge was calibrated on? A conformal p-value from what the model sees.

Descriptors of an image (a frame of a stack, or a volume), all from the model itself:

- its **encoder descriptors** (:mod:`ConfidenceSegLib.inference.embedding`: pooled features of the
  UNet's second level and of its bottom), each scored by the mean distance to its ``k`` nearest
  calibration images in standardised feature space (k-nearest neighbours rather than Mahalanobis: a few
  hundred calibration images do not estimate a covariance in hundreds of dimensions);
- its **uncertainty over the whole image** (the predictive entropy averaged over all pixels and classes):
  high on noise and on images where the model sees nothing it knows.

Each score becomes a conformal p-value against the scores of the calibration images (clean and degraded),
each scored leave-one-subject-out (its own subject's images are not its neighbours), so a new image of a
calibration-like subject is exchangeable with them. The image is out of domain when the smallest p-value
times the number of descriptors (Bonferroni) is below ``alpha``: at most ``alpha`` of
in-domain images are flagged (3% by default). A blank image (one value everywhere) is out of domain by definition.
Measured on images of other organs and modalities: ``benchmarks/badge_domain.py``, docs/results.md.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..contract import ConfidenceSegError
from ..model.bundle_config import member_path
from .verdict import Reason

#: Share of in-domain images the check may flag (all descriptors together): 3%, chosen on the benchmark
#: (docs/results.md) between flagging degraded in-domain images and giving numbers on foreign ones.
DOMAIN_ALPHA = 0.03
#: Neighbours the encoder scores average over.
NEIGHBOURS = 5
#: Floor of a feature's scale when standardising (a feature constant on calibration).
SCALE_FLOOR = 1e-6
#: Name of the calibration descriptors' file in a bundle (data, like the weights).
REFERENCES_FILE = "domain_references.safetensors"
#: The descriptor that is not an encoder layer's.
UNCERTAINTY = "image_uncertainty"
#: Words for each descriptor in a reason.
DESCRIPTOR_WORDS = {"level1": "the texture the model sees", UNCERTAINTY: "the model's uncertainty over it"}


@dataclass(frozen=True)
class Typicality:
    """How typical one image is of the calibration images: its p-value and, when out of domain, why."""

    p_value: float
    reason: Reason | None = None

    @property
    def outside(self) -> bool:
        return self.reason is not None


def knn_scores(queries: np.ndarray, references: np.ndarray, k: int,
               exclude: np.ndarray | None = None) -> np.ndarray:
    """Mean Euclidean distance of each query (Q, D) to its ``k`` nearest references (R, D); ``exclude``
    (Q, R) bool marks pairs that may not be neighbours (the same subject). Returns (Q,)."""
    squared = (queries ** 2).sum(1)[:, None] + (references ** 2).sum(1)[None, :] - 2.0 * queries @ references.T
    distances = np.sqrt(np.clip(squared, 0.0, None))
    if exclude is not None:
        distances[exclude] = np.inf
    nearest = np.sort(distances, axis=1)[:, :min(k, references.shape[0])]
    finite = np.isfinite(nearest)  # fewer allowed neighbours than k: the mean of those there are
    return np.where(finite, nearest, 0.0).sum(1) / np.maximum(finite.sum(1), 1)


def upper_p_values(scores, calibration) -> np.ndarray:
    """Conformal p-values of ``scores`` (any shape) against ``calibration`` scores (n,): the share of
    calibration scores at least as high, counting the new one: ``(1 + #{s_i >= s}) / (n + 1)``."""
    calibration = np.sort(np.asarray(calibration, np.float64))
    higher = calibration.size - np.searchsorted(calibration, np.asarray(scores, np.float64), side="left")
    return (1.0 + higher) / (calibration.size + 1.0)


def fit_domain(embeddings: Mapping[str, np.ndarray], image_uncertainty: np.ndarray, subjects: Sequence[str],
               alpha: float = DOMAIN_ALPHA, k: int = NEIGHBOURS) -> tuple[dict, dict[str, np.ndarray]]:
    """The ``domain`` section of a bundle's quality model from N calibration images: per described layer the
    embeddings (N, D), the image uncertainties (N,) and each image's subject (N,). Returns (section, the
    standardised references per layer (N, D) float32, stored in :data:`REFERENCES_FILE`)."""
    subjects = np.asarray(subjects)
    same_subject = subjects[:, None] == subjects[None, :]
    section = {"method": "conformal p-values (Bonferroni) of the k-nearest-neighbour distance of encoder "
                         "descriptors and of the uncertainty over the image, leave-one-subject-out on calibration",
               "alpha": alpha, "k": k, "references": REFERENCES_FILE, "n_images": int(len(subjects)),
               "n_subjects": int(len(set(subjects.tolist()))), "layers": {},
               UNCERTAINTY: np.sort(np.asarray(image_uncertainty, np.float64)).tolist()}
    references = {}
    for name, values in embeddings.items():
        values = np.asarray(values, np.float64)
        mean, scale = values.mean(0), np.maximum(values.std(0), SCALE_FLOOR)
        references[name] = (values - mean) / scale
        scores = knn_scores(references[name], references[name], k, exclude=same_subject)
        section["layers"][name] = {"feature_mean": mean.tolist(), "feature_scale": scale.tolist(),
                                   "scores": np.sort(scores).tolist()}
    return section, {name: value.astype(np.float32) for name, value in references.items()}


def typicality(section: dict, references: Mapping[str, np.ndarray], embeddings: Mapping[str, np.ndarray],
               image_uncertainty: np.ndarray, blank: np.ndarray) -> list[Typicality]:
    """Per image (frame): embeddings per layer (M, D), image uncertainty (M,), blank (M,) bool -> M typicalities."""
    p_values = {UNCERTAINTY: upper_p_values(image_uncertainty, section[UNCERTAINTY])}
    for name, layer in section["layers"].items():
        queries = (np.asarray(embeddings[name], np.float64) - np.asarray(layer["feature_mean"])) / np.asarray(
            layer["feature_scale"])
        p_values[name] = upper_p_values(knn_scores(queries, np.asarray(references[name], np.float64), section["k"]),
                                        layer["scores"])
    alpha, found = section["alpha"], []
    for index, is_blank in enumerate(blank):
        name = min(p_values, key=lambda key: p_values[key][index])
        smallest = float(p_values[name][index])
        p_value = min(1.0, len(p_values) * smallest)
        if is_blank:
            why = "the image is blank (one value everywhere): nothing the model was made for"
        elif p_value >= alpha:
            why = None
        else:
            what = DESCRIPTOR_WORDS.get(name, "what the model sees in it")
            why = (f"image unlike the calibration images: {what} is further from them than for "
                   f"{_percent(1 - smallest)} of them (typicality {p_value:.3f} < {alpha:g})")
        found.append(Typicality(p_value, None if why is None else Reason("out_of_domain", why)))
    return found


def _percent(share: float) -> str:
    return f"{math.floor(1000 * share) / 10:g}%"


@functools.lru_cache(maxsize=8)
def _read_references(path: str, _modified: float) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(path)


def domain_references(folder: Path | None, section: dict | None) -> dict[str, np.ndarray] | None:
    """The standardised calibration descriptors that a check of a bundle compares with (the domain check's,
    or the boundary checks' of :mod:`.boundary`): the data file ``section["references"]``, read once per file."""
    if not section or folder is None:
        return None
    path = member_path(Path(folder), section["references"])
    if not path.is_file():
        raise ConfidenceSegError(f"model bundle {folder} is incomplete: {section['references']} is missing")
    return _read_references(str(path), path.stat().st_mtime)
