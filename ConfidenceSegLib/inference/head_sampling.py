"""MC-dropout samples of a network head, batched without copying its input.

The head of :class:`~ConfidenceSegLib.model.networks.ConfidenceSegNet` is a chain of element-wise
activations, channel dropout (``Dropout1d/2d/3d``) and convolutions. Channel dropout in front of a
convolution equals scaling the convolution's input-channel weights, so sample ``s`` with channel
mask ``m_s`` is ``conv(x * m_s / (1 - p)) = conv_{W * m_s / (1 - p)}(x)``. All samples of a chunk
run as one convolution with ``S x out`` output channels on the shared input (later layers as a
grouped convolution), so the input is never replicated per sample.

Each sample's masks are drawn once per run (:func:`draw_dropout_masks`), so sample ``s`` is the
same thinned network for every frame, slab and window of an image: per-sample masks and volumes
stay coherent across the chunks an image is processed in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..contract import ConfidenceSegError

CHANNEL_DROPOUT = (nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)
ELEMENTWISE = (nn.PReLU, nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Identity)
CONVOLUTIONS = {nn.Conv1d: F.conv1d, nn.Conv2d: F.conv2d, nn.Conv3d: F.conv3d}


def check_head(head: nn.Sequential) -> None:
    """Raise unless the head is a chain this module can sample (channel dropout, activations, convs)."""
    for layer in head:
        if isinstance(layer, CHANNEL_DROPOUT + ELEMENTWISE):
            continue
        if type(layer) in CONVOLUTIONS and layer.groups == 1 and layer.padding_mode == "zeros":
            continue
        raise ConfidenceSegError(f"cannot sample MC dropout through head layer {type(layer).__name__}")
    if not any(type(layer) in CONVOLUTIONS for layer in head):
        raise ConfidenceSegError("the network head has no convolution")


def draw_dropout_masks(head: nn.Sequential, n_samples: int, generator: torch.Generator) -> list[torch.Tensor]:
    """One (n_samples, channels) keep-mask per dropout layer, scaled by 1 / (1 - p), on the CPU."""
    check_head(head)
    layers = list(head)
    masks = []
    for index, layer in enumerate(layers):
        if isinstance(layer, CHANNEL_DROPOUT):
            following = next((later for later in layers[index + 1:] if type(later) in CONVOLUTIONS), None)
            if following is None:
                raise ConfidenceSegError("channel dropout after the last convolution of the head is not supported")
            keep = 1.0 - layer.p
            draw = torch.rand(n_samples, following.in_channels, generator=generator) < keep
            masks.append(draw.float() / keep if keep > 0 else draw.float())
    return masks


def sample_head_logits(head: nn.Sequential, features: torch.Tensor, masks: list[torch.Tensor]) -> torch.Tensor:
    """Logits of ``S`` dropout samples: features (B, ch, *spatial) -> (S, B, classes, *spatial).

    ``masks`` come from :func:`draw_dropout_masks` (rows of the samples wanted).
    """
    n_samples = masks[0].shape[0] if masks else 1
    batch = features.shape[0]
    x = features
    stacked = False  # True once x holds all samples as (B, S * ch, *spatial)
    pending = None
    remaining = iter(masks)
    for layer in head:
        if isinstance(layer, CHANNEL_DROPOUT):
            pending = next(remaining).to(device=x.device, dtype=x.dtype)
        elif isinstance(layer, ELEMENTWISE):
            if stacked:
                channels = x.shape[1] // n_samples
                x = layer(x.reshape(batch * n_samples, channels, *x.shape[2:])).reshape(x.shape)
            else:
                x = layer(x)
        else:
            weight = layer.weight.unsqueeze(0).expand(n_samples, *layer.weight.shape)
            if pending is not None:
                weight = weight * pending.reshape(n_samples, 1, -1, *([1] * (layer.weight.dim() - 2)))
                pending = None
            if stacked and _pointwise(layer):  # per-sample channel mixing: a batched matmul is fastest
                spatial = x.shape[2:]
                x = torch.matmul(weight.reshape(n_samples, layer.out_channels, layer.in_channels),
                                 x.reshape(batch, n_samples, layer.in_channels, -1))
                if layer.bias is not None:
                    x = x + layer.bias.reshape(1, 1, -1, 1)
                x = x.reshape(batch, -1, *spatial)
            else:
                bias = None if layer.bias is None else layer.bias.repeat(n_samples)
                convolve = CONVOLUTIONS[type(layer)]
                x = convolve(x, weight.reshape(-1, *layer.weight.shape[1:]), bias, layer.stride, layer.padding,
                             layer.dilation, groups=n_samples if stacked else 1)
            stacked = True
    out = x.reshape(batch, n_samples, -1, *x.shape[2:])
    return out.transpose(0, 1)


def _pointwise(layer: nn.Module) -> bool:
    return all(k == 1 for k in layer.kernel_size) and all(s == 1 for s in layer.stride) and \
        all(p == 0 for p in layer.padding)


def head_halo(head: nn.Sequential) -> int:
    """Voxels of context the head needs on each side (for running it on slabs of a volume)."""
    return sum(layer.dilation[0] * (layer.kernel_size[0] - 1) // 2 for layer in head if type(layer) in CONVOLUTIONS)
