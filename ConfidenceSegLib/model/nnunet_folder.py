"""nnU-Net v2 trained-model folders as ConfidenceSeg models, read without torch or nnunetv2.

A trained-model folder (``.../DatasetXXX_Name/nnUNetTrainer__nnUNetPlans__2d``) holds ``plans.json``,
``dataset.json`` and ``fold_K/checkpoint_final.pth`` per fold. :func:`read_nnunet_folder` checks it and
describes it (configuration, folds, classes from ``dataset.json``'s labels, input channels); each fold is
an ensemble member. Two ways to use one:

- directly, ``--model FOLDER``: :func:`nnunet_config_data` gives it a bundle config without a quality
  model (its badge is REVIEW, "not calibrated"; the heatmaps are shown);
- wrapped, once calibrated: ``confidenceseg calibrate --model FOLDER --dataset DIR --out BUNDLE`` writes a
  ConfidenceSeg bundle whose ``config.json`` refers to the folder by absolute path with the SHA-256 of
  ``plans.json``, ``dataset.json`` and every fold's checkpoint (:func:`fingerprint`; the checkpoints are
  not copied: hundreds of MB each). Moving the bundle keeps it working; a moved, retrained or edited
  nnU-Net folder is detected when the bundle is read (:func:`check_wrapped`), and refused.

A configuration's settings are resolved through ``inherits_from`` as nnU-Net does; a cascade stage
(``previous_stage``: it needs another model's segmentation as input) is refused.

Class names become file names: a label name that is not a plain name (``left kidney``) is written with
``_`` (``left_kidney``). Region-based models (labels as lists) have one class per region.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..contract import ConfidenceSegError
from ..io.safe_files import read_json

NNUNET_EXTRA = "pip install 'confidenceseg[nnunet]'"
PLANS, DATASET, CHECKPOINT = "plans.json", "dataset.json", "checkpoint_final.pth"
FOLD_NAME = re.compile(r"^fold_(\d{1,2}|all)$")
#: Largest checkpoint read (bytes): the default 3D plan's are about 250 MB.
MAX_CHECKPOINT_BYTES = 4 * 2**30
MAX_FOLDS = 10
NOT_A_NAME = re.compile(r"[^A-Za-z0-9_.-]")
#: Where the network class and the layer types a plan names may come from (nnU-Net imports what it names).
NETWORK_PACKAGE, LAYER_PACKAGE = "dynamic_network_architectures.", "torch.nn."
DOTTED_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
#: Label names that are no class (nnU-Net's background and ignore label).
NOT_CLASSES = ("background", "ignore")


@dataclass(frozen=True)
class NnunetFolder:
    """A checked nnU-Net trained-model folder."""

    folder: Path
    configuration: str
    #: Fold folder names used as ensemble members (``fold_0``, ...), in order.
    folds: tuple[str, ...]
    #: ConfidenceSeg class names, one per nnU-Net output channel except the background (softmax) or per
    #: region (region-based), in channel order.
    classes: tuple[str, ...]
    spatial_dims: int
    in_channels: int
    regions: bool


def is_nnunet_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` looks like an nnU-Net trained-model folder (not a ConfidenceSeg bundle)."""
    path = Path(path)
    return path.is_dir() and (path / PLANS).is_file() and (path / DATASET).is_file() \
        and not (path / "config.json").exists()


def class_names_of_labels(labels: dict, where: Path) -> tuple[tuple[str, ...], bool, tuple[tuple[int, ...], ...]]:
    """ConfidenceSeg class names of an nnU-Net ``labels`` mapping (every label but the background and ignore,
    in channel order: by value, or regions in their order), whether it is region-based, and each class's
    label values in a label map."""
    regions = any(isinstance(value, list) for value in labels.values())
    if regions:
        entries = [(name, tuple(value) if isinstance(value, list) else (value,)) for name, value in labels.items()
                   if name not in NOT_CLASSES and value not in (0, [0])]
    else:
        values = {}
        for name, value in labels.items():
            if name == "ignore":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfidenceSegError(f"{where}: label {name!r} has value {value!r}, not a label number")
            values[value] = name
        if sorted(values) != list(range(len(values))):
            raise ConfidenceSegError(f"{where}: label values {sorted(values)} are not 0..N (nnU-Net requires it)")
        entries = [(values[value], (value,)) for value in sorted(values) if value != 0]
    cleaned = [NOT_A_NAME.sub("_", str(name)).lstrip("._-")[:64] or f"label_{index + 1}"
               for index, (name, _) in enumerate(entries)]
    if not cleaned or len(set(cleaned)) != len(cleaned):
        raise ConfidenceSegError(f"{where}: labels {[name for name, _ in entries]} give no distinct class names")
    return tuple(cleaned), regions, tuple(value for _, value in entries)


