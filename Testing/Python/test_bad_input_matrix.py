"""Every bad input to every command: exit code 2, one line naming the problem, nothing written or changed.

Each case builds its hostile input in a fresh folder, runs the command in-process (an exception
other than the project's own error would fail the test, as it would print a traceback), and
compares every file and folder under the test's folder before and after. Cases marked
``issue18-N`` reproduce the N-th failure found in issue 18; they failed before the fixes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from dicom_series import write_dicom_series
from tiny_bundles import make_bundle, random_image

from ConfidenceSegLib.cli import main
from ConfidenceSegLib.contract import CLASS_TAG, CONFIDENCE_TAG
from ConfidenceSegLib.io.segfile import write_segmentation
from ConfidenceSegLib.io.segments import Segment


def write_image(array: np.ndarray, path: Path, spacing=None) -> str:
    image = sitk.GetImageFromArray(array)
    if spacing:
        image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path), useCompression=True)
    return str(path)


def good_image(folder: Path, name: str = "scan.nrrd") -> str:
    sitk.WriteImage(random_image((24, 28)), str(folder / name))
    return str(folder / name)


def bundle(folder: Path, **changes) -> str:
    """A valid tiny bundle, with ``changes`` merged into its config.json (top-level or architecture)."""
    path = folder / "model"
    make_bundle(path, classes=("organ",), input_size=(16, 16))
    config = json.loads((path / "config.json").read_text())
    for key, value in changes.items():
        target = config["architecture"] if key in config["architecture"] else config
        target[key] = value
    (path / "config.json").write_text(json.dumps(config))
    return str(path)


def dataset(folder: Path, cases=None, classes=("organ",), **meta) -> str:
    """A 3-subject dataset of 24x24 frames with one binary label per case; ``cases`` replaces entries."""
    root = folder / "data"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    entries = []
    for number in range(3):
        write_image((np.random.default_rng(number).random((24, 24)) * 200).astype(np.uint8),
                    root / "images" / f"c{number}.nrrd")
        label = np.zeros((24, 24), np.uint8)
        label[6:18, 5:15] = 1
        write_image(label, root / "labels" / f"c{number}.nrrd")
        entries.append({"id": f"c{number}", "subject": f"s{number}", "image": f"images/c{number}.nrrd",
                        "labels": {"organ": f"labels/c{number}.nrrd"}})
    for number, entry in (cases or {}).items():
        entries[number] = dict(entries[number], **entry)
    (root / "dataset.json").write_text(json.dumps({"name": "tiny", "classes": list(classes), "cases": entries, **meta}))
    return str(root)


def layered_segmentation(folder: Path, header_edit=None) -> str:
    """A valid two-level .seg.nrrd, its text header changed by ``header_edit(lines) -> lines``."""
    path = folder / "layers.seg.nrrd"
    mask = np.zeros((10, 12), bool)
    mask[2:6, 3:8] = True
    segments = [Segment("organ @ 100%", mask, tags={CLASS_TAG: "organ", CONFIDENCE_TAG: "1.0"}),
                Segment("organ @ 50%", np.roll(mask, 2, 0), tags={CLASS_TAG: "organ", CONFIDENCE_TAG: "0.5"})]
    write_segmentation(path, segments, sitk.Image(12, 10, sitk.sitkUInt8))
    if header_edit:
        header, _, body = path.read_bytes().partition(b"\n\n")
        path.write_bytes("\n".join(header_edit(header.decode().split("\n"))).encode() + b"\n\n" + body)
    return str(path)


def replace_field(field: str, value: str):
    return lambda lines: [f"{field}:={value}" if line.startswith(f"{field}:=") else line for line in lines]


def unwritable_folder(folder: Path) -> str:
    """A folder nobody can write into: a read-only folder, or under /proc where even root cannot write."""
    if os.geteuid() == 0:
        return "/proc/confidenceseg-out"
    locked = folder / "locked"
    locked.mkdir(mode=0o555)
    return str(locked / "out")


def predict(model, image, folder: Path, *extra) -> list[str]:
    return ["predict", "--model", model, "--input", image, "--out", str(folder / "out"), *extra]


def mask_file(folder: Path, name: str, array) -> str:
    return write_image(np.asarray(array, np.uint8), folder / name)


def then(action, argv):
    """``argv`` after running ``action()`` (to damage an input that ``argv``'s helpers just made)."""
    action()
    return argv


def non_binary_labels(d: Path) -> list[str]:
    root = Path(dataset(d))
    label = np.zeros((24, 24), np.uint8)
    label[4:12, 4:12], label[14:20, 14:20] = 3, 5
    write_image(label, root / "labels" / "c1.nrrd")
    return ["train", "--dataset", str(root), "--out", str(d / "m"), "--epochs", "1", "--members", "1"]


def config_text(d: Path, text: str) -> list[str]:
    model = bundle(d)
    (Path(model) / "config.json").write_text(text)
    return predict(model, good_image(d), d)


def pickle_weights(d: Path) -> list[str]:
    model = bundle(d)
    torch.save({"weight": torch.zeros(1)}, Path(model) / "member_0.safetensors")
    return predict(model, good_image(d), d)


def input_bytes(d: Path, name: str, data: bytes) -> list[str]:
    model = bundle(d)
    (d / name).write_bytes(data)
    return predict(model, str(d / name), d)


def existing_output(d: Path) -> list[str]:
    argv = predict(bundle(d), good_image(d), d)
    (d / "out").mkdir()
    (d / "out" / "scan.json").write_text("the user's own file")
    return argv


def five_channels(d: Path) -> list[str]:
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((8, 8, 5), np.float32), isVector=True), str(d / "c5.nrrd"))
    return predict(bundle(d), str(d / "c5.nrrd"), d)


