"""Builders of the bad-input matrix (``test_bad_input_matrix.py``): each makes a hostile or careless input in
a fresh folder and returns the command line that meets it."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from dicom_series import write_dicom_series
from tiny_bundles import make_bundle, random_image

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
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
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


def deep_model(d: Path) -> str:
    """A bundle whose config.json is nested 100,000 levels deep (Python's JSON parser would overflow its stack)."""
    model = Path(bundle(d))
    text = (model / "config.json").read_text(encoding="utf-8").rstrip()
    (model / "config.json").write_text(text[:-1] + ', "deep": ' + "[" * 100_000 + "]" * 100_000 + "}")
    return str(model)


def volume_tif(d: Path) -> str:
    """A 6-slice TIFF stack: no physical spacing."""
    return write_image(np.ones((6, 20, 20), np.float32), d / "v.tif")


def dangling_out(d: Path) -> list[str]:
    (d / "out").symlink_to(d / "gone" / "deeper")
    return predict(bundle(d), good_image(d), d)


def review_pipe(d: Path) -> list[str]:
    os.mkfifo(d / "pipe.nrrd")
    return ["review", "--model", bundle(d), "--inputs", str(d / "pipe.nrrd"), "--out", str(d / "out")]


def assess(d: Path, *, model=None, image=None, seg=None, out=None) -> list[str]:
    model = model or bundle(d)
    image = image or good_image(d)
    if seg is None:
        seg = mask_file(d, "seg.nrrd", np.pad(np.ones((10, 10)), ((7, 7), (9, 9))))
    return ["assess", "--model", model, "--image", image, "--seg", seg, "--out", out or str(d / "out")]


#: Sockets the station cases hold open while their command runs (closed when the test process ends).
HELD_SOCKETS: list[socket.socket] = []


def busy_port(d: Path) -> list[str]:
    listener = socket.create_server(("127.0.0.1", 0))
    HELD_SOCKETS.append(listener)
    return ["station", "--review", str(d), "--port", str(listener.getsockname()[1])]


#: Cases whose command runs as on a full disk (marked by :func:`full_disk`).
FULL_DISK: set[str] = set()
#: Largest file a "full disk" case may write (bytes): less than any prediction output.
FULL_DISK_BYTES = 1024


def full_disk(d: Path, argv: list[str]) -> list[str]:
    """``argv``, run as on a full disk: no file may grow past FULL_DISK_BYTES (RLIMIT_FSIZE, its signal
    ignored), so writes fail midway with the system's error, as when the disk fills up during a run."""
    FULL_DISK.add(str(d))
    return argv


@contextlib.contextmanager
def file_size_limit(limited: bool):
    """While ``limited``: no file may grow past FULL_DISK_BYTES (writes fail with EFBIG)."""
    if not limited:
        yield
        return
    previous_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FULL_DISK_BYTES, previous_limit[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, previous_limit)
        signal.signal(signal.SIGXFSZ, previous_handler)



def deep_dataset(d: Path) -> str:
    """A dataset whose dataset.json is nested 100,000 levels deep."""
    root = Path(dataset(d))
    text = (root / "dataset.json").read_text(encoding="utf-8").rstrip()
    (root / "dataset.json").write_text(text[:-1] + ', "deep": ' + "[" * 100_000 + "]" * 100_000 + "}")
    return str(root)
