"""Training loss valid for binary, soft and per-pixel weighted targets (all label modes).

``loss = dice_weight * weighted Dice semimetric + bce_weight * weighted BCE`` on per-class sigmoid
outputs, with targets and weights from :func:`ConfidenceSegLib.training.targets.make_target`:

- Dice: MONAI ``DiceLoss(soft_label=True)`` (the Dice semimetric loss of Wang et al., MICCAI 2023,
  built on ``|x|_1 + |y|_1 - |x - y|_1``; identical to soft Dice for binary targets and minimised
  only at ``p = target`` for soft ones) applied to ``w * p`` and ``w * target``. That is the
  weighted Dice ``sum w (p + t - |p - t|) / sum w (p + t)``: weight 0 removes a pixel, weight 1/2
  counts it half. Sums pool the whole batch per class (``batch=True``), so a frame where a
  structure is absent does not turn into a Dice of 0 on its own.
- BCE with soft targets (valid for soft labels), per-pixel weighted and normalised by the summed
  weight.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss
from torch import nn


class ConfidenceLoss(nn.Module):
    """Weighted Dice semimetric + weighted soft-target BCE, from logits (N, C, *spatial)."""

    def __init__(self, dice_weight: float = 1.0, bce_weight: float = 1.0):
        super().__init__()
        self.dice_weight = dice_weight
        self.bce_weight = bce_weight
        self.dice = DiceLoss(sigmoid=False, soft_label=True, batch=True, smooth_nr=1e-5, smooth_dr=1e-5)

    def forward(self, logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """Scalar loss; ``logits``, ``target`` and ``weight`` (default 1): float, each (N, C, *spatial)."""
        if weight is None:
            weight = torch.ones_like(target)
        probability = torch.sigmoid(logits)
        dice = self.dice(weight * probability, weight * target)
        bce = F.binary_cross_entropy_with_logits(logits, target, weight=weight, reduction="sum")
        bce = bce / weight.sum().clamp_min(1.0)
        return self.dice_weight * dice + self.bce_weight * bce
