"""Calibrating a bundle's quality model on labelled cases (``confidenceseg calibrate``, end of ``train``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..annotation.datasets import Case, Dataset, load_dataset
from ..contract import ConfidenceSegError
from ..io.resources import resources_dir
from ..io.safe_files import check_output_folder
from ..model.bundle import ModelBundle, load_bundle, save_bundle, update_config
from .evaluation import REFERENCE_THRESHOLD, common_classes, predict_labelled
from .fit import QualityRecord, fit_quality_model
from .metrics import dice


def collect_records(bundle: ModelBundle, cases: Sequence[Case], classes: Sequence[str], device=None,
                    method: str = "auto", samples: int | None = None,
                    show_progress: bool = True) -> tuple[list[QualityRecord], dict]:
    """Predict each case; one record per annotated class (summary + true Dice), and the prediction settings."""
    records, settings = [], {}
    for labelled in predict_labelled(bundle, cases, classes, device, method, samples, show_progress):
        settings = {"method": labelled.prediction.method, "samples": labelled.prediction.samples}
        for class_prediction in labelled.prediction.classes:
            reference = labelled.references.get(class_prediction.name)
            if reference is not None:
                true_dice = dice(class_prediction.mask, reference > REFERENCE_THRESHOLD)
                records.append(QualityRecord(class_prediction.name, labelled.case.subject,
                                             dict(class_prediction.summary), true_dice))
    return records, settings


def _is_bundled(path: Path) -> bool:
    try:
        return path.resolve().is_relative_to(resources_dir().resolve())
    except ConfidenceSegError:  # no bundled resources here
        return False


def calibrate_bundle(bundle_path: str | os.PathLike, dataset: Dataset | str | os.PathLike,
                     cases: Sequence[Case] | None = None, alpha: float = 0.1, threshold: float = 0.8,
                     device=None, method: str = "auto", samples: int | None = None,
                     show_progress: bool = True, out: str | os.PathLike | None = None,
                     overwrite: bool = False) -> dict:
    """Fit the quality model on ``cases`` (default: all of ``dataset``) and store it in a bundle's config.

    With ``out`` a new bundle is written there (the same weights, the new quality model; atomic, an
    existing folder only with ``overwrite``) and ``bundle_path`` is left as it was; without it the
    bundle's own ``config.json`` is rewritten, which is refused for a bundled model. The cases should
    be held out from training (e.g. the validation subjects). Returns the ``"quality"`` entry.
    """
    source = Path(bundle_path)
    if out is None and _is_bundled(source):
        raise ConfidenceSegError(f"{source} is a bundled model and is never modified: pass --out NEW_BUNDLE to "
                                 "calibrate a copy")
    if out is None:
        check_output_folder(source, [], overwrite=True)  # config.json is rewritten in place
    else:
        check_output_folder(Path(out).parent, [Path(out).name], overwrite)
    dataset = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    cases = list(dataset.cases if cases is None else cases)
    if not cases:
        raise ConfidenceSegError(f"no labelled cases to calibrate on in dataset {dataset.name}")
    bundle = load_bundle(bundle_path)
    records, settings = collect_records(bundle, cases, common_classes(bundle, dataset), device, method, samples,
                                        show_progress)
    quality = fit_quality_model(records, alpha=alpha, threshold=threshold)
    quality["prediction"] = settings
    quality["calibration_data"] = {"dataset": dataset.name, "n_cases": len(cases),
                                   "n_subjects": len({case.subject for case in cases})}
    if out is None:
        update_config(source, {"quality": quality})
    else:
        save_bundle(out, dict(bundle.config, quality=quality, derived_from=str(source)), bundle.members, overwrite)
    return quality
