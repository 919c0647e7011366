"""Datasets in the ``dataset.json`` format of ``../shared/data``.

A dataset folder holds ``dataset.json`` (name, modality, classes, raters, cases[]) and the files
it names. Each case has ``id``, ``subject`` (splits are by subject, never by frame), ``image`` and
either ``labels: {class: path}`` (one annotator: confidence 1.0; a float label image is a
confidence map in [0, 1], as exported from confidence-layered annotation) or ``raters: [path, ...]``
(several raters of the dataset's single class: confidence = fraction of raters).

Every path is relative to the dataset folder and must stay inside it, unless ``dataset.json`` sets
``"allow_external_paths": true``; a label under a class the dataset does not declare, or an integer
label with more than one foreground value, is an error (never silently dropped or binarised).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..contract import ConfidenceSegError
from ..io.channel_files import compose_channels
from ..io.images import check_same_geometry, read_image
from ..io.safe_files import read_json
from .layers import check_binary, check_confidence_map, rater_fraction

#: dataset.json key that lets case paths lead outside the dataset folder (absolute paths, ``..``).
ALLOW_EXTERNAL_KEY = "allow_external_paths"


@dataclass(frozen=True)
class Case:
    """One image of a dataset with its annotations (paths are absolute)."""

    id: str
    subject: str
    image_path: Path
    label_paths: dict[str, Path] = field(default_factory=dict)
    rater_paths: tuple[Path, ...] = ()
    extra: dict = field(default_factory=dict)
    #: Label values of a multi-label map per class (nnU-Net's layout: ``{class: 3}``, or a list for a region):
    #: the class's label file holds every class, the class is where the value is one of these.
    label_values: dict[str, tuple[int, ...]] = field(default_factory=dict)
    #: Further input channels (nnU-Net's ``_0001``, ...), read with the image as one vector image.
    channel_paths: tuple[Path, ...] = ()

    def read_image(self) -> sitk.Image:
        image = read_image(self.image_path)
        if not self.channel_paths:
            return image
        return compose_channels(image, [(path, read_image(path)) for path in self.channel_paths],
                                f"image of case {self.id}")

    def confidence_map(self, class_name: str, image: sitk.Image | None = None) -> np.ndarray:
        """Per-pixel confidence of ``class_name`` (float32 in [0, 1]) on the image grid."""
        image = image if image is not None else self.read_image()
        if class_name in self.label_paths:
            label = read_image(self.label_paths[class_name])
            check_same_geometry(image, label, f"image of case {self.id}", f"label {self.label_paths[class_name]}")
            array = sitk.GetArrayFromImage(label)
            if class_name in self.label_values:
                return np.isin(array, self.label_values[class_name]).astype(np.float32)
            if np.issubdtype(array.dtype, np.floating):  # a confidence map (e.g. exported layered annotation)
                check_confidence_map(array, f"label {self.label_paths[class_name]}")
                return array.astype(np.float32)
            check_binary(array, f"label {self.label_paths[class_name]}")
            return (array > 0).astype(np.float32)
        if self.rater_paths:
            return rater_fraction(self.read_rater_masks(image))
        raise ConfidenceSegError(f"case {self.id} has no annotation of class {class_name!r}")

    def read_rater_masks(self, image: sitk.Image | None = None) -> list[np.ndarray]:
        """The raters' masks as bool arrays, checked against the image's geometry."""
        image = image if image is not None else self.read_image()
        masks = []
        for path in self.rater_paths:
            mask = read_image(path)
            check_same_geometry(image, mask, f"image of case {self.id}", f"rater mask {path}")
            masks.append(sitk.GetArrayFromImage(mask))
            check_binary(masks[-1], f"rater mask {path}")
        return [m > 0 for m in masks]


@dataclass(frozen=True)
class Dataset:
    """A dataset folder: metadata plus its cases."""

    root: Path
    name: str
    classes: tuple[str, ...]
    cases: tuple[Case, ...]
    metadata: dict

    def subjects(self) -> list[str]:
        return sorted({case.subject for case in self.cases})

    def cases_of_subjects(self, subjects) -> list[Case]:
        wanted = set(subjects)
        return [case for case in self.cases if case.subject in wanted]


def is_nnunet_raw(meta) -> bool:
    """Whether a ``dataset.json`` is nnU-Net's (labels, channel names and file ending; no case list)."""
    return isinstance(meta, dict) and "cases" not in meta and isinstance(meta.get("labels"), dict) \
        and "file_ending" in meta


