"""Evaluating a model and its quality badge on a labelled dataset (``confidenceseg evaluate``).

Predicts every case, then writes ``OUTDIR/metrics.json`` (per case and class: true Dice, predicted
Dice, lower bound, badge; per class the metrics of :mod:`~ConfidenceSegLib.quality.evaluation`)
and PNG plots per class, checked before any work and written atomically.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from ..annotation.datasets import Case, Dataset
from ..contract import PASS_THRESHOLD, ConfidenceSegError
from ..io.safe_files import check_can_write, check_output_folder, output_folder, write_text_atomic
from ..model.bundle import ModelBundle, load_bundle
from ..model.bundle_config import BundleConfig
from ..outputs import plots
from ..outputs.report import verdict_json
from ..quality import metrics
from ..quality.degradations import check_kinds
from ..quality.evaluation import Evaluation, SegmentRow, or_zero, segment_rows, summarise
from .labelled import DEFAULT_RUN, LabelledRun, common_classes, predict_labelled
from .settings import PredictionSettings

PLOT_KINDS = ("risk_coverage", "predicted_vs_true", "reliability")


def _plot_paths(out: Path, classes) -> dict[str, dict[str, Path]]:
    return {name: {kind: out / f"{name}_{kind}.png" for kind in PLOT_KINDS} for name in classes}


def evaluate_cases(bundle: ModelBundle, dataset: Dataset, cases: Sequence[Case],
                   run: LabelledRun = DEFAULT_RUN) -> Evaluation:
    """Predict and assess every case (and its degraded copies) and compute the metrics: pooled, and per
    image kind (``by_kind``) when there are degradations."""
    if not cases:
        raise ConfidenceSegError(f"dataset {dataset.name} has no cases to evaluate")
    classes = common_classes(bundle, dataset)
    quality = bundle.config.quality
    threshold = quality.threshold if quality is not None else PASS_THRESHOLD
    rows, bins, settings = [], {}, {}
    for labelled in predict_labelled(bundle, cases, classes, run):
        prediction = labelled.prediction
        settings = {"method": prediction.method, "samples": prediction.samples, "device": prediction.device}
        for row, case_bins in segment_rows(labelled, quality):
            rows.append(row)
            bins[row.class_name] = bins[row.class_name] + case_bins if row.class_name in bins else case_bins
    return Evaluation(rows, summarise(rows, bins, classes, threshold, run.degradations), bins, settings)


def row_json(row: SegmentRow) -> dict:
    """One segment of ``metrics.json``'s ``cases``: its fields, the badge's verdict flat, the baseline's nested."""
    fields = asdict(row)
    del fields["verdict"], fields["baseline"]
    fields["class"] = fields.pop("class_name")
    return {**fields, **verdict_json(row.verdict), "baseline": verdict_json(row.baseline)}


def run_evaluation(args: argparse.Namespace, dataset: Dataset, config: BundleConfig) -> int:
    """``confidenceseg evaluate`` of the model (its ``config`` as read by the command) on the loaded
    ``dataset``: predict every case, write the plots and ``metrics.json``, print a summary."""
    out = Path(args.out)
    plot_paths = _plot_paths(out, config.classes)
    planned = [out / "metrics.json"] + [path for paths in plot_paths.values() for path in paths.values()]
    degradations = check_kinds(args.degrade) if args.degrade else []
    check_output_folder(out, [path.name for path in planned], args.overwrite)
    bundle = load_bundle(args.model, config)
    cases, selection = evaluation_cases(bundle.config, dataset, args.cases, args.limit)
    print(selection)
    with output_folder(out):
        run = LabelledRun(PredictionSettings(args.method, args.samples, args.device, ()), tuple(degradations))
        evaluation = evaluate_cases(bundle, dataset, cases, run)
        check_can_write(planned, args.overwrite)
        write_outputs(args, bundle, dataset, evaluation, plot_paths,
                      {"selection": selection, "degradations": degradations, "case_ids": [case.id for case in cases]})
    print_summary(evaluation.classes)
    return 0


def evaluation_cases(config: BundleConfig, dataset: Dataset, which: str, limit: int | None = None) -> tuple[list, str]:
    """The cases to evaluate and a sentence saying which: with ``which="unseen"``, the cases of subjects
    the bundle's record does not name as training, validation or calibration subjects of this dataset;
    ``"test"``: those of its recorded test subjects; ``limit``: the first ``limit`` of them."""
    if limit is not None and limit < 1:
        raise ConfidenceSegError(f"--limit must be at least 1, got {limit}")
    cases, sentence = _selected_cases(config, dataset, which)
    if limit is not None and limit < len(cases):
        return cases[:limit], f"{sentence} (the first {limit} of {len(cases)}: --limit)"
    return cases, sentence


