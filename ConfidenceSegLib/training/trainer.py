"""Train an ensemble from a dataset folder and write it as a model bundle.

Steps: split the dataset's subjects into training and validation (never frames of one subject on
both sides), load both splits once into memory on the model grid, train ``members`` networks from
different seeds on the same split (each keeps its best validation checkpoint), measure the
ensemble's per-class validation Dice on the image grid, choose each class's postprocessing on the
validation subjects (:mod:`ConfidenceSegLib.inference.postprocessing`; 2D models), save the bundle atomically with the
settings, data summary and metrics in ``config.json``, and (by default) calibrate its quality
model on the calibration subjects, which the networks never saw and which chose nothing, each
image also degraded once per kind (:mod:`ConfidenceSegLib.quality.degradations`)
(:func:`ConfidenceSegLib.jobs.calibrate.calibrate_bundle`).

Default model (2D): a MONAI UNet of widths 16-32-64-128-256 (four 2x downsamplings: the deepest
features see most of the frame), frames resized to a long side of 256 px (multiples of 16),
3 members x 30 epochs: 14 minutes for lung ultrasound (208 frames) on 2 idle CPU cores (measured),
about 10 MB on disk.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, replace
from pathlib import Path

import monai
import numpy as np
import torch
from tqdm.auto import tqdm

from .. import __version__
from ..annotation.datasets import Dataset, load_dataset, split_subjects_by_role, subject_folds
from ..contract import ConfidenceSegError
from ..inference.postprocessing import choose_postprocessing
from ..io.safe_files import check_free_space, check_output_folder, check_replaceable_folder
from ..jobs.calibrate import calibrate_bundle
from ..jobs.labelled import LabelledRun
from ..jobs.settings import PredictionSettings
from ..model.bundle import save_bundle
from ..model.bundle_config import FORMAT_VERSION, BundleConfig, not_a_bundle, read_config
from ..model.devices import describe_device, pick_device
from ..model.networks import build_network
from ..model.preprocessing import spacing_zyx
from ..quality.degradations import DEGRADATIONS
from ..quality.metrics import dice
from .augment import AUGMENTATION_SUMMARY
from .cross_validation import cross_validation_results, train_folds
from .data import default_input_size, first_frame_shape, load_frames
from .defaults import (
    DEFAULT_ARCHITECTURE,
    DEFAULT_BATCH_SIZE,
    DEFAULT_BATCH_SIZE_3D,
    DEFAULT_CALIBRATION_FRACTION,
    DEFAULT_EPOCHS,
    DEFAULT_LONG_SIDE,
    DEFAULT_MEMBERS,
    DEFAULT_ROI_SIZE,
    DEFAULT_THRESHOLD,
    DEFAULT_VALIDATION_FRACTION,
    LABEL_MODES,
    default_fold_epochs,
)
from .loop import (
    DECISION_THRESHOLD,
    LoopSettings,
    cpu_threads,
    deterministic_algorithms,
    dice_per_class,
    train_member,
)
from .volumes import load_volumes


@dataclass
class TrainOptions:
    """Everything ``confidenceseg train`` can set (see its ``--help``)."""

    dataset: Path
    out: Path
    classes: list[str] | None = None
    label_mode: str = "threshold"
    threshold: float | None = None
    ignore_band: tuple[float, float] | None = None
    members: int = DEFAULT_MEMBERS
    #: None with ``folds``: :data:`FOLD_STEP_BUDGET` optimiser steps per member, in whole epochs.
    epochs: int | None = DEFAULT_EPOCHS
    seed: int = 0
    device: str = "auto"
    overwrite: bool = False
    spatial_dims: int = 2
    input_size: list[int] | None = None
    long_side: int = DEFAULT_LONG_SIDE
    spacing: list[float] | None = None
    roi_size: list[int] | None = None
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION
    #: Subjects held out to calibrate the quality badge (default: DEFAULT_CALIBRATION_FRACTION, 0 without calibration).
    calibration_fraction: float | None = None
    #: Subjects held out from everything, for an honest evaluation afterwards (``confidenceseg evaluate``).
    test_fraction: float = 0.0
    batch_size: int | None = None
    learning_rate: float = 3e-3
    augment: bool = True
    architecture: dict | None = None
    calibrate: bool = True
    #: Subject-level cross-validation: K members, each trained on K-1 folds (``--folds``); None = one split.
    folds: int | None = None
    command: str | None = None
    show_progress: bool = True


def check_options(options: TrainOptions) -> None:
    """Refuse impossible settings before any work starts."""
    if options.label_mode not in LABEL_MODES:
        raise ConfidenceSegError(f"unknown label mode {options.label_mode!r}; choose one of {', '.join(LABEL_MODES)}")
    if options.ignore_band is not None and options.label_mode != "threshold":
        raise ConfidenceSegError("--ignore-band applies to --label-mode threshold only")
    if options.label_mode == "soft" and options.threshold is not None:
        raise ConfidenceSegError("--threshold does not apply to --label-mode soft")
    if options.epochs is None and options.folds is None:
        raise ConfidenceSegError("--epochs is needed without --folds")
    if options.members < 1 or (options.epochs is not None and options.epochs < 1) or (options.batch_size is not None
                                                                                      and options.batch_size < 1):
        raise ConfidenceSegError("--members, --epochs and --batch-size must be at least 1")
    if options.spatial_dims not in (2, 3):
        raise ConfidenceSegError(f"--spatial-dims must be 2 or 3; got {options.spatial_dims}")
    if options.spatial_dims == 3 and options.input_size is not None:
        raise ConfidenceSegError("--input-size is for 2D models; 3D models use --spacing and --roi-size")
    if options.spatial_dims == 2 and (options.spacing is not None or options.roi_size is not None):
        raise ConfidenceSegError("--spacing and --roi-size are for 3D models (--spatial-dims 3)")
    if options.roi_size is not None and (len(options.roi_size) != 3 or any(s < 16 or s % 16 for s in options.roi_size)):
        raise ConfidenceSegError(f"--roi-size needs three multiples of 16; got {options.roi_size}")
    if options.spacing is not None and (len(options.spacing) != 3 or min(options.spacing) <= 0):
        raise ConfidenceSegError(f"--spacing needs three positive values (z y x, mm); got {options.spacing}")
    if options.folds is not None and options.folds < 2:
        raise ConfidenceSegError(f"--folds needs at least 2 folds; got {options.folds}")
    if options.folds is not None and options.spatial_dims != 2:
        raise ConfidenceSegError("--folds is for 2D models")
    if not 0.0 < options.validation_fraction < 1.0:
        raise ConfidenceSegError(f"validation fraction must lie in (0, 1); got {options.validation_fraction}")
    held_out = held_out_fractions(options)
    if not min(held_out.values()) >= 0.0 or sum(held_out.values()) >= 1.0:
        raise ConfidenceSegError("the validation, calibration and test fractions must be >= 0 and leave "
                                 f"subjects to train on; got {held_out}")
    if options.calibrate and held_out["calibration"] == 0 and options.folds is None:
        raise ConfidenceSegError("calibration needs a calibration fraction > 0 (or pass --no-calibrate)")
    if options.input_size is not None and (len(options.input_size) != 2 or min(options.input_size) < 16
                                           or any(s % 16 for s in options.input_size)):
        raise ConfidenceSegError(f"--input-size needs two multiples of 16 (height width); got {options.input_size}")


def held_out_fractions(options: TrainOptions) -> dict[str, float]:
    """Fractions of all subjects per held-out role, in the order they are drawn. With ``--folds`` the
    folds validate (no validation split) and only an explicit ``--calibration-fraction`` holds out
    calibration subjects."""
    calibration = options.calibration_fraction
    if options.folds is not None:
        return {"test": options.test_fraction, "calibration": calibration or 0.0}
    if calibration is None:
        calibration = DEFAULT_CALIBRATION_FRACTION if options.calibrate else 0.0
    return {"test": options.test_fraction, "validation": options.validation_fraction, "calibration": calibration}


def select_classes(dataset: Dataset, classes: list[str] | None) -> list[str]:
    if not classes:
        return list(dataset.classes)
    unknown = [name for name in classes if name not in dataset.classes]
    if unknown:
        raise ConfidenceSegError(f"dataset {dataset.name} has no class {', '.join(unknown)} "
                                 f"(it has {', '.join(dataset.classes)})")
    if len(set(classes)) != len(classes):
        raise ConfidenceSegError("--classes lists a class twice")
    return list(classes)


def label_mode_config(options: TrainOptions) -> dict:
    threshold = options.threshold if options.threshold is not None else DEFAULT_THRESHOLD[options.label_mode]
    return {"mode": options.label_mode, "threshold": threshold,
            "ignore_band": list(options.ignore_band) if options.ignore_band else None}


def model_preprocessing(options: TrainOptions, dataset: Dataset) -> dict:
    """The bundle's ``preprocessing``: 2D model grid (default from the first image) or 3D spacing and ROI."""
    if options.spatial_dims == 3:
        spacing = options.spacing or spacing_zyx(dataset.cases[0].read_image())
        return {"spatial_dims": 3, "spacing": [float(s) for s in spacing],
                "roi_size": [int(s) for s in options.roi_size or DEFAULT_ROI_SIZE], "intensity": {"method": "zscore"},
                "choice": "volumes resampled to the first training volume's spacing unless --spacing; "
                          "random ROI crops for training, sliding windows for inference"}
    input_size = options.input_size or default_input_size(first_frame_shape(dataset.cases), options.long_side)
    return {"spatial_dims": 2, "input_size": [int(s) for s in input_size], "intensity": {"method": "zscore"},
            "choice": f"frames resized to a long side of {max(input_size)} px (multiples of 16), "
                      "the default grid: sized for training on 2 CPU cores"}


