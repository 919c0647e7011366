"""Batch QC (``confidenceseg review``): inputs, ordering, review.csv, index.html, skipped inputs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import dataset_dir
from tiny_bundles import make_bundle, random_image

from ConfidenceSegLib.cli import main
from ConfidenceSegLib.contract import MAP_KINDS, REVIEW_COLUMNS, ConfidenceSegError
from ConfidenceSegLib.io.images import write_image
from ConfidenceSegLib.io.inputs import collect_inputs
from ConfidenceSegLib.io.resources import default_model_dir, sample_images
from ConfidenceSegLib.jobs.review import run_review
from ConfidenceSegLib.outputs.review_table import read_review_table, review_csv, review_order


def test_review_order_flagged_first_then_lowest_bound():
    rows = [{"case": "a", "class": "c", "badge": "PASS", "dice_lower_bound": 0.81, "predicted_dice": 0.95},
            {"case": "b", "class": "c", "badge": "REVIEW", "dice_lower_bound": 0.70, "predicted_dice": 0.90},
            {"case": "c", "class": "c", "badge": "REVIEW", "dice_lower_bound": 0.20, "predicted_dice": 0.60},
            {"case": "d", "class": "c", "badge": "ABSENT", "dice_lower_bound": None, "predicted_dice": None},
            {"case": "e", "class": "c", "badge": None, "dice_lower_bound": None, "predicted_dice": None},
            {"case": "f", "class": "c", "badge": "PASS", "dice_lower_bound": 0.90, "predicted_dice": 0.97},
            {"case": "g", "class": "c", "badge": "REVIEW", "dice_lower_bound": 0.20, "predicted_dice": 0.50}]
    assert [row["case"] for row in sorted(rows, key=review_order)] == ["g", "c", "b", "d", "a", "f", "e"]


def write_dicom_series(folder: Path, seed: int) -> None:
    folder.mkdir()
    for index in range(2):
        write_image(sitk.Cast(random_image((12, 16), seed=seed + index), sitk.sitkInt16), folder / f"slice{index}.dcm")


def test_collect_inputs(tmp_path):
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    for name in ("b.nrrd", "a.nii.gz", ".hidden.nrrd", "notes.txt", "a_mask.seg.nrrd"):
        (cohort / name).write_bytes(b"x")
    (cohort / "labels").mkdir()
    (cohort / "labels" / "b_label.nrrd").write_bytes(b"x")
    write_dicom_series(cohort / "series1", seed=1)
    extra = tmp_path / "c.png"
    extra.write_bytes(b"x")
    found = collect_inputs([cohort, extra])
    assert found == [cohort / "a.nii.gz", cohort / "b.nrrd", cohort / "series1", extra]
    assert collect_inputs([cohort / "series1"]) == [cohort / "series1"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "b.mha").write_bytes(b"x")
    with pytest.raises(ConfidenceSegError, match="same outputs b"):
        collect_inputs([cohort, tmp_path / "other"])
    with pytest.raises(ConfidenceSegError, match="input not found"):
        collect_inputs([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(ConfidenceSegError, match="no images found"):
        collect_inputs([tmp_path / "empty"])


def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        return list(reader.fieldnames), list(reader)


def parsed(row: dict) -> dict:
    number = lambda text: float(text) if text else None  # noqa: E731
    return dict(row, predicted_dice=number(row["predicted_dice"]), dice_lower_bound=number(row["dice_lower_bound"]),
                badge=row["badge"] or None)


def check_review_folder(out: Path, cases: list[str], classes: list[str]) -> list[dict]:
    """Checks shared by every review run: CSV columns and order, files, JSON agreement, HTML, Slicer reader."""
    header, rows = read_csv(out / "review.csv")
    assert tuple(header) == REVIEW_COLUMNS
    assert sorted((row["case"], row["class"]) for row in rows) == sorted((c, k) for c in cases for k in classes)
    assert [(r["case"], r["class"]) for r in rows] == \
        [(r["case"], r["class"]) for r in sorted(map(parsed, rows), key=review_order)]
    for row in rows:
        for column in ("segmentation", "probability", "entropy", "mutual_information", "json"):
            assert (out / row[column]).is_file(), f"{column} of {row['case']} missing"
        report = json.loads((out / row["json"]).read_text(encoding="utf-8"))
        result = report["classes"][row["class"]]
        assert row["badge"] == (result["badge"] or "")
        assert parsed(row)["predicted_dice"] == pytest.approx(result["predicted_dice"], abs=1e-4) \
            if result["predicted_dice"] is not None else row["predicted_dice"] == ""
        assert (out / f"{row['case']}_overlay.png").is_file()
    page = (out / "index.html").read_text(encoding="utf-8")
    for case in cases:
        for class_name in classes:
            assert f'alt="overlay of {case} {class_name}"' in page
    slicer_rows = read_review_table(out)
    assert [(r.case, r.class_name) for r in slicer_rows] == [(r["case"], r["class"]) for r in rows]
    return rows


def test_review_with_tiny_model_reports_bad_inputs_and_never_overwrites(tmp_path, capsys):
    make_bundle(tmp_path / "model", input_size=(32, 40))
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    for seed in (1, 2):
        write_image(random_image((30, 44), seed=seed), cohort / f"case{seed}.nrrd")
    (cohort / "broken.nrrd").write_bytes(b"NRRD0004\nnot really\n")
    out = tmp_path / "qc"
    argv = ["review", "--model", str(tmp_path / "model"), "--inputs", str(cohort), "--out", str(out),
            "--method", "mcdropout", "--samples", "4", "--maps", ",".join(MAP_KINDS)]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "broken.nrrd" in captured.out and "could not be processed" in captured.out
    rows = check_review_folder(out, ["case1", "case2"], ["organ", "lesion"])
    assert all(row["badge"] == "" for row in rows)  # no quality model in this bundle: unrated
    assert "Not processed (1)" in (out / "index.html").read_text(encoding="utf-8")

    before = {path.name: path.stat().st_mtime_ns for path in out.iterdir()}
    assert main(argv) == 2
    assert "output exists" in capsys.readouterr().err
    assert {path.name: path.stat().st_mtime_ns for path in out.iterdir()} == before


def test_review_fails_clearly_when_nothing_can_be_read(tmp_path):
    make_bundle(tmp_path / "model")
    (tmp_path / "bad.nrrd").write_bytes(b"garbage")
    with pytest.raises(ConfidenceSegError, match="no input could be processed"):
        run_review(tmp_path / "model", [tmp_path / "bad.nrrd"], tmp_path / "qc", progress=False)


def bundled_model() -> Path:
    try:
        return default_model_dir()
    except ConfidenceSegError as error:
        pytest.skip(f"bundled default model not available yet: {error}")


@pytest.mark.slow
def test_review_on_hc18_with_bundled_model(tmp_path):
    model = bundled_model()
    hc18 = dataset_dir("hc18")
    training = set(json.loads((model / "config.json").read_text(encoding="utf-8"))["training"]["split"]["training"].get(
        "subject_ids", []))
    held_out = [p for p in sorted((hc18 / "images").glob("*.nrrd")) if p.stem not in training][:1]
    inputs = [*sample_images()[:2], *held_out]
    result = run_review(model, inputs, tmp_path / "qc", progress=False, maps=MAP_KINDS)
    assert not result.failures
    rows = check_review_folder(tmp_path / "qc", [p.name.removesuffix(".nrrd") for p in inputs], ["fetal_head"])
    assert all(row["badge"] in ("PASS", "REVIEW", "ABSENT") for row in rows), "the bundled model has a quality model"
    assert np.isfinite([float(row["predicted_dice"]) for row in rows if row["predicted_dice"]]).all()


def test_review_csv_escapes_formula_cells_and_reads_them_back(tmp_path):
    names = ["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "\tx", "'quoted", "'=kept", "plain"]
    rows = [{"case": name, "class": "c", "predicted_dice": 0.9, "dice_lower_bound": 0.8, "badge": "PASS",
             "reason": "=cmd|' /C calc'!A0", "json": f"{name}.json"} for name in names]
    (tmp_path / "review.csv").write_text(review_csv(rows), encoding="utf-8")
    with (tmp_path / "review.csv").open(newline="", encoding="utf-8") as file:
        written = {record["case"]: record for record in csv.DictReader(file)}
    for name in names[:-1]:
        assert f"'{name}" in written, f"{name!r} is written without its apostrophe"
        assert written[f"'{name}"]["reason"].startswith("'=") and written[f"'{name}"]["json"] == f"'{name}.json"
    assert "plain" in written and written["plain"]["predicted_dice"] == "0.9000"
    back = read_review_table(tmp_path)
    assert sorted(row.case for row in back) == sorted(names)
    assert {row.reason for row in back} == {"=cmd|' /C calc'!A0"}
    assert {row.case: row.paths["json"] for row in back} == {name: f"{name}.json" for name in names}
