"""Uncertainty measures of M probability samples, aggregated in a streaming way.

Per pixel and class, with samples ``p_m`` (independent sigmoids, so each class is a binary
problem) and their mean ``p̄``:

- predictive entropy ``PE = H(p̄)`` (total uncertainty),
- expected entropy ``EE = mean_m H(p_m)`` (aleatoric part),
- mutual information ``MI = PE - EE`` (epistemic part, >= 0 by concavity of H),

with the binary entropy ``H(p) = -p log p - (1 - p) log(1 - p)`` divided by ``log 2`` so that it
lies in [0, 1].

Streaming: an image is processed in spatial chunks (frames of a stack, slabs of a volume). For a
chunk, :class:`ChunkAccumulator` keeps running sums of ``p_m`` and ``H(p_m)`` plus the chunk's
sample masks (``p_m >= 0.5``), which :class:`MaskAgreement` folds into per-class counts: each
sample's volume, the pairwise intersections between samples (an M x M matrix) and the sizes of
the intersection and union of all samples. State across chunks is O(M^2) numbers per class, and
the per-pixel state does not depend on M, so memory does not grow with the number of samples.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from .measurements import N_MOMENTS, moment_basis

LOG2 = math.log(2.0)
#: Pixels per block when counting pairwise intersections (float32 counts stay exact below 2**24).
GRAM_BLOCK = 1 << 20
#: Half-width in pixels of the band around a segment's boundary.
BOUNDARY_WIDTH = 2
#: Keys of a per-segment summary, in the order reports list them.
SUMMARY_KEYS = ("volume_voxels", "size_fraction", "present_fraction", "mean_pairwise_dice", "samples_iou", "volume_cv",
                "mean_entropy", "mean_entropy_boundary", "mean_entropy_image", "mean_mutual_information",
                "mean_probability")


def entropy_from_probability(probability: torch.Tensor) -> torch.Tensor:
    """Binary entropy normalised to [0, 1] (0 log 0 = 0); ``probability`` any shape, the result the same."""
    q = 1.0 - probability
    return -(torch.special.xlogy(probability, probability) + torch.special.xlogy(q, q)) / LOG2


def entropy_from_logits(logits: torch.Tensor, probability: torch.Tensor | None = None) -> torch.Tensor:
    """Normalised binary entropy of ``p = sigmoid(logits)`` (pass ``probability`` if already computed).

    ``H = softplus(z) - p * z`` (from ``log p = -softplus(-z)`` and ``log(1 - p) = -softplus(z)``),
    stable for large logits. ``logits`` and ``probability``: any shape (one shape); the result the same.
    """
    probability = torch.sigmoid(logits) if probability is None else probability
    return (F.softplus(logits) - probability * logits).clamp_min_(0.0) / LOG2


class ChunkAccumulator:
    """Running sums over the samples of one spatial chunk (shape (B, C, *spatial)).

    ``add`` takes logits of a few samples at a time (S, B, C, *spatial); ``foreground`` keeps the
    chunk's sample masks as (C, M, pixels) for :class:`MaskAgreement`.
    """

    def __init__(self, n_samples: int, shape: tuple[int, ...], device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32):
        self.n_samples = n_samples
        self.count = 0
        self.sum_probability = torch.zeros(shape, device=device, dtype=dtype)
        self.sum_entropy = torch.zeros(shape, device=device, dtype=dtype)
        pixels = math.prod(shape) // shape[1]
        self.foreground = torch.zeros((shape[1], n_samples, pixels), device=device, dtype=torch.bool)

    def add(self, logits: torch.Tensor) -> None:
        """Add the logits (S, B, C, *spatial) of S more samples of this chunk."""
        n_new = logits.shape[0]
        if self.count + n_new > self.n_samples:
            raise ValueError(f"more than the {self.n_samples} samples this accumulator was made for")
        logits = logits.to(self.sum_probability.dtype)
        probability = torch.sigmoid(logits)
        self.sum_probability += probability.sum(0)
        self.sum_entropy += entropy_from_logits(logits, probability).sum(0)
        masks = (logits >= 0).movedim(2, 0)  # (C, S, B, *spatial)
        self.foreground[:, self.count:self.count + n_new] = masks.reshape(masks.shape[0], n_new, -1)
        self.count += n_new

    def _check_complete(self) -> None:
        if self.count != self.n_samples:
            raise ValueError(f"chunk has {self.count} of {self.n_samples} samples")

    def mean_probability(self) -> torch.Tensor:
        self._check_complete()
        return self.sum_probability / self.n_samples

    def expected_entropy(self) -> torch.Tensor:
        self._check_complete()
        return self.sum_entropy / self.n_samples


class MaskAgreement:
    """Agreement between the M sample masks of each class, accumulated over chunks (O(M^2) counts).

    ``grid_shape``: the model grid the sample masks live on. For one 2D frame (``frame=True``) it
    also keeps each sample's moment sums (C, M, 6) for its measurements
    (:mod:`~ConfidenceSegLib.inference.measurements`).
    """

    def __init__(self, n_samples: int, n_classes: int, grid_shape: tuple[int, ...] = (), frame: bool = False):
        self.n_samples = n_samples
        self.grid_shape = tuple(grid_shape)
        self.intersections = np.zeros((n_classes, n_samples, n_samples), dtype=np.float64)
        self.all_samples = np.zeros(n_classes, dtype=np.float64)
        self.any_sample = np.zeros(n_classes, dtype=np.float64)
        self.moments = np.zeros((n_classes, n_samples, N_MOMENTS), dtype=np.float64) if frame else None
        # float32 on the samples' device: no float64 copy of every sample mask (relative error ~1e-6)
        self._basis = torch.from_numpy(moment_basis(self.grid_shape)).float() if frame else None

    def sample_volumes(self, index: int) -> np.ndarray:
        """Each sample's mask size (M,) of class ``index``, in model-grid pixels / voxels."""
        return np.diag(self.intersections[index]).copy()

    def add(self, foreground: torch.Tensor) -> None:
        """Fold one chunk's sample masks (C, M, pixels) bool into the counts."""
        if self.moments is not None:
            self._basis = self._basis.to(foreground.device)
            self.moments += (foreground.float() @ self._basis).double().cpu().numpy()
        for index, masks in enumerate(foreground):
            marked = masks.any(0)
            self.all_samples[index] += int(masks.all(0).sum())
            self.any_sample[index] += int(marked.sum())
            touched = masks[:, marked]  # pixels no sample marks add nothing to any intersection
            for start in range(0, touched.shape[1], GRAM_BLOCK):
                block = touched[:, start:start + GRAM_BLOCK].float()
                self.intersections[index] += (block @ block.T).double().cpu().numpy()

    @classmethod
    def combined(cls, parts: list[MaskAgreement]) -> MaskAgreement:
        """The agreement over all ``parts`` (the counts add up: e.g. the frames of a stack)."""
        total = cls(parts[0].n_samples, parts[0].intersections.shape[0], parts[0].grid_shape)
        for part in parts:
            total.intersections += part.intersections
            total.all_samples += part.all_samples
            total.any_sample += part.any_sample
        return total

    def summary(self, index: int) -> dict[str, float]:
        """present_fraction, mean_pairwise_dice, samples_iou and volume_cv of class ``index``."""
        gram = self.intersections[index]
        volumes = np.diag(gram)
        pairs = np.triu_indices(self.n_samples, k=1)
        sums = volumes[pairs[0]] + volumes[pairs[1]]
        dice = np.where(sums > 0, 2.0 * gram[pairs] / np.maximum(sums, 1.0), 1.0)
        mean_volume = volumes.mean()
        return {
            "present_fraction": float(np.mean(volumes > 0)),
            "mean_pairwise_dice": float(dice.mean()) if dice.size else 1.0,
            "samples_iou": float(self.all_samples[index] / self.any_sample[index]) if self.any_sample[index] else 1.0,
            "volume_cv": float(volumes.std() / mean_volume) if mean_volume > 0 else 0.0,
        }


