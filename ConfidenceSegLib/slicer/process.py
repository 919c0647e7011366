"""Running ``confidenceseg predict`` in a background process for the Slicer module.

The module never runs the model in the GUI process: it writes the input image, starts
``python -m ConfidenceSegLib predict ... --progress json`` (Slicer's ``PythonSlicer``), reads the
progress lines (:mod:`~ConfidenceSegLib.jobs.progress`) and loads the report (:mod:`~ConfidenceSegLib.outputs.report`)
when the process ends. This module
holds the parts of that flow that need no Qt: command lines, environment, progress parsing,
finding the report, checking Python requirements.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ..contract import (
    ANNOUNCE_PID_ENV,
    DEVICE_CHOICES,
    MAP_KINDS,
    METHODS,
    PID_EVENT,
    SEG_SUFFIX,
    ConfidenceSegError,
)
from ..io.images import write_image
from ..outputs.report import read_report
from .storage import image_from_volume, save_segmentation

#: Folder that holds the ``ConfidenceSegLib`` package (added to the subprocess's PYTHONPATH).
PACKAGE_PARENT = Path(__file__).resolve().parents[2]
DEVICE_PROBE = ("from ConfidenceSegLib.io.stops import announce_pid; announce_pid(); "
                "from ConfidenceSegLib.model.devices import describe_device, pick_device; "
                "print(describe_device(pick_device('auto')))")


def _check_options(method: str, device: str) -> None:
    if method not in METHODS:
        raise ConfidenceSegError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if device not in DEVICE_CHOICES:
        raise ConfidenceSegError(f"unknown device {device!r}; choose one of {', '.join(DEVICE_CHOICES)}")


def predict_command(python: str, model: str | os.PathLike, image: str | os.PathLike, out_dir: str | os.PathLike,
                    method: str = "auto", samples: int = 0, device: str = "auto") -> list[str]:
    """The one-shot ``predict`` command line, every map written; ``samples`` 0 keeps the model's default."""
    _check_options(method, device)
    command = [python, "-m", "ConfidenceSegLib", "predict", "--model", str(model), "--input", str(image),
               "--out", str(out_dir), "--method", method, "--device", device, "--progress", "json",
               "--maps", ",".join(MAP_KINDS)]
    return command + (["--samples", str(int(samples))] if samples else [])


def calibrate_command(python: str, model: str | os.PathLike, dataset: str | os.PathLike,
                      out: str | os.PathLike) -> list[str]:
    """Recalibration from the module: into the new bundle ``out`` (the source bundle, bundled or not, is
    never modified), each case also degraded as ``train`` does; refuses an ``out`` that exists."""
    if Path(out).exists():
        raise ConfidenceSegError(f"{out} exists: choose a new folder for the recalibrated model")
    if Path(out).resolve() == Path(model).resolve():
        raise ConfidenceSegError("the recalibrated model needs its own folder, not the model's")
    return [python, "-m", "ConfidenceSegLib", "calibrate", "--model", str(model), "--dataset", str(dataset),
            "--out", str(out), "--degrade", "all"]


def assess_command(python: str, model: str | os.PathLike, image: str | os.PathLike, segmentation: str | os.PathLike,
                   out_dir: str | os.PathLike, class_name: str | None = None, method: str = "agreement") -> list[str]:
    """The ``assess`` command line that rates a segmentation the model did not make (see ``confidenceseg assess``)."""
    command = [python, "-m", "ConfidenceSegLib", "assess", "--model", str(model), "--image", str(image),
               "--seg", str(segmentation), "--out", str(out_dir), "--method", method]
    return command + (["--class", class_name] if class_name else [])


def write_assessment_input(volume_node, segmentation_node, folder: str | os.PathLike) -> tuple[Path, Path]:
    """Write the image (:func:`write_prediction_input`) and the segmentation to assess (``.seg.nrrd``, with
    Slicer's own storage) into ``folder``; return both paths."""
    image = write_prediction_input(volume_node, folder)
    return image, save_segmentation(segmentation_node, Path(folder) / f"{image.stem}{SEG_SUFFIX}")


def bundle_classes(model: str | os.PathLike) -> list[str]:
    """The class names of a model bundle (its config checked; no torch)."""
    from ..model.bundle_config import read_config

    return read_config(model).classes


def worker_command(python: str, model: str | os.PathLike) -> list[str]:
    """The warm worker's command line (see :mod:`ConfidenceSegLib.jobs.worker`)."""
    return [python, "-m", "ConfidenceSegLib", "worker", "--model", str(model)]


def predict_request(job_id: str, image: str | os.PathLike, out_dir: str | os.PathLike, method: str = "auto",
                    samples: int = 0, device: str = "auto") -> str:
    """One worker request line asking to predict ``image`` into ``out_dir`` with every map (the module's
    heatmap selector switches between them); ``samples`` 0: the default."""
    _check_options(method, device)
    request = {"id": job_id, "command": "predict", "input": str(image), "out": str(out_dir), "method": method,
               "samples": int(samples) or None, "device": device, "maps": list(MAP_KINDS)}
    return json.dumps(request) + "\n"


