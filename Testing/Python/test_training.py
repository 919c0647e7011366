"""Loss behaviour, tiny training runs on a synthetic dataset, and bundle round trips."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from ConfidenceSegLib.annotation.datasets import load_dataset
from ConfidenceSegLib.cli import main
from ConfidenceSegLib.contract import ConfidenceSegError
from ConfidenceSegLib.model.bundle import load_bundle
from ConfidenceSegLib.model.preprocessing import image_frames, to_image_grid, to_model_input
from ConfidenceSegLib.quality.metrics import dice
from ConfidenceSegLib.training.data import default_input_size
from ConfidenceSegLib.training.defaults import DEFAULT_ARCHITECTURE
from ConfidenceSegLib.training.loop import THREADS_ENV, busy_cores
from ConfidenceSegLib.training.losses import ConfidenceLoss
from ConfidenceSegLib.training.trainer import TrainOptions, train_bundle

TINY_ARCHITECTURE = dict(DEFAULT_ARCHITECTURE, channels=[8, 16, 32], strides=[2, 2], head_channels=8)
SHAPE = (40, 56)  # (y, x) of the synthetic images


# ---------------------------------------------------------------- losses

def test_loss_is_near_zero_for_a_confident_correct_prediction_and_large_for_the_opposite():
    target = torch.zeros(2, 1, 8, 8)
    target[:, :, 2:6, 2:6] = 1.0
    loss = ConfidenceLoss()
    good = loss(torch.where(target > 0, 20.0, -20.0), target)
    bad = loss(torch.where(target > 0, -20.0, 20.0), target)
    assert float(good) < 1e-3
    assert float(bad) > 1.0


def test_soft_target_loss_is_smallest_at_the_target_probability():
    target = torch.tensor([0.0, 0.2, 0.5, 0.8, 1.0]).repeat(20).view(1, 1, 10, 10)
    loss = ConfidenceLoss()
    exact = torch.logit(target.clamp(1e-6, 1 - 1e-6))
    at_target = float(loss(exact, target))
    for shift in (-0.5, 0.5):
        assert float(loss(exact + shift, target)) > at_target


def test_zero_weight_pixels_are_ignored():
    target = torch.zeros(1, 1, 6, 6)
    target[..., :3] = 1.0
    weight = torch.ones_like(target)
    weight[..., 5] = 0.0
    logits = torch.where(target > 0, 3.0, -3.0)
    changed = logits.clone()
    changed[..., 5] = 10.0  # a confident false positive where the weight is 0
    loss = ConfidenceLoss()
    assert float(loss(changed, target, weight)) == pytest.approx(float(loss(logits, target, weight)), abs=1e-6)
    assert float(loss(changed, target)) > float(loss(logits, target)) + 0.1


def test_weighted_dice_matches_the_formula():
    probability = torch.tensor([0.9, 0.6, 0.3, 0.1]).view(1, 1, 2, 2)
    target = torch.tensor([1.0, 1.0, 0.0, 0.0]).view(1, 1, 2, 2)
    weight = torch.tensor([1.0, 0.5, 0.5, 1.0]).view(1, 1, 2, 2)
    expected_dice = (2 * (weight * torch.minimum(probability, target)).sum()
                     / (weight * (probability + target)).sum())
    only_dice = ConfidenceLoss(dice_weight=1.0, bce_weight=0.0)
    value = only_dice(torch.logit(probability), target, weight)
    assert float(value) == pytest.approx(1.0 - float(expected_dice), abs=1e-4)


# ---------------------------------------------------------------- synthetic data

def _write(array: np.ndarray, path) -> None:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.5, 0.5))
    sitk.WriteImage(image, str(path))


def write_disc_dataset(root, n_subjects: int = 10, frames_per_subject: int = 2, raters: int = 0, seed: int = 1,
                       absent_every: int = 0):
    """Bright noisy discs on a dark background; one annotator (labels) or ``raters`` with jittered radii;
    every ``absent_every``-th frame (0: none) has no disc (an empty mask), with a small bright speck instead."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    yy, xx = np.mgrid[:SHAPE[0], :SHAPE[1]]
    cases = []
    for subject in range(n_subjects):
        for frame in range(frames_per_subject):
            case_id = f"s{subject}-f{frame}"
            cy, cx = rng.uniform(12, SHAPE[0] - 12), rng.uniform(12, SHAPE[1] - 12)
            radius = rng.uniform(6, 10)
            distance = np.hypot(yy - cy, xx - cx)
            if absent_every and len(cases) % absent_every == absent_every - 1:
                image = 60 + 100 * (distance < 1.5) + rng.normal(0, 20, SHAPE)
                radius = 0.0
            else:
                image = 60 + 100 * (distance < radius) + rng.normal(0, 20, SHAPE)
            _write(np.clip(image, 0, 255).astype(np.uint8), root / "images" / f"{case_id}.nrrd")
            entry = {"id": case_id, "subject": f"s{subject}", "image": f"images/{case_id}.nrrd"}
            if raters:
                entry["raters"] = []
                for rater in range(raters):
                    path = f"labels/{case_id}_r{rater}.nrrd"
                    _write((distance < radius + (rater - (raters - 1) / 2) * 1.5).astype(np.uint8), root / path)
                    entry["raters"].append(path)
            else:
                path = f"labels/{case_id}_disc.nrrd"
                _write((distance < radius).astype(np.uint8), root / path)
                entry["labels"] = {"disc": path}
            cases.append(entry)
    meta = {"name": "synthetic_discs", "license": "CC0 (synthetic)", "classes": ["disc"], "cases": cases}
    (root / "dataset.json").write_text(json.dumps(meta), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def disc_dataset(tmp_path_factory):
    return write_disc_dataset(tmp_path_factory.mktemp("discs") / "data")


def tiny_options(dataset, out, **changes) -> TrainOptions:
    settings = dict(dataset=dataset, out=out, members=1, epochs=12, seed=3, device="cpu", input_size=[32, 48],
                    batch_size=4, architecture=dict(TINY_ARCHITECTURE), show_progress=False,
                    validation_fraction=0.2, calibrate=False, command="test")
    settings.update(changes)
    return TrainOptions(**settings)


@pytest.fixture(scope="module")
def trained_bundle(disc_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundles") / "discs"
    config = train_bundle(tiny_options(disc_dataset, out, calibrate=True)).data  # the recorded config.json
    return out, config


# ---------------------------------------------------------------- training

def test_tiny_training_learns_the_discs_and_calibrates_on_held_out_subjects(trained_bundle):
    _, config = trained_bundle
    assert config["metrics"]["validation"]["dice"]["disc"] > 0.8
    assert config["quality"]["calibration_data"]["n_subjects"] == config["training"]["split"]["calibration"]["subjects"]


def test_split_is_by_subject_and_recorded(trained_bundle):
    _, config = trained_bundle
    split = config["training"]["split"]
    roles = [set(split[role]["subject_ids"]) for role in ("training", "validation", "calibration")]
    assert sum(map(len, roles)) == len(set.union(*roles)) == 10  # disjoint, every subject used
    assert all(roles) and split["validation"]["cases"] == 2 * len(roles[1])
    assert config["training"]["license"] == "CC0 (synthetic)"


def test_training_is_deterministic_for_a_seed(disc_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv(THREADS_ENV, "1")  # bit-identical results need the same thread count
    repeat = tmp_path / "repeat"
    train_bundle(tiny_options(disc_dataset, repeat, epochs=2))
    first = tmp_path / "first"
    train_bundle(tiny_options(disc_dataset, first, epochs=2))
    a, b = load_bundle(first).members[0].state_dict(), load_bundle(repeat).members[0].state_dict()
    assert all(torch.equal(a[key], b[key]) for key in a)
    other_seed = tmp_path / "other"
    train_bundle(tiny_options(disc_dataset, other_seed, epochs=2, seed=4))
    c = load_bundle(other_seed).members[0].state_dict()
    assert not all(torch.equal(a[key], c[key]) for key in a)


def test_soft_mode_trains_on_rater_fractions(tmp_path):
    dataset = write_disc_dataset(tmp_path / "raters", raters=3, seed=2)
    config = train_bundle(tiny_options(dataset, tmp_path / "soft", label_mode="soft")).data
    assert config["label_mode"] == {"mode": "soft", "threshold": None, "ignore_band": None}
    assert config["metrics"]["validation"]["dice"]["disc"] > 0.7


# ---------------------------------------------------------------- bundles

def test_bundle_round_trip_reproduces_the_validation_dice(disc_dataset, trained_bundle):
    out, config = trained_bundle
    bundle = load_bundle(out)
    assert bundle.classes == ["disc"] and bundle.spatial_dims == 2
    assert bundle.config.preprocessing["input_size"] == [32, 48]
    validation = set(config["training"]["split"]["validation"]["subject_ids"])
    scores = []
    for case in load_dataset(disc_dataset).cases:
        if case.subject not in validation:
            continue
        image = case.read_image()
        frames = image_frames(image)
        with torch.no_grad():
            probability = torch.sigmoid(bundle.members[0](to_model_input(frames, bundle.config.preprocessing)))
        mask = to_image_grid(probability, frames.shape[-2:])[0, 0].numpy() > 0.5
        scores.append(dice(mask, case.confidence_map("disc", image) > 0.5))
    assert np.mean(scores) == pytest.approx(config["metrics"]["validation"]["dice"]["disc"], abs=1e-6)


def test_newer_format_version_fails_clearly(trained_bundle, tmp_path):
    out, _ = trained_bundle
    copy = tmp_path / "newer"
    copy.mkdir()
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    config["format_version"] = 99
    (copy / "config.json").write_text(json.dumps(config))
    (copy / "member_0.safetensors").write_bytes((out / "member_0.safetensors").read_bytes())
    with pytest.raises(ConfidenceSegError, match="newer"):
        load_bundle(copy)


def test_missing_weight_file_fails_clearly(trained_bundle, tmp_path):
    out, _ = trained_bundle
    copy = tmp_path / "incomplete"
    copy.mkdir()
    (copy / "config.json").write_text((out / "config.json").read_text(encoding="utf-8"))
    with pytest.raises(ConfidenceSegError, match="member_0.safetensors is missing"):
        load_bundle(copy)


# ---------------------------------------------------------------- CLI and settings

def test_cli_refuses_an_existing_output_and_an_unknown_class(disc_dataset, trained_bundle, capsys):
    out, _ = trained_bundle
    assert main(["train", "--dataset", str(disc_dataset), "--out", str(out)]) == 2
    assert "output exists" in capsys.readouterr().err
    assert main(["train", "--dataset", str(disc_dataset), "--out", str(out.parent / "new"),
                 "--classes", "liver", "--epochs", "1"]) == 2
    assert "no class liver" in capsys.readouterr().err
    assert not (out.parent / "new").exists()


def test_default_input_size_keeps_aspect_in_multiples_of_16():
    assert default_input_size((410, 562), 256) == [192, 256]
    assert default_input_size((270, 400), 256) == [176, 256]
    assert default_input_size((128, 128), 256) == [256, 256]


def write_ball_volumes(root, n_subjects: int = 8, seed: int = 5):
    """Noisy bright balls in small 3D volumes (spacing 2 x 1 x 1 mm, z y x), one annotator."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    shape = (12, 28, 32)
    zz, yy, xx = np.mgrid[:shape[0], :shape[1], :shape[2]]
    cases = []
    for subject in range(n_subjects):
        center = rng.uniform([4, 9, 9], [8, 19, 23])
        radius = rng.uniform(5, 8)
        ball = np.hypot(2 * (zz - center[0]), np.hypot(yy - center[1], xx - center[2])) < radius
        arrays = {"images": np.clip(60 + 100 * ball + rng.normal(0, 20, shape), 0, 255).astype(np.uint8),
                  "labels": ball.astype(np.uint8)}
        for folder, array in arrays.items():
            image = sitk.GetImageFromArray(array)
            image.SetSpacing((1.0, 1.0, 2.0))
            sitk.WriteImage(image, str(root / folder / f"v{subject}.nrrd"))
        cases.append({"id": f"v{subject}", "subject": f"v{subject}", "image": f"images/v{subject}.nrrd",
                      "labels": {"ball": f"labels/v{subject}.nrrd"}})
    meta = {"name": "synthetic_balls", "classes": ["ball"], "cases": cases}
    (root / "dataset.json").write_text(json.dumps(meta), encoding="utf-8")
    return root


def test_minimal_3d_training_path(tmp_path):
    dataset = write_ball_volumes(tmp_path / "balls")
    architecture = dict(TINY_ARCHITECTURE, spatial_dims=3)
    config = train_bundle(tiny_options(dataset, tmp_path / "model3d", spatial_dims=3, input_size=None,
                                       roi_size=[16, 16, 16], architecture=architecture, batch_size=2, epochs=8)).data
    assert config["preprocessing"]["spatial_dims"] == 3
    assert config["preprocessing"]["spacing"] == [2.0, 1.0, 1.0]
    assert config["preprocessing"]["roi_size"] == [16, 16, 16]
    assert config["metrics"]["validation"]["dice"]["ball"] > 0.6
    assert load_bundle(tmp_path / "model3d").spatial_dims == 3


def test_cli_trains_with_chosen_widths_and_records_the_command(disc_dataset, tmp_path, capsys):
    out = tmp_path / "cli_model"
    assert main(["train", "--dataset", str(disc_dataset), "--out", str(out), "--channels", "8", "16",
                 "--input-size", "32", "48", "--epochs", "2", "--members", "2", "--no-calibrate"]) == 0
    assert "wrote" in capsys.readouterr().out
    config = load_bundle(out).config.data
    assert config["architecture"]["channels"] == [8, 16] and config["architecture"]["strides"] == [2]
    assert "--channels 8 16" in config["training"]["command"] and "--no-calibrate" in config["training"]["command"]
    assert len(config["members"]) == 2 and "quality" not in config


@pytest.mark.skipif(not Path("/proc/loadavg").is_file(), reason="counts runnable tasks in /proc/loadavg (Linux)")
def test_busy_cores_counts_processes_running_now():
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        time.sleep(0.3)
        assert busy_cores() >= 2  # both spin now; the load average would still say what ran a minute ago
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
