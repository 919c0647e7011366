"""Multi-channel inputs as nnU-Net lays them out (``CASE_0000``, ``CASE_0001``, ... one file per channel):
channel 0's file brings its siblings as one vector image; missing or misaligned siblings are refused in one
line; a folder lists each case once for a multi-channel model."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from ConfidenceSegLib.contract import ConfidenceSegError
from ConfidenceSegLib.io.inputs import InputFacts, collect_inputs


def write(path, array, spacing=(0.5, 0.5)):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path), True)


@pytest.fixture
def cases(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {name: rng.integers(0, 255, (12, 9)).astype(np.uint8) for name in ("a_0000", "a_0001", "b_0000")}
    for name, array in arrays.items():
        write(tmp_path / f"{name}.nrrd", array)
    return tmp_path, arrays


def test_channel_zero_brings_its_siblings_as_one_vector_image(cases):
    folder, arrays = cases
    image = InputFacts.of(folder / "a_0000.nrrd", channels=2).read()
    assert image.GetNumberOfComponentsPerPixel() == 2 and image.GetSpacing() == (0.5, 0.5)
    composed = sitk.GetArrayFromImage(image)
    np.testing.assert_array_equal(composed[..., 0], arrays["a_0000"])
    np.testing.assert_array_equal(composed[..., 1], arrays["a_0001"])
    assert InputFacts.of(folder / "a_0000.nrrd").read().GetNumberOfComponentsPerPixel() == 1  # one-channel model


def test_a_missing_or_misaligned_sibling_is_refused(cases):
    folder, arrays = cases
    with pytest.raises(ConfidenceSegError, match="b_0001.nrrd not found"):
        InputFacts.of(folder / "b_0000.nrrd", channels=2)
    write(folder / "a_0001.nrrd", arrays["a_0001"], spacing=(0.6, 0.5))
    with pytest.raises(ConfidenceSegError, match="geometry mismatch: channel file .*a_0001.nrrd"):
        InputFacts.of(folder / "a_0000.nrrd", channels=2).read()


def test_a_folder_lists_each_case_once_for_a_multi_channel_model(cases):
    folder, _ = cases
    write(folder / "b_0001.nrrd", np.zeros((12, 9), np.uint8))
    assert [path.name for path in collect_inputs([folder], channels=2)] == ["a_0000.nrrd", "b_0000.nrrd"]
    assert len(collect_inputs([folder])) == 4  # a one-channel model: every file is an image