def four_d(d: Path) -> list[str]:
    volume = sitk.Image([8, 8, 3], sitk.sitkFloat32) + 1.0
    sitk.WriteImage(sitk.JoinSeries([volume, volume * 2]), str(d / "4d.nii.gz"))
    return predict(bundle(d), str(d / "4d.nii.gz"), d)


def made(path: Path, folder: bool = False) -> str:
    """``path``, created as an empty file (or folder)."""
    path.mkdir() if folder else path.touch()
    return str(path)


def foreign_folder(folder: Path) -> str:
    """A folder holding the user's own file, not a ConfidenceSeg bundle."""
    path = folder / "mine"
    path.mkdir()
    (path / "thesis.docx").write_text("years of work")
    return str(path)


def truncated_nifti(d: Path) -> list[str]:
    """A .nii.gz cut short, as a failed copy leaves it: ITK would read it, its missing voxels zero."""
    whole = d / "whole.nii.gz"
    sitk.WriteImage(random_image((24, 28)), str(whole))
    (d / "cut.nii.gz").write_bytes(whole.read_bytes()[:-100])
    whole.unlink()
    return predict(bundle(d), str(d / "cut.nii.gz"), d)


def dicom_missing_slice(d: Path) -> list[str]:
    """A CT series with its middle slice missing: read as one volume, everything after it would shift."""
    series = write_dicom_series(d / "ct", slices=5)
    sorted(series.iterdir())[2].unlink()
    return predict(bundle(d), str(series), d)


def named_pipe(d: Path) -> list[str]:
    os.mkfifo(d / "pipe.nrrd")
    return predict(bundle(d), str(d / "pipe.nrrd"), d)


def huge_header(d: Path) -> list[str]:
    """An NRRD header declaring an image far larger than any memory, with a few bytes of data."""
    (d / "huge.nrrd").write_bytes(b"NRRD0004\ntype: float\ndimension: 3\nsizes: 100000 100000 1000\n"
                                  b"encoding: raw\nendian: little\n\n" + bytes(64))
    return predict(bundle(d), str(d / "huge.nrrd"), d)


def nan_weights(d: Path) -> list[str]:
    from safetensors.torch import load_file, save_file
    model = Path(bundle(d))
    weights = load_file(model / "member_0.safetensors")
    save_file({name: torch.full_like(tensor, float("nan")) for name, tensor in weights.items()},
              model / "member_0.safetensors")
    return predict(str(model), good_image(d), d)


