"""What the model sees of an image: pooled features of two encoder layers of its UNet (for the domain check).

The descriptors of an image are, for the second encoder level (texture: speckle, noise, resolution) and
for the bottom of the UNet (what the image is made of), the per-channel mean and standard deviation over
space of that layer's output in the first ensemble member: a (2 x channels)-vector per layer (64 and 512
numbers for the bundled model). They are recorded by forward hooks while the backbone runs anyway, so
they cost no extra network pass. :mod:`ConfidenceSegLib.quality.domain` compares them with the
descriptors of the calibration images.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

#: The encoder levels described: the second (index 1) and the bottom (-1).
DESCRIBED_LEVELS = (1, -1)


def encoder_layers(backbone: nn.Module) -> list[nn.Module]:
    """The encoder units of a MONAI ``UNet``, top to bottom (the last is the innermost skip's submodule)."""
    # MONAI loads when first used: an nnU-Net prediction never needs it
    from monai.networks.layers.simplelayers import SkipConnection

    layers, block = [], backbone.model
    while isinstance(block, nn.Sequential) and len(block) == 3 and isinstance(block[1], SkipConnection):
        layers.append(block[0])
        block = block[1].submodule
    return [*layers, block]


def descriptor_names(levels: int) -> list[str]:
    """The names of the described layers of a UNet with ``levels`` encoder levels (``level1``, ``level4``)."""
    return list(dict.fromkeys(f"level{level % levels}" for level in DESCRIBED_LEVELS))


def pooled(features: torch.Tensor) -> np.ndarray:
    """(B, C, *spatial) features -> (B, 2C) float64: per-channel mean then standard deviation over space."""
    flat = features.detach().float().flatten(2)
    return torch.cat([flat.mean(dim=2), flat.std(dim=2, unbiased=False)], dim=1).cpu().double().numpy()


class EmbeddingRecorder:
    """Collects the pooled features of the described layers for every backbone call made while :meth:`recording`."""

    def __init__(self, member: nn.Module):
        layers = encoder_layers(member.backbone)
        self.layers = dict(zip(descriptor_names(len(layers)), dict.fromkeys(
            layers[level] for level in DESCRIBED_LEVELS), strict=True))
        self.batches: dict[str, list[np.ndarray]] = {name: [] for name in self.layers}

    @contextlib.contextmanager
    def recording(self, keep: int | None = None) -> Iterator[None]:
        """Record the calls inside the block; ``keep``: only the first ``keep`` images of each call (the
        unflipped copies when test-time flips are batched behind them)."""
        handles = [layer.register_forward_hook(
            lambda _module, _inputs, output, name=name: self.batches[name].append(pooled(output[:keep])))
            for name, layer in self.layers.items()]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def take(self) -> dict[str, np.ndarray]:
        """Every recorded descriptor per layer, in call order, {name: (N, 2C)}; the recorder is emptied."""
        taken = {name: np.concatenate(batches) for name, batches in self.batches.items() if batches}
        self.batches = {name: [] for name in self.layers}
        return taken
