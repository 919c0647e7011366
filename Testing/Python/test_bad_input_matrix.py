"""Every bad input to every command: exit code 2, one line naming the problem, nothing written or changed.

Each case builds its hostile input in a fresh folder, runs the command in-process (an exception
other than the project's own error would fail the test, as it would print a traceback), and
compares every file and folder under the test's folder before and after. Cases marked
``issue18-N`` reproduce the N-th failure found in issue 18; they failed before the fixes.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pytest
from bad_input_builders import (
    FULL_DISK,
    assess,
    bundle,
    busy_port,
    config_text,
    dangling_out,
    dataset,
    deep_dataset,
    deep_model,
    dicom_missing_slice,
    existing_output,
    file_size_limit,
    five_channels,
    foreign_folder,
    four_d,
    full_disk,
    good_image,
    huge_header,
    input_bytes,
    layered_segmentation,
    made,
    mask_file,
    named_pipe,
    nan_weights,
    non_binary_labels,
    output_onto_input,
    pickle_weights,
    predict,
    replace_field,
    review_pipe,
    then,
    truncated_nifti,
    unwritable_folder,
    volume_tif,
    write_image,
)
from tiny_bundles import make_bundle

from ConfidenceSegLib.cli import main

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
    "calibrate-out-inside-the-dataset": (lambda d: ["calibrate", "--model", bundle(d), "--dataset", dataset(d),
                                                    "--out", made(d / "data" / "inner", folder=True), "--overwrite"],
                                         "lies inside an input"),
    # --- what the system refuses, and readers bounded before parsing (issue 31)
    "predict-config-nested-too-deep": (lambda d: predict(deep_model(d), good_image(d), d), "nested too deeply"),
    "predict-postprocessing-malformed": (lambda d: predict(bundle(d, postprocessing={"organ": "largest"}),
                                                           good_image(d), d), "postprocessing.organ"),
    "predict-postprocessing-unknown-step": (lambda d: predict(bundle(d, postprocessing={"organ": {"erode": True}}),
                                                              good_image(d), d), "not a known step"),
    "predict-postprocessing-unknown-class": (lambda d: predict(bundle(d, postprocessing={"liver": {}}),
                                                               good_image(d), d), "not a class of the bundle"),
    "predict-input-name-too-long": (lambda d: predict(bundle(d), str(d / ("x" * 300 + ".nrrd")), d), "name too long"),
    "predict-out-name-too-long": (lambda d: ["predict", "--model", bundle(d), "--input", good_image(d), "--out",
                                             str(d / ("y" * 300))], "name too long"),
    "predict-out-dangling-symlink": (dangling_out, "which does not exist"),
    "predict-disk-full": (lambda d: full_disk(d, predict(bundle(d), good_image(d), d)), "File too large"),
    "review-input-named-pipe": (review_pipe, "not a regular file"),
    "review-disk-full": (lambda d: full_disk(d, ["review", "--model", bundle(d), "--inputs", good_image(d),
                                                 "--out", str(d / "out")]), "cannot write its outputs"),
    "assess-out-is-a-file": (lambda d: assess(d, out=made(d / "f")), "is a file, not a folder"),
    "assess-seg-missing": (lambda d: assess(d, seg=str(d / "none.seg.nrrd")), "file not found"),
    "assess-image-missing": (lambda d: assess(d, image=str(d / "none.nrrd")), "file not found"),
    "assess-output-exists": (lambda d: then(lambda: (made(d / "out", folder=True), made(d / "out" / "scan.json")),
                                            assess(d)), "output exists"),
    "models-install-missing": (lambda d: ["models", "install", str(d / "nowhere")], "file not found"),
    "models-install-not-a-bundle": (lambda d: ["models", "install", made(d / "plain", folder=True)],
                                    "config.json is missing"),
    "station-port-busy": (busy_port, "choose another --port"),
    "train-out-is-the-dataset": (lambda d: ["train", "--dataset", dataset(d), "--out", str(d / "data"), "--epochs",
                                            "1", "--overwrite"], "holds an input"),
    "train-dataset-nested-too-deep": (lambda d: ["train", "--dataset", deep_dataset(d), "--out", str(d / "m"),
                                                 "--epochs", "1"], "nested too deeply"),
    "evaluate-dataset-nested-too-deep": (lambda d: ["evaluate", "--model", bundle(d), "--dataset", deep_dataset(d),
                                                    "--out", str(d / "out")], "nested too deeply"),
    "evaluate-limit-zero": (lambda d: ["evaluate", "--model", bundle(d), "--dataset", dataset(d), "--out",
                                       str(d / "out"), "--limit", "0"], "--limit must be at least 1"),
    "evaluate-no-test-split": (lambda d: ["evaluate", "--model", bundle(d), "--dataset", dataset(d), "--out",
                                          str(d / "out"), "--cases", "test"], "no test subjects"),
    "calibrate-config-nested-too-deep": (lambda d: ["calibrate", "--model", deep_model(d), "--dataset", dataset(d)],
                                         "nested too deeply"),
    "review-out-dangling-symlink": (lambda d: then(lambda: (d / "out").symlink_to(d / "gone"), [
        "review", "--model", bundle(d), "--inputs", good_image(d), "--out", str(d / "out")]), "which does not exist"),
    "review-duplicate-stems": (lambda d: ["review", "--model", bundle(d), "--inputs", good_image(d),
                                          good_image(d, "scan.nii.gz"), "--out", str(d / "out")], "same outputs"),
    "review-input-name-too-long": (lambda d: ["review", "--model", bundle(d), "--inputs", str(d / ("z" * 300)),
                                              "--out", str(d / "out")], "name too long"),
    "quickstart-out-is-a-file": (lambda d: ["quickstart", "--model", bundle(d), "--image", good_image(d), "--out",
                                            made(d / "f")], "is a file, not a folder"),
    "predict-spacing-needs-z-for-3d": (lambda d: predict(str(make_bundle(d / "vol", spatial_dims=3).path),
                                                         volume_tif(d), d, "--spacing", "0.5", "0.5"), "SX SY SZ"),
    "models-install-bad-name": (lambda d: ["models", "install", bundle(d), "--name", "../escape"], "model name"),
    "assess-config-nested-too-deep": (lambda d: assess(d, model=deep_model(d)), "nested too deeply"),
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
                                                    "calibrate", "confidence", "assess", "models", "station"}
    assert len([case for case in CASES if case.startswith("issue18-")]) == 8  # its failures 1-7 (2 has two parts)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_clear_line_and_changes_nothing(name, tmp_path, capsys):
    build, expected = CASES[name]
    argv = build(tmp_path)
    before = snapshot(tmp_path)
    capsys.readouterr()
    with file_size_limit(str(tmp_path) in FULL_DISK):
        code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, f"exit code {code}; stderr: {err}"
    lines = [line for line in err.splitlines() if line.strip() and not PROGRESS_BAR.search(line)]
    assert len(lines) == 1 and lines[0].startswith("confidenceseg: error: "), err
    assert expected in lines[0], lines[0]
    assert "Traceback" not in err and "np.float64" not in err
    assert snapshot(tmp_path) == before, "files were written or changed"
