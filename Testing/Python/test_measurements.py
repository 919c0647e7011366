"""Measurements with known answers (synthetic ellipses), their intervals, and the same pixels measured
and assessed with and without spacing (real HC18 frame, the bundled model)."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import REPO_ROOT, dataset_dir

from ConfidenceSegLib.cli import main
from ConfidenceSegLib.inference.measurements import (
    area_and_circumference,
    frame_measurements,
    interval,
    mask_moments,
    reference_measurements,
)
from ConfidenceSegLib.quality.measurement_intervals import calibrated

BUNDLED = REPO_ROOT / "Resources" / "models" / "fetal_head"


def ramanujan(a: float, b: float) -> float:
    h = ((a - b) / (a + b)) ** 2
    return math.pi * (a + b) * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))


def filled_ellipse(shape, centre, semi_axes_mm, angle_deg, pixel_mm) -> np.ndarray:
    """A filled ellipse on a grid of (y, x) pixel size ``pixel_mm``, axes in mm, rotated."""
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    y, x = (yy - centre[0]) * pixel_mm[0], (xx - centre[1]) * pixel_mm[1]
    t = math.radians(angle_deg)
    u, v = x * math.cos(t) + y * math.sin(t), -x * math.sin(t) + y * math.cos(t)
    return (u / semi_axes_mm[0]) ** 2 + (v / semi_axes_mm[1]) ** 2 <= 1


@pytest.mark.parametrize(("axes", "angle", "pixel_mm"), [((60, 35), 0, (1.0, 1.0)), ((60, 35), 30, (0.3, 0.2)),
                                                         ((40, 39), 75, (0.25, 0.25)), ((25, 8), 120, (0.2, 0.3))])
def test_ellipse_circumference_of_synthetic_ellipses_within_one_percent(axes, angle, pixel_mm):
    shape = (int(2.6 * max(axes) / pixel_mm[0]), int(2.6 * max(axes) / pixel_mm[1]))
    mask = filled_ellipse(shape, (shape[0] / 2, shape[1] / 2), axes, angle, pixel_mm)
    area, circumference = area_and_circumference(mask_moments(mask), pixel_mm)
    assert circumference == pytest.approx(ramanujan(*axes), rel=0.01)
    assert area == pytest.approx(math.pi * axes[0] * axes[1], rel=0.01)
    spacing_xy = (pixel_mm[1], pixel_mm[0])
    assert reference_measurements(mask, spacing_xy)["ellipse_circumference_mm"] == pytest.approx(circumference)


def test_intervals_contain_the_value_and_follow_the_samples():
    assert interval(10.0, []) == {"value": 10.0, "p05": 10.0, "p95": 10.0}
    spread = interval(10.0, np.linspace(8, 12, 101))
    assert spread["p05"] == pytest.approx(8.2) and spread["p95"] == pytest.approx(11.8)
    assert interval(20.0, [8, 9, 10])["p95"] == 20.0  # widened to contain the shown mask's value
    widened = calibrated({"area_mm2": spread}, {"area_mm2": {"scale": 1.0, "margin": 0.5}})["area_mm2"]
    assert widened["p05"] == pytest.approx(8.2 - 0.5 * 3.7) and widened["p95"] == pytest.approx(11.8 + 0.5 * 3.7)
    narrowed = calibrated({"area_mm2": spread}, {"area_mm2": {"scale": 1.0, "margin": -10.0}})["area_mm2"]
    assert narrowed["p05"] == narrowed["p95"] == 10.0
    scaled = calibrated({"area_mm2": spread}, {"area_mm2": {"scale": 0.5}})["area_mm2"]
    assert scaled == {"value": 5.0, "p05": pytest.approx(4.1), "p95": pytest.approx(5.9)}


def test_sample_masks_on_a_coarser_grid_measure_the_same_ellipse():
    fine = filled_ellipse((270, 400), (135, 200), (40, 30), 20, (0.2, 0.2))
    coarse = filled_ellipse((135, 200), (67.5, 100), (40, 30), 20, (0.4, 0.4))
    sizes = frame_measurements(fine, np.stack([mask_moments(coarse)] * 3), (0.2, 0.2), (0.4, 0.4))
    circumference = sizes["ellipse_circumference_mm"]
    assert circumference["p05"] == pytest.approx(circumference["value"], rel=0.01)


@pytest.fixture(scope="module")
def png_and_nrrd(tmp_path_factory):
    if not (BUNDLED / "config.json").is_file():
        pytest.skip("the bundled fetal_head model is not in this checkout")
    hc18 = dataset_dir("hc18")
    image = sitk.ReadImage(str(hc18 / "images" / "hc18-150.nrrd"))
    folder = tmp_path_factory.mktemp("spacing")
    sitk.WriteImage(sitk.Cast(image, sitk.sitkUInt8), str(folder / "frame.png"))
    sitk.WriteImage(image, str(folder / "frame.nrrd"))
    reports = {}
    for suffix in ("png", "nrrd"):
        assert main(["predict", "--model", str(BUNDLED), "--input", str(folder / f"frame.{suffix}"),
                     "--out", str(folder / suffix)]) == 0
        report = json.loads((folder / suffix / "frame.json").read_text(encoding="utf-8"))
        reports[suffix] = report["classes"]["fetal_head"]
    return reports, image.GetSpacing()


def test_the_same_pixels_get_the_same_badge_with_and_without_spacing(png_and_nrrd):
    reports, _ = png_and_nrrd
    png, nrrd = reports["png"], reports["nrrd"]
    assert png["predicted_dice"] is not None and nrrd["predicted_dice"] is not None
    assert png["predicted_dice"] == pytest.approx(nrrd["predicted_dice"], abs=0.005)
    assert png["dice_lower_bound"] == pytest.approx(nrrd["dice_lower_bound"], abs=0.005)
    assert "no_spacing" in [r["code"] for r in png["reasons"]]
    assert "no_spacing" not in [r["code"] for r in nrrd["reasons"]]


def test_measurements_are_in_mm_with_spacing_and_in_pixels_without(png_and_nrrd):
    reports, spacing = png_and_nrrd
    mm = reports["nrrd"]["measurements"]["ellipse_circumference_mm"]
    px = reports["png"]["measurements"]["ellipse_circumference_px"]
    assert mm["p05"] <= mm["value"] <= mm["p95"] and px["p05"] <= px["value"] <= px["p95"]
    assert "no_spacing" in reports["png"]["measurements"]["note"]
    # isotropic pixels: the same outline, in pixels x pixel size
    assert spacing[0] == spacing[1] and mm["value"] == pytest.approx(px["value"] * spacing[0], rel=0.01)
    assert reports["nrrd"]["measurements"]["area_mm2"]["value"] > 0


def test_calibrated_margins_make_intervals_cover_the_reference():
    from ConfidenceSegLib.quality.calibration import measurement_calibration
    from ConfidenceSegLib.quality.fit import QualityRecord

    rng = np.random.default_rng(0)
    present = {"volume_voxels": 100.0, "present_fraction": 1.0}
    records = []
    for index in range(200):  # samples' spread 100 +- 2, truth 3% lower +- 6: the raw interval is biased, too narrow
        sizes = {"ellipse_circumference_mm": interval(100.0, rng.normal(100, 1.2, 10))}
        truth = {"ellipse_circumference_mm": float(rng.normal(97, 6))}
        records.append(QualityRecord("head", f"s{index}", present, 0.9, measurements=sizes,
                                     reference_measurements=truth))
    raw = np.mean([r.measurements["ellipse_circumference_mm"]["p05"] <= r.reference_measurements[
        "ellipse_circumference_mm"] <= r.measurements["ellipse_circumference_mm"]["p95"] for r in records])
    calibration = measurement_calibration(records[:100], alpha=0.1)["head"]
    assert calibration["ellipse_circumference_mm"]["scale"] == pytest.approx(0.97, abs=0.015)
    covered = [calibrated(r.measurements, calibration)["ellipse_circumference_mm"] for r in records[100:]]
    truths = [r.reference_measurements["ellipse_circumference_mm"] for r in records[100:]]
    coverage = np.mean([c["p05"] <= t <= c["p95"] for c, t in zip(covered, truths, strict=True)])
    assert raw < 0.6 and calibration["ellipse_circumference_mm"]["margin"] > 0 and 0.8 <= coverage <= 0.99
    few = [replace(record, subject=f"s{index % 8}") for index, record in enumerate(records[:100])]
    assert measurement_calibration(few, alpha=0.1) == {}, "100 segments of 8 subjects: no 90% interval"