def boundary_band(mask: np.ndarray, width: int = BOUNDARY_WIDTH, in_plane: bool = False) -> np.ndarray:
    """Pixels within ``width`` steps (4/6-connectivity) of the mask's boundary, on both sides.

    ``in_plane``: for a stack of 2D frames, the band is built in each frame separately. The image
    border is not a boundary. ``mask``: bool (H, W), (frames, H, W) or (Z, Y, X); the band: bool, the same shape.
    """
    band = np.zeros(mask.shape, dtype=bool)
    if not mask.any():
        return band
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    if in_plane and mask.ndim == 3:
        structure[0] = structure[2] = False
    box = tuple(slice(max(s.start - width, 0), s.stop + width) for s in ndimage.find_objects(mask.astype(np.uint8))[0])
    crop = mask[box]
    grown = ndimage.binary_dilation(crop, structure, iterations=width)
    shrunk = ndimage.binary_erosion(crop, structure, iterations=width, border_value=1)
    band[box] = grown & ~shrunk
    return band


def _mean(values: np.ndarray, region: np.ndarray) -> float:
    return float(values[region].mean(dtype=np.float64)) if region.any() else 0.0


def segment_summary(mask: np.ndarray, probability: np.ndarray, entropy: np.ndarray,
                    mutual_information: np.ndarray, agreement: dict[str, float],
                    in_plane: bool = False) -> dict[str, float]:
    """Contract-1 summary of one class from its image-grid maps and the sample agreement counts.

    Sizes are spacing-free: ``volume_voxels`` (pixels of the mask) and ``size_fraction`` (of the
    image's pixels), so the same pixels give the same summary with or without physical spacing
    (physical sizes are measurements, :mod:`.measurements`). The mean mutual information is taken
    inside the predicted mask, or over the whole image when the mask is empty. ``mask`` (bool) and the float32
    maps: one image-grid shape, (H, W), (frames, H, W) (``in_plane``) or (Z, Y, X).
    """
    band = boundary_band(mask, in_plane=in_plane)
    volume = int(mask.sum())
    return {
        "volume_voxels": float(volume),
        "size_fraction": float(volume / mask.size),
        "present_fraction": agreement["present_fraction"],
        "mean_pairwise_dice": agreement["mean_pairwise_dice"],
        "samples_iou": agreement["samples_iou"],
        "volume_cv": agreement["volume_cv"],
        "mean_entropy": _mean(entropy, mask),
        "mean_entropy_boundary": _mean(entropy, band),
        "mean_entropy_image": float(entropy.mean(dtype=np.float64)),
        "mean_mutual_information": _mean(mutual_information, mask if volume else np.ones_like(mask)),
        "mean_probability": _mean(probability, mask),
    }
