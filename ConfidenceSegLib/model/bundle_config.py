"""A bundle's ``config.json``: reading it and checking every field before anything is built or opened.

A bundle is data, never code, and may come from anyone, so every value is checked against sane
bounds before it sizes an allocation or names a file: network widths and depths (a config asking
for 10^7 channels is refused, not allocated), class names (they become file names), input sizes,
and member weight files (plain ``.safetensors`` names that resolve inside the bundle folder; a
path such as ``../../etc/passwd`` is refused before it is opened). No torch here: the command line
checks a bundle before loading anything heavy. See :mod:`.bundle` for the fields.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..contract import POSTPROCESSING_STEPS, PRESENCE_STEP, ConfidenceSegError
from ..io.safe_files import read_json
from .nnunet_folder import check_wrapped, is_nnunet_folder, nnunet_config_data, read_nnunet_folder

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
REQUIRED_KEYS = ("format_version", "architecture", "classes", "preprocessing", "members")
ARCHITECTURE_NAME = "ConfidenceSegNet"
ARCHITECTURE_KEYS = ("spatial_dims", "in_channels", "channels", "strides", "num_res_units", "head_channels",
                     "dropout")
#: Class names become parts of file names: letters, digits, ``_``, ``-``, ``.``; no leading dot.
CLASS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MEMBER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\.safetensors$")
#: Inclusive bounds of the sizes a config may ask for.
LIMITS = {"classes": (1, 64), "members": (1, 32), "levels": (2, 8), "channels": (1, 1024),
          "num_res_units": (0, 8), "head_channels": (1, 512), "input_size": (8, 4096), "roi_size": (8, 512)}


def is_number(value) -> bool:
    """A JSON number (int or float, not a boolean)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_int(value, name: str, where: str | Path, limit: str | None = None) -> int:
    low, high = LIMITS.get(limit or name, (-math.inf, math.inf))
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        bounds = f" in {low}..{high}" if limit or name in LIMITS else ""
        raise ConfidenceSegError(f"{where}: {name} must be an integer{bounds}, got {value!r}")
    return value


def _check_int_list(values, name: str, where: str | Path, length: tuple[int, int], limit: str) -> list[int]:
    if not isinstance(values, list) or not length[0] <= len(values) <= length[1]:
        raise ConfidenceSegError(f"{where}: {name} must be a list of {length[0]}..{length[1]} integers, got {values!r}")
    return [_check_int(value, name, where, limit) for value in values]


def check_architecture(architecture, where: str | Path) -> None:
    """Raise unless ``architecture`` describes a ConfidenceSegNet of sane size."""
    if not isinstance(architecture, dict) or architecture.get("name") != ARCHITECTURE_NAME:
        name = architecture.get("name") if isinstance(architecture, dict) else architecture
        raise ConfidenceSegError(f"{where}: unknown architecture {name!r} (expected {ARCHITECTURE_NAME})")
    missing = [key for key in ARCHITECTURE_KEYS if key not in architecture]
    if missing:
        raise ConfidenceSegError(f"{where}: architecture lacks {', '.join(missing)}")
    if architecture["spatial_dims"] not in (2, 3) or isinstance(architecture["spatial_dims"], bool):
        raise ConfidenceSegError(f"{where}: spatial_dims must be 2 or 3, got {architecture['spatial_dims']!r}")
    if architecture["in_channels"] != 1 or isinstance(architecture["in_channels"], bool):
        raise ConfidenceSegError(f"{where}: in_channels must be 1 (ConfidenceSeg feeds one intensity channel), "
                                 f"got {architecture['in_channels']!r}")
    levels = LIMITS["levels"]
    channels = _check_int_list(architecture["channels"], "channels", where, levels, "channels")
    strides = _check_int_list(architecture["strides"], "strides", where, (levels[0] - 1, levels[1] - 1), "channels")
    if len(strides) != len(channels) - 1 or any(s not in (1, 2) for s in strides):
        raise ConfidenceSegError(f"{where}: strides must be {len(channels) - 1} values of 1 or 2, got {strides}")
    _check_int(architecture["num_res_units"], "num_res_units", where)
    _check_int(architecture["head_channels"], "head_channels", where)
    dropout = architecture["dropout"]
    if not is_number(dropout) or not 0.0 <= dropout < 1.0:
        raise ConfidenceSegError(f"{where}: dropout must be a number in [0, 1), got {dropout!r}")


