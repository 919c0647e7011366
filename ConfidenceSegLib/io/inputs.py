"""Which inputs a run processes, and the file stem each one's outputs are named after.

An input is an image file (:data:`~ConfidenceSegLib.contract.IMAGE_SUFFIXES`) or a DICOM series
folder. Standard library only: these checks answer before any heavy module loads. Every
output of an input is named ``<stem>...`` (``case.nii.gz`` -> ``case``), so two inputs of one run
must not share a stem.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..contract import IMAGE_SUFFIXES, NO_SPACING_SUFFIXES, SEG_SUFFIX, ConfidenceSegError
from .channel_files import channel_siblings, compose_channels, is_later_channel
from .safe_files import check_name_lengths


def input_stem(path: str | os.PathLike) -> str:
    """File name without its image suffix (``case.nii.gz`` -> ``case``; a DICOM folder: its name)."""
    name = Path(path).name
    for suffix in sorted(IMAGE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def check_inputs(paths: Sequence[Path]) -> list[str]:
    """The stems of ``paths``, after checking that each exists and no two share a stem."""
    check_name_lengths(paths)
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        raise ConfidenceSegError(f"file not found: {', '.join(missing)}")
    special = [str(path) for path in paths if not path.is_file() and not path.is_dir()]
    if special:
        raise ConfidenceSegError(f"not a regular file (a pipe or a device): {', '.join(special)}")
    seen: dict[str, Path] = {}
    for path in paths:
        stem = input_stem(path)
        if stem in seen:
            raise ConfidenceSegError(f"two inputs would write the same outputs {stem}.*: {seen[stem]} and {path}")
        seen[stem] = path
    return list(seen)


#: DICOM tags that give the in-plane pixel size: Pixel Spacing, Imager Pixel Spacing (projection images).
DICOM_SPACING_KEYS = ("0028|0030", "0018|1164")


def has_physical_spacing(path: str | os.PathLike) -> bool:
    """False for formats read without spacing (PNG, JPEG, TIFF, BMP: 1-unit pixels) and for DICOM without
    Pixel Spacing (ultrasound often: its calibration regions are not read; give ``--spacing``)."""
    path = Path(path)
    if path.is_dir() or path.name.lower().endswith(".dcm"):
        first = path if path.is_file() else next(
            (p for p in sorted(path.iterdir()) if p.is_file() and not p.name.startswith(".")), None)
        return first is not None and _dicom_has_spacing(first)
    return not path.name.lower().endswith(NO_SPACING_SUFFIXES)


def _dicom_has_spacing(path: Path) -> bool:
    import SimpleITK as sitk  # only once a DICOM input is met

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return True  # unreadable: reading it later gives the real error
    return any(reader.HasMetaDataKey(tag) and reader.GetMetaData(tag).strip() for tag in DICOM_SPACING_KEYS)


def _is_image_file(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.name.lower().endswith(IMAGE_SUFFIXES) \
        and not path.name.lower().endswith(SEG_SUFFIX)


def _is_dicom_file(path: Path) -> bool:
    """DICOM Part 10 file: ``DICM`` after the 128-byte preamble."""
    try:
        with path.open("rb") as file:
            return file.read(132)[128:] == b"DICM"
    except OSError:
        return False


def is_dicom_folder(path: Path) -> bool:
    """A folder whose first file is DICOM (then read as a series by :func:`.images.read_image`)."""
    if not path.is_dir():
        return False
    first = next((p for p in sorted(path.iterdir()) if p.is_file() and not p.name.startswith(".")), None)
    return first is not None and _is_dicom_file(first)


@dataclass(frozen=True)
class InputFacts:
    """What the outputs need to know of an input besides its pixels, found once when the run starts."""

    #: Absolute path of the image file or DICOM series folder.
    path: Path
    #: False for an input without physical spacing, none given (sizes in pixels; the badge cannot PASS).
    has_spacing: bool
    #: A DICOM series folder (its outputs include a DICOM SEG referencing the series).
    dicom_series: bool
    #: ``--spacing`` (mm, x y [z]) given for an input without its own, applied when it is read; else None.
    given_spacing: tuple[float, ...] | None = None
    #: The files of channels 1, 2, ... read with ``path`` (channel 0) as one vector image (:mod:`.channel_files`).
    channel_paths: tuple[Path, ...] = ()

    @classmethod
    def of(cls, path: str | os.PathLike, spacing: Sequence[float] | None = None, channels: int = 1) -> InputFacts:
        """The facts of ``path``; ``spacing`` (``--spacing``) is used only when the input has none of its own;
        ``channels``: the model's input channels (a ``CASE_0000`` file then brings its ``CASE_0001``, ...)."""
        path = Path(os.path.abspath(path))
        own = has_physical_spacing(path)
        given = None if own or not spacing else tuple(float(value) for value in spacing)
        return cls(path, own or given is not None, is_dicom_folder(path), given, channel_siblings(path, channels))

    @property
    def spacing_source(self) -> str:
        """Where the sizes come from: ``image``, ``--spacing`` or ``none`` (pixels)."""
        return "--spacing" if self.given_spacing else "image" if self.has_spacing else "none"

    def read(self):
        """The image (``sitk.Image``), with the given spacing applied."""
        from .images import read_image, with_spacing  # SimpleITK: only once the run starts

        image = read_image(self.path)
        if self.channel_paths:
            image = compose_channels(image, [(path, read_image(path)) for path in self.channel_paths], str(self.path))
        return with_spacing(image, self.given_spacing, self.path) if self.given_spacing else image


def collect_inputs(inputs: Sequence[str | os.PathLike], channels: int = 1) -> list[Path]:
    """Image files and DICOM series folders to process, in order, without duplicate stems.

    A folder that is itself a DICOM series is one input; any other folder contributes its image
    files and its DICOM series sub-folders (``.dcm`` files in a folder of images are not inputs); for a
    model of several ``channels``, not the files of channels 1, 2, ... (read with their channel 0 file).
    """
    found: list[Path] = []
    for item in map(Path, inputs):
        check_name_lengths([item])
        if not item.exists():
            raise ConfidenceSegError(f"input not found: {item}")
        if not item.is_file() and not item.is_dir():
            raise ConfidenceSegError(f"not a regular file (a pipe or a device): {item}")
        if item.is_file():
            if not item.name.lower().endswith(IMAGE_SUFFIXES):
                raise ConfidenceSegError(f"not an image file: {item} (expected one of {', '.join(IMAGE_SUFFIXES)})")
            found.append(item)
        elif is_dicom_folder(item):
            found.append(item)
        else:
            children = sorted(item.iterdir())
            found += [p for p in children if _is_image_file(p) and not p.name.lower().endswith(".dcm")
                      and not (channels > 1 and is_later_channel(p))]
            found += [p for p in children if is_dicom_folder(p)]
    if not found:
        raise ConfidenceSegError("no images found in " + ", ".join(map(str, inputs)))
    check_inputs(found)
    return found
