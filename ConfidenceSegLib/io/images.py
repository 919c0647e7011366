"""Image reading and writing with SimpleITK, keeping origin, spacing and direction.

Arrays follow SimpleITK's order: ``(y, x)`` for 2D images, ``(z, y, x)`` for volumes and
multi-frame stacks (a stack is a 3D image whose slices are frames). Physical coordinates are
LPS, as in ITK and in Slicer's files.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..contract import NO_SPACING_SUFFIXES, ConfidenceSegError
from .safe_files import atomic_output

#: Relative tolerance for comparing two images' geometry.
GEOMETRY_TOLERANCE = 1e-4


def read_image(path: str | os.PathLike) -> sitk.Image:
    """Read a 2D image, a multi-frame stack, a 3D volume or a DICOM series folder.

    Formats without physical spacing (PNG, JPEG, TIFF, BMP) are read with 1-unit pixels: the DPI some
    of them carry is a print resolution, not the size of the anatomy. Raises
    :class:`ConfidenceSegError` naming the file when it is missing or unreadable.
    """
    path = Path(path)
    if not path.exists():
        raise ConfidenceSegError(f"file not found: {path}")
    if path.is_dir():
        return _read_dicom_series(path)
    if not path.is_file():
        raise ConfidenceSegError(f"{path} is not a regular file (a pipe or a device): give an image file")
    check_fits_in_memory(path)
    if path.name.lower().endswith(".gz"):
        check_gzip_complete(path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else "unknown reason"
        raise ConfidenceSegError(f"cannot read image {path}: corrupt or unsupported file ({reason})") from None
    if path.name.lower().endswith(NO_SPACING_SUFFIXES):
        image.SetSpacing((1.0,) * image.GetDimension())
    return image


def with_spacing(image: sitk.Image, spacing: tuple[float, ...], source: str | os.PathLike = "image") -> sitk.Image:
    """``image`` with the pixel size ``spacing`` (mm, x y [z]; z may be left out for a 2D image or a stack of
    frames, whose frames stay 1 apart)."""
    dimension = image.GetDimension()
    if len(spacing) not in (2, dimension) or len(spacing) > dimension:
        raise ConfidenceSegError(f"--spacing gives {len(spacing)} values; {source} is {dimension}D: give SX SY"
                                 + (" SZ" if dimension == 3 else ""))
    image.SetSpacing(tuple(spacing) + tuple(image.GetSpacing()[len(spacing):]))
    return image


def pixel_count(path: str | os.PathLike) -> int:
    """Pixels (all channels, frames and slices) of an image file, from its header alone; 0 when the
    header cannot tell (a DICOM folder, an unreadable file: reading it later gives the real error)."""
    path = Path(path)
    if not path.is_file():
        return 0
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return 0
    return int(np.prod(reader.GetSize())) * reader.GetNumberOfComponents()


#: Bytes per pixel reading an image may take at its peak (decompression and a float copy).
READ_BYTES_PER_PIXEL = 8


def check_fits_in_memory(path: Path) -> None:
    """Refuse, from the header alone, an image whose pixels would not fit in the memory available (a
    small compressed file can declare billions of pixels)."""
    pixels, available = pixel_count(path), available_memory()
    if available is not None and pixels * READ_BYTES_PER_PIXEL > available:
        raise ConfidenceSegError(f"{path} declares {pixels / 1e6:.0f} megapixels: reading it needs about "
                                 f"{pixels * READ_BYTES_PER_PIXEL / 2**30:.1f} GiB, {available / 2**30:.1f} GiB is "
                                 "available (crop or downsample it)")


def check_gzip_complete(path: Path) -> None:
    """Refuse a gzip file whose stream ends early (a copy cut short): ITK reads a truncated ``.nii.gz``
    without error, its missing voxels zero. Decompresses in 1 MiB steps, keeping nothing: about as long as
    reading the file (0.45 s for a 76 MB ``.nii.gz`` CT on this project's 2-core machine)."""
    stream = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        with path.open("rb") as file:
            while not stream.eof and (chunk := file.read(2**20)):
                stream.decompress(chunk, 2**24)
                while stream.unconsumed_tail and not stream.eof:
                    stream.decompress(stream.unconsumed_tail, 2**24)
    except zlib.error as error:
        raise ConfidenceSegError(f"cannot read image {path}: corrupt gzip data ({error})") from None
    if not stream.eof:
        raise ConfidenceSegError(f"cannot read image {path}: the file is truncated (its gzip stream ends early; "
                                 "copy it again)")


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``, else psutil), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def series_files(folder: Path) -> list[str]:
    """The files of the folder's one DICOM series, in the order SimpleITK stacks them (along the normal)."""
    series_ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    if not series_ids:
        raise ConfidenceSegError(f"no DICOM series found in folder {folder}")
    if len(series_ids) > 1:
        raise ConfidenceSegError(
            f"folder {folder} holds {len(series_ids)} DICOM series; point to a folder with exactly one")
    return list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_ids[0]))


#: Largest relative difference between slice distances of a DICOM series read as one volume.
SLICE_GAP_TOLERANCE = 0.1


def _read_dicom_series(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(series_files(folder))
    reader.MetaDataDictionaryArrayUpdateOn()
    warnings = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)  # ITK's multi-line warning on a gap: checked below
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise ConfidenceSegError(f"cannot read DICOM series in {folder}: {error}") from None
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(warnings)
    check_slice_distances(folder, [reader.GetMetaData(index, "0020|0032") if reader.HasMetaDataKey(index, "0020|0032")
                                   else None for index in range(image.GetDepth())], image)
    return image