def read_nnunet_folder(path: str | os.PathLike, folds: list[str] | None = None) -> NnunetFolder:
    """Check and describe the nnU-Net trained-model folder at ``path`` (``folds``: which fold folders;
    default every one with a final checkpoint)."""
    folder = Path(path)
    try:
        _trainer, _plans, configuration = folder.name.split("__")
    except ValueError:
        raise ConfidenceSegError(f"{folder} is not an nnU-Net trained-model folder (its name should be TRAINER__"
                                 "PLANS__CONFIGURATION, e.g. nnUNetTrainer__nnUNetPlans__3d_fullres)") from None
    plans = read_json(folder / PLANS, "nnU-Net plans")
    dataset = read_json(folder / DATASET, "nnU-Net dataset.json")
    settings = configuration_settings(plans, configuration, folder / PLANS)
    if settings.get("previous_stage"):
        raise ConfidenceSegError(f"{folder}: configuration {configuration!r} is a cascade stage (it needs the "
                                 f"{settings['previous_stage']!r} stage's segmentation first); use a 2d or 3d_fullres "
                                 "model")
    check_architecture(settings, folder / PLANS)
    patch = settings.get("patch_size")
    if not isinstance(patch, list) or len(patch) not in (2, 3) or not all(is_count(size) for size in patch):
        raise ConfidenceSegError(f"{folder / PLANS}: configuration {configuration!r} has no 2D or 3D patch_size of "
                                 "positive whole numbers")
    if not isinstance(dataset, dict) or not isinstance(dataset.get("labels"), dict) \
            or not isinstance(dataset.get("channel_names") or dataset.get("modality"), dict):
        raise ConfidenceSegError(f"{folder / DATASET} lacks labels or channel_names")
    classes, regions, _ = class_names_of_labels(dataset["labels"], folder / DATASET)
    available = sorted((item.name for item in folder.iterdir() if FOLD_NAME.match(item.name)
                        and (item / CHECKPOINT).is_file()), key=lambda name: (len(name), name))
    chosen = list(folds) if folds else available
    missing = [name for name in chosen if name not in available]
    if not chosen or missing or len(chosen) > MAX_FOLDS:
        unfinished = sorted(item.name for item in folder.iterdir() if FOLD_NAME.match(item.name)
                            and not (item / CHECKPOINT).is_file() and any(item.glob("checkpoint_*.pth")))
        hint = (f" ({unfinished[0]} has only its best or latest checkpoint: nnU-Net writes {CHECKPOINT} when the "
                "fold's training ends)") if unfinished else ""
        raise ConfidenceSegError(f"{folder}: no fold with {CHECKPOINT} to use{hint}" if not chosen else
                                 f"{folder}: fold {missing[0]} has no {CHECKPOINT}" if missing else
                                 f"{folder}: at most {MAX_FOLDS} folds, got {len(chosen)}")
    for name in chosen:
        size = (folder / name / CHECKPOINT).stat().st_size
        if size > MAX_CHECKPOINT_BYTES:
            raise ConfidenceSegError(f"{folder / name / CHECKPOINT} is {size / 2**30:.1f} GiB: larger than any "
                                     "nnU-Net checkpoint")
    channels = dataset.get("channel_names") or dataset.get("modality")
    return NnunetFolder(folder.resolve(), configuration, tuple(chosen), classes, len(patch), len(channels), regions)


