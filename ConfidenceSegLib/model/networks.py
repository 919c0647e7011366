"""Segmentation networks built from MONAI, shaped for cheap MC-dropout sampling.

:class:`ConfidenceSegNet` is a deterministic MONAI ``UNet`` backbone that returns full-resolution
features, followed by a small head holding all the dropout. MC-dropout samples re-run only the
head on the cached features, so the backbone runs once per image, and the samples of a batch
run as one batched head call. Outputs are per-class logits (independent sigmoids: structures
may overlap).
"""

from __future__ import annotations

import torch
from torch import nn

from ..contract import ConfidenceSegError
from .bundle_config import ARCHITECTURE_KEYS, check_architecture


class ConfidenceSegNet(nn.Module):
    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int,
                 channels: tuple[int, ...] = (16, 32, 64, 128), strides: tuple[int, ...] = (2, 2, 2),
                 num_res_units: int = 1, head_channels: int = 16, dropout: float = 0.2):
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ConfidenceSegError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        drop = nn.Dropout2d if spatial_dims == 2 else nn.Dropout3d
        # MONAI loads when first used: an nnU-Net prediction never needs it
        from monai.networks.nets import UNet

        self.backbone = UNet(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=head_channels,
                             channels=tuple(channels), strides=tuple(strides), num_res_units=num_res_units)
        self.head = nn.Sequential(
            nn.PReLU(), drop(dropout), conv(head_channels, head_channels, 3, padding=1),
            nn.PReLU(), drop(dropout), conv(head_channels, out_channels, 1))

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """Deterministic full-resolution features (no dropout here): ``image`` (B, in_channels, *spatial) ->
        (B, head_channels, *spatial), the same spatial shape ((h, w) or (z, y, x))."""
        return self.backbone(image)

    def head_logits(self, features: torch.Tensor) -> torch.Tensor:
        """Per-class logits (B, C, *spatial) from ``features`` (B, head_channels, *spatial); stochastic when
        dropout is enabled."""
        return self.head(features)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Per-class logits (B, C, *spatial) of ``image`` (B, in_channels, *spatial)."""
        return self.head_logits(self.features(image))


def build_network(architecture: dict, n_classes: int) -> ConfidenceSegNet:
    """Network from a bundle's ``architecture`` config, checked first (see :mod:`.bundle_config`)."""
    check_architecture(architecture, "architecture")
    return ConfidenceSegNet(out_channels=n_classes, **{key: architecture[key] for key in ARCHITECTURE_KEYS})
