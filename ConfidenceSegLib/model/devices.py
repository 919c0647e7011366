"""Choosing the compute device: CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

import torch

from ..contract import DEVICE_CHOICES, ConfidenceSegError


def mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an explicit device that is absent is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_available() else torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfidenceSegError("--device cuda was asked for but no CUDA GPU is available (use auto or cpu)")
    if name == "mps" and not mps_available():
        raise ConfidenceSegError("--device mps was asked for but Apple MPS is not available (use auto or cpu)")
    if name not in DEVICE_CHOICES:
        raise ConfidenceSegError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    """``cpu``, ``cuda (NVIDIA H100 ...)`` or ``mps``: for logs, JSON reports and the Slicer panel."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type
