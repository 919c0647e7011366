"""Is a segment like the calibration segments of its class? A conformal p-value of its boundary profile.

The image-level domain check (:mod:`.domain`) asks whether the image is like the calibration images; a
model can still draw a confident outline around something that is not its structure (a neonatal brain
in MRI taken for a fetal head). This check asks what the segment's edge is made of in the image.

The **boundary profile** of a segment: the image intensity (scaled so that the image's 1st and 99th
percentiles are 0 and 1) averaged in :data:`BAND_COUNT` bands at signed distances from the segment's edge,
from :data:`BAND_REACH` of its equivalent radius inside to as far outside (distances in mm, so anisotropic
pixels count right): a fetal skull's bright rim over dark fluid, an organ's capsule, ... It is scored by
the mean distance to its ``k`` nearest calibration profiles of the class (standardised), and the score
becomes a conformal p-value against the calibration segments' own scores, each scored
leave-one-subject-out. Out of domain when the p-value is below ``alpha`` (1%): at most about 1% of
in-domain segments are flagged, on top of the image check's share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..io.images import display_image
from .domain import NEIGHBOURS, SCALE_FLOOR, Typicality, knn_scores, upper_p_values
from .verdict import Reason

#: Bands of the profile and how far they reach on each side of the edge (a fraction of the equivalent radius).
BAND_COUNT = 12
BAND_REACH = 0.3
BAND_EDGES = np.linspace(-BAND_REACH, BAND_REACH, BAND_COUNT + 1)
#: Share of in-domain segments the check may flag (chosen on the benchmark, docs/results.md).
BOUNDARY_ALPHA = 0.01
#: At most this many voxels set the intensity percentiles (a regular subsample of larger images).
PERCENTILE_SAMPLE = 1_000_000
#: Name of the calibration profiles' file in a bundle (one standardised (N, BAND_COUNT) array per class).
REFERENCES_FILE = "boundary_references.safetensors"


def intensity_scale(image: np.ndarray) -> tuple[float, float]:
    """(offset, width) mapping the image's 1st..99th percentile to 0..1 (``image``: any shape)."""
    flat = image.reshape(-1)
    step = max(1, flat.size // PERCENTILE_SAMPLE)
    low, high = np.percentile(flat[::step], [1.0, 99.0])
    return float(low), float(max(high - low, 1e-6))


def boundary_profile(image: np.ndarray, mask: np.ndarray, spacing: Sequence[float],
                     scale: tuple[float, float] | None = None) -> np.ndarray | None:
    """The profile (BAND_COUNT,) of ``mask`` in ``image`` (same shape, 2D or 3D; ``spacing`` in mm per array
    axis); None for an empty mask, one that fills the image, or one too small for its bands to hold a pixel
    each (an equivalent radius under about 10 pixels: not checked)."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any() or mask.all():
        return None
    offset, width = scale or intensity_scale(image)
    spacing = np.asarray(spacing, np.float64)
    radius = (mask.sum() * np.prod(spacing) / (np.pi if mask.ndim == 2 else 4.0 * np.pi / 3.0)) ** (1.0 / mask.ndim)
    reach = np.ceil(BAND_REACH * radius / spacing).astype(int) + 2  # voxels around the mask that can lie in a band
    box = tuple(slice(max(low - r, 0), high + r + 1) for (low, high), r in zip(
        ((idx.min(), idx.max()) for idx in np.nonzero(mask)), reach, strict=True))
    inside, image = mask[box], image[box]
    # distance to the edge: to the nearest voxel on the other side, less the half voxel to the edge between them
    half = 0.5 * spacing.min()
    signed = np.where(inside, half - ndimage.distance_transform_edt(inside, sampling=spacing),
                      ndimage.distance_transform_edt(~inside, sampling=spacing) - half) / radius
    band = np.digitize(signed, BAND_EDGES).ravel()  # 1..BAND_COUNT inside the reach, 0 / BAND_COUNT + 1 beyond
    counts = np.bincount(band, minlength=BAND_COUNT + 2)[1:BAND_COUNT + 1]
    if not counts.all():
        return None
    scaled = (image.astype(np.float64).ravel() - offset) / width
    return np.bincount(band, weights=scaled, minlength=BAND_COUNT + 2)[1:BAND_COUNT + 1] / counts


@dataclass(frozen=True)
class ProfileImage:
    """The image profiles are measured on, prepared once for all its classes: its display channel as an
    array (SimpleITK order), the spacing in array order (mm) and the whole image's intensity scale."""

    array: np.ndarray
    spacing: tuple[float, ...]
    scale: tuple[float, float]

    @classmethod
    def of(cls, image: sitk.Image) -> ProfileImage:
        array = sitk.GetArrayFromImage(display_image(image))
        return cls(array, tuple(image.GetSpacing()[::-1]), intensity_scale(array))

    def profiles(self, mask: np.ndarray, frames: bool) -> list[np.ndarray | None]:
        """The profiles of one class's mask (bool, the array's shape): one per frame when a 2D model ran frame
        by frame on a stack (``frames``; each frame scaled by its own percentiles, as a 2D image is), else
        one for the image or volume."""
        if not frames:
            return [boundary_profile(self.array, mask, self.spacing, self.scale)]
        return [boundary_profile(frame, frame_mask, self.spacing[1:])
                for frame, frame_mask in zip(self.array, mask, strict=True)]


def fit_boundary(profiles: np.ndarray, subjects: Sequence[str], alpha: float = BOUNDARY_ALPHA,
                 k: int = NEIGHBOURS) -> tuple[dict, np.ndarray]:
    """The boundary check of one class from the profiles (N, BAND_COUNT) of its N calibration segments:
    (its section, the standardised profiles (N, BAND_COUNT) float32, stored in :data:`REFERENCES_FILE`)."""
    profiles = np.asarray(profiles, np.float64)
    subjects = np.asarray(subjects)
    mean, scale = profiles.mean(0), np.maximum(profiles.std(0), SCALE_FLOOR)
    references = (profiles - mean) / scale
    scores = knn_scores(references, references, k, exclude=subjects[:, None] == subjects[None, :])
    section = {"method": "conformal p-value of the k-nearest-neighbour distance of the boundary profile, "
                         "leave-one-subject-out on calibration segments",
               "alpha": alpha, "k": k, "band_edges": BAND_EDGES.round(6).tolist(), "n_segments": int(len(subjects)),
               "references": REFERENCES_FILE, "feature_mean": mean.tolist(), "feature_scale": scale.tolist(),
               "scores": np.sort(scores).tolist()}
    return section, references.astype(np.float32)


def boundary_typicality(section: dict, references: np.ndarray, profile: np.ndarray | None) -> Typicality | None:
    """How typical a segment's profile is of its class's calibration segments (``references``: their
    standardised profiles (N, BAND_COUNT)); None without a profile."""
    if profile is None:
        return None
    query = (np.asarray(profile, np.float64) - np.asarray(section["feature_mean"])) / np.asarray(
        section["feature_scale"])
    score = knn_scores(query[None], np.asarray(references, np.float64), section["k"])
    p_value = float(upper_p_values(score, section["scores"])[0])
    if p_value >= section["alpha"]:
        return Typicality(p_value)
    return Typicality(p_value, Reason("out_of_domain", (
        f"segment unlike the calibration segments: the image across its edge differs from theirs "
        f"(typicality {p_value:.3f} < {section['alpha']:g})")))
