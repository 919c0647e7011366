"""Calibrating a bundle's quality model on labelled cases (``confidenceseg calibrate``, end of ``train``).

Predicts every case (and its degraded copies) through :mod:`.labelled`, turns the predictions into
records (:func:`~ConfidenceSegLib.quality.calibration.labelled_records`), fits the quality section
(:func:`~ConfidenceSegLib.quality.calibration.fit_calibration`) and stores it in a bundle.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..annotation.datasets import Case, Dataset, load_dataset
from ..contract import ALPHA, PASS_THRESHOLD, ConfidenceSegError
from ..io.resources import resources_dir
from ..io.safe_files import check_output_folder, check_replaceable_folder
from ..model.bundle import ModelBundle, load_bundle, save_bundle, update_config
from ..model.bundle_config import not_a_bundle
from ..model.nnunet_folder import fingerprint, is_nnunet_folder, read_nnunet_folder
from ..quality.calibration import DomainRecord, domain_records, fit_calibration, labelled_records
from ..quality.fit import QualityRecord
from ..quality.rca import RcaCase
from .labelled import DEFAULT_RUN, LabelledRun, common_classes, predict_labelled


def collect_records(bundle: ModelBundle, cases: Sequence[Case], classes: Sequence[str], run: LabelledRun,
                    assessment: list[QualityRecord], rca_cases: list[RcaCase],
                    domain: list[DomainRecord]) -> tuple[list[QualityRecord], dict]:
    """Predict each case (and its degraded copies); one record per annotated class, and the prediction
    settings. ``assessment`` / ``rca_cases`` get the records of given masks (see ``labelled_records``),
    ``domain`` one record per image for the domain check."""
    records, settings = [], {}
    perturbation_rng = np.random.default_rng(run.seed + 1)
    for labelled in predict_labelled(bundle, cases, classes, run):
        settings = {"method": labelled.prediction.method, "samples": labelled.prediction.samples}
        records += labelled_records(labelled, perturbation_rng, assessment, rca_cases)
        domain += domain_records(labelled)
    return records, settings


def _is_bundled(path: Path) -> bool:
    try:
        return path.resolve().is_relative_to(resources_dir().resolve())
    except ConfidenceSegError:  # no bundled resources here
        return False


def calibrate_bundle(bundle_path: str | os.PathLike, dataset: Dataset | str | os.PathLike,
                     cases: Sequence[Case] | None = None, alpha: float = ALPHA, threshold: float = PASS_THRESHOLD,
                     run: LabelledRun = DEFAULT_RUN, out: str | os.PathLike | None = None,
                     overwrite: bool = False) -> dict:
    """Fit the quality model on ``cases`` (default: all of ``dataset``), each also degraded once per kind of
    ``run``, and store it in a bundle's config.

    With ``out`` a new bundle is written there (the same weights, the new quality model; atomic, an
    existing folder only with ``overwrite``) and ``bundle_path`` is left as it was; without it the
    bundle's own ``config.json`` is rewritten, which is refused for a bundled model. The cases should
    be held out from training (e.g. the validation subjects). Returns the ``"quality"`` entry.
    """
    source = Path(bundle_path)
    if out is None and _is_bundled(source):
        raise ConfidenceSegError(f"{source} is a bundled model and is never modified: pass --out NEW_BUNDLE to "
                                 "calibrate a copy")
    if out is None and is_nnunet_folder(source):
        raise ConfidenceSegError(f"{source} is an nnU-Net model folder and is never modified: pass --out BUNDLE "
                                 "(a ConfidenceSeg bundle that wraps it with its badge)")
    if out is None:
        check_output_folder(source, [], overwrite=True)  # config.json is rewritten in place
    else:
        check_output_folder(Path(out).parent, [Path(out).name], overwrite)
        dataset_folder = dataset.root if isinstance(dataset, Dataset) else Path(dataset)
        check_replaceable_folder(out, not_a_bundle, inputs=[source, dataset_folder])
    dataset = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    cases = list(dataset.cases if cases is None else cases)
    if not cases:
        raise ConfidenceSegError(f"no labelled cases to calibrate on in dataset {dataset.name}")
    bundle = load_bundle(bundle_path)
    assessment: list[QualityRecord] = []
    rca_cases: list[RcaCase] = []
    domain: list[DomainRecord] = []
    records, settings = collect_records(bundle, cases, common_classes(bundle, dataset), run, assessment, rca_cases,
                                        domain)
    quality, data_files = fit_calibration(records, assessment, rca_cases, settings, alpha, threshold, run.seed, domain)
    dice_values = [record.dice for record in records]
    quality["calibration_data"] = {
        "dataset": dataset.name, "n_cases": len(cases), "n_subjects": len({case.subject for case in cases}),
        "subject_ids": sorted({case.subject for case in cases}), "case_ids": [case.id for case in cases],
        "degradations": list(run.degradations), "degradation_seed": run.seed, "n_segments": len(records),
        "dice_range": [round(min(dice_values), 4), round(max(dice_values), 4)] if dice_values else None,
        "segments_below_threshold": sum(value < threshold for value in dice_values)}
    if out is None:
        update_config(source, {"quality": quality}, data_files)
    elif bundle.config.nnunet is not None:
        section = dict(bundle.config.nnunet, fingerprint=fingerprint(read_nnunet_folder(
            bundle.config.nnunet["folder"], bundle.config.nnunet["folds"])))
        save_bundle(out, dict(bundle.config.data, quality=quality, derived_from=str(source), nnunet=section), [],
                    overwrite, data_files)
    else:
        save_bundle(out, dict(bundle.config.data, quality=quality, derived_from=str(source)), bundle.members,
                    overwrite, data_files)
    return quality
