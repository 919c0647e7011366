"""`confidenceseg confidence`: clear one-line errors, exit code != 0, and no file written on bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from ConfidenceSegLib.cli import main


def _mask(path, array, spacing=(1.0, 1.0)):
    image = sitk.GetImageFromArray(np.asarray(array, np.uint8))
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path), True)
    return str(path)


@pytest.fixture
def raters(tmp_path):
    rng = np.random.default_rng(2)
    return [_mask(tmp_path / f"r{i}.nrrd", rng.random((10, 12)) > 0.5) for i in range(3)]


def _run(args, capsys):
    code = main(args)
    return code, capsys.readouterr().err


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_raters_to_layers_and_map_succeeds(tmp_path, raters, capsys):
    out = tmp_path / "c.seg.nrrd"
    assert main(["confidence", "--raters", *raters, "--class", "oocyte", "--out", str(out)]) == 0
    assert main(["confidence", "--seg", str(out), "--class", "oocyte", "--map-out", str(tmp_path / "m.nrrd")]) == 0
    confidence = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "m.nrrd")))
    expected = np.mean([sitk.GetArrayFromImage(sitk.ReadImage(r)) > 0 for r in raters], axis=0)
    np.testing.assert_allclose(confidence, expected, atol=1e-7)


def test_missing_rater_file(tmp_path, raters, capsys):
    before = _files(tmp_path)
    code, err = _run(["confidence", "--raters", raters[0], str(tmp_path / "nope.nrrd"), "--class", "a",
                      "--out", str(tmp_path / "o.seg.nrrd")], capsys)
    assert code != 0 and "file not found" in err and "nope.nrrd" in err
    assert err.count("\n") == 1 and _files(tmp_path) == before


def test_masks_of_different_geometry(tmp_path, raters, capsys):
    odd = _mask(tmp_path / "odd.nrrd", np.zeros((10, 12)), spacing=(0.5, 1.0))
    before = _files(tmp_path)
    code, err = _run(["confidence", "--raters", raters[0], odd, "--class", "a", "--out", str(tmp_path / "o.seg.nrrd")],
                     capsys)
    assert code != 0 and "geometry mismatch" in err and "odd.nrrd" in err
    assert _files(tmp_path) == before


def test_non_binary_mask(tmp_path, raters, capsys):
    labels = _mask(tmp_path / "labels.nrrd", np.arange(120).reshape(10, 12) % 3)
    before = _files(tmp_path)
    code, err = _run(["confidence", "--raters", raters[0], labels, "--class", "a", "--out",
                      str(tmp_path / "o.seg.nrrd")], capsys)
    assert code != 0 and "not a binary mask" in err and "labels.nrrd" in err
    assert _files(tmp_path) == before


def test_unknown_class(tmp_path, raters, capsys):
    seg = tmp_path / "c.seg.nrrd"
    main(["confidence", "--raters", *raters, "--class", "oocyte", "--out", str(seg)])
    before = _files(tmp_path)
    code, err = _run(["confidence", "--seg", str(seg), "--class", "liver", "--map-out", str(tmp_path / "m.nrrd")],
                     capsys)
    assert code != 0 and "unknown class 'liver'" in err and "oocyte" in err
    assert _files(tmp_path) == before


def test_unreadable_files(tmp_path, raters, capsys):
    broken = tmp_path / "broken.nrrd"
    broken.write_bytes(b"\x89garbage")
    broken_seg = tmp_path / "broken.seg.nrrd"
    broken_seg.write_text("NRRD0004\ngarbage")
    before = _files(tmp_path)
    code, err = _run(["confidence", "--raters", raters[0], str(broken), "--class", "a",
                      "--out", str(tmp_path / "o.seg.nrrd")], capsys)
    assert code != 0 and "cannot read image" in err and "broken.nrrd" in err
    code, err = _run(["confidence", "--seg", str(broken_seg), "--class", "a", "--map-out", str(tmp_path / "m.nrrd")],
                     capsys)
    assert code != 0 and "broken.seg.nrrd" in err
    assert _files(tmp_path) == before


def test_existing_output_is_kept_unless_overwrite(tmp_path, raters, capsys):
    out = tmp_path / "c.seg.nrrd"
    out.write_text("the user's own file")
    code, err = _run(["confidence", "--raters", *raters, "--class", "a", "--out", str(out)], capsys)
    assert code != 0 and "output exists" in err and "--overwrite" in err
    assert out.read_text(encoding="utf-8") == "the user's own file"
    assert main(["confidence", "--raters", *raters, "--class", "a", "--out", str(out), "--overwrite"]) == 0
    assert out.read_bytes().startswith(b"NRRD")


def test_console_script_reports_one_line_and_exit_code(tmp_path):
    result = subprocess.run([sys.executable, "-m", "ConfidenceSegLib", "confidence", "--seg",
                             str(tmp_path / "absent.seg.nrrd"), "--class", "a", "--map-out", str(tmp_path / "m.nrrd")],
                            capture_output=True, encoding="utf-8", timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("confidenceseg: error: file not found")
    assert "Traceback" not in result.stderr
