"""Model bundles: a folder with ``config.json`` and one ``.safetensors`` file per ensemble member.

Weights are loaded with safetensors (no pickle, so loading never executes code). ``config.json``
(format version :data:`FORMAT_VERSION`) holds:

- ``architecture``: network settings for :func:`~ConfidenceSegLib.model.networks.build_network`;
- ``classes``: class names, in output-channel order;
- ``preprocessing``: ``spatial_dims``, ``input_size`` (2D models: frames are resized to it,
  SimpleITK order (y, x)), ``spacing`` and ``roi_size`` (3D models: resampling and sliding window),
  ``intensity`` (normalisation, e.g. ``{"method": "zscore"}``);
- ``label_mode``: how the model was trained (``mode``, ``threshold``, ``ignore_band``);
- ``members``: weight file names; ``training``: data summary and command; ``metrics``:
  validation metrics; ``quality``: the calibrated quality model (added by calibration).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..contract import ConfidenceSegError
from ..io.safe_files import atomic_output, check_replaceable_folder, give_default_permissions, write_text_atomic
from ..io.stops import uninterruptible
from .bundle_config import CONFIG_NAME, FORMAT_VERSION, BundleConfig, member_path, not_a_bundle, read_config
from .networks import ConfidenceSegNet, build_network


@dataclass
class ModelBundle:
    """A loaded bundle: its folder, its checked config and one network per ensemble member (CPU, eval mode)."""

    path: Path
    config: BundleConfig
    members: list[ConfidenceSegNet]

    @property
    def classes(self) -> list[str]:
        return self.config.classes

    @property
    def spatial_dims(self) -> int:
        return self.config.spatial_dims


def load_bundle(path: str | os.PathLike, config: BundleConfig | None = None) -> ModelBundle:
    """Load a bundle's every member's weights (safetensors only); ``config``: its config if already read.
    An nnU-Net model (a trained-model folder, or a bundle wrapping one) loads as an
    :class:`~.nnunet_model.NnunetBundle`."""
    folder = Path(path)
    config = read_config(folder) if config is None else config
    if config.nnunet is not None:
        from .nnunet_model import load_nnunet_bundle

        return load_nnunet_bundle(folder, config)
    members = []
    for name in config.members:
        weights_path = member_path(folder, name)
        if not weights_path.is_file():
            raise ConfidenceSegError(f"model bundle {folder} is incomplete: weight file {name} is missing")
        network = build_network(config.architecture, len(config.classes))
        try:
            state = load_file(str(weights_path))
        except Exception as error:
            raise ConfidenceSegError(f"cannot read weights {weights_path}: {error}") from None
        try:
            network.load_state_dict(state)
        except RuntimeError as error:
            raise ConfidenceSegError(
                f"weights {weights_path} do not fit the architecture in {CONFIG_NAME} "
                f"({len(config.classes)} classes): {str(error).splitlines()[0]}") from None
        members.append(network.eval())
    return ModelBundle(path=folder, config=config, members=members)


def save_bundle(path: str | os.PathLike, config: dict, members: list[torch.nn.Module], overwrite: bool = False,
                data_files: dict[str, bytes] | None = None) -> None:
    """Write a bundle folder atomically: built in a temporary folder beside it, then renamed.

    An existing folder is replaced only with ``overwrite`` and only when it is a bundle
    (:func:`~.bundle_config.not_a_bundle`). ``data_files``: further ``.safetensors``
    files by name (e.g. the RCA references of the quality model), data like the weights. A config with
    an ``nnunet`` section wraps an nnU-Net model (:mod:`.nnunet_folder`): ``members`` is empty and the
    folds stay where they are.
    """
    folder = Path(path)
    if folder.exists() and not overwrite:
        raise ConfidenceSegError(f"output exists: {folder} (pass --overwrite to replace it)")
    check_replaceable_folder(folder, not_a_bundle)  # only ever replaces a bundle
    folder.parent.mkdir(parents=True, exist_ok=True)
    config = dict(config, format_version=FORMAT_VERSION, members=list(config["members"]) if "nnunet" in config
                  else [f"member_{index}.safetensors" for index in range(len(members))])
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    give_default_permissions(staging)
    try:
        for name, member in zip(config["members"] if members else [], members, strict=True):
            state = {key: value.detach().cpu().contiguous() for key, value in member.state_dict().items()}
            save_file(state, str(staging / name))
            give_default_permissions(staging / name)
        for name, data in (data_files or {}).items():
            member_path(staging, name).write_bytes(data)
            give_default_permissions(staging / name)
        (staging / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        with uninterruptible():  # a stop between the renames would lose the old bundle
            if folder.exists():
                backup = folder.with_name(f".{folder.name}.old")
                shutil.rmtree(backup, ignore_errors=True)
                folder.rename(backup)
                staging.rename(folder)
                shutil.rmtree(backup, ignore_errors=True)
            else:
                staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def update_config(path: str | os.PathLike, updates: dict, data_files: dict[str, bytes] | None = None) -> dict:
    """Merge ``updates`` into a bundle's config.json atomically (e.g. a recalibrated quality model),
    after writing ``data_files`` (``.safetensors`` by name) atomically beside it."""
    folder = Path(path)
    for name, data in (data_files or {}).items():
        with atomic_output(member_path(folder, name), overwrite=True) as tmp:
            tmp.write_bytes(data)
    config = dict(read_config(folder).data, **updates)
    write_text_atomic(folder / CONFIG_NAME, json.dumps(config, indent=2) + "\n", overwrite=True)
    return config
