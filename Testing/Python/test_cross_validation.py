"""``train --folds K``: members trained on K-1 folds of subjects, out-of-fold Dice and presence metrics.

Synthetic discs (one frame in three has no disc, only a bright speck) with tiny networks: the
folds must partition the subjects, each member must keep its last epoch, and the recorded
out-of-fold figures must agree with what the bundle's own members predict on their held-out folds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_training import tiny_options, write_disc_dataset

from ConfidenceSegLib.annotation.datasets import load_dataset
from ConfidenceSegLib.cli import main
from ConfidenceSegLib.inference.postprocessing import apply_per_frame
from ConfidenceSegLib.model.bundle import load_bundle
from ConfidenceSegLib.quality.metrics import dice
from ConfidenceSegLib.training.data import load_frames
from ConfidenceSegLib.training.defaults import FOLD_STEP_BUDGET, MAX_FOLD_EPOCHS, default_fold_epochs
from ConfidenceSegLib.training.trainer import TrainOptions, train_bundle, with_fold_epochs

FOLDS = 3


@pytest.fixture(scope="module")
def cross_validated(tmp_path_factory):
    root = tmp_path_factory.mktemp("cv")
    dataset = write_disc_dataset(root / "data", n_subjects=6, frames_per_subject=3, absent_every=3)
    out = root / "model"
    config = train_bundle(tiny_options(dataset, out, folds=FOLDS, members=FOLDS, epochs=10)).data
    return dataset, out, config


def test_folds_partition_the_subjects_and_members_keep_their_last_epoch(cross_validated):
    dataset, out, config = cross_validated
    folds = config["training"]["folds"]
    subjects = sorted(load_dataset(dataset).subjects())
    assert sorted(s for fold in folds for s in fold) == subjects and len(folds) == FOLDS
    assert config["training"]["best_epochs"] == [10] * FOLDS  # no held-out fold chose a checkpoint
    cv = config["metrics"]["cross_validation"]
    assert [entry["subjects"] for entry in cv["per_fold"]] == folds
    assert sorted(cv["subjects"]) == subjects and cv["frames"] == 18
    disc = cv["classes"]["disc"]
    assert disc["frames_without_structure"] == 6 and disc["frames_with_structure"] == 12
    assert len(load_bundle(out).members) == FOLDS


def test_out_of_fold_dice_is_what_each_member_scores_on_its_held_out_subjects(cross_validated):
    dataset_dir, out, config = cross_validated
    dataset, bundle = load_dataset(dataset_dir), load_bundle(out)
    for k, (fold, recorded) in enumerate(zip(config["training"]["folds"],
                                             config["metrics"]["cross_validation"]["per_fold"], strict=True)):
        frames = load_frames(dataset.cases_of_subjects(fold), ["disc"], config["preprocessing"],
                             config["label_mode"], keep_confidence=True)
        steps = recorded["postprocessing"]["disc"]  # chosen on the other folds' out-of-fold predictions
        scores = [dice(apply_per_frame(p[0] >= 0.5, steps), c[0] > 0.5)
                  for p, c in zip(frames.image_grid_probabilities([bundle.members[k]]), frames.confidences,
                                  strict=True)]
        assert abs(np.mean(scores) - recorded["dice"]["disc"]) < 1e-3, (k, np.mean(scores), recorded)


def test_presence_keeps_specks_out_of_frames_without_a_disc(cross_validated):
    _, _, config = cross_validated
    disc = config["metrics"]["cross_validation"]["classes"]["disc"]
    assert disc["false_positive_rate"] <= 0.34 and disc["miss_rate"] <= 0.34
    assert disc["dice_over_subjects"]["mean"] > 0.6


@pytest.mark.parametrize("arguments, message", [
    (["--folds", "3", "--members", "2"], "leave out --members"),
    (["--folds", "1"], "at least 2 folds"),
    (["--folds", "9"], "cannot make 9 folds from 6 subjects"),
])
def test_bad_fold_settings_are_refused_before_training(cross_validated, tmp_path, capsys, arguments, message):
    dataset, _, _ = cross_validated
    code = main(["train", "--dataset", str(dataset), "--out", str(tmp_path / "m"), *arguments])
    assert code == 2 and message in capsys.readouterr().err and not (tmp_path / "m").exists()


def test_default_fold_epochs_keep_the_step_budget_when_the_data_grows():
    # 4 folds of the lung-ultrasound set: 156 frames per member, 20 steps of 8 per epoch
    assert default_fold_epochs(156) == round(FOLD_STEP_BUDGET / 20)
    assert default_fold_epochs(234) == round(FOLD_STEP_BUDGET / 30)  # 6 subjects instead of 4: fewer epochs
    assert default_fold_epochs(4) == MAX_FOLD_EPOCHS and default_fold_epochs(10**6) == 1
    options = with_fold_epochs(TrainOptions(dataset=Path("d"), out=Path("m"), epochs=None, folds=4,
                                            command="confidenceseg train --folds 4"), [52, 52, 52, 52], 8)
    assert options.epochs == default_fold_epochs(156)
    assert options.command == f"confidenceseg train --folds 4 --epochs {options.epochs}"