def cancel_request(job_id: str) -> str:
    return json.dumps({"id": f"cancel-{job_id}", "command": "cancel", "target": job_id}) + "\n"


QUIT_REQUEST = json.dumps({"command": "quit"}) + "\n"


@dataclass(frozen=True)
class WorkerEvent:
    """One answer of the worker: ``event`` is ready, progress, result, error, cancelled or bye."""

    event: str
    job_id: str | None
    fields: dict

    def progress(self) -> Progress:
        return _progress(self.fields)


def _json_line(line: str) -> dict | None:
    """A line of JSON-object output as a dict; None for any other line (log output)."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def _progress(record: dict) -> Progress:
    return Progress(str(record["stage"]), min(1.0, max(0.0, float(record["fraction"]))),
                    str(record.get("message", "")))


def parse_worker_event(line: str) -> WorkerEvent | None:
    """A worker answer line as :class:`WorkerEvent`; None for anything else (log output)."""
    record = _json_line(line)
    if record is None or not isinstance(record.get("event"), str) or record["event"] == PID_EVENT:
        return None
    job_id = record.get("id")
    return WorkerEvent(record["event"], None if job_id is None else str(job_id), record)


def device_probe_command(python: str) -> list[str]:
    """A command that prints the device ``auto`` picks (e.g. ``cuda (NVIDIA H100 ...)``)."""
    return [python, "-c", DEVICE_PROBE]


def subprocess_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for the subprocess: ``ConfidenceSegLib`` importable, unbuffered output, its process ID
    announced on the first stdout line (:func:`parse_pid`)."""
    env = dict(os.environ if base is None else base)
    paths = [str(PACKAGE_PARENT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["PYTHONUNBUFFERED"] = "1"
    env[ANNOUNCE_PID_ENV] = "1"
    return env


def parse_pid(line: str) -> int | None:
    """The process ID a background Python announced on this line, else None."""
    record = _json_line(line)
    if record is None or record.get("event") != PID_EVENT or not isinstance(record.get("pid"), int):
        return None
    return record["pid"]


@dataclass(frozen=True)
class Progress:
    stage: str
    fraction: float
    message: str


def parse_progress(line: str) -> Progress | None:
    """A ``--progress json`` line as :class:`Progress`; None for any other output line."""
    record = _json_line(line)
    try:
        return None if record is None else _progress(record)
    except (KeyError, TypeError, ValueError):
        return None


def write_prediction_input(volume_node, folder: str | os.PathLike) -> Path:
    """Write a volume node as ``folder/<safe node name>.nrrd`` (2D for a one-slice image); return the path."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", volume_node.GetName()).strip("_") or "image"
    path = Path(folder) / f"{stem}.nrrd"
    write_image(image_from_volume(volume_node), path)
    return path


def find_report(out_dir: str | os.PathLike) -> Path:
    """The ``predict`` report (``S.json``) in a fresh output folder of one prediction."""
    reports = []
    for path in sorted(Path(out_dir).glob("*.json")):
        try:
            read_report(path)
        except ConfidenceSegError:
            continue
        reports.append(path)
    if len(reports) != 1:
        raise ConfidenceSegError(f"expected one prediction report in {out_dir}, found {len(reports)}")
    return reports[0]


def _requirement_class():
    """packaging's ``Requirement`` (top-level, else the copy vendored in pip, which Slicer always has)."""
    try:
        from packaging.requirements import Requirement
    except ImportError:
        from pip._vendor.packaging.requirements import Requirement
    return Requirement


def unmet_requirement(requirement: str) -> str | None:
    """Why ``requirement`` (one requirements line) is not met here, or None when it is: the
    distribution is absent, or its installed version is outside the specifier. A requirement whose
    environment marker does not apply here is met."""
    parsed = _requirement_class()(requirement)
    if parsed.marker is not None and not parsed.marker.evaluate():
        return None
    try:
        installed = metadata.version(parsed.name)
    except metadata.PackageNotFoundError:
        return "not installed"
    if parsed.specifier and not parsed.specifier.contains(installed, prereleases=True):
        return f"version {installed} installed, {parsed.specifier} needed"
    return None


def requirement_lines(requirements_file: str | os.PathLike) -> list[str]:
    return [line.split("#")[0].strip() for line in Path(requirements_file).read_text(encoding="utf-8").splitlines()
            if line.split("#")[0].strip()]


def missing_requirements(requirements_file: str | os.PathLike) -> list[str]:
    """Lines of a requirements file that are not met: distribution absent or version outside the specifier."""
    return [line for line in requirement_lines(requirements_file) if unmet_requirement(line)]


def torch_requirement(pyproject_or_requirements: str | os.PathLike) -> str:
    """The version specifier of torch in a ``pyproject.toml`` or requirements file (e.g. ``>=2.2``), for
    the PyTorch extension's ``installTorch(torchVersionRequirement=...)``; empty when none is given."""
    requirement_class = _requirement_class()
    for match in re.findall(r"[\"']?(torch\s*[<>=!~][^\"'\n,]*)", Path(pyproject_or_requirements).read_text("utf-8")):
        try:
            return str(requirement_class(match).specifier)
        except ValueError:  # packaging's InvalidRequirement
            continue
    return ""
