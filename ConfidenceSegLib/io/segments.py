"""One segment of a segmentation, as every reader and writer of segments hands it on.

Kept apart from :mod:`.segfile` (which needs slicerio) so that the MRML adapters, which 3D Slicer
imports before the extension's dependencies are installed, share the same type.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..contract import CLASS_TAG, CONFIDENCE_TAG, ConfidenceSegError


@dataclass
class Segment:
    """One segment of a segmentation: a bool mask on the reference image grid plus metadata.

    ``mask`` is in SimpleITK array order ((y, x) for 2D, (z, y, x) for 3D). ``tags`` are free
    ``key -> value`` strings (keys without ``:``, values without ``|``, as ``.seg.nrrd`` requires).
    """

    name: str
    mask: np.ndarray
    color: tuple[float, float, float] = (0.5, 0.5, 0.5)
    tags: dict[str, str] = field(default_factory=dict)
    status: str | None = None
    id: str | None = None

    @property
    def class_name(self) -> str | None:
        return self.tags.get(CLASS_TAG)

    @property
    def confidence(self) -> float | None:
        """The confidence level tag as a number; a clear error when it is not one."""
        value = self.tags.get(CONFIDENCE_TAG)
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            raise ConfidenceSegError(f"segment {self.name!r}: {CONFIDENCE_TAG} is {value!r}, not a number") from None