def output_onto_input(d: Path) -> list[str]:
    """A second input image that sits where predict would write the first input's entropy map."""
    (d / "out").mkdir()
    return ["predict", "--model", bundle(d), "--input", good_image(d), good_image(d / "out", "scan_organ_entropy.nrrd"),
            "--out", str(d / "out"), "--overwrite"]


CASES = {
    # --- predict: the model bundle
    "predict-model-missing": (lambda d: predict(str(d / "nowhere"), good_image(d), d), "model not found"),
    "predict-config-missing": (lambda d: predict(made(d / "m", folder=True), good_image(d), d),
                               "config.json is missing"),
    "predict-config-corrupt": (lambda d: config_text(d, "{oops"), "corrupt bundle config"),
    "predict-config-not-object": (lambda d: config_text(d, "[1, 2]"), "not a JSON object"),
    "issue18-4-predict-format-version-string": (lambda d: predict(bundle(d, format_version="1"), good_image(d), d),
                                        "format_version must be an integer, got '1'"),
    "predict-format-version-newer": (lambda d: predict(bundle(d, format_version=99), good_image(d), d),
                                     "newer than this ConfidenceSeg supports"),
    "issue18-3-predict-ten-million-channels": (lambda d: predict(bundle(d, channels=[10_000_000, 8]), good_image(d), d),
                                       "channels must be an integer in 1..1024"),
    "issue18-7-predict-member-path-traversal": (lambda d: predict(bundle(d, members=["../../../../etc/passwd"]),
                                                          good_image(d), d), "not a plain .safetensors file name"),
    "predict-member-missing": (lambda d: predict(bundle(d, members=["member_7.safetensors"]), good_image(d), d),
                               "weight file member_7.safetensors is missing"),
    "predict-pickle-weights": (pickle_weights, "cannot read weights"),
    "predict-unknown-architecture": (lambda d: predict(bundle(d, name="ResNet"), good_image(d), d),
                                     "unknown architecture 'ResNet'"),
    "predict-class-name-path": (lambda d: predict(bundle(d, classes=["../escape"]), good_image(d), d),
                                "class names must be"),
    "predict-dropout-out-of-range": (lambda d: predict(bundle(d, dropout=1.5), good_image(d), d), "dropout must be"),
    # --- predict: the input image
    "predict-input-missing": (lambda d: predict(bundle(d), str(d / "absent.nrrd"), d), "file not found"),
    "predict-input-empty-file": (lambda d: input_bytes(d, "e.nrrd", b""), "cannot read image"),
    "predict-input-truncated": (lambda d: input_bytes(d, "t.nrrd", Path(good_image(d)).read_bytes()[:300]),
                                "cannot read image"),
    "predict-input-not-an-image": (lambda d: input_bytes(d, "x.png", b"hello"), "cannot read image"),
    "predict-input-nan": (lambda d: predict(bundle(d), write_image(np.full((20, 20), np.nan, np.float32),
                                                                   d / "nan.nrrd"), d), "NaN or infinite"),
    "predict-input-4d": (four_d, "4D"),
    "predict-input-5-channels": (five_channels, "5 channels"),
    "predict-3d-model-on-2d": (lambda d: predict(str(make_bundle(d / "vol", spatial_dims=3).path), good_image(d), d),
                               "3D model"),
    # --- predict: outputs and options
    "predict-out-is-a-file": (lambda d: ["predict", "--model", bundle(d), "--input", good_image(d), "--out",
                                         made(d / "f")], "is a file, not a folder"),
    "issue18-1-predict-out-not-writable": (lambda d: ["predict", "--model", bundle(d), "--input", good_image(d),
                                                      "--out", unwritable_folder(d)], "cannot"),
    "predict-output-exists": (existing_output, "output exists"),
    "predict-duplicate-stems": (lambda d: ["predict", "--model", bundle(d), "--input", good_image(d),
                                           good_image(d, "scan.nii.gz"), "--out", str(d / "out")], "same outputs"),
    "predict-ensemble-one-member": (lambda d: predict(bundle(d), good_image(d), d, "--method", "ensemble"),
                                    "needs a bundle with several members"),
    "predict-zero-samples": (lambda d: predict(bundle(d), good_image(d), d, "--samples", "0"), "at least 1"),
    "predict-cuda-absent": (lambda d: predict(bundle(d), good_image(d), d, "--device", "cuda"), "no CUDA GPU"),
    # --- review and quickstart
    "review-no-images": (lambda d: ["review", "--model", bundle(d), "--inputs", made(d / "empty", folder=True),
                                    "--out", str(d / "out")], "no images found"),
    "review-input-missing": (lambda d: ["review", "--model", bundle(d), "--inputs", str(d / "nowhere"), "--out",
                                        str(d / "out")], "input not found"),
    "review-out-is-a-file": (lambda d: ["review", "--model", bundle(d), "--inputs", good_image(d), "--out",
                                        made(d / "f")], "is a file, not a folder"),
    "quickstart-image-missing": (lambda d: ["quickstart", "--image", str(d / "nope.nrrd"), "--out", str(d / "out")],
                                 "file not found"),
    "quickstart-model-missing": (lambda d: ["quickstart", "--model", str(d / "nope"), "--out", str(d / "out")],
                                 "model not found"),
    # --- train, evaluate, calibrate: datasets
    "train-no-dataset-json": (lambda d: ["train", "--dataset", str(d), "--out", str(d / "m")], "not a dataset folder"),
    "train-dataset-path-traversal": (lambda d: ["train", "--dataset", dataset(d, {0: {"image": "../../../etc/passwd"}}),
                                                "--out", str(d / "m"), "--epochs", "1"], "leads outside the dataset"),
    "issue18-5-train-non-binary-labels": (non_binary_labels, "not a binary mask"),
    "train-one-subject": (lambda d: ["train", "--dataset", dataset(d, {1: {"subject": "s0"}, 2: {"subject": "s0"}}),
                                     "--out", str(d / "m"), "--epochs", "1"], "at least 3 subjects"),
    "train-out-exists": (lambda d: ["train", "--dataset", dataset(d), "--out", made(d / "m", folder=True),
                                    "--epochs", "1"], "output exists"),
    "issue18-6-evaluate-undeclared-class": (lambda d: ["evaluate", "--model", bundle(d), "--dataset", dataset(
        d, {0: {"labels": {"organ": "labels/c0.nrrd", "tumour": "labels/c1.nrrd"}}}), "--out", str(d / "out")],
        "does not declare"),
    "evaluate-dataset-corrupt": (lambda d: then(lambda: (d / "dataset.json").write_text("{"), [
        "evaluate", "--model", bundle(d), "--dataset", str(d), "--out", str(d / "out")]), "corrupt dataset.json"),
    "evaluate-no-common-class": (lambda d: ["evaluate", "--model", bundle(d), "--dataset", dataset(
        d, classes=("liver",), cases={n: {"labels": {"liver": f"labels/c{n}.nrrd"}} for n in range(3)}),
        "--out", str(d / "out")], "nothing in common"),
    "calibrate-rater-path-traversal": (lambda d: ["calibrate", "--model", bundle(d), "--dataset", dataset(
        d, {2: {"labels": None, "raters": ["/etc/passwd"]}})], "leads outside the dataset"),
    "calibrate-alpha-out-of-range": (lambda d: ["calibrate", "--model", bundle(d), "--dataset", dataset(d),
                                                "--alpha", "2"], "--alpha must lie strictly between 0 and 1"),
    # --- confidence: layered segmentations and rater masks
    "issue18-2a-confidence-seg-layer-out-of-range": (lambda d: ["confidence", "--seg", layered_segmentation(
        d, replace_field("Segment1_Layer", "7")), "--class", "organ", "--map-out", str(d / "map.nrrd")], "layer"),
    "issue18-2b-confidence-seg-tag-not-a-number": (lambda d: ["confidence", "--seg", layered_segmentation(
        d, replace_field("Segment0_Tags", "ConfidenceSeg.Class:organ|ConfidenceSeg.Confidence::1.0|")), "--class",
        "organ", "--map-out", str(d / "map.nrrd")], "not a number"),
    "confidence-seg-label-value-negative": (lambda d: ["confidence", "--seg", layered_segmentation(
        d, replace_field("Segment0_LabelValue", "-4")), "--class", "organ", "--map-out", str(d / "map.nrrd")],
        "label value"),
    "confidence-seg-corrupt": (lambda d: then(lambda: (d / "x.seg.nrrd").write_text("NRRD0005\nnonsense"), [
        "confidence", "--seg", str(d / "x.seg.nrrd"), "--class", "organ", "--map-out", str(d / "map.nrrd")]),
        "cannot read segmentation"),
    "confidence-seg-unknown-class": (lambda d: ["confidence", "--seg", layered_segmentation(d), "--class", "lung",
                                     "--map-out", str(d / "map.nrrd")], "unknown class 'lung'"),
    "confidence-raters-non-binary": (lambda d: ["confidence", "--raters",
                                     mask_file(d, "r1.nrrd", np.arange(16).reshape(4, 4)),
                                     mask_file(d, "r2.nrrd", np.eye(4)), "--class", "organ", "--out",
                                     str(d / "o.seg.nrrd")], "not a binary mask"),
    "confidence-raters-different-grids": (lambda d: ["confidence", "--raters", mask_file(d, "r1.nrrd", np.eye(4)),
                                          mask_file(d, "r2.nrrd", np.eye(5)), "--class", "organ", "--out",
                                          str(d / "o.seg.nrrd")], "geometry mismatch"),
    "confidence-raters-out-suffix": (lambda d: ["confidence", "--raters", mask_file(d, "r1.nrrd", np.eye(4)),
                                     "--class", "organ", "--out", str(d / "o.nrrd")], "must end with .seg.nrrd"),
    # --- replacing what the user had (issue 31)
    "predict-input-truncated-nii-gz": (truncated_nifti, "truncated"),
    "predict-input-named-pipe": (named_pipe, "not a regular file"),
    "predict-dicom-missing-slice": (dicom_missing_slice, "missing or unevenly spaced slices"),
    "predict-input-header-too-big": (huge_header, "needed"),
    "predict-nan-weights": (nan_weights, "non-finite values"),
    "predict-output-replaces-input": (output_onto_input, "would replace the input"),
    "train-overwrite-foreign-folder": (lambda d: ["train", "--dataset", dataset(d), "--out", foreign_folder(d),
                                                  "--epochs", "1", "--overwrite"], "not written by ConfidenceSeg"),
    "calibrate-overwrite-foreign-folder": (lambda d: ["calibrate", "--model", bundle(d), "--dataset", dataset(d),
                                                      "--out", foreign_folder(d), "--overwrite"],
                                           "not written by ConfidenceSeg"),
    "calibrate-out-is-the-dataset": (lambda d: ["calibrate", "--model", bundle(d), "--dataset", dataset(d),
                                                "--out", str(d / "data"), "--overwrite"], "holds an input"),
}


