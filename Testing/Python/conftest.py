"""Shared test fixtures: the real data in ../shared/data (skipped with a reason where absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The real data sets: ``../shared/data`` beside the repository, or $CONFIDENCESEG_SHARED_DATA.
SHARED_DATA = Path(os.environ.get("CONFIDENCESEG_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
SKIP_REASON = (f"real data not found at {SHARED_DATA} (CI has it; a fresh clone may not: "
               "set CONFIDENCESEG_SHARED_DATA to its location)")

requires_shared_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=SKIP_REASON)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ``../shared/data``; skips the test with a clear reason where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(SKIP_REASON)
    return SHARED_DATA


def dataset_dir(name: str) -> Path:
    """Path of one shared data set, skipping the calling test where it is absent."""
    path = SHARED_DATA / name
    if not (path / "dataset.json").is_file():
        pytest.skip(f"data set {name} not found at {path} ({SKIP_REASON})")
    return path
