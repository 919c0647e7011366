"""Knowing when the model is out of its depth: the domain check, presence from evidence, plausible measurements,
and reasons that never contradict the badge. Known answers on synthetic data, then the bundled model on images it
was (and was not) made for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import REPO_ROOT, dataset_dir
from scipy import stats

from ConfidenceSegLib.contract import ABSENT, REVIEW
from ConfidenceSegLib.io.inputs import InputFacts
from ConfidenceSegLib.quality.domain import fit_domain, knn_scores, typicality, upper_p_values
from ConfidenceSegLib.quality.measurement_intervals import calibrated, implausible
from ConfidenceSegLib.quality.reasons import bound_reason, compared, headline_measurement, verdict_words
from ConfidenceSegLib.quality.verdict import ClassResult, Reason, Verdict

BUNDLED = REPO_ROOT / "Resources" / "models" / "fetal_head"


def calibration_set(rng, subjects=60, per_subject=4, dims=12):
    """In-domain descriptors: a subject effect plus image noise, as calibration images of several subjects."""
    centres = rng.normal(0, 1, (subjects, dims))
    embeddings = np.repeat(centres, per_subject, axis=0) + rng.normal(0, 0.5, (subjects * per_subject, dims))
    return embeddings, np.repeat([f"s{k}" for k in range(subjects)], per_subject)


def test_p_values_of_new_in_domain_subjects_are_uniform_and_the_flag_rate_is_alpha():
    rng = np.random.default_rng(3)
    embeddings, subjects = calibration_set(rng)
    uncertainty = rng.gamma(2.0, 0.05, len(subjects))
    section, references = fit_domain({"level": embeddings}, uncertainty, subjects, alpha=0.1)
    new, _ = calibration_set(rng, subjects=200, per_subject=1)
    found = typicality(section, references, {"level": new}, rng.gamma(2.0, 0.05, 200), np.zeros(200, bool))
    p_values = np.array([t.p_value for t in found])
    flagged = np.mean([t.outside for t in found])
    # Bonferroni over two descriptors: the flag rate is at most alpha (conservative), and not far below it
    assert 0.02 <= flagged <= 0.1 + 0.05, flagged
    single = upper_p_values(knn_scores((new - np.array(section["layers"]["level"]["feature_mean"])) /
                                       np.array(section["layers"]["level"]["feature_scale"]), references["level"], 5),
                            section["layers"]["level"]["scores"])
    assert stats.kstest(single, "uniform").pvalue > 0.01  # each descriptor's p-value is uniform in domain
    far = typicality(section, references, {"level": new[:5] + 8.0}, np.full(5, 0.1), np.zeros(5, bool))
    assert all(t.outside and t.p_value <= 2 / (len(subjects) + 1) for t in far)
    blank = typicality(section, references, {"level": new[:1]}, np.full(1, 0.1), np.ones(1, bool))[0]
    assert blank.outside and "blank" in blank.reason.message
    assert p_values.min() >= 2 / (len(subjects) + 1)


def test_knn_scores_leave_the_own_subject_out():
    points = np.array([[0.0], [0.1], [5.0], [5.2]])
    same = np.array([[True, True, False, False], [True, True, False, False],
                     [False, False, True, True], [False, False, True, True]])
    np.testing.assert_allclose(knn_scores(points, points, 1, exclude=same), [5.0, 4.9, 4.9, 5.1])
    np.testing.assert_allclose(knn_scores(points, points, 1), [0.0, 0.0, 0.0, 0.0])


def test_intervals_never_go_below_zero_and_implausible_sizes_are_no_headline():
    spread = {"area_mm2": {"value": 100.0, "p05": 10.0, "p95": 400.0}}
    widened = calibrated(spread, {"area_mm2": {"scale": 1.0, "margin": 50.0}})["area_mm2"]
    assert widened["p05"] == 0.0 and widened["p95"] > 400
    calibration = {"ellipse_circumference_mm": {"scale": 1.0, "margin": 0.1, "plausible": [40.0, 500.0]}}
    huge = {"ellipse_circumference_mm": {"value": 1056.0, "p05": 900.0, "p95": 1200.0}}
    marked, reason = implausible(huge, calibration, "fetal_head")
    assert reason.code == "measurement_implausible" and "1056 mm" in reason.message and "40-500 mm" in reason.message
    result = ClassResult("fetal_head", True, {}, Verdict(REVIEW, 0.8, 0.6, (reason,)), marked)
    assert headline_measurement(result) == ""
    normal = {"ellipse_circumference_mm": {"value": 170.0, "p05": 160.0, "p95": 180.0}}
    assert implausible(normal, calibration, "fetal_head") == (normal, None)


def test_numbers_in_reasons_never_contradict_the_verdict():
    assert compared(0.7965, 0.8) == "0.796" and compared(0.79999, 0.8) == "0.79999"
    assert compared(0.8, 0.8) == "0.80" and compared(0.8049, 0.8) == "0.80" and compared(0.76, 0.8) == "0.76"
    below = bound_reason(0.7965, 0.8, 0.1)
    assert below.code == "lower_bound_below_threshold" and below.message.startswith("90% lower bound")
    assert "0.796 < 0.80" in below.message
    verdict = Verdict(REVIEW, 0.9, 0.7965, (below, Reason("no_spacing", "no spacing")))
    assert verdict_words(verdict).endswith("(+1 more)")


@pytest.fixture(scope="module")
def bundled():
    from ConfidenceSegLib.model.bundle import load_bundle

    if not (BUNDLED / "domain_references.safetensors").is_file():
        pytest.skip("the bundled model is not in this checkout")
    return load_bundle(BUNDLED)


def verdict_of(bundle, image: sitk.Image):
    from ConfidenceSegLib.jobs.predict_job import run_prediction
    from ConfidenceSegLib.jobs.settings import PredictionSettings

    assessed = run_prediction(bundle, InputFacts(Path("input"), True, False), PredictionSettings(device="cpu", maps=()),
                              image=image)
    return assessed.classes[0]


def ultrasound_like(array: np.ndarray) -> sitk.Image:
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.SetSpacing((0.15, 0.15))
    return image


def test_noise_blank_and_another_organ_get_no_number_and_a_calibration_image_does(bundled):
    rng = np.random.default_rng(0)
    others = [ultrasound_like(rng.normal(100, 30, (270, 400)).clip(0, 255)), ultrasound_like(np.full((270, 400), 40))]
    lung = dataset_dir("lus_pleural")
    from ConfidenceSegLib.annotation.datasets import load_dataset

    others.append(load_dataset(lung).cases[0].read_image())
    for image in others:
        result = verdict_of(bundled, image)
        assert result.verdict.predicted_dice is None and result.verdict.dice_lower_bound is None
        assert result.verdict.badge in (REVIEW, ABSENT)
        assert result.verdict.first_reason and headline_measurement(result) == ""
    hc18 = load_dataset(dataset_dir("hc18"))
    calibration_case = hc18.cases_of_subjects(bundled.config.training["split"]["calibration"]["subject_ids"])[0]
    result = verdict_of(bundled, calibration_case.read_image())
    assert result.verdict.predicted_dice is not None, result.verdict.reasons
    assert not any(r.code == "out_of_domain" for r in result.verdict.reasons)
    assert all(entry["p05"] >= 0 for entry in result.measurements.values() if isinstance(entry, dict))


def test_the_boundary_check_gives_no_number_to_a_brain_in_mri(bundled):
    """Neonatal brain MRI slices: a head-shaped structure the model outlines confidently, in images that
    the image check does not always refuse; the segment's edge is unlike a fetal skull's, so no slice gets
    a number, and for some of them the boundary check is what says so."""
    from ConfidenceSegLib.annotation.datasets import load_dataset

    results = [verdict_of(bundled, case.read_image()) for case in load_dataset(dataset_dir("qubiq_brain_growth")).cases]
    assert all(result.verdict.predicted_dice is None for result in results), \
        [result.verdict.first_reason for result in results if result.verdict.predicted_dice is not None]
    assert any("edge" in result.verdict.first_reason for result in results)