def configuration_settings(plans, configuration: str, where: Path) -> dict:
    """The settings of ``configuration`` in an nnU-Net ``plans.json``, with those it inherits (``inherits_from``,
    as nnU-Net's ``PlansManager.get_configuration`` resolves them: the parent's, updated by the child's)."""
    configurations = plans.get("configurations") if isinstance(plans, dict) else None
    chain, name = [], configuration
    while name is not None:
        settings = configurations.get(name) if isinstance(configurations, dict) else None
        if not isinstance(settings, dict) or name in chain:
            raise ConfidenceSegError(f"{where} has no configuration {name!r}" if name not in chain else
                                     f"{where}: configuration {name!r} inherits from itself")
        chain.append(name)
        name = settings.get("inherits_from")
    resolved = {}
    for name in reversed(chain):
        resolved.update(configurations[name])
    return resolved


def is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_architecture(settings: dict, where: Path) -> None:
    """Refuse a plan whose network or layer types are code from elsewhere than nnU-Net's architectures
    (:data:`NETWORK_PACKAGE`) and torch's layers (:data:`LAYER_PACKAGE`): nnU-Net imports and calls whatever
    dotted name the plan gives (``pydoc.locate``), and model files are data. Plans of the old format name
    their network by a keyword that nnU-Net maps to its own."""
    architecture = settings.get("architecture")
    if architecture is None and "UNet_class_name" in settings:
        return
    kwargs = architecture.get("arch_kwargs") if isinstance(architecture, dict) else None
    imported = architecture.get("_kw_requires_import", []) if isinstance(architecture, dict) else None
    if not isinstance(kwargs, dict) or not isinstance(imported, list) \
            or not all(isinstance(key, str) and key in kwargs for key in imported):
        raise ConfidenceSegError(f"{where}: the configuration's architecture lacks arch_kwargs or names keys it "
                                 "does not have")
    named = [("network_class_name", architecture.get("network_class_name"), NETWORK_PACKAGE),
             *((key, kwargs[key], LAYER_PACKAGE) for key in imported if kwargs[key] is not None)]
    for key, value, package in named:
        if not isinstance(value, str) or not DOTTED_NAME.match(value) or not value.startswith(package):
            raise ConfidenceSegError(f"{where}: {key} {str(value)[:80]!r} is not in {package.rstrip('.')}; "
                                     "refusing a plan that names other code")


def nnunet_config_data(model: NnunetFolder) -> dict:
    """The bundle config of an nnU-Net folder used as it is (no quality model)."""
    return {"nnunet": {"folder": str(model.folder), "configuration": model.configuration, "folds": list(model.folds),
                       "checkpoint": CHECKPOINT, "regions": model.regions},
            "classes": list(model.classes), "members": list(model.folds),
            "preprocessing": {"spatial_dims": model.spatial_dims},
            "architecture": {"name": "nnU-Net", "spatial_dims": model.spatial_dims, "in_channels": model.in_channels}}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(2**22):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(model: NnunetFolder) -> dict[str, str]:
    """SHA-256 of the files that make the model: plans, dataset.json, every used fold's checkpoint
    (a second or two for five 250 MB checkpoints)."""
    files = [PLANS, DATASET, *(f"{fold}/{CHECKPOINT}" for fold in model.folds)]
    return {name: _sha256(model.folder / name) for name in files}


def check_wrapped(section, where: Path) -> NnunetFolder:
    """The nnU-Net folder a calibrated bundle wraps (its ``nnunet`` section), refused when it has moved or
    when any of its files changed since the calibration."""
    if not isinstance(section, dict) or not isinstance(section.get("folder"), str) \
            or not isinstance(section.get("fingerprint"), dict) or not isinstance(section.get("folds"), list):
        raise ConfidenceSegError(f"{where}: the nnunet section is malformed")
    folder = Path(section["folder"])
    if not folder.is_dir():
        raise ConfidenceSegError(f"{where} wraps the nnU-Net model {folder}, which is not there any more: "
                                 "restore it or calibrate again")
    model = read_nnunet_folder(folder, [str(fold) for fold in section["folds"]])
    current = fingerprint(model)
    changed = [name for name, digest in section["fingerprint"].items() if current.get(name) != digest]
    if changed or set(current) != set(section["fingerprint"]):
        raise ConfidenceSegError(f"the nnU-Net model {folder} changed since {where.parent} was calibrated "
                                 f"({(changed or ['its folds'])[0]} differs): calibrate it again")
    return model
