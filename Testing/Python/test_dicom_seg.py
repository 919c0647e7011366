"""DICOM SEG output: ``predict`` on a DICOM series also writes ``S.seg.dcm``, which pydicom and highdicom
read back with one segment per class, the badge in each segment's description, and pixels equal to
the ``.seg.nrrd`` result on every source instance. The SEG is optional: a series highdicom cannot make
one for (several ultrasound frames without a Frame of Reference), or an install without highdicom,
still gets every other output, one warning line and the reason in ``S.json``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dicom_series import write_dicom_series
from tiny_bundles import make_bundle

from ConfidenceSegLib.cli import main
from ConfidenceSegLib.contract import MAP_KINDS
from ConfidenceSegLib.io.images import read_image
from ConfidenceSegLib.io.segfile import read_segmentation
from ConfidenceSegLib.outputs.report import read_report

CLASSES = ("organ", "lesion")
def dicom_extra():
    """highdicom and pydicom, or a skip naming the missing extra."""
    reason = "the [dicom] extra (highdicom, pydicom) is not installed"
    return pytest.importorskip("highdicom", reason=reason), pytest.importorskip("pydicom", reason=reason)



def test_predict_on_a_dicom_series_writes_a_matching_dicom_seg(tmp_path):
    hd, pydicom = dicom_extra()
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


def predict_series(tmp_path: Path, series: Path, environment: dict | None = None) -> tuple[Path, list[str]]:
    """``confidenceseg predict`` on ``series`` in a fresh process: the output folder and its stderr lines."""
    make_bundle(tmp_path / "model", classes=("organ",), input_size=(16, 16))
    out = tmp_path / "out"
    process = subprocess.run([sys.executable, "-c", "import sys; from ConfidenceSegLib.cli import main; "
                              "sys.exit(main(sys.argv[1:]))", "predict", "--model", str(tmp_path / "model"),
                              "--input", str(series), "--out", str(out), "--samples", "2"],
                             capture_output=True, encoding="utf-8", env=dict(os.environ, **(environment or {})))
    assert process.returncode == 0, process.stderr
    return out, [line for line in process.stderr.splitlines() if line.strip() and "%|" not in line]


def assert_main_outputs(out: Path, stem: str) -> None:
    assert {path.name for path in out.iterdir()} == {f"{stem}.seg.nrrd", f"{stem}.json", f"{stem}_organ_entropy.nrrd"}
    assert read_segmentation(out / f"{stem}.seg.nrrd", read_image(out.parent / stem))[0].mask.shape == (3, 24, 28)


def test_ultrasound_frames_without_a_frame_of_reference_keep_every_other_output(tmp_path):
    dicom_extra()
    series = write_dicom_series(tmp_path / "us_cine", modality="US", frame_of_reference=False)
    out, lines = predict_series(tmp_path, series)
    assert_main_outputs(out, "us_cine")
    skipped = read_report(out / "us_cine.json").dicom_segmentation_skipped
    assert "3 frames and no Frame of Reference UID" in skipped
    assert lines == [f"confidenceseg: warning: us_cine: no DICOM SEG written: {skipped}"]


def test_a_single_ultrasound_frame_without_a_frame_of_reference_gets_its_seg(tmp_path):
    _, pydicom = dicom_extra()
    series = write_dicom_series(tmp_path / "us_still", slices=1, modality="US", frame_of_reference=False)
    out, lines = predict_series(tmp_path, series)
    assert lines == [] and pydicom.dcmread(out / "us_still.seg.dcm").Modality == "SEG"


#: Python started with highdicom unimportable, as on an install without the [dicom] extra.
WITHOUT_HIGHDICOM = "import sys; sys.modules['highdicom'] = None"


def test_without_the_dicom_extra_a_series_is_predicted_and_the_seg_skipped(tmp_path):
    series = write_dicom_series(tmp_path / "ct")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(WITHOUT_HIGHDICOM + "\n")
    path = os.pathsep.join(filter(None, [str(tmp_path / "site"), os.environ.get("PYTHONPATH")]))
    out, lines = predict_series(tmp_path, series, {"PYTHONPATH": path})
    assert_main_outputs(out, "ct")
    assert lines == ["confidenceseg: warning: ct: no DICOM SEG written: the DICOM SEG needs the [dicom] extra "
                     "(pip install 'confidenceseg[dicom]')"]
