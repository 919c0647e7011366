"""DICOM SEG output: ``predict`` on a DICOM series also writes ``S.seg.dcm``, which pydicom and highdicom
read back with one segment per class, the badge in each segment's description, and pixels equal to
the ``.seg.nrrd`` result on every source instance."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from tiny_bundles import make_bundle

from ConfidenceSegLib.cli import main
from ConfidenceSegLib.contract import MAP_KINDS
from ConfidenceSegLib.io.images import read_image
from ConfidenceSegLib.io.segfile import read_segmentation
from ConfidenceSegLib.outputs.report import read_report

hd = pytest.importorskip("highdicom", reason="the [dicom] extra (highdicom, pydicom) is not installed")
pydicom = pytest.importorskip("pydicom", reason="the [dicom] extra is not installed")

CLASSES = ("organ", "lesion")


def write_dicom_series(folder: Path, slices: int = 3, rows: int = 24, columns: int = 28) -> Path:
    """A small CT-like series written with SimpleITK (GDCM), one file per slice."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    volume = sitk.GetImageFromArray((rng.random((slices, rows, columns)) * 400 - 200).astype(np.int16))
    volume.SetSpacing((0.7, 0.8, 2.5))
    volume.SetOrigin((-10.0, 5.0, 30.0))
    stamp = time.strftime("%Y%m%d"), time.strftime("%H%M%S")
    uid_root = "1.2.826.0.1.3680043.2.1125.9"
    shared = {"0008|0020": stamp[0], "0008|0030": stamp[1], "0008|0060": "CT", "0008|0016": "1.2.840.10008.5.1.4.1.1.2",
              "0010|0010": "Test^Phantom", "0010|0020": "PHANTOM1", "0020|000d": f"{uid_root}.1",
              "0020|000e": f"{uid_root}.2", "0020|0052": f"{uid_root}.3", "0020|0010": "1", "0020|0011": "1",
              "0020|0037": "1\\0\\0\\0\\1\\0", "0008|103e": "synthetic series", "0018|0050": "2.5"}
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for index in range(slices):
        image = volume[:, :, index]
        for tag, value in shared.items():
            image.SetMetaData(tag, value)
        image.SetMetaData("0008|0018", f"{uid_root}.4.{index + 1}")
        image.SetMetaData("0020|0013", str(index + 1))
        image.SetMetaData("0020|0032", "\\".join(f"{v:g}" for v in volume.TransformIndexToPhysicalPoint((0, 0, index))))
        writer.SetFileName(str(folder / f"slice{index:03d}.dcm"))
        writer.Execute(image)
    return folder


def test_predict_on_a_dicom_series_writes_a_matching_dicom_seg(tmp_path):
    make_bundle(tmp_path / "model", classes=CLASSES, input_size=(32, 32))
    series = write_dicom_series(tmp_path / "ct_series")
    out = tmp_path / "out"
    assert main(["predict", "--model", str(tmp_path / "model"), "--input", str(series), "--out", str(out),
                 "--samples", "3", "--maps", ",".join(MAP_KINDS)]) == 0
    report = read_report(out / "ct_series.json")
    seg_path = out / report.dicom_segmentation
    assert seg_path.name == "ct_series.seg.dcm"

    dataset = pydicom.dcmread(seg_path)
    assert dataset.Modality == "SEG" and dataset.SegmentationType == "BINARY"
    assert [item.SegmentLabel for item in dataset.SegmentSequence] == list(CLASSES)
    assert all(item.SegmentDescription.startswith("UNRATED") for item in dataset.SegmentSequence)  # no quality model
    assert "ConfidenceSeg" in dataset.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0].AlgorithmName

    sources = sorted((pydicom.dcmread(path) for path in series.iterdir()), key=lambda d: int(d.InstanceNumber))
    assert {item.ReferencedSOPInstanceUID for item in dataset.ReferencedSeriesSequence[0].ReferencedInstanceSequence} \
        == {source.SOPInstanceUID for source in sources}
    segmentation = hd.seg.Segmentation.from_dataset(dataset)
    pixels = segmentation.get_pixels_by_source_instance(
        source_sop_instance_uids=[source.SOPInstanceUID for source in sources],
        segment_numbers=list(range(1, len(CLASSES) + 1)), assert_missing_frames_are_empty=True)
    segments = {s.name: s.mask for s in read_segmentation(out / report.segmentation, read_image(series))}
    image = read_image(series)  # z order of the NRRD result = position along the normal
    order = np.argsort([image.TransformPhysicalPointToIndex(tuple(map(float, s.ImagePositionPatient)))[2]
                        for s in sources])
    for number, name in enumerate(CLASSES):
        expected = segments[name][order]
        np.testing.assert_array_equal(pixels[..., number].astype(bool), expected)
    assert any(segments[name].any() for name in CLASSES)  # the comparison is not between two empty masks
