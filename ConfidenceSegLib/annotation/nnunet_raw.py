"""Labelled datasets in nnU-Net's raw layout, to calibrate and evaluate a model on them.

A ``DatasetXXX_Name`` folder of ``nnUNet_raw``: ``dataset.json`` (``labels``, ``channel_names``,
``file_ending``), images ``CASE_0000<ending>`` (``_0001``, ... for more channels) and label maps
``CASE<ending>`` (one value per label, or regions). The cases are those of ``imagesTs`` / ``labelsTs``:
the test cases, which trained none of the folds. ``imagesTr`` are never used (every one trained at
least one fold of a cross-validated model): a dataset without ``labelsTs`` is refused. Class names are
the labels' names as :mod:`ConfidenceSegLib.model.nnunet_folder` writes them; each case is its own
subject (the raw layout records none).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..contract import ConfidenceSegError
from ..model.nnunet_folder import class_names_of_labels
from .datasets import Case, Dataset

IMAGES, LABELS = "imagesTs", "labelsTs"


def load_nnunet_raw(root: Path, meta: dict) -> Dataset:
    """The test cases of the nnU-Net raw dataset at ``root`` (its ``dataset.json`` already read as ``meta``)."""
    ending = meta["file_ending"]
    if not isinstance(ending, str) or not ending.startswith("."):
        raise ConfidenceSegError(f"{root / 'dataset.json'}: file_ending must be like '.nii.gz', got {ending!r}")
    channels = meta.get("channel_names") or meta.get("modality")
    if not isinstance(channels, dict) or not channels:
        raise ConfidenceSegError(f"{root / 'dataset.json'} lacks channel_names")
    if not (root / LABELS).is_dir():
        raise ConfidenceSegError(f"{root} has no {LABELS}: an nnU-Net dataset is calibrated and evaluated on its test "
                                 f"cases ({IMAGES} with {LABELS}), never on imagesTr, which trained the folds")
    names, _, values = class_names_of_labels(meta["labels"], root / "dataset.json")
    label_values = dict(zip(names, values, strict=True))
    pattern = re.compile(rf"^(.+)_0000{re.escape(ending)}$")
    cases = []
    for image in sorted((root / IMAGES).glob(f"*_0000{ending}")):
        case_id = pattern.match(image.name).group(1)
        label = root / LABELS / f"{case_id}{ending}"
        if not label.is_file():
            continue  # an unlabelled test image: nothing to calibrate on
        more = tuple(root / IMAGES / f"{case_id}_{channel:04d}{ending}" for channel in range(1, len(channels)))
        missing = [path for path in more if not path.is_file()]
        if missing:
            raise ConfidenceSegError(f"case {case_id} lacks channel file {missing[0]}")
        cases.append(Case(id=case_id, subject=case_id, image_path=image, channel_paths=more,
                          label_paths={name: label for name in names}, label_values=label_values))
    if not cases:
        raise ConfidenceSegError(f"{root / IMAGES} has no image with a label in {LABELS}")
    return Dataset(root=root, name=str(meta.get("name", root.name)), classes=tuple(names), cases=tuple(cases),
                   metadata={key: value for key, value in meta.items()})