def load_dataset(folder: str | os.PathLike) -> Dataset:
    """Read ``folder/dataset.json`` (this project's layout, or nnU-Net's raw layout: :mod:`.nnunet_raw`);
    raise a clear error for a missing or malformed file."""
    root = Path(folder)
    index = root / "dataset.json"
    meta = read_json(index, "dataset.json", missing=f"not a dataset folder: {index} not found")
    if is_nnunet_raw(meta):
        from .nnunet_raw import load_nnunet_raw

        return load_nnunet_raw(root, meta)
    if not isinstance(meta, dict) or not isinstance(meta.get("cases"), list):
        raise ConfidenceSegError(f"{index} has no 'cases' list")
    listed = meta.get("classes")
    if not isinstance(listed, list) or not listed:
        raise ConfidenceSegError(f"{index} names no classes (expected a list of class names)")
    classes = tuple(listed)
    if not all(isinstance(name, str) and name for name in classes) or len(set(classes)) != len(classes):
        raise ConfidenceSegError(f"{index}: classes must be distinct names, got {list(classes)}")
    allow_external = meta.get(ALLOW_EXTERNAL_KEY) is True
    cases = tuple(_case_from_json(root, entry, classes, number, allow_external)
                  for number, entry in enumerate(meta["cases"]))
    metadata = {key: value for key, value in meta.items() if key != "cases"}
    return Dataset(root=root, name=str(meta.get("name", root.name)), classes=classes, cases=cases, metadata=metadata)


def _dataset_path(root: Path, value, allow_external: bool, what: str) -> Path:
    """``root / value``, refused unless ``value`` is a path text that stays inside ``root``."""
    if not isinstance(value, str) or not value or "\0" in value:
        raise ConfidenceSegError(f"{what} must be a path, got {value!r}")
    path = root / value
    if not allow_external and not path.resolve().is_relative_to(root.resolve()):
        raise ConfidenceSegError(f"{what} {value!r} leads outside the dataset folder {root} "
                                 f'(set "{ALLOW_EXTERNAL_KEY}": true in dataset.json to allow that)')
    return path


def _case_from_json(root: Path, entry, classes: tuple[str, ...], number: int, allow_external: bool) -> Case:
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), str | int) or "image" not in entry:
        raise ConfidenceSegError(f"case #{number} in {root / 'dataset.json'} lacks 'id' or 'image'")
    case_id = str(entry["id"])
    image = _dataset_path(root, entry["image"], allow_external, f"case {case_id}: image")
    labels, raters = entry.get("labels") or {}, entry.get("raters") or []
    if not isinstance(labels, dict) or not isinstance(raters, list):
        raise ConfidenceSegError(f"case {case_id}: 'labels' must map classes to paths and 'raters' list paths")
    undeclared = sorted(str(name) for name in labels if name not in classes)
    if undeclared:
        raise ConfidenceSegError(f"case {case_id} has a label for class {undeclared[0]!r}, which the dataset does "
                                 f"not declare (classes: {', '.join(classes)})")
    labels = {name: _dataset_path(root, path, allow_external, f"case {case_id}: label of {name}")
              for name, path in labels.items()}
    raters = tuple(_dataset_path(root, path, allow_external, f"case {case_id}: rater mask") for path in raters)
    if raters and len(classes) != 1:
        raise ConfidenceSegError(f"case {case_id}: rater masks need a dataset with exactly one class")
    known = {"id", "subject", "image", "labels", "raters"}
    return Case(id=case_id, subject=str(entry.get("subject", case_id)), image_path=image, label_paths=labels,
                rater_paths=raters, extra={k: v for k, v in entry.items() if k not in known})


def split_subjects(subjects: list[str], validation_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Split subjects (not frames) into training and validation, deterministically for ``seed``."""
    parts = split_subjects_by_role(subjects, {"validation": validation_fraction}, seed)
    return parts["training"], parts["validation"]


def split_subjects_by_role(subjects: list[str], fractions: dict[str, float], seed: int) -> dict[str, list[str]]:
    """Split subjects (not frames) into ``training`` and the held-out roles of ``fractions``
    (e.g. ``{"validation": 0.1, "calibration": 0.15, "test": 0.15}``, fractions of all subjects),
    deterministically for ``seed``; a role with fraction 0 gets no subject, any other at least one,
    and training keeps at least one. Roles are drawn in the order given from one permutation."""
    subjects = sorted(subjects)
    wanted = {role: fraction for role, fraction in fractions.items() if fraction > 0}
    if len(subjects) < len(wanted) + 1:
        roles = ["training", *wanted]
        raise ConfidenceSegError(f"need at least {len(roles)} subjects to split into {', '.join(roles[:-1])} and "
                                 f"{roles[-1]} subjects; the dataset has {len(subjects)}")
    order = list(np.random.default_rng(seed).permutation(len(subjects)))
    parts = {role: [] for role in fractions}
    for index, (role, fraction) in enumerate(wanted.items()):
        roles_left = len(wanted) - index - 1
        count = min(len(order) - 1 - roles_left, max(1, round(fraction * len(subjects))))
        parts[role] = sorted(subjects[i] for i in order[:count])
        order = order[count:]
    return {"training": sorted(subjects[i] for i in order), **parts}


def subject_folds(subjects: list[str], n_folds: int, seed: int) -> list[list[str]]:
    """Partition subjects into ``n_folds`` disjoint folds (for cross-validation by subject)."""
    subjects = sorted(subjects)
    if n_folds < 2 or n_folds > len(subjects):
        raise ConfidenceSegError(f"cannot make {n_folds} folds from {len(subjects)} subjects")
    order = np.random.default_rng(seed).permutation(len(subjects))
    return [sorted(subjects[i] for i in order[fold::n_folds]) for fold in range(n_folds)]
