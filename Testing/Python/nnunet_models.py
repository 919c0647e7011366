"""Real nnU-Net v2 models for tests, made by nnunetv2 itself on small synthetic data (CPU, about a minute).

``tiny_nnunet_model(root, "2d")`` writes a raw dataset (12 training cases and 4 labelled test cases: a disc
(label 1) and a square (label 2) in 64 x 64 images of two channels, ``_0000`` and ``_0001`` files of two
contrasts, or a sphere (label 1) in single-channel 32^3 volumes), runs nnU-Net's fingerprint extraction,
planning and preprocessing through ``plan_and_preprocess_api``, shrinks the plan as a user may (4 or 3 stages,
8 or 4 base features, the whole image as patch), and trains 2 folds with ``nnUNetTrainer`` for a few
iterations. It returns the trained-model folder and the raw dataset folder (``imagesTs`` / ``labelsTs``: never
trained on). Tests run it as a script in a fresh process (:func:`build_in_subprocess`): nnunetv2 reads its
folder variables once, when first imported.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

#: Configuration -> (dataset id, name, patch, stages, base features, batch).
SPECS = {"2d": (503, "Disc2D", (64, 64), 4, 8, 4), "3d_fullres": (502, "Sphere3D", (32, 32, 32), 3, 4, 2)}
TRAINING_CASES, TEST_CASES, EPOCHS, ITERATIONS, FOLDS = 12, 4, 3, 4, (0, 1)


def build_in_subprocess(root: Path, configuration: str) -> tuple[Path, Path]:
    """:func:`tiny_nnunet_model` in a fresh Python process (its output on failure in the error)."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, __file__, str(root), configuration], capture_output=True,
                            encoding="utf-8", errors="replace", timeout=900,
                            env=dict(os.environ, PYTHONWARNINGS="ignore", PYTHONIOENCODING="utf-8"))
    if result.returncode != 0:
        raise RuntimeError(f"building the tiny nnU-Net {configuration} model failed:\n{result.stderr[-3000:]}")
    model, raw = result.stdout.strip().splitlines()[-2:]
    return Path(model), Path(raw)


def _write(array: np.ndarray, path: Path, spacing) -> None:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path), True)


def _case(rng: np.random.Generator, three_d: bool) -> tuple[list[np.ndarray], np.ndarray, tuple]:
    """The channel images (float32; 2D: two contrasts, 3D: one) and the label map (uint8) of one case, with a
    3-voxel empty border (nnU-Net crops to non-zero)."""
    if three_d:
        shape, spacing = (32, 32, 32), (1.6, 1.0, 1.0)
        z, y, x = np.mgrid[:32, :32, :32].astype(np.float32)
        centre, radius = [rng.uniform(11, 21) for _ in range(3)], rng.uniform(5, 8)
        label = ((z - centre[0]) ** 2 + (y - centre[1]) ** 2 + ((x - centre[2]) * 1.6) ** 2 < radius ** 2)
        label = label.astype(np.uint8)
        contrasts = [(50, 25)]
    else:
        shape, spacing = (64, 64), (1.0, 1.0)
        y, x = np.mgrid[:64, :64].astype(np.float32)
        cy, cx, radius = rng.uniform(20, 44), rng.uniform(20, 44), rng.uniform(7, 12)
        label = ((y - cy) ** 2 + (x - cx) ** 2 < radius ** 2).astype(np.uint8)
        label[(abs(y - (64 - cy)) < 4) & (abs(x - (64 - cx)) < 4)] = 2
        contrasts = [(50, 25), (-30, 90)]  # the second channel: the disc dark, the square bright
    inner = tuple(slice(3, size - 3) for size in shape)
    border = np.ones(shape, bool)
    border[inner] = False
    label[border] = 0
    images = []
    for disc, square in contrasts:
        image = np.zeros(shape, np.float32)
        image[inner] = (100 + disc * (label > 0) + (square - disc) * (label == 2) + 6 * rng.normal(size=shape))[inner]
        images.append(image)
    return images, label, spacing


def tiny_nnunet_model(root: Path, configuration: str) -> tuple[Path, Path]:
    """Train (or reuse, under ``root``) the tiny model of ``configuration``; (model folder, raw dataset)."""
    use_nnunet_root(root)
    number, name, patch, stages, features, batch = SPECS[configuration]
    dataset_name = f"Dataset{number:03d}_{name}"
    model = root / "nnUNet_results" / dataset_name / f"nnUNetTrainer__nnUNetPlans__{configuration}"
    raw = root / "nnUNet_raw" / dataset_name
    if all((model / f"fold_{fold}" / "checkpoint_final.pth").is_file() for fold in FOLDS):
        return model, raw
    _raw_dataset(raw, name, configuration != "2d")
    plan_shrunk(number, dataset_name, configuration, patch, stages, features, batch, root)
    os.environ["nnUNet_n_proc_DA"] = "0"  # noqa: SIM112 (nnU-Net's name): augmentation in this process, seeded
    for fold in FOLDS:
        train_fold(root / "nnUNet_preprocessed" / dataset_name, configuration, fold, EPOCHS, ITERATIONS)
    return model, raw