def _selected_cases(config: BundleConfig, dataset: Dataset, which: str) -> tuple[list, str]:
    training = config.training
    split = (training.get("split") or {}) if training.get("dataset") == dataset.name else {}
    if which == "test":
        tested = set((split.get("test") or {}).get("subject_ids", []))
        cases = [case for case in dataset.cases if case.subject in tested]
        if not cases:
            raise ConfidenceSegError(f"the model records no test subjects of {dataset.name}: use --cases unseen")
        return cases, f"evaluating the {len(cases)} test cases of {dataset.name} that the model's split kept aside"
    if which == "all" or training.get("dataset") != dataset.name:
        return list(dataset.cases), f"evaluating all {len(dataset.cases)} cases of {dataset.name}"
    used = {subject for role, part in split.items() if role != "test" for subject in part.get("subject_ids", [])}
    quality_data = config.quality.calibration_data if config.quality is not None else {}
    used |= set(quality_data.get("subject_ids", [])) if quality_data.get("dataset") == dataset.name else set()
    cases = [case for case in dataset.cases if case.subject not in used]
    if not cases:
        raise ConfidenceSegError(f"the model used every subject of {dataset.name} (training, validation or "
                                 "calibration): pass --cases all to evaluate on them anyway (optimistic figures)")
    return cases, (f"evaluating {len(cases)} of {len(dataset.cases)} cases of {dataset.name}: the subjects the "
                   "model never trained on, never chose a checkpoint with and was not calibrated on")


def write_outputs(args: argparse.Namespace, bundle, dataset, evaluation, plot_paths, selection: dict) -> None:
    """The plots and ``metrics.json`` of one evaluation."""
    out = Path(args.out)
    quality = bundle.config.quality
    threshold = quality.threshold if quality is not None else PASS_THRESHOLD
    written = write_plots(evaluation, plot_paths, threshold, args.overwrite)
    report = {"model": str(args.model), "dataset": str(args.dataset), "dataset_name": dataset.name,
              "n_cases": len(selection["case_ids"]), **selection, **evaluation.prediction_settings,
              "quality_model": None if quality is None else {"alpha": quality.alpha, "threshold": threshold},
              "classes": evaluation.classes, "cases": [row_json(row) for row in evaluation.rows],
              "plots": [str(path.relative_to(out)) for path in written]}
    write_text_atomic(out / "metrics.json", json.dumps(report, indent=2) + "\n", args.overwrite)
    print(f"wrote {out / 'metrics.json'} and {len(written)} plots")


def write_plots(evaluation, plot_paths, threshold: float, overwrite: bool) -> list[Path]:
    """Per class: risk-coverage curves (method, raw pairwise Dice, mean entropy), predicted vs true, reliability."""
    written = []
    for name, class_result in evaluation.classes.items():
        paths = plot_paths[name]
        present = [row for row in evaluation.rows if row.class_name == name and not row.absent]
        true = [row.true_dice for row in present]
        assessed = bool(present) and class_result["method"] is not None
        if present:
            scores = {"mean pairwise Dice": ("raw_mean_pairwise_dice", [r.uncertainty["mean_pairwise_dice"]
                                                                        for r in present]),
                      "mean entropy": ("baseline_mean_entropy", [r.baseline_confidence for r in present])}
            if assessed:
                scores = {"predicted Dice": ("method", [or_zero(r.verdict.predicted_dice) for r in present]), **scores}
            curves = {f"{label} (AURC {_fmt(class_result[key]['aurc'])})": metrics.risk_coverage_curve(score, true)
                      for label, (key, score) in scores.items()}
            plots.plot_risk_coverage(curves, paths["risk_coverage"], title=name, overwrite=overwrite)
            written.append(paths["risk_coverage"])
        if assessed:
            plots.plot_predicted_vs_true([or_zero(r.verdict.predicted_dice) for r in present], true,
                                         [or_zero(r.verdict.dice_lower_bound) for r in present],
                                         [r.verdict.badge for r in present],
                                         paths["predicted_vs_true"], threshold, title=name, overwrite=overwrite)
            written.append(paths["predicted_vs_true"])
        if name in evaluation.bins:
            plots.plot_reliability(evaluation.bins[name], paths["reliability"],
                                   title=f"{name} (ECE {_fmt(class_result['ece_pooled'])})", overwrite=overwrite)
            written.append(paths["reliability"])
    return written


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def print_summary(classes: dict) -> None:
    for name, result in classes.items():
        method = result["method"] or {}
        baseline = result["baseline_mean_entropy"]
        print(f"{name}: mean Dice {_fmt(result['mean_dice'])}, {result['n_present']} present; "
              f"AURC {_fmt(method.get('aurc'))} (mean entropy {_fmt(baseline['aurc'])}), "
              f"AUROC {_fmt(method.get('auroc_dice_below_threshold'))}, "
              f"coverage {_fmt(method.get('lower_bound_coverage'))}, PASS rate {_fmt(method.get('pass_rate'))}, "
              f"PASS precision {_fmt(method.get('pass_precision'))}")
        for measure, values in (result.get("measurements") or {}).items():
            print(f"  {measure}: mean absolute difference {_fmt(values['mean_abs_error'])}, interval coverage "
                  f"{_fmt(values['interval_coverage'])} ({values['n']} segments)")