#: A progress bar line on stderr (tqdm), shown before an error found while reading the data.
PROGRESS_BAR = re.compile(r"\d+%\|")


def snapshot(folder: Path) -> dict[str, str]:
    """Every file (with its SHA-256), folder and pipe below ``folder``."""
    state = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            state[os.path.join(root, name)] = "dir"
        for name in files:
            path = Path(root, name)
            state[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "special"
    return state


def command_of(case: str) -> str:
    """The command a case runs: its name's first word (after ``issue18-N-`` for the issue's failures)."""
    return case.split("-")[2] if case.startswith("issue18-") else case.split("-")[0]


def test_the_matrix_covers_every_command_that_reads_user_input():
    assert len(CASES) >= 40
    assert {command_of(case) for case in CASES} == {"predict", "review", "quickstart", "train", "evaluate",
                                                    "calibrate", "confidence"}
    assert len([case for case in CASES if case.startswith("issue18-")]) == 8  # its failures 1-7 (2 has two parts)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_clear_line_and_changes_nothing(name, tmp_path, capsys):
    build, expected = CASES[name]
    argv = build(tmp_path)
    before = snapshot(tmp_path)
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, f"exit code {code}; stderr: {err}"
    lines = [line for line in err.splitlines() if line.strip() and not PROGRESS_BAR.search(line)]
    assert len(lines) == 1 and lines[0].startswith("confidenceseg: error: "), err
    assert expected in lines[0], lines[0]
    assert "Traceback" not in err and "np.float64" not in err
    assert snapshot(tmp_path) == before, "files were written or changed"