def use_nnunet_root(root: Path) -> None:
    """Point nnU-Net's folder variables at ``root`` (before ``nnunetv2`` is imported); one process each."""
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        os.environ[name] = str(root / name)
        (root / name).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("nnUNet_def_n_proc", "1")
    os.environ.setdefault("nnUNet_n_proc_DA", "1")
    os.environ.setdefault("nnUNet_compile", "false")


def _raw_dataset(raw: Path, name: str, three_d: bool) -> None:
    from batchgenerators.utilities.file_and_folder_operations import save_json

    for folder in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
        (raw / folder).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(TRAINING_CASES + TEST_CASES):
        images, label, spacing = _case(rng, three_d)
        part = "Tr" if index < TRAINING_CASES else "Ts"
        for channel, image in enumerate(images):
            _write(image, raw / f"images{part}" / f"{name.lower()}_{index:03d}_{channel:04d}.nii.gz", spacing)
        _write(label, raw / f"labels{part}" / f"{name.lower()}_{index:03d}.nii.gz", spacing)
    labels = {"background": 0, "sphere": 1} if three_d else {"background": 0, "disc": 1, "square": 2}
    channels = {"0": "intensity"} if three_d else {"0": "contrast A", "1": "contrast B"}
    save_json({"channel_names": channels, "labels": labels, "numTraining": TRAINING_CASES,
               "file_ending": ".nii.gz", "name": name}, str(raw / "dataset.json"), sort_keys=False)


def plan_shrunk(number: int, dataset_name: str, configuration: str, patch, stages: int, features: int, batch: int,
                root: Path, spacing: list[float] | None = None) -> None:
    """nnU-Net's fingerprint, plan and preprocessing of a raw dataset, with the plan shrunk as a user may: only
    ``configuration``, ``patch`` and ``batch``, ``stages`` stages of one convolution, ``features`` doubling,
    and (where given) a coarser target ``spacing``."""
    from batchgenerators.utilities.file_and_folder_operations import load_json, save_json
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (
        extract_fingerprint_dataset,
        plan_experiment_dataset,
        preprocess_dataset,
    )

    extract_fingerprint_dataset(number, num_processes=1, check_dataset_integrity=True, clean=True, verbose=False)
    plan_experiment_dataset(number)
    plans_file = root / "nnUNet_preprocessed" / dataset_name / "nnUNetPlans.json"
    plans = load_json(str(plans_file))
    plans["configurations"] = {configuration: plans["configurations"][configuration]}
    chosen = plans["configurations"][configuration]
    chosen.update(patch_size=list(patch), batch_size=batch)
    if spacing is not None:
        chosen["spacing"] = list(spacing)
    arch = chosen["architecture"]["arch_kwargs"]
    dims = len(patch)
    arch.update(n_stages=stages, features_per_stage=[features * 2 ** i for i in range(stages)],
                kernel_sizes=[[3] * dims] * stages, strides=[[1] * dims] + [[2] * dims] * (stages - 1),
                n_conv_per_stage=[1] * stages, n_conv_per_stage_decoder=[1] * (stages - 1))
    save_json(plans, str(plans_file), sort_keys=False)
    preprocess_dataset(number, "nnUNetPlans", configurations=(configuration,), num_processes=(1,), verbose=False)


def train_fold(preprocessed: Path, configuration: str, fold: int, epochs: int, iterations: int) -> None:
    """Train one fold with nnU-Net's own trainer on the CPU (``epochs`` of ``iterations``, seeded by the fold: with
    ``nnUNet_n_proc_DA=0``, augmentation in this process, every machine trains the same model); writes
    ``fold_k/checkpoint_final.pth``."""
    import random

    import torch
    from batchgenerators.utilities.file_and_folder_operations import load_json
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    plans = load_json(str(preprocessed / "nnUNetPlans.json"))
    plans["continue_training"] = False  # nnunetv2 2.8.1 reads it (run_training.py sets it)
    trainer = nnUNetTrainer(plans, configuration, fold, load_json(str(preprocessed / "dataset.json")),
                            device=torch.device("cpu"))
    trainer.num_epochs, trainer.num_iterations_per_epoch, trainer.num_val_iterations_per_epoch = epochs, iterations, 1
    trainer.save_every = 10 ** 9
    random.seed(fold)
    np.random.seed(fold)
    torch.manual_seed(fold)
    trainer.run_training()


if __name__ == "__main__":  # run in a fresh process: nnunetv2 reads its folder variables when imported
    import sys

    model_folder, raw_folder = tiny_nnunet_model(Path(sys.argv[1]), sys.argv[2])
    print(model_folder)
    print(raw_folder)