def choose_class_postprocessing(networks, validation, classes: list[str]) -> dict:
    """The bundle's ``postprocessing`` (2D): per class the steps that raise the ensemble's validation Dice."""
    probabilities = list(validation.image_grid_probabilities(networks))
    references = [confidence > DECISION_THRESHOLD for confidence in validation.confidences]
    chosen = choose_postprocessing(probabilities, references, dice, DECISION_THRESHOLD)
    return {name: chosen[index] for index, name in enumerate(classes)}


def with_fold_epochs(options: TrainOptions, fold_frames: list[int], batch_size: int) -> TrainOptions:
    """``options`` with the default epochs of a fold member (its frames: all folds but one, on average)
    and the command line that spells them out."""
    member_frames = round(sum(fold_frames) * (len(fold_frames) - 1) / len(fold_frames))
    epochs = default_fold_epochs(member_frames, batch_size)
    command = f"{options.command} --epochs {epochs}" if options.command else None
    return replace(options, epochs=epochs, command=command)


def split_summary(dataset: Dataset, subjects: list[str]) -> dict:
    return {"subjects": len(subjects), "cases": len(dataset.cases_of_subjects(subjects)), "subject_ids": subjects}


def bundle_bytes(architecture: dict, n_classes: int, members: int) -> int:
    """Disk space the trained bundle's weights take (float32), to check before training rather than after."""
    parameters = sum(p.numel() for p in build_network(architecture, n_classes).parameters())
    return 4 * parameters * members