def check_classes(classes, where: str | Path) -> None:
    low, high = LIMITS["classes"]
    if not isinstance(classes, list) or not low <= len(classes) <= high:
        raise ConfidenceSegError(f"{where}: classes must be a list of {low}..{high} names, got {classes!r}")
    bad = [name for name in classes if not isinstance(name, str) or not CLASS_NAME.match(name)]
    if bad:
        raise ConfidenceSegError(f"{where}: class names must be letters, digits, '_', '-' or '.' (no leading dot, "
                                 f"at most 64 characters), got {bad[0]!r}")
    if len(set(classes)) != len(classes):
        raise ConfidenceSegError(f"{where}: class names must be distinct, got {classes}")


def check_preprocessing(preprocessing, spatial_dims: int, where: str | Path) -> None:
    if not isinstance(preprocessing, dict) or preprocessing.get("spatial_dims") != spatial_dims:
        raise ConfidenceSegError(f"{where}: preprocessing.spatial_dims must equal the architecture's ({spatial_dims})")
    if spatial_dims == 2:
        _check_int_list(preprocessing.get("input_size"), "preprocessing.input_size", where, (2, 2), "input_size")
        return
    _check_int_list(preprocessing.get("roi_size"), "preprocessing.roi_size", where, (3, 3), "roi_size")
    spacing = preprocessing.get("spacing")
    if spacing is not None and (not isinstance(spacing, list) or len(spacing) != 3 or not all(
            is_number(s) and 1e-3 <= s <= 100 for s in spacing)):
        raise ConfidenceSegError(f"{where}: preprocessing.spacing must be 3 numbers in 0.001..100 mm, got {spacing!r}")


def member_path(folder: Path, name) -> Path:
    """The weight file ``name`` of a bundle, refused unless it is a plain ``.safetensors`` name inside ``folder``."""
    if not isinstance(name, str) or not MEMBER_NAME.match(name):
        raise ConfidenceSegError(f"model bundle {folder}: member {name!r} is not a plain .safetensors file name")
    path = folder / name
    if not path.resolve().is_relative_to(folder.resolve()):
        raise ConfidenceSegError(f"model bundle {folder}: member {name!r} lies outside the bundle folder")
    return path


