"""Loading an nnU-Net v2 model to predict with nnunetv2's own code (optional extra ``[nnunet]``).

The checkpoints are pickles. They are read with ``torch.load(..., weights_only=True)`` and an explicit
allowlist of the numpy types they hold (:data:`SAFE_GLOBALS`: a numpy scalar and dtypes, in the
training log); anything else (an object of another class, a ``__reduce__`` payload) makes torch refuse
the file before anything in it runs, and the model is refused with one line. The network is built
from ``plans.json`` and ``dataset.json`` by the trainer class's own ``build_network_architecture``
(looked up by name as nnU-Net does: in nnunetv2, then in the folders ``nnUNet_extTrainer`` names; see
:func:`trainer_class_named`), and
nnU-Net's predictor is set up with ``manual_initialization``: its preprocessing, sliding window with
Gaussian weighting and mirroring are nnU-Net's, as configured in the plans; nothing of them is
re-implemented here. What nnU-Net prints goes to stderr (stdout carries the progress lines and the
worker's answers).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import pickle
import pkgutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..contract import ConfidenceSegError
from .bundle import ModelBundle
from .bundle_config import BundleConfig
from .nnunet_folder import CHECKPOINT, DATASET, NNUNET_EXTRA, PLANS

#: The non-tensor globals of an nnU-Net checkpoint's pickle: numpy scalars (numpy >= 2 and 1.x names)
#: and dtypes, from the training log. Nothing else is ever unpickled.
SAFE_GLOBALS = [np._core.multiarray.scalar, (np._core.multiarray.scalar, "numpy.core.multiarray.scalar"), np.dtype,
                *(getattr(np.dtypes, name) for name in ("Float16DType", "Float32DType", "Float64DType", "Int32DType",
                                                        "Int64DType", "BoolDType"))]


def first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def load_checkpoint(path: Path) -> dict:
    """An nnU-Net checkpoint's contents, read without running any code it may carry."""
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        detail = next((line.strip() for line in str(error).splitlines() if "GLOBAL" in line), "")
        raise ConfidenceSegError(f"refusing {path}: it holds more than weights and plain data"
                                 f"{f' ({detail[:120]})' if detail else ''}; it was not run") from None
    except (RuntimeError, EOFError, OSError) as error:
        raise ConfidenceSegError(f"cannot read the nnU-Net checkpoint {path}: {first_line(error)}") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("network_weights"), dict):
        raise ConfidenceSegError(f"{path} is not an nnU-Net checkpoint (no network_weights)")
    return checkpoint


@dataclass
class NnunetBundle(ModelBundle):
    """A loaded nnU-Net model: a :class:`~.bundle.ModelBundle` whose members are its folds, with one weight
    set per fold and what nnU-Net's predictor needs."""

    #: Fold names, one per member.
    members: list[str]
    weights: list[dict]
    plans_manager: object
    configuration_manager: object
    dataset_json: dict
    trainer_name: str
    mirror_axes: tuple[int, ...] | None
    #: The class named ``trainer_name``, found once when the model is loaded (:func:`trainer_class_named`).
    trainer_class: type

    @property
    def label_manager(self):
        return self.plans_manager.get_label_manager(self.dataset_json)

    def predictor(self, device: torch.device):
        """nnU-Net's predictor for ``device`` with the first fold's weights (members are swapped in turn)."""
        from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
        from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels

        inputs = determine_num_input_channels(self.plans_manager, self.configuration_manager, self.dataset_json)
        try:
            network = self.trainer_class.build_network_architecture(
                self.plans_manager, self.configuration_manager, inputs, self.label_manager.num_segmentation_heads,
                enable_deep_supervision=False)
        except Exception as error:  # noqa: BLE001 (any failure of nnU-Net's builder on a plan's arguments)
            raise ConfidenceSegError(f"{Path(self.config.nnunet['folder']) / PLANS}: nnunetv2 cannot build its "
                                     f"network ({first_line(error)})") from None
        try:
            network.load_state_dict(self.weights[0])
        except RuntimeError as error:
            raise ConfidenceSegError(f"the weights of {self.members[0]} do not fit the network of "
                                     f"{PLANS}: {first_line(error)}") from None
        with contextlib.redirect_stdout(io.StringIO()):  # its notes on devices: not for the user
            predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=True,
                                        perform_everything_on_device=device.type == "cuda", device=device,
                                        verbose=False, verbose_preprocessing=False, allow_tqdm=False)
            predictor.manual_initialization(network, self.plans_manager, self.configuration_manager, self.weights,
                                            self.dataset_json, self.trainer_name, self.mirror_axes)
        return predictor