def check_slice_distances(folder: Path, positions: list[str | None], image: sitk.Image) -> None:
    """Refuse a series whose slices (Image Position Patient, ``"x\\y\\z"`` each) are not evenly spaced along
    the normal: a missing slice would make every size and position after it wrong. Series without
    positions (ultrasound frames) are frames, not a volume, and pass."""
    if len(positions) < 3 or any(position is None for position in positions):
        return
    normal = np.reshape(image.GetDirection(), (3, 3))[:, 2]
    along = np.array([np.dot(normal, [float(value) for value in position.split("\\")]) for position in positions])
    gaps = np.abs(np.diff(along))
    typical = float(np.median(gaps))
    worst = int(np.argmax(np.abs(gaps - typical)))
    if typical <= 0 or abs(gaps[worst] - typical) > SLICE_GAP_TOLERANCE * typical:
        raise ConfidenceSegError(
            f"DICOM series in {folder} has missing or unevenly spaced slices ({gaps[worst]:.3g} mm between slices "
            f"{worst + 1} and {worst + 2}, {typical:.3g} mm elsewhere): read as one volume it would be distorted")


def as_scalar_image(image: sitk.Image, source: str = "image") -> sitk.Image:
    """Return a single-channel float32 image; RGB(A) colour images become luminance.

    Other channel counts are refused: a model takes one intensity channel.
    """
    channels = image.GetNumberOfComponentsPerPixel()
    if channels in (3, 4):
        rgb = sitk.GetArrayFromImage(image)[..., :3].astype(np.float32)
        gray = sitk.GetImageFromArray(rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32))
        gray.CopyInformation(image)
        image = gray
    elif channels != 1:
        raise ConfidenceSegError(
            f"{source} has {channels} channels per pixel; expected 1 (grayscale) or 3/4 (RGB/RGBA)")
    return sitk.Cast(image, sitk.sitkFloat32)


def display_image(image: sitk.Image) -> sitk.Image:
    """The single channel to show (float32): RGB(A) colour (8-bit) as luminance, channel 0 of any other
    multi-channel input (e.g. nnU-Net's composed channel files), a scalar image as it is."""
    channels = image.GetNumberOfComponentsPerPixel()
    if channels > 1 and not (channels in (3, 4) and image.GetPixelID() in (sitk.sitkVectorUInt8, sitk.sitkVectorInt8)):
        image = sitk.VectorIndexSelectionCast(image, 0)
    return as_scalar_image(image)


def image_from_array(array: np.ndarray, reference: sitk.Image) -> sitk.Image:
    """Wrap ``array`` ((H, W) or (Z, Y, X), SimpleITK order, ``reference``'s size) in an image with
    ``reference``'s geometry."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    if image.GetSize() != reference.GetSize():
        raise ConfidenceSegError(
            f"array of size {image.GetSize()} does not match the reference image size {reference.GetSize()}")
    image.CopyInformation(reference)
    return image


def same_geometry(a: sitk.Image, b: sitk.Image) -> bool:
    """True when two images share size, origin, spacing and direction (within a small tolerance)."""
    if a.GetDimension() != b.GetDimension() or a.GetSize() != b.GetSize():
        return False
    scale = max(1.0, *np.abs(a.GetSpacing()))
    return all(np.allclose(x, y, rtol=GEOMETRY_TOLERANCE, atol=GEOMETRY_TOLERANCE * scale) for x, y in (
        (a.GetOrigin(), b.GetOrigin()), (a.GetSpacing(), b.GetSpacing()), (a.GetDirection(), b.GetDirection())))


def describe_geometry(image: sitk.Image) -> str:
    """A short human-readable geometry summary for error messages."""
    fmt = lambda values: "(" + ", ".join(f"{v:g}" for v in values) + ")"  # noqa: E731
    return f"size {image.GetSize()}, spacing {fmt(image.GetSpacing())}, origin {fmt(image.GetOrigin())}"


def check_same_geometry(reference: sitk.Image, other: sitk.Image, reference_name: str, other_name: str) -> None:
    """Raise a clear geometry-mismatch error when ``other`` is not on ``reference``'s grid."""
    if not same_geometry(reference, other):
        raise ConfidenceSegError(
            f"geometry mismatch: {other_name} has {describe_geometry(other)} "
            f"but {reference_name} has {describe_geometry(reference)}")


def write_image(image: sitk.Image, path: str | os.PathLike, overwrite: bool = False,
                compression_level: int = -1) -> None:
    """Write an image atomically (compressed where the format allows, at ``compression_level``: 1 is
    fastest, -1 the format's default); never clobbers silently."""
    with atomic_output(path, overwrite) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True, compressionLevel=compression_level)


def ijk_to_lps(image: sitk.Image) -> np.ndarray:
    """4x4 matrix from voxel index (i, j, k) to LPS; a 2D image is a single slice at k = 0."""
    dimension = image.GetDimension()
    direction = np.eye(3)
    direction[:dimension, :dimension] = np.reshape(image.GetDirection(), (dimension, dimension))
    spacing = np.ones(3)
    spacing[:dimension] = image.GetSpacing()
    origin = np.zeros(3)
    origin[:dimension] = image.GetOrigin()
    matrix = np.eye(4)
    matrix[:3, :3] = direction * spacing
    matrix[:3, 3] = origin
    return matrix


def spatial_size_3d(image: sitk.Image) -> tuple[int, int, int]:
    """(i, j, k) voxel counts, with k = 1 for a 2D image."""
    size = tuple(image.GetSize())
    return size + (1,) * (3 - len(size))
