"""The options a prediction run is made with, checked before any work (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass

from ..contract import DEFAULT_MAPS
from ..inference.sampling import plan_sampling


@dataclass(frozen=True)
class PredictionSettings:
    """The options every command predicts with (``--method``, ``--samples``, ``--device``) and the
    maps it writes (``--maps``)."""

    method: str = "auto"
    samples: int | None = None
    device: str = "auto"
    maps: tuple[str, ...] = DEFAULT_MAPS

    def check(self, bundle_members: int) -> None:
        """Raise the user's error for an impossible method/samples before any work."""
        plan_sampling(bundle_members, self.method, self.samples)