def check_plan_resolves(configuration_manager, in_channels: int, where: Path) -> None:
    """Look up now, before any compute, what nnU-Net finds by name in a plan when it predicts (its preprocessor,
    resampling functions and each channel's normalization, all within nnunetv2): a plan naming something
    nnunetv2 lacks is refused in one line instead of failing in the middle of a prediction."""
    import nnunetv2
    from nnunetv2.utilities.find_class_by_name import recursive_find_python_class

    normalization = os.path.join(nnunetv2.__path__[0], "preprocessing", "normalization")
    try:
        schemes = list(configuration_manager.normalization_schemes)[:in_channels]
        with contextlib.redirect_stdout(sys.stderr):
            found = {"preprocessor_name": configuration_manager.preprocessor_class,
                     **{f"resampling_fn_{kind}": getattr(configuration_manager, f"resampling_fn_{kind}")
                        for kind in ("data", "probabilities", "seg")},
                     **{f"normalization_schemes[{channel}] {scheme!r}": recursive_find_python_class(
                         normalization, scheme, "nnunetv2.preprocessing.normalization")
                        for channel, scheme in enumerate(schemes)}}
    except Exception as error:  # noqa: BLE001 (a malformed entry fails in nnU-Net's own lookups)
        raise ConfidenceSegError(f"{where}: nnunetv2 cannot use this plan ({first_line(error)})") from None
    missing = [key for key, value in found.items() if value is None]
    if len(schemes) < in_channels or missing:
        what = missing[0] if missing else f"normalization_schemes for {in_channels} channels"
        raise ConfidenceSegError(f"{where}: nnunetv2 has no {what} as this plan names it; refusing it")


def trainer_class_named(name: str) -> type | None:
    """The nnU-Net trainer class ``name``: looked up as nnU-Net does (nnunetv2's trainers, then the folders in
    ``nnUNet_extTrainer``; its notes to stderr). nnU-Net's lookup imports trainer modules one by one and stops at
    the first that fails to import (a variant needing a torchvision built for another torch raises
    ``operator torchvision::nms does not exist``, so every variant trainer's model failed); then nnunetv2's
    trainer modules are searched again, passing over those that cannot be imported. None: not found."""
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

    try:
        with contextlib.redirect_stdout(sys.stderr):
            return recursive_find_trainer_class_by_name(name)
    except Exception:  # noqa: BLE001 (not found, or a module on the way failed to import)
        import nnunetv2.training.nnUNetTrainer as trainers

    for module in pkgutil.walk_packages(trainers.__path__, f"{trainers.__name__}.", onerror=lambda _: None):
        try:
            with contextlib.redirect_stdout(sys.stderr):
                found = getattr(importlib.import_module(module.name), name, None)
        except Exception:  # noqa: BLE001 (a module that cannot be imported here holds no usable trainer)
            continue
        if isinstance(found, type):
            return found
    return None


def load_nnunet_bundle(path: str | os.PathLike, config: BundleConfig) -> NnunetBundle:
    """Load every fold's weights of the nnU-Net model ``config`` describes or wraps (safely: see above)."""
    try:
        from batchgenerators.utilities.file_and_folder_operations import load_json
        from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
    except ImportError:
        raise ConfidenceSegError(f"nnU-Net models need the [nnunet] extra: {NNUNET_EXTRA}") from None
    section = config.nnunet
    folder = Path(section["folder"])
    weights, trainer_name, mirror_axes = [], None, None
    for fold in section["folds"]:
        checkpoint = load_checkpoint(folder / fold / CHECKPOINT)
        if trainer_name is None:
            trainer_name = str(checkpoint.get("trainer_name") or "nnUNetTrainer")
            mirror_axes = checkpoint.get("inference_allowed_mirroring_axes")
            configuration = (checkpoint.get("init_args") or {}).get("configuration", section["configuration"])
            if configuration != section["configuration"]:
                raise ConfidenceSegError(f"{folder / fold / CHECKPOINT} was trained as {configuration!r}, the folder "
                                         f"says {section['configuration']!r}")
        weights.append(checkpoint["network_weights"])
    plans_manager = PlansManager(load_json(str(folder / PLANS)))
    try:
        configuration_manager = plans_manager.get_configuration(section["configuration"])
    except Exception as error:  # noqa: BLE001 (an old-format plan nnU-Net cannot convert, ...)
        raise ConfidenceSegError(f"{folder / PLANS}: nnunetv2 cannot use this plan ({first_line(error)})") from None
    check_plan_resolves(configuration_manager, config.in_channels, folder / PLANS)
    trainer_class = trainer_class_named(trainer_name)
    if trainer_class is None:
        raise ConfidenceSegError(f"the nnU-Net model {folder} was trained with {trainer_name}, which nnunetv2 does "
                                 "not have (install the package that defines it, or name its folder in "
                                 "nnUNet_extTrainer)")
    return NnunetBundle(Path(path), config, list(section["folds"]), weights, plans_manager, configuration_manager,
                        load_json(str(folder / DATASET)), trainer_name,
                        tuple(mirror_axes) if mirror_axes is not None else None, trainer_class)
