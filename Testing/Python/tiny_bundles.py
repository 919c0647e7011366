"""Small random-weight model bundles for engine and CLI tests (built with bundle.save_bundle)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from ConfidenceSegLib.model.bundle import load_bundle, save_bundle
from ConfidenceSegLib.model.networks import build_network


def tiny_architecture(spatial_dims: int = 2) -> dict:
    return {"name": "ConfidenceSegNet", "spatial_dims": spatial_dims, "in_channels": 1, "channels": [4, 8],
            "strides": [2], "num_res_units": 1, "head_channels": 6, "dropout": 0.3}


def make_bundle(path: Path, spatial_dims: int = 2, members: int = 1, classes=("organ", "lesion"),
                input_size=(32, 40), extra: dict | None = None):
    """Write and load a random-weight bundle (seeded: the same weights every time)."""
    architecture = tiny_architecture(spatial_dims)
    torch.manual_seed(0)
    networks = [build_network(architecture, len(classes)) for _ in range(members)]
    if spatial_dims == 2:
        preprocessing = {"spatial_dims": 2, "input_size": list(input_size), "intensity": {"method": "zscore"}}
    else:
        preprocessing = {"spatial_dims": 3, "roi_size": [16, 16, 16], "spacing": [2.0, 1.5, 1.5],
                         "intensity": {"method": "zscore"}}
    config = {"architecture": architecture, "classes": list(classes), "preprocessing": preprocessing, **(extra or {})}
    save_bundle(path, config, networks)
    return load_bundle(path)


def random_image(shape, spacing=None, origin=None, seed: int = 0) -> sitk.Image:
    """A smooth random image (blobs), so predictions vary across the image."""
    rng = np.random.default_rng(seed)
    array = rng.random(shape).astype(np.float32)
    for axis in range(len(shape)):
        array = (array + np.roll(array, 1, axis) + np.roll(array, -1, axis)) / 3
    image = sitk.GetImageFromArray(array * 200)
    image.SetSpacing(spacing or tuple(0.5 + 0.1 * i for i in range(len(shape))))
    image.SetOrigin(origin or tuple(float(i + 1) for i in range(len(shape))))
    return image
