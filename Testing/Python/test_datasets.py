"""dataset.json reading, confidence maps of cases, and subject-level splits."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import dataset_dir

from ConfidenceSegLib.annotation.datasets import load_dataset, split_subjects, subject_folds
from ConfidenceSegLib.contract import ConfidenceSegError


@pytest.mark.parametrize("name", ["hc18", "lus_pleural", "qubiq_brain_growth", "oocytes_3raters"])
def test_shared_datasets_load_with_readable_files(name):
    dataset = load_dataset(dataset_dir(name))
    meta = json.loads((dataset.root / "dataset.json").read_text(encoding="utf-8"))
    assert len(dataset.cases) == len(meta["cases"]) and list(dataset.classes) == meta["classes"]
    case = dataset.cases[0]
    image = case.read_image()
    confidence = case.confidence_map(dataset.classes[0], image)
    assert confidence.dtype == np.float32 and confidence.shape == image.GetSize()[::-1]
    assert confidence.min() >= 0.0 and confidence.max() <= 1.0


def test_lus_subjects_split_without_leaking_frames():
    dataset = load_dataset(dataset_dir("lus_pleural"))
    training, validation = split_subjects(dataset.subjects(), 0.25, seed=0)
    assert not set(training) & set(validation) and sorted(training + validation) == dataset.subjects()
    train_ids = {c.id for c in dataset.cases_of_subjects(training)}
    val_ids = {c.id for c in dataset.cases_of_subjects(validation)}
    assert not train_ids & val_ids and len(train_ids | val_ids) == len(dataset.cases)
    assert split_subjects(dataset.subjects(), 0.25, seed=0) == (training, validation)


def test_folds_partition_the_subjects():
    subjects = [f"s{i}" for i in range(10)]
    folds = subject_folds(subjects, 3, seed=1)
    assert sorted(s for fold in folds for s in fold) == sorted(subjects)
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    with pytest.raises(ConfidenceSegError, match="cannot make 11 folds"):
        subject_folds(subjects, 11, seed=1)


def test_missing_and_corrupt_dataset_json(tmp_path):
    with pytest.raises(ConfidenceSegError, match="not a dataset folder"):
        load_dataset(tmp_path)
    (tmp_path / "dataset.json").write_text("{ nope")
    with pytest.raises(ConfidenceSegError, match="corrupt dataset.json"):
        load_dataset(tmp_path)
    (tmp_path / "dataset.json").write_text(json.dumps({"classes": ["a"], "cases": [{"subject": "x"}]}))
    with pytest.raises(ConfidenceSegError, match="lacks 'id' or 'image'"):
        load_dataset(tmp_path)


def test_case_without_annotation_of_a_class(tmp_path):
    dataset = load_dataset(dataset_dir("hc18"))
    with pytest.raises(ConfidenceSegError, match="no annotation of class 'liver'"):
        dataset.cases[0].confidence_map("liver")
