"""The options a prediction run is made with, checked before any work (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass

from ..contract import DEFAULT_MAPS, ConfidenceSegError
from ..inference.sampling import plan_sampling


@dataclass(frozen=True)
class PredictionSettings:
    """The options every command predicts with (``--method``, ``--samples``, ``--device``), the maps it
    writes (``--maps``) and the pixel size of inputs without one (``--spacing``, mm, x y [z])."""

    method: str = "auto"
    samples: int | None = None
    device: str = "auto"
    maps: tuple[str, ...] = DEFAULT_MAPS
    spacing: tuple[float, ...] | None = None

    def check(self, bundle_members: int, spatial_dims: int = 2) -> None:
        """Raise the user's error for an impossible method/samples or spacing before any work."""
        plan_sampling(bundle_members, self.method, self.samples)
        if self.spacing and len(self.spacing) == 2 and spatial_dims == 3:
            raise ConfidenceSegError("--spacing needs SX SY SZ for a 3D model (the slice distance matters)")
