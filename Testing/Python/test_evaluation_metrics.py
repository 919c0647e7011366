"""Per-class evaluation metrics and plots on synthetic segment rows (no network needed)."""

from __future__ import annotations

import numpy as np
import pytest
from test_quality import synthetic_records

from ConfidenceSegLib.contract import ConfidenceSegError
from ConfidenceSegLib.model.bundle_config import QualityConfig
from ConfidenceSegLib.outputs import plots
from ConfidenceSegLib.quality import metrics
from ConfidenceSegLib.quality.apply import assess_segment
from ConfidenceSegLib.quality.evaluation import SegmentRow, class_metrics
from ConfidenceSegLib.quality.features import baseline_confidence
from ConfidenceSegLib.quality.fit import fit_quality_model


def rows_from_records(records, quality_config):
    quality = None if quality_config is None else QualityConfig(quality_config)
    return [SegmentRow(f"c{i}", r.subject, r.class_name, "clean", r.dice, True,
                       assess_segment(quality, r.class_name, r.summary),
                       assess_segment(quality, r.class_name, r.summary, baseline=True),
                       baseline_confidence(r.summary), r.summary, ece=0.1)
            for i, r in enumerate(records)]


def test_class_metrics_method_beats_baseline_and_counts_absent():
    quality = fit_quality_model(synthetic_records(0, 60))
    records = synthetic_records(1, 60)
    rows = rows_from_records(records, quality)
    # two segments predicted absent: one correctly (reference empty, Dice 1), one missed (Dice 0)
    absent_summary = dict(records[0].summary, volume_voxels=0.0, size_fraction=0.0, present_fraction=0.0)
    rows += rows_from_records([type(records[0])("organ", "x", absent_summary, 1.0),
                               type(records[0])("organ", "y", absent_summary, 0.0)], quality)
    rows[-2].reference_present = False  # "x": nothing to find, rightly found nothing
    rows[0].reference_present = False  # a segment predicted where the reference has none: a false positive
    result = class_metrics(rows, None, threshold=0.8)
    assert result["n_cases"] == 122 and result["n_present"] == 120
    assert result["absent"] == {"n": 2, "reference_empty_fraction": 0.5}
    assert result["presence"] == {"false_positive_rate": 0.5, "cases_without_structure": 2,
                                  "miss_rate": pytest.approx(1 / 120), "cases_with_structure": 120}
    true = [r.dice for r in records]
    assert result["mean_dice"] == pytest.approx((sum(true) + 1.0) / 122)
    method, baseline = result["method"], result["baseline_mean_entropy"]
    assert method["aurc"] == pytest.approx(metrics.aurc([r.verdict.predicted_dice for r in rows[:120]], true))
    assert method["aurc"] < baseline["aurc"]
    assert method["auroc_dice_below_threshold"] > baseline["auroc_dice_below_threshold"]
    assert method["lower_bound_coverage"] >= 0.85 and method["pass_precision"] >= 0.95
    for key in ("mae_predicted_dice", "pass_rate", "spearman", "e_aurc"):
        assert method[key] is not None and baseline[key] is not None
    assert result["raw_mean_pairwise_dice"]["aurc"] < baseline["aurc"]
    assert result["ece_mean"] == pytest.approx(0.1)


def test_class_metrics_without_quality_model():
    rows = rows_from_records(synthetic_records(2, 10), None)
    result = class_metrics(rows, None, threshold=0.8)
    assert result["method"] is None
    assert result["baseline_mean_entropy"]["aurc"] is not None
    assert "pass_rate" not in result["baseline_mean_entropy"]


def test_plots_are_written_and_not_overwritten(tmp_path):
    rng = np.random.default_rng(0)
    true = rng.uniform(0.5, 1, 30)
    predicted = np.clip(true + rng.normal(0, 0.05, 30), 0, 1)
    lower = predicted - 0.1
    badges = ["PASS" if b >= 0.8 else "REVIEW" for b in lower]
    plots.plot_risk_coverage({"method": metrics.risk_coverage_curve(predicted, true),
                              "baseline": metrics.risk_coverage_curve(rng.uniform(size=30), true)},
                             tmp_path / "rc.png", title="organ")
    plots.plot_predicted_vs_true(predicted, true, lower, badges, tmp_path / "pt.png")
    probability = rng.uniform(size=(20, 20))
    plots.plot_reliability(metrics.calibration_bins(probability, probability > 0.5), tmp_path / "rel.png")
    for name in ("rc.png", "pt.png", "rel.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000
    with pytest.raises(ConfidenceSegError, match="output exists"):
        plots.plot_predicted_vs_true(predicted, true, lower, badges, tmp_path / "pt.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pt.png", "rc.png", "rel.png"]  # no temporary files left