def train_bundle(options: TrainOptions, dataset: Dataset | None = None) -> BundleConfig:
    """Train the ensemble described by ``options`` and write the bundle to ``options.out``; returns its config.

    ``dataset``: ``options.dataset`` already loaded (the command line loads it before the training stack).
    """
    check_options(options)
    architecture = options.architecture or dict(DEFAULT_ARCHITECTURE, spatial_dims=options.spatial_dims)
    if architecture["spatial_dims"] != options.spatial_dims:
        raise ConfidenceSegError("the architecture's spatial_dims differs from --spatial-dims")
    batch_size = options.batch_size or (DEFAULT_BATCH_SIZE if options.spatial_dims == 2 else DEFAULT_BATCH_SIZE_3D)
    check_output_folder(options.out.parent, [options.out.name], options.overwrite)
    check_replaceable_folder(options.out, not_a_bundle, inputs=[options.dataset])
    started = time.perf_counter()
    dataset = dataset or load_dataset(options.dataset)
    classes = select_classes(dataset, options.classes)
    check_free_space(options.out.parent, bundle_bytes(architecture, len(classes), options.folds or options.members))
    split = split_subjects_by_role(dataset.subjects(), held_out_fractions(options), options.seed)
    preprocessing = model_preprocessing(options, dataset)
    label_mode = label_mode_config(options)
    device = pick_device(options.device)
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads())
    load = load_frames if options.spatial_dims == 2 else load_volumes
    cross_validation = None
    with tqdm(total=len(dataset.cases_of_subjects(split["training"] + split.get("validation", []))), desc="loading",
              unit="case", disable=not options.show_progress) as bar:
        if options.folds:
            folds = subject_folds(split["training"], options.folds, options.seed)
            fold_sets = [load(dataset.cases_of_subjects(fold), classes, preprocessing, label_mode,
                              keep_confidence=True, progress=bar) for fold in folds]
        else:
            training = load(dataset.cases_of_subjects(split["training"]), classes, preprocessing, label_mode,
                            progress=bar)
            validation = load(dataset.cases_of_subjects(split["validation"]), classes, preprocessing, label_mode,
                              keep_confidence=True, progress=bar)
    if options.epochs is None:
        options = with_fold_epochs(options, [len(fold_set) for fold_set in fold_sets], batch_size)
    settings = LoopSettings(epochs=options.epochs, batch_size=batch_size,
                            learning_rate=options.learning_rate, augment=options.augment)
    with deterministic_algorithms(device):
        if options.folds:
            outcomes = train_folds(fold_sets, folds, architecture, len(classes), settings, options.seed, device,
                                   options.show_progress)
            results = [outcome.member for outcome in outcomes]
            subject_of_case = {case.id: case.subject for case in dataset.cases}
            postprocessing, cross_validation = cross_validation_results(outcomes, classes, subject_of_case)
            ensemble_dice = [cross_validation["classes"][name]["dice_over_frames"]["mean"] for name in classes]
            validation_cases = dataset.cases_of_subjects(split["training"])
        else:
            results = [train_member(training, validation, architecture, len(classes), settings,
                                    seed=options.seed * 1000 + index, device=device,
                                    description=f"member {index + 1}/{options.members}",
                                    show_progress=options.show_progress) for index in range(options.members)]
            ensemble_dice = dice_per_class([result.network for result in results], validation)
            postprocessing = choose_class_postprocessing([result.network for result in results], validation,
                                                         classes) if options.spatial_dims == 2 else {}
            validation_cases = dataset.cases_of_subjects(split["validation"])
    networks = [result.network for result in results]

    config = {
        "format_version": FORMAT_VERSION,
        "architecture": architecture,
        "classes": classes,
        "preprocessing": preprocessing,
        "label_mode": label_mode,
        "postprocessing": postprocessing,
        "training": {
            "dataset": dataset.name,
            "dataset_source": dataset.metadata.get("source"),
            "license": dataset.metadata.get("license"),
            "modality": dataset.metadata.get("modality"),
            "split": {role: split_summary(dataset, subjects) for role, subjects in split.items() if subjects},
            "validation_fraction": options.validation_fraction,
            "held_out_fractions": held_out_fractions(options),
            "command": options.command,
            "seed": options.seed,
            "member_seeds": [result.seed for result in results],
            "epochs": options.epochs,
            "best_epochs": [result.best_epoch for result in results],
            "learning_curves": [[{"epoch": entry["epoch"], "loss": round(entry["loss"], 4),
                                  "validation_dice": [round(d, 4) for d in entry["validation_dice"]]}
                                 for entry in result.history] for result in results],
            "batch_size": batch_size,
            "learning_rate": options.learning_rate,
            "augmentation": AUGMENTATION_SUMMARY if options.augment else None,
            "loss": "weighted Dice semimetric (MONAI DiceLoss soft_label) + weighted soft-target BCE",
            "device": describe_device(device),
            "cpu_threads": torch.get_num_threads() if device.type == "cpu" else None,
            "time_seconds": None,
            "software": {"confidenceseg": __version__, "torch": torch.__version__, "monai": monai.__version__,
                         "python": platform.python_version()},
        },
        "metrics": {"validation": {
            "cases": len(validation_cases),
            "dice": dict(zip(classes, map(float, ensemble_dice), strict=True)),
            "mean_dice": float(np.mean(ensemble_dice)),
            "member_mean_dice": [result.best_dice for result in results],
            "definition": "mean over validation frames (or volumes) of Dice(ensemble probability > 0.5, reference), "
                          "on the image grid; reference = confidence > 0.5; absent in both = 1"
                          if cross_validation is None
                          else "out-of-fold mean over the training subjects' frames (see cross_validation)"}},
    }
    if cross_validation is not None:
        config["metrics"]["cross_validation"] = cross_validation
        config["training"]["folds"] = [sorted(fold) for fold in folds]
    config["training"]["time_seconds"] = round(time.perf_counter() - started, 1)
    save_bundle(options.out, config, networks, overwrite=options.overwrite)
    if options.calibrate and split.get("calibration"):
        run = LabelledRun(PredictionSettings(device=device, maps=()), tuple(DEGRADATIONS), options.seed,
                          options.show_progress)
        calibrate_bundle(options.out, dataset, dataset.cases_of_subjects(split["calibration"]), run=run)
    return read_config(options.out)