def check_config(config, folder: Path) -> dict:
    """Raise a one-line error for the first field of ``config`` that is missing or out of bounds; return it."""
    where = folder / CONFIG_NAME
    if not isinstance(config, dict):
        raise ConfidenceSegError(f"{where} is not a bundle config (not a JSON object)")
    if "nnunet" in config:
        return check_wrapper_config(config, folder)
    missing = [key for key in REQUIRED_KEYS if key not in config]
    if missing:
        raise ConfidenceSegError(f"{where} lacks {', '.join(missing)}")
    version = config["format_version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise ConfidenceSegError(f"{where}: format_version must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise ConfidenceSegError(f"model bundle {folder} has format version {version}, newer than this "
                                 f"ConfidenceSeg supports ({FORMAT_VERSION}); update ConfidenceSeg")
    check_architecture(config["architecture"], where)
    check_classes(config["classes"], where)
    check_preprocessing(config["preprocessing"], config["architecture"]["spatial_dims"], where)
    members = config["members"]
    low, high = LIMITS["members"]
    if not isinstance(members, list) or not low <= len(members) <= high:
        raise ConfidenceSegError(f"{where}: members must list {low}..{high} weight files, got {members!r}")
    for name in members:
        member_path(folder, name)
    for key in ("postprocessing", "training", "metrics", "label_mode"):
        if config.get(key) is not None and not isinstance(config[key], dict):
            raise ConfidenceSegError(f"{where}: {key} must be a JSON object, got {type(config[key]).__name__}")
    check_postprocessing(config.get("postprocessing") or {}, config["classes"], where)
    if config.get("quality") is not None:
        QualityConfig.checked(config["quality"], where)
    return config


#: Key of a class's postprocessing entry that records the validation Dice each choice had (not a step).
POSTPROCESSING_RECORD = "validation_dice"


def check_wrapper_config(config: dict, folder: Path) -> dict:
    """The config of a bundle that wraps a calibrated nnU-Net model (:mod:`.nnunet_folder`): the wrapped
    folder unchanged since the calibration, its classes, the quality model; returned with the folder's
    current description (members: its folds)."""
    where = folder / CONFIG_NAME
    version = config.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version > FORMAT_VERSION:
        raise ConfidenceSegError(f"{where}: format_version must be an integer up to {FORMAT_VERSION}, got {version!r}")
    model = check_wrapped(config["nnunet"], where)
    if list(model.classes) != config.get("classes"):
        raise ConfidenceSegError(f"{where}: its classes {config.get('classes')} are not the nnU-Net model's "
                                 f"{list(model.classes)}")
    if config.get("quality") is not None:
        QualityConfig.checked(config["quality"], where)
    check_postprocessing(config.get("postprocessing") or {}, list(model.classes), where)
    described = nnunet_config_data(model)
    return dict(config, members=described["members"], preprocessing=described["preprocessing"],
                architecture=described["architecture"], nnunet=dict(config["nnunet"], **described["nnunet"]))


def check_postprocessing(postprocessing: dict, classes: list[str], where: str | Path) -> None:
    """Each class's postprocessing entry: an object of true/false steps and a presence fraction in [0, 1]."""
    for name, steps in postprocessing.items():
        if name not in classes:
            raise ConfidenceSegError(f"{where}: postprocessing names {name!r}, not a class of the bundle")
        if steps is None:
            continue
        if not isinstance(steps, dict):
            raise ConfidenceSegError(f"{where}: postprocessing.{name} must be a JSON object of steps, got {steps!r}")
        for step, value in steps.items():
            if step == POSTPROCESSING_RECORD:
                continue  # what the choice was made from (validation Dice per combination): a record
            valid = isinstance(value, bool) if step in POSTPROCESSING_STEPS else (
                step == PRESENCE_STEP and is_number(value) and 0.0 <= value <= 1.0)
            if not valid:
                raise ConfidenceSegError(f"{where}: postprocessing.{name}.{step} = {value!r} is not a known step "
                                         f"({', '.join(POSTPROCESSING_STEPS)}: true/false; {PRESENCE_STEP}: 0..1)")


def _is_boundary_check(check) -> bool:
    """A class's boundary check (:mod:`ConfidenceSegLib.quality.boundary`) has what its reader relies on."""
    def numbers(value) -> bool:
        return isinstance(value, list) and bool(value) and all(map(is_number, value))

    return (isinstance(check, dict) and isinstance(check.get("references"), str)
            and all(numbers(check.get(key)) for key in ("feature_mean", "feature_scale", "scores"))
            and len(check["feature_mean"]) == len(check["feature_scale"])
            and isinstance(check.get("k"), int) and not isinstance(check["k"], bool) and check["k"] > 0
            and is_number(check.get("alpha")) and 0 < check["alpha"] < 1)


@dataclass(frozen=True)
class QualityConfig:
    """A bundle's calibrated quality model (``quality`` in ``config.json``, written by calibration), or its
    ``assessment`` part for given segmentations; the per-class models are read by :mod:`ConfidenceSegLib.quality`.
    ``folder``: the bundle's folder (where the data files the section names lie)."""

    data: dict
    folder: Path | None = None

    @classmethod
    def checked(cls, section, where: str | Path) -> QualityConfig:
        """The section after checking the fields every reader relies on (before any compute)."""
        if not isinstance(section, dict):
            raise ConfidenceSegError(f"{where}: quality must be a JSON object")
        threshold = section.get("threshold")
        if not is_number(threshold) or not 0 < threshold <= 1:
            raise ConfidenceSegError(f"{where}: quality.threshold must be a number in (0, 1], got {threshold!r}")
        for key in ("classes", "baseline", "measurements", "prediction", "assessment", "calibration_data", "domain",
                    "presence", "boundary"):
            if section.get(key) is not None and not isinstance(section[key], dict):
                raise ConfidenceSegError(f"{where}: quality.{key} must be a JSON object")
        prediction = section.get("prediction") or {}
        if prediction and (not isinstance(prediction.get("method"), str) or isinstance(prediction.get("samples"), bool)
                           or not isinstance(prediction.get("samples"), int)):
            raise ConfidenceSegError(f"{where}: quality.prediction must name a method and a number of samples")
        bad = [name for name, model in {**(section.get("classes") or {}), **(section.get("baseline") or {})}.items()
               if not isinstance(model, dict) or not isinstance(model.get("domain"), dict)
               or not isinstance(model.get("features"), list)]
        if bad:
            raise ConfidenceSegError(f"{where}: the quality model of {bad[0]!r} is malformed; recalibrate the bundle")
        bad = [name for name, check in (section.get("boundary") or {}).items() if not _is_boundary_check(check)]
        if bad:
            raise ConfidenceSegError(f"{where}: the boundary check of {bad[0]!r} is malformed; recalibrate the bundle")
        if section.get("assessment"):
            cls.checked(section["assessment"], f"{where} (quality.assessment)")
        return cls(section)

    @property
    def threshold(self) -> float:
        return float(self.data["threshold"])

    @property
    def alpha(self) -> float | None:
        return self.data.get("alpha")

    def class_model(self, name: str, baseline: bool = False) -> dict | None:
        """The fitted model of class ``name`` (the mean-entropy baseline's with ``baseline``), None if none."""
        return (self.data.get("baseline" if baseline else "classes") or {}).get(name)

    @property
    def calibrated_settings(self) -> tuple[str, int] | None:
        """(method, samples) the predictions of the calibration were made with."""
        prediction = self.data.get("prediction") or {}
        return (prediction["method"], prediction["samples"]) if prediction else None

    def measurement_calibration(self, name: str) -> dict | None:
        """``{measurement: {"scale", "margin", "plausible"}}`` of class ``name``."""
        return (self.data.get("measurements") or {}).get(name)

    def presence_model(self, name: str) -> dict | None:
        """The presence test of class ``name`` (:mod:`ConfidenceSegLib.quality.presence`), None if none."""
        return (self.data.get("presence") or {}).get(name)

    def boundary_model(self, name: str) -> dict | None:
        """The boundary check of class ``name`` (:mod:`ConfidenceSegLib.quality.boundary`), None if none."""
        return (self.data.get("boundary") or {}).get(name)

    @property
    def domain(self) -> dict | None:
        """The domain check (:mod:`ConfidenceSegLib.quality.domain`), None for a bundle calibrated without one."""
        return self.data.get("domain") or None

    @property
    def assessment(self) -> QualityConfig | None:
        """The calibrated assessment of given segmentations, with the calibration's prediction settings."""
        section = self.data.get("assessment")
        if not section or not section.get("classes"):
            return None
        return QualityConfig(dict(section, prediction=self.data.get("prediction")), self.folder)

    @property
    def calibration_data(self) -> dict:
        return self.data.get("calibration_data") or {}


@dataclass(frozen=True)
class BundleConfig:
    """A bundle's checked ``config.json`` (see :mod:`.bundle` for the fields), read once per process."""

    folder: Path
    data: dict

    @property
    def classes(self) -> list[str]:
        return list(self.data["classes"])

    @property
    def architecture(self) -> dict:
        return self.data["architecture"]

    @property
    def spatial_dims(self) -> int:
        return int(self.data["preprocessing"]["spatial_dims"])

    @property
    def in_channels(self) -> int:
        return int(self.data["architecture"]["in_channels"])

    @property
    def preprocessing(self) -> dict:
        return self.data["preprocessing"]

    @property
    def members(self) -> list[str]:
        return list(self.data["members"])

    @property
    def postprocessing(self) -> dict:
        return self.data.get("postprocessing") or {}

    @property
    def training(self) -> dict:
        return self.data.get("training") or {}

    @property
    def metrics(self) -> dict:
        return self.data.get("metrics") or {}

    @property
    def quality(self) -> QualityConfig | None:
        section = self.data.get("quality")
        return None if section is None else QualityConfig(section, self.folder)

    @property
    def nnunet(self) -> dict | None:
        """The nnU-Net model this config describes or wraps (:mod:`.nnunet_folder`), None for a ConfidenceSeg
        network."""
        return self.data.get("nnunet")


#: What a bundle folder holds besides its ``.safetensors`` data: nothing else is ever replaced by ``--overwrite``.
BUNDLE_FILES = (CONFIG_NAME, "README.md")


def not_a_bundle(folder: Path) -> str | None:
    """Why ``folder`` is not a ConfidenceSeg bundle (a file or folder a bundle never holds, no config), or None."""
    foreign = sorted(item.name for item in folder.iterdir() if not item.is_file()
                     or (item.name not in BUNDLE_FILES and not item.name.endswith(".safetensors")))
    if foreign:
        return f"it holds {', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}"
    try:
        config = read_json(folder / CONFIG_NAME, "bundle config")
    except ConfidenceSegError:
        return f"no readable {CONFIG_NAME}"
    if not isinstance(config, dict) or "members" not in config or "format_version" not in config:
        return f"its {CONFIG_NAME} is not a bundle's"
    return None


def read_config(path: str | os.PathLike) -> BundleConfig:
    """Read and check a bundle's ``config.json`` (clear errors for a missing file, a newer format, ...), or
    describe an nnU-Net trained-model folder (:mod:`.nnunet_folder`)."""
    folder = Path(path)
    if not folder.is_dir():
        raise ConfidenceSegError(f"model bundle not found: {folder} is not a folder")
    if is_nnunet_folder(folder):
        return BundleConfig(folder, nnunet_config_data(read_nnunet_folder(folder)))
    config = read_json(folder / CONFIG_NAME, "bundle config",
                       missing=f"model bundle {folder} is incomplete: {CONFIG_NAME} is missing")
    return BundleConfig(folder, check_config(config, folder))
