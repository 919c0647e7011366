"""Where the bundled resources are: default model and sample data.

Resources live in the repository's top-level ``Resources/`` folder (next to ``ConfidenceSegLib`` in a
source checkout or editable install, and next to the module in a Slicer extension build).
``CONFIDENCESEG_RESOURCES`` overrides the location.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..contract import ConfidenceSegError

DEFAULT_MODEL_NAME = "fetal_head"


def resources_dir() -> Path:
    """The Resources folder; a clear error if it cannot be found."""
    override = os.environ.get("CONFIDENCESEG_RESOURCES")
    candidates = [Path(override)] if override else []
    library_dir = Path(__file__).resolve().parent.parent  # ConfidenceSegLib/
    candidates += [library_dir.parent / "Resources", library_dir / "Resources"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise ConfidenceSegError(
        "ConfidenceSeg resources not found (looked in " + ", ".join(map(str, candidates)) + "); "
        "install from a source checkout with `pip install -e .` or set CONFIDENCESEG_RESOURCES")


def default_model_dir() -> Path:
    """The bundled default model bundle (HC18 fetal head, 2D ultrasound)."""
    path = resources_dir() / "models" / DEFAULT_MODEL_NAME
    if not (path / "config.json").is_file():
        raise ConfidenceSegError(f"bundled default model not found at {path}")
    return path


def sample_images() -> list[Path]:
    """The bundled sample images (HC18 fetal head ultrasound, CC BY 4.0), sorted by name."""
    folder = resources_dir() / "SampleData"
    images = sorted(folder.glob("*.nrrd")) if folder.is_dir() else []
    if not images:
        raise ConfidenceSegError(f"no bundled sample images found in {folder}")
    return images
