"""The bundled HC18 samples as 3D Slicer Sample Data sources (the Sample Data module lists them).

Each source is a local file shipped with the extension, given as a ``file:`` URI with its SHA-256, so
Slicer's Sample Data module copies it into its cache and loads it without any network access, and
re-copies it if the cached copy differs. Standard library only.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..io.resources import sample_images

#: The Sample Data module's category of the bundled samples.
CATEGORY = "ConfidenceSeg"


def sample_data_sources(thumbnail: str | os.PathLike | None = None) -> list[dict]:
    """Keyword arguments of ``SampleDataLogic.registerCustomSampleDataSource``, one dict per bundled sample."""
    sources = []
    for path in sample_images():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        name = path.name.removesuffix(".nrrd")
        sources.append({"category": CATEGORY, "sampleName": f"HC18 {name}", "uris": Path(path).resolve().as_uri(),
                        "fileNames": path.name, "nodeNames": name, "checksums": f"SHA256:{digest}",
                        "thumbnailFileName": None if thumbnail is None else str(thumbnail)})
    return sources
