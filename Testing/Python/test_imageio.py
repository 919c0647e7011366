"""Image IO keeps geometry across formats; bad files give clear errors; writes never clobber."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from ConfidenceSegLib.contract import ConfidenceSegError
from ConfidenceSegLib.io.images import (
    as_scalar_image,
    check_same_geometry,
    ijk_to_lps,
    image_from_array,
    read_image,
    same_geometry,
    write_image,
)


def _volume(size=(7, 6, 5), dtype=np.int16) -> sitk.Image:
    rng = np.random.default_rng(0)
    image = sitk.GetImageFromArray(rng.integers(0, 1000, size[::-1]).astype(dtype))
    image.SetSpacing((0.7, 0.8, 2.5))
    image.SetOrigin((-10.0, 20.5, 3.0))
    angle = np.deg2rad(20)
    image.SetDirection((np.cos(angle), -np.sin(angle), 0, np.sin(angle), np.cos(angle), 0, 0, 0, 1))
    return image


@pytest.mark.parametrize("suffix", [".nrrd", ".nii.gz", ".mha"])
def test_volume_round_trip_keeps_voxels_and_geometry(tmp_path, suffix):
    image = _volume()
    path = tmp_path / f"volume{suffix}"
    write_image(image, path)
    back = read_image(path)
    assert same_geometry(image, back)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(image))


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_2d_photo_formats_read_as_2d(tmp_path, suffix):
    array = (np.arange(40 * 30).reshape(30, 40) % 251).astype(np.uint8)
    path = tmp_path / f"frame{suffix}"
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
    image = read_image(path)
    assert image.GetDimension() == 2 and image.GetSize() == (40, 30)
    if suffix == ".png":  # lossless
        np.testing.assert_array_equal(sitk.GetArrayFromImage(image), array)


def test_dicom_series_folder_is_read_as_one_volume(tmp_path):
    volume = sitk.Cast(_volume(size=(8, 9, 4)), sitk.sitkInt16)
    volume.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, 1))
    folder = tmp_path / "series"
    folder.mkdir()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for index in range(volume.GetDepth()):
        slice_image = volume[:, :, index]
        position = volume.TransformIndexToPhysicalPoint((0, 0, index))
        for tag, value in {"0020|0032": "\\".join(map(str, position)), "0020|0013": str(index + 1),
                           "0020|0037": "1\\0\\0\\0\\1\\0", "0020|000e": "1.2.826.0.1.3680043.2.1125.1",
                           "0028|0030": "0.7\\0.8", "0018|0050": "2.5", "0008|0060": "CT"}.items():
            slice_image.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice{index:03d}.dcm"))
        writer.Execute(slice_image)
    back = read_image(folder)
    assert back.GetSize() == volume.GetSize()
    np.testing.assert_allclose(back.GetSpacing(), volume.GetSpacing(), atol=1e-3)
    np.testing.assert_allclose(back.GetOrigin(), volume.GetOrigin(), atol=1e-3)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(volume))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfidenceSegError, match="file not found: .*absent.nrrd"):
        read_image(tmp_path / "absent.nrrd")


def test_corrupt_file_is_named(tmp_path):
    path = tmp_path / "broken.nrrd"
    path.write_bytes(b"NRRD0004\ntype: nonsense\n\n\x00\x01")
    with pytest.raises(ConfidenceSegError, match="cannot read image .*broken.nrrd"):
        read_image(path)


def test_empty_folder_is_not_a_dicom_series(tmp_path):
    with pytest.raises(ConfidenceSegError, match="no DICOM series"):
        read_image(tmp_path)


def test_write_refuses_to_clobber_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "out.nrrd"
    first, second = _volume(), sitk.Cast(_volume() * 0, sitk.sitkInt16)
    write_image(first, path)
    with pytest.raises(ConfidenceSegError, match="output exists"):
        write_image(second, path)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_image(path)), sitk.GetArrayFromImage(first))
    write_image(second, path, overwrite=True)
    assert sitk.GetArrayFromImage(read_image(path)).max() == 0
    assert [p.name for p in tmp_path.iterdir()] == ["out.nrrd"]  # no temporary files left


def test_geometry_mismatch_message_names_both_images():
    a = _volume()
    b = _volume()
    b.SetSpacing((0.7, 0.8, 3.0))
    assert not same_geometry(a, b)
    with pytest.raises(ConfidenceSegError, match="geometry mismatch: mask .*spacing.*image"):
        check_same_geometry(a, b, "image", "mask")


def test_image_from_array_copies_geometry_and_checks_size():
    reference = _volume()
    array = np.zeros(sitk.GetArrayFromImage(reference).shape, dtype=np.float32)
    assert same_geometry(image_from_array(array, reference), reference)
    with pytest.raises(ConfidenceSegError, match="does not match"):
        image_from_array(array[:-1], reference)


def test_ijk_to_lps_maps_indices_like_simpleitk():
    image = _volume()
    matrix = ijk_to_lps(image)
    for index in [(0, 0, 0), (3, 2, 1), (6, 5, 4)]:
        expected = image.TransformIndexToPhysicalPoint(index)
        np.testing.assert_allclose(matrix @ np.array([*index, 1.0]), [*expected, 1.0], atol=1e-9)


def test_rgb_becomes_luminance_and_other_channel_counts_are_refused():
    rgb = sitk.GetImageFromArray(np.dstack([np.full((4, 5), v, np.uint8) for v in (100, 100, 100)]), isVector=True)
    gray = as_scalar_image(rgb)
    assert gray.GetNumberOfComponentsPerPixel() == 1
    np.testing.assert_allclose(sitk.GetArrayFromImage(gray), 100.0, rtol=1e-5)
    two = sitk.GetImageFromArray(np.zeros((4, 5, 2), np.uint8), isVector=True)
    with pytest.raises(ConfidenceSegError, match="2 channels"):
        as_scalar_image(two)


def test_outputs_get_the_usual_permissions_not_private_temp_ones(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        write_image(_volume(), tmp_path / "shared.nrrd")
    finally:
        os.umask(mask)
    assert (tmp_path / "shared.nrrd").stat().st_mode & 0o777 == 0o644
