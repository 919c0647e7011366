"""Multi-channel inputs as nnU-Net lays them out: one file per channel, ``CASE_0000<ending>``,
``CASE_0001<ending>``, ... on one grid. The first file names the input; its siblings are read with it
and composed into one vector image (channels as components, float32), the form a model takes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from ..contract import ConfidenceSegError

if TYPE_CHECKING:  # SimpleITK loads only when an image is read (start-up stays light)
    import SimpleITK as sitk

#: ``CASE_0000.nii.gz`` -> case ``CASE``, channel ``0000``, ending ``.nii.gz``.
CHANNEL_FILE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})(?P<ending>\.[^_]+)$")


def channel_siblings(path: Path, channels: int) -> tuple[Path, ...]:
    """The files of channels 1 .. ``channels``-1 beside ``path`` (``CASE_0000<ending>``); () when ``path``
    is not such a first-channel file (it must then hold every channel itself). Missing siblings are refused."""
    match = CHANNEL_FILE.match(path.name)
    if channels < 2 or path.is_dir() or match is None or match["channel"] != "0000":
        return ()
    case, ending = match["case"], match["ending"]
    siblings = tuple(path.with_name(f"{case}_{channel:04d}{ending}") for channel in range(1, channels))
    missing = [sibling.name for sibling in siblings if not sibling.is_file()]
    if missing:
        raise ConfidenceSegError(f"{path} is channel 0 of a model that takes {channels} channels, one file each: "
                                 f"{', '.join(missing)} not found beside it")
    return siblings


def is_later_channel(path: Path) -> bool:
    """Whether ``path`` is channel 1 or later of a set whose channel 0 file lies beside it."""
    match = CHANNEL_FILE.match(path.name)
    return match is not None and match["channel"] != "0000" and \
        path.with_name(f"{match['case']}_0000{match['ending']}").is_file()


def compose_channels(first: sitk.Image, others: list[tuple[Path, sitk.Image]], what: str) -> sitk.Image:
    """``first`` and the ``others`` (path, image) as one vector image (float32); all on one grid, one
    component each."""
    import SimpleITK as sitk

    from .images import check_same_geometry

    for path, image in others:
        check_same_geometry(first, image, what, f"channel file {path}")
        if image.GetNumberOfComponentsPerPixel() != 1:
            raise ConfidenceSegError(f"channel file {path} has {image.GetNumberOfComponentsPerPixel()} components; "
                                     "each channel file holds one")
    return sitk.Compose([sitk.Cast(image, sitk.sitkFloat32) for image in [first, *(image for _, image in others)]])
