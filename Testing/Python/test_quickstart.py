"""The quick start (``confidenceseg quickstart``): bundled model on a bundled sample, outputs, overlay, badge."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image
from tiny_bundles import make_bundle

from ConfidenceSegLib.cli import main
from ConfidenceSegLib.contract import (
    BADGE_COLORS,
    QUICKSTART_FOLDER,
    ConfidenceSegError,
    prediction_file_names,
)
from ConfidenceSegLib.io.images import read_image
from ConfidenceSegLib.io.resources import default_model_dir, resources_dir, sample_images
from ConfidenceSegLib.io.segfile import read_segmentation
from ConfidenceSegLib.jobs.quickstart import fresh_folder
from ConfidenceSegLib.quality.metrics import dice
from ConfidenceSegLib.quality.reasons import compared


def test_fresh_folder_never_reuses_an_existing_one(tmp_path):
    base = tmp_path / QUICKSTART_FOLDER
    assert fresh_folder(base) == base
    base.mkdir()
    (tmp_path / f"{QUICKSTART_FOLDER}-2").mkdir()
    assert fresh_folder(base) == tmp_path / f"{QUICKSTART_FOLDER}-3"


def test_sample_data_ships_with_attribution():
    samples = sample_images()
    assert len(samples) >= 2
    attribution = (resources_dir() / "SampleData" / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in attribution and "10.1371/journal.pone.0200412" in attribution
    for sample in samples:
        assert sample.name in attribution
        assert (sample.parent / "labels" / f"{sample.stem}_fetal_head.nrrd").is_file()


def test_samples_were_not_used_for_training():
    try:
        model = default_model_dir()
    except ConfidenceSegError as error:
        pytest.skip(f"bundled default model not available yet: {error}")
    split = json.loads((model / "config.json").read_text(encoding="utf-8"))["training"]["split"]
    trained_on = set(split["training"]["subject_ids"])
    assert trained_on, "the bundle records its training subjects"
    assert not trained_on & {sample.stem for sample in sample_images()}


@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory):
    """``confidenceseg quickstart`` run in a fresh working folder, with its printed output."""
    try:
        default_model_dir()
    except ConfidenceSegError as error:
        pytest.skip(f"bundled default model not available yet: {error}")
    folder = tmp_path_factory.mktemp("quickstart")
    stdout = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(stdout):
        patch.chdir(folder)
        code = main(["quickstart"])
    return folder / QUICKSTART_FOLDER, code, stdout.getvalue()


def test_quickstart_writes_predict_outputs_and_prints_badge(quickstart_run):
    out, code, printed = quickstart_run
    assert code == 0
    sample = sample_images()[0]
    stem = sample.name.removesuffix(".nrrd")
    report = json.loads((out / f"{stem}.json").read_text(encoding="utf-8"))
    for name in prediction_file_names(stem, list(report["classes"])):
        assert (out / name).is_file(), name
    result = report["classes"]["fetal_head"]
    assert result["badge"] in ("PASS", "REVIEW")
    assert f"fetal_head  {result['badge']}" in printed
    bound = compared(result["dice_lower_bound"], report["pass_threshold"])  # never printed on the wrong side
    assert f"predicted Dice {result['predicted_dice']:.2f}; 90% lower bound {bound}" in printed
    assert f"{stem}_overlay.png" in printed and QUICKSTART_FOLDER in printed

    image = read_image(sample)
    mask = read_segmentation(out / f"{stem}.seg.nrrd", image)[0].mask
    reference = sitk.GetArrayFromImage(read_image(sample.parent / "labels" / f"{stem}_fetal_head.nrrd")) > 0
    true_dice = dice(mask, reference)
    assert true_dice >= 0.6, f"the bundled model misses the fetal head of its own sample (Dice {true_dice:.2f})"
    if true_dice < 0.8:
        assert result["badge"] == "REVIEW", f"a segmentation with Dice {true_dice:.2f} must not PASS"


def colour_pixels(picture: np.ndarray, hex_colour: str, tolerance: int = 40) -> int:
    target = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(picture[..., :3].astype(int) - target).max(axis=-1) <= tolerance).sum())


def test_quickstart_overlay_shows_outline_and_badge(quickstart_run):
    out, _, _ = quickstart_run
    stem = sample_images()[0].name.removesuffix(".nrrd")
    badge = json.loads((out / f"{stem}.json").read_text(encoding="utf-8"))["classes"]["fetal_head"]["badge"]
    picture = np.asarray(Image.open(out / f"{stem}_overlay.png").convert("RGB"))
    image = read_image(sample_images()[0])
    image_height = round(800 * image.GetSize()[1] / image.GetSize()[0])
    assert picture.shape[1] == 800 and picture.shape[0] > image_height
    segment = read_segmentation(out / f"{stem}.seg.nrrd", image)[0]  # the colour Slicer and the station show
    outline = "#" + "".join(f"{round(255 * channel):02x}" for channel in segment.color)
    assert colour_pixels(picture[:image_height], outline) > 100, "segmentation outline not drawn in its colour"
    band = picture[image_height:]
    assert colour_pixels(band, BADGE_COLORS[badge], tolerance=12) > 200, f"{badge} badge not drawn"
    other = "REVIEW" if badge == "PASS" else "PASS"
    assert colour_pixels(band, BADGE_COLORS[other], tolerance=12) < 20


def test_predict_overlay_is_the_quickstart_picture(quickstart_run, tmp_path):
    out, _, _ = quickstart_run
    sample = sample_images()[0]
    stem = sample.name.removesuffix(".nrrd")
    assert main(["predict", "--model", str(default_model_dir()), "--input", str(sample), "--out", str(tmp_path),
                 "--overlay"]) == 0
    assert (tmp_path / f"{stem}_overlay.png").read_bytes() == (out / f"{stem}_overlay.png").read_bytes()

def test_quickstart_refuses_to_overwrite(quickstart_run, capsys):
    out, _, _ = quickstart_run
    before = {path.name: path.stat().st_mtime_ns for path in out.iterdir()}
    assert main(["quickstart", "--out", str(out)]) == 2
    assert "output exists" in capsys.readouterr().err
    assert {path.name: path.stat().st_mtime_ns for path in out.iterdir()} == before


def test_quickstart_names_a_missing_image(tmp_path, capsys):
    make_bundle(tmp_path / "model")
    argv = ["quickstart", "--model", str(tmp_path / "model"), "--image", str(tmp_path / "nope.nrrd"),
            "--out", str(tmp_path / "q")]
    assert main(argv) == 2
    assert "nope.nrrd" in capsys.readouterr().err
    assert not (tmp_path / "q").exists()


def test_quickstart_help_documents_the_output_folder(capsys):
    with pytest.raises(SystemExit):
        main(["quickstart", "--help"])
    assert QUICKSTART_FOLDER in capsys.readouterr().out
