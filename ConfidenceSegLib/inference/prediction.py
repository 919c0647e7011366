"""What a prediction is: every map and summary of one input, on the image grid (no torch here).

Made by :func:`~.predict.predict_image`; read by the quality stage and the outputs. Arrays are in
SimpleITK order: (H, W) for a 2D image, (frames, H, W) for a stack or (Z, Y, X) for a volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk


@dataclass
class ClassPrediction:
    """One class: its mask (bool), probability, entropy and mutual information maps (float32), each of the
    image's shape, and its uncertainty summary."""

    name: str
    mask: np.ndarray
    probability: np.ndarray
    entropy: np.ndarray
    mutual_information: np.ndarray
    summary: dict[str, float]
    #: Area / circumference (2D) or volume (3D), each {"value", "p05", "p95"} in mm (:mod:`.measurements`).
    measurements: dict[str, dict[str, float]] | None = None
    #: For a 2D model run slice by slice on a stack (or a volume): one summary per frame (as for a 2D image).
    frame_summaries: list[dict[str, float]] | None = None
    #: ... and each frame's area and circumference.
    frame_measurements: list[dict[str, dict[str, float]]] | None = None


@dataclass
class Prediction:
    """Every class of one input, the image it was made on, how it was made and how long it took."""

    image: sitk.Image
    method: str
    samples: int
    device: str
    timings: dict[str, float]
    classes: list[ClassPrediction]
    #: What the model's encoder saw (:mod:`.embedding`), per described layer: (frames, D) for a 2D model (one
    #: row per frame), (1, D) for a 3D model.
    embeddings: dict[str, np.ndarray] | None = None
    #: Per frame (or the volume): True where every pixel has one value (nothing to segment).
    blank: np.ndarray | None = None
