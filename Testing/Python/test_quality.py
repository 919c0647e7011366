"""Quality model on synthetic records whose features are known functions of the true Dice."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ConfidenceSegLib.contract import ConfidenceSegError
from ConfidenceSegLib.model.bundle_config import QualityConfig
from ConfidenceSegLib.quality import metrics
from ConfidenceSegLib.quality.apply import assess_frames, assess_segment
from ConfidenceSegLib.quality.features import baseline_confidence, is_absent
from ConfidenceSegLib.quality.fit import QualityRecord, fit_quality_model


def synthetic_summary(rng: np.random.Generator, dice: float) -> dict:
    """Disagreement between samples grows with 1 - Dice; mean entropy inside the mask is pure noise."""
    disagreement = (1.0 - dice) * rng.uniform(0.8, 1.2)
    return {
        "volume_voxels": 500.0, "size_fraction": float(rng.uniform(0.04, 0.06)), "present_fraction": 1.0,
        "mean_pairwise_dice": float(np.clip(1 - disagreement + rng.normal(0, 0.01), 0, 1)),
        "samples_iou": float(np.clip(1 - 1.6 * disagreement + rng.normal(0, 0.02), 0, 1)),
        "volume_cv": float(0.5 * disagreement + abs(rng.normal(0, 0.01))),
        "mean_entropy": float(rng.uniform(0.05, 0.3)),
        "mean_entropy_boundary": float(0.3 + 0.5 * disagreement + rng.normal(0, 0.02)),
        "mean_mutual_information": float(0.2 * disagreement + abs(rng.normal(0, 0.01))),
        "mean_probability": float(0.95 - 0.3 * disagreement + rng.normal(0, 0.01)),
        "mean_entropy_image": float(rng.uniform(0.01, 0.03)),
    }


def synthetic_records(seed: int, n_subjects: int, per_subject: int = 2, class_name: str = "organ"):
    rng = np.random.default_rng(seed)
    records = []
    for subject in range(n_subjects):
        for _ in range(per_subject):
            dice = float(np.clip(rng.beta(6, 1.2), 0, 1))
            records.append(QualityRecord(class_name, f"s{seed}_{subject}", synthetic_summary(rng, dice), dice))
    return records


@pytest.fixture(scope="module")
def fitted():
    return QualityConfig(fit_quality_model(synthetic_records(0, 60), alpha=0.1, threshold=0.8))


def test_predicted_dice_bound_and_badge_on_new_subjects(fitted):
    test = synthetic_records(1, 150)
    results = [assess_segment(fitted, r.class_name, r.summary) for r in test]
    true = np.array([r.dice for r in test])
    predicted = np.array([r.predicted_dice for r in results])
    lower = np.array([r.dice_lower_bound for r in results])
    badges = [r.badge for r in results]
    assert np.all((predicted >= 0) & (predicted <= 1))
    assert metrics.mean_absolute_error(predicted, true) < 0.05
    assert metrics.spearman(predicted, true) > 0.9
    assert metrics.lower_bound_coverage(lower, true) >= 0.85
    assert np.all(lower <= predicted)
    assert all(b in ("PASS", "REVIEW") for b in badges)
    assert metrics.pass_precision(badges, true) >= 0.95
    assert metrics.pass_rate(badges) > 0.3  # informative, not just always REVIEW
    assert all((b == "PASS") == (lo >= 0.8) for b, lo in zip(badges, lower, strict=True))


def test_disagreement_beats_mean_entropy_baseline(fitted):
    test = synthetic_records(2, 100)
    true = [r.dice for r in test]
    method = [assess_segment(fitted, r.class_name, r.summary).predicted_dice for r in test]
    baseline = [baseline_confidence(r.summary) for r in test]
    assert metrics.aurc(method, true) < metrics.aurc(baseline, true)
    calibrated_baseline = [assess_segment(fitted, r.class_name, r.summary, baseline=True) for r in test]
    assert all(r.badge in ("PASS", "REVIEW") for r in calibrated_baseline)


def test_threshold_is_stored_and_used():
    records = synthetic_records(0, 60)
    strict = fit_quality_model(records, alpha=0.1, threshold=0.99)
    lenient = fit_quality_model(records, alpha=0.1, threshold=0.5)
    test = synthetic_records(3, 40)
    passes = [sum(assess_segment(QualityConfig(config), r.class_name, r.summary).badge == "PASS" for r in test)
              for config in (strict, lenient)]
    assert strict["threshold"] == 0.99
    assert passes[0] < passes[1]


def test_json_round_trip_gives_same_assessment(fitted):
    restored = QualityConfig(json.loads(json.dumps(fitted.data)))
    summary = synthetic_records(4, 1)[0].summary
    assert assess_segment(restored, "organ", summary) == assess_segment(fitted, "organ", summary)


def test_absent_missing_class_and_no_model(fitted):
    summary = synthetic_records(5, 1)[0].summary
    empty = dict(summary, volume_voxels=0.0, size_fraction=0.0, present_fraction=0.0)
    flickering = dict(summary, present_fraction=0.4)
    assert is_absent(empty) and is_absent(flickering) and not is_absent(summary)
    absent = assess_segment(fitted, "organ", empty)
    assert (absent.predicted_dice, absent.dice_lower_bound, absent.badge) == (None, None, "ABSENT")
    assert [r.code for r in absent.reasons] == ["absent"]
    assert assess_segment(fitted, "organ", flickering).badge == "ABSENT"
    for nothing in (assess_segment(None, "organ", summary), assess_segment(fitted, "other", summary)):
        assert (nothing.predicted_dice, nothing.badge) == (None, None)
        assert nothing.reasons[0].code == "no_quality_model"


def test_out_of_domain_never_passes(fitted):
    good = synthetic_records(6, 30)
    good_summary = max(good, key=lambda r: r.dice).summary
    assert assess_segment(fitted, "organ", good_summary).badge == "PASS"
    # A confident-looking segment of a structure 15 times larger than anything seen in calibration
    huge = dict(good_summary, size_fraction=good_summary["size_fraction"] * 15)
    result = assess_segment(fitted, "organ", huge)
    assert result.badge == "REVIEW"
    assert result.predicted_dice is None and result.dice_lower_bound is None  # not valid out of domain
    assert result.reasons[0].code == "out_of_domain" and "segment size" in result.reasons[0].message
    noisy_image = assess_segment(fitted, "organ", dict(good_summary, mean_entropy_image=0.5))
    assert noisy_image.badge == "REVIEW"
    assert noisy_image.reasons[0].message.startswith(
        "image unlike the calibration images (uncertainty over the image 0.5, ")
    # Never extrapolate upwards: a feature beyond its calibration range on the side that raises the
    # predicted Dice makes the segment out of domain.
    model = fitted.class_model("organ")
    domain = model["domain"]
    raising = [(name, domain["high"][domain["features"].index(name)])
               for name, coefficient in zip(model["features"], model["coefficients"], strict=True)
               if coefficient > 0 and name != "log_size_fraction"]
    assert raising
    for name, high in raising:
        result = assess_segment(fitted, "organ", dict(good_summary, **{name: high + 0.5}))
        assert result.badge == "REVIEW" and result.dice_lower_bound is None, name
        assert result.reasons[0].code == "out_of_domain", name


def test_too_few_cases_are_conservative():
    # 6 cases of 3 subjects: ceil(7 * 0.9) = 7 > 6 -> no finite quantile -> bound 0 -> never PASS
    small = QualityConfig(fit_quality_model(synthetic_records(7, 3), alpha=0.1))
    assert small.class_model("organ")["score_quantile"] is None
    for record in synthetic_records(8, 10):
        result = assess_segment(small, "organ", record.summary)
        assert result.badge == "REVIEW" and result.dice_lower_bound in (0.0, None)
        assert result.reasons[0].code in ("too_few_calibration_cases", "out_of_domain")
    assert any(assess_segment(small, "organ", r.summary).reasons[0].code == "too_few_calibration_cases"
               for r in synthetic_records(7, 3))
    # many copies of few subjects are not many cases: 40 segments of 8 subjects give no bound at alpha 0.1 (a
    # 90% bound needs 9 subjects), 40 of 10 subjects do
    few_subjects = fit_quality_model(synthetic_records(11, 8, per_subject=5), alpha=0.1)
    assert few_subjects["classes"]["organ"]["score_quantile"] is None
    assert fit_quality_model(synthetic_records(11, 10, per_subject=4), alpha=0.1)["classes"]["organ"]["score_quantile"]
    # one subject: no held-out subject to calibrate on
    single = fit_quality_model(synthetic_records(9, 1, per_subject=20), alpha=0.1)
    assert single["classes"]["organ"]["score_quantile"] is None
    # fewer than 3 present cases: the class gets no model
    tiny = fit_quality_model(synthetic_records(10, 1), alpha=0.1)
    assert "organ" in tiny["skipped"] and "organ" not in tiny["classes"]


def test_bad_inputs():
    records = synthetic_records(11, 5)
    with pytest.raises(ConfidenceSegError, match="alpha"):
        fit_quality_model(records, alpha=0)
    with pytest.raises(ConfidenceSegError, match="threshold"):
        fit_quality_model(records, threshold=1.5)
    with pytest.raises(ConfidenceSegError, match="no labelled cases"):
        fit_quality_model([])
    broken = [QualityRecord("organ", "a", {k: v for k, v in records[0].summary.items() if k != "samples_iou"}, 0.9)]
    with pytest.raises(ConfidenceSegError, match="samples_iou"):
        fit_quality_model(broken * 3)


def test_every_badge_has_its_reason(fitted):
    records = synthetic_records(6, 30)
    best = max(records, key=lambda r: r.dice).summary
    passed = assess_segment(fitted, "organ", best)
    assert passed.badge == "PASS" and passed.reasons[0].code == "lower_bound_above_threshold"
    assert f"{passed.dice_lower_bound:.2f}" in passed.reasons[0].message
    worst = assess_segment(fitted, "organ", min(records, key=lambda r: r.dice).summary)
    if worst.predicted_dice is not None:
        assert worst.badge == "REVIEW" and worst.reasons[0].code == "lower_bound_below_threshold"
    calibrated = QualityConfig(dict(fitted.data, prediction={"method": "ensemble", "samples": 10}))
    same = assess_segment(calibrated, "organ", best, used=("ensemble", 10))
    assert same.badge == "PASS"
    other = assess_segment(calibrated, "organ", best, used=("tta", 4))
    assert other.badge == "REVIEW" and other.reasons[0].code == "method_differs_from_calibration"
    assert "tta, 4 samples" in other.reasons[0].message
    no_spacing = assess_segment(fitted, "organ", best, has_spacing=False)
    assert no_spacing.badge == "REVIEW" and [r.code for r in no_spacing.reasons] == ["no_spacing"]
    assert no_spacing.predicted_dice == pytest.approx(passed.predicted_dice)



def test_frames_of_a_stack_are_assessed_one_by_one(fitted):
    records = sorted(synthetic_records(6, 30), key=lambda r: r.dice)
    good, bad = records[-1].summary, records[0].summary
    empty = dict(good, volume_voxels=0.0, size_fraction=0.0, present_fraction=0.0)
    whole, frames, counts = assess_frames(fitted, "organ", [good, good, empty, good])
    assert whole.badge == "PASS" and [f.badge for f in frames] == ["PASS", "PASS", "ABSENT", "PASS"]
    assert counts == {"PASS": 3, "REVIEW": 0, "ABSENT": 1, "worst_frame": 0}
    assert whole.reasons[0].message.startswith("all 3 frames with organ pass")
    whole, frames, counts = assess_frames(fitted, "organ", [good, good, bad, good])
    assert frames[2].badge == "REVIEW" and whole.badge == "REVIEW" and counts["worst_frame"] == 2
    assert whole.reasons[0].code == "frames_need_review" and "(frame 3)" in whole.reasons[0].message
    assert whole.dice_lower_bound == frames[2].dice_lower_bound  # the worst frame's numbers
    whole, _, counts = assess_frames(fitted, "organ", [empty, empty])
    assert whole.badge == "ABSENT" and counts["ABSENT"] == 2 and counts["worst_frame"] is None
    whole, frames, _ = assess_frames(None, "organ", [good, good])
    assert whole.badge is None and whole.reasons[0].code == "no_quality_model"


def test_the_badge_keeps_the_feature_set_that_ranks_best_held_out():
    model = fit_quality_model(synthetic_records(2, 40), alpha=0.1)["classes"]["organ"]
    figures = model["feature_choice"]["held_out_e_aurc"]
    assert model["feature_choice"]["chosen"] == min(figures, key=figures.get) != "mean entropy"
    assert figures["mean entropy"] > 2 * model["held_out_e_aurc"]  # mean entropy is noise in these records
    rng = np.random.default_rng(5)
    records = []
    for subject in range(40):  # now only mean entropy carries the Dice; disagreement says nothing
        dice = float(np.clip(rng.beta(6, 1.2), 0, 1))
        summary = dict(synthetic_summary(rng, 0.9), mean_entropy=float(0.4 * (1 - dice) + rng.normal(0, 0.005)))
        records.append(QualityRecord("organ", f"s{subject}", summary, dice))
    model = fit_quality_model(records, alpha=0.1)["classes"]["organ"]
    assert model["feature_choice"]["chosen"] != "pairwise Dice of the samples"
    assert "mean_entropy" in model["features"]
