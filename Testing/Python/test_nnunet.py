"""nnU-Net v2 models as ConfidenceSeg models, on real models that nnunetv2 trains here (2D and 3D, 2
folds): each fold's probabilities are those of nnU-Net's own predictor for that fold; predict, calibrate (on
the raw layout's test cases) and evaluate run on them; a calibrated bundle detects a changed nnU-Net folder; a
checkpoint carrying code is refused and the code never runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

pytest.importorskip("nnunetv2", reason="the [nnunet] extra (nnunetv2) is not installed")

from nnunet_models import build_in_subprocess  # noqa: E402

from ConfidenceSegLib.cli import main  # noqa: E402
from ConfidenceSegLib.inference.nnunet_predict import member_probability, nnunet_input  # noqa: E402
from ConfidenceSegLib.io.inputs import InputFacts  # noqa: E402
from ConfidenceSegLib.model.bundle import load_bundle  # noqa: E402
from ConfidenceSegLib.model.nnunet_model import load_checkpoint  # noqa: E402
from ConfidenceSegLib.outputs.report import read_report  # noqa: E402

CONFIGURATIONS = ("2d", "3d_fullres")


@pytest.fixture(scope="session")
def nnunet_models(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """Configuration -> (trained-model folder, raw dataset with imagesTs/labelsTs), built once per session."""
    root = tmp_path_factory.mktemp("nnunet")
    return {configuration: build_in_subprocess(root, configuration) for configuration in CONFIGURATIONS}


def labelled_images(raw: Path) -> list[Path]:
    return sorted((raw / "imagesTs").glob("*_0000.nii.gz"))


@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_each_fold_gives_nnunet_s_own_probabilities_and_the_maps_their_mean(nnunet_models, configuration, tmp_path):
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    model, raw = nnunet_models[configuration]
    bundle = load_bundle(model)
    first = labelled_images(raw)[0]
    channel_files = sorted(first.parent.glob(first.name.replace("_0000", "_*")))
    assert len(channel_files) == bundle.config.in_channels == (2 if configuration == "2d" else 1)
    array, spacing = nnunet_input(bundle, InputFacts.of(first, channels=bundle.config.in_channels).read())
    read_by_nnunet, properties = SimpleITKIO().read_images([str(path) for path in channel_files])
    np.testing.assert_array_equal(array, read_by_nnunet)  # the channel files composed as nnU-Net reads them
    assert spacing == list(properties["spacing"])
    predictor = bundle.predictor(torch.device("cpu"))
    preprocessor = predictor.configuration_manager.preprocessor_class(verbose=False)
    data, _, properties = preprocessor.run_case_npy(array, None, {"spacing": spacing}, predictor.plans_manager,
                                                    predictor.configuration_manager, predictor.dataset_json)
    ours = [member_probability(predictor, weights, torch.from_numpy(data), dict(properties)).numpy()
            for weights in bundle.weights]
    for fold, probability in zip((0, 1), ours, strict=True):  # the anchor: nnU-Net's predictor, one fold
        anchor = nnUNetPredictor(device=torch.device("cpu"), verbose=False, allow_tqdm=False)
        anchor.initialize_from_trained_model_folder(str(model), use_folds=(fold,))
        _, expected = anchor.predict_single_npy_array(array, {"spacing": spacing}, None, None, True)
        np.testing.assert_allclose(probability, expected, atol=2e-3)
    assert not np.allclose(ours[0], ours[1], atol=1e-3), "two folds that agree everywhere test nothing"

    out = tmp_path / "out"
    code = ("import sys; from ConfidenceSegLib.cli import main; code = main(sys.argv[1:]); "
            "sys.exit(code or 3 * any(name.split('.')[0] == 'monai' for name in sys.modules))")
    predicted = subprocess.run([sys.executable, "-c", code, "predict", "--model", str(model), "--input",
                                str(labelled_images(raw)[0]), "--out", str(out), "--maps",
                                "probability,entropy,mutual_information"], capture_output=True, encoding="utf-8")
    assert predicted.returncode == 0, f"exit {predicted.returncode} (3: MONAI was loaded): {predicted.stderr[-2000:]}"
    report = read_report(next(out.glob("*.json")))
    assert report.method == "ensemble" and report.samples == 2
    for index, (name, result) in enumerate(report.classes.items()):
        mean = np.mean([probability[index + 1] for probability in ours], axis=0)
        written = sitk.GetArrayFromImage(sitk.ReadImage(str(out / result.files["probability"])))
        np.testing.assert_allclose(written, mean.reshape(written.shape), atol=2e-3)
        assert result.verdict.badge == "REVIEW" and result.verdict.reasons[0].code == "not_calibrated", name


@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_calibrate_on_the_test_cases_then_predict_and_evaluate(nnunet_models, configuration, tmp_path):
    model, raw = nnunet_models[configuration]
    wrapper = tmp_path / "calibrated"
    assert main(["calibrate", "--model", str(model), "--dataset", str(raw), "--out", str(wrapper), "--alpha",
                 "0.5"]) == 0
    config = json.loads((wrapper / "config.json").read_text(encoding="utf-8"))
    assert config["nnunet"]["folder"] == str(model.resolve()) and len(config["nnunet"]["fingerprint"]) == 4
    assert not list(wrapper.glob("*.pth")), "the checkpoints are referred to, not copied"
    assert config["quality"]["calibration_data"]["case_ids"] == [path.name[:-12] for path in labelled_images(raw)]
    out = tmp_path / "out"
    assert main(["predict", "--model", str(wrapper), "--input", str(labelled_images(raw)[1]), "--out", str(out)]) == 0
    report = read_report(next(out.glob("*.json")))
    assert all(result.verdict.reasons[0].code != "not_calibrated" for result in report.classes.values())
    evaluation = tmp_path / "evaluation"
    assert main(["evaluate", "--model", str(wrapper), "--dataset", str(raw), "--out", str(evaluation)]) == 0
    metrics = json.loads((evaluation / "metrics.json").read_text(encoding="utf-8"))
    ranked = [scores for scores in metrics["classes"].values() if scores["method"] is not None]
    assert ranked, "no class was predicted present on any case: nothing to rank"
    for ranking in ("method", "baseline_mean_entropy", "raw_mean_pairwise_dice"):  # the badge's, entropy, agreement
        assert all("e_aurc" in scores[ranking] for scores in ranked), ranking
    if configuration == "2d":  # a given mask of a two-channel image, assessed by its agreement with the folds
        image = labelled_images(raw)[1]
        label = raw / "labelsTs" / image.name.replace("_0000", "")
        assert main(["assess", "--model", str(wrapper), "--image", str(image), "--seg", str(label), "--out",
                     str(tmp_path / "assessed")]) == 0
        assessed = read_report(next((tmp_path / "assessed").glob("*.json")), need_segmentation=False)
        assert set(assessed.classes) == {"disc", "square"}
        assert all(result.verdict.badge in ("PASS", "REVIEW") for result in assessed.classes.values())
    reviewed = tmp_path / "review"  # a folder of multi-channel cases: one row per case, not per channel file
    assert main(["review", "--model", str(wrapper), "--inputs", str(raw / "imagesTs"), "--out", str(reviewed)]) == 0
    cases = {row.split(",")[0] for row in (reviewed / "review.csv").read_text(encoding="utf-8").splitlines()[1:]}
    assert len(cases) == len(labelled_images(raw)), cases


def copy_of(model: Path, folder: Path) -> Path:
    """A copy of an nnU-Net trained-model folder, under the name nnU-Net gives it."""
    copy = folder / model.parent.name / model.name
    shutil.copytree(model, copy)
    return copy


def test_a_calibrated_bundle_refuses_a_changed_nnunet_folder(nnunet_models, tmp_path, capsys):
    model = copy_of(nnunet_models["2d"][0], tmp_path)
    raw = nnunet_models["2d"][1]
    assert main(["calibrate", "--model", str(model), "--dataset", str(raw), "--out", str(tmp_path / "wrapped")]) == 0
    image = str(labelled_images(raw)[0])
    assert main(["predict", "--model", str(tmp_path / "wrapped"), "--input", image, "--out", str(tmp_path / "a")]) == 0
    plans = json.loads((model / "plans.json").read_text(encoding="utf-8"))
    plans["configurations"]["2d"]["batch_size"] += 1  # edited after the calibration
    (model / "plans.json").write_text(json.dumps(plans))
    capsys.readouterr()
    assert main(["predict", "--model", str(tmp_path / "wrapped"), "--input", image, "--out", str(tmp_path / "b")]) == 2
    assert "plans.json differs" in capsys.readouterr().err and not (tmp_path / "b").exists()


class Payload:
    """Runs a command when unpickled by an unrestricted unpickler."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_checkpoint_carrying_code_is_refused_and_never_run(nnunet_models, tmp_path, capsys):
    model = copy_of(nnunet_models["2d"][0], tmp_path)
    marker = tmp_path / "code-ran"
    checkpoint = model / "fold_1" / "checkpoint_final.pth"
    torch.save({**load_checkpoint(checkpoint), "extra": Payload(marker)}, checkpoint)
    image = str(labelled_images(nnunet_models["2d"][1])[0])
    capsys.readouterr()
    assert main(["predict", "--model", str(model), "--input", image, "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "refusing" in error and "it was not run" in error and len(error.strip().splitlines()) == 1
    assert not marker.exists() and not (tmp_path / "out").exists()


def as_configuration(model: Path, folder: Path, name: str, settings: dict) -> Path:
    """A copy of a trained 2D model under configuration ``name`` (``settings``, e.g. inheriting from 2d), its
    checkpoints saying they were trained as ``name``, as nnU-Net writes a user-defined configuration's."""
    copy = folder / model.parent.name / model.name.replace("__2d", f"__{name}")
    shutil.copytree(model, copy)
    plans = json.loads((copy / "plans.json").read_text(encoding="utf-8"))
    plans["configurations"][name] = settings
    (copy / "plans.json").write_text(json.dumps(plans), encoding="utf-8")
    for checkpoint in copy.glob("fold_*/checkpoint_final.pth"):
        content = load_checkpoint(checkpoint)
        content["init_args"]["configuration"] = name
        torch.save(content, checkpoint)
    return copy


def test_a_configuration_inheriting_its_settings_predicts_and_a_cascade_stage_is_refused(nnunet_models, tmp_path,
                                                                                         capsys):
    model, raw = nnunet_models["2d"]
    image = str(labelled_images(raw)[0])
    inheriting = as_configuration(model, tmp_path / "a", "2d_bs8", {"inherits_from": "2d", "batch_size": 8})
    for folder, out in ((model, tmp_path / "plain"), (inheriting, tmp_path / "inheriting")):
        assert main(["predict", "--model", str(folder), "--input", image, "--out", str(out), "--maps",
                     "probability"]) == 0
    written = sorted((tmp_path / "plain").glob("*_probability.nrrd"))
    assert len(written) == 2, written  # disc and square
    for plain in written:
        expected = sitk.GetArrayFromImage(sitk.ReadImage(str(plain)))
        got = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "inheriting" / plain.name)))
        np.testing.assert_allclose(got, expected, atol=1e-5)
    cascade = as_configuration(model, tmp_path / "b", "2d_cascade", {"inherits_from": "2d", "previous_stage": "2d"})
    capsys.readouterr()
    assert main(["predict", "--model", str(cascade), "--input", image, "--out", str(tmp_path / "cascade")]) == 2
    error = capsys.readouterr().err
    assert "cascade stage" in error and len(error.strip().splitlines()) == 1 and not (tmp_path / "cascade").exists()


def edited_plan(model: Path, folder: Path, edit) -> Path:
    """A copy of ``model`` whose 2d configuration ``edit`` changed (in place)."""
    copy = copy_of(model, folder)
    plans = json.loads((copy / "plans.json").read_text(encoding="utf-8"))
    edit(plans["configurations"]["2d"])
    (copy / "plans.json").write_text(json.dumps(plans), encoding="utf-8")
    return copy


HOSTILE_PLANS = {  # nnU-Net imports and calls the dotted names a plan gives: refused before anything runs
    "network-class-elsewhere": (lambda c: c["architecture"].update(network_class_name="os.system"),
                                "refusing a plan that names other code"),
    "layer-type-elsewhere": (lambda c: c["architecture"]["arch_kwargs"].update(nonlin="subprocess.Popen"),
                             "refusing a plan that names other code"),
    "normalization-unknown": (lambda c: c.update(normalization_schemes=["Nope", "Nope"]), "has no normalization"),
    "resampling-unknown": (lambda c: c.update(resampling_fn_data="nope"), "cannot use this plan"),
    "network-arguments-wrong": (lambda c: c["architecture"]["arch_kwargs"].update(n_stages="x"),
                                "cannot build its network"),
    "patch-not-numbers": (lambda c: c.update(patch_size=[64, "a"]), "patch_size of positive whole numbers"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_PLANS))
def test_a_plan_naming_other_code_or_what_nnunet_lacks_is_refused_in_one_line(nnunet_models, tmp_path, capsys, case):
    edit, expected = HOSTILE_PLANS[case]
    model = edited_plan(nnunet_models["2d"][0], tmp_path, edit)
    image = str(labelled_images(nnunet_models["2d"][1])[0])
    capsys.readouterr()
    assert main(["predict", "--model", str(model), "--input", image, "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert expected in error and len(error.strip().splitlines()) == 1, error
    assert not (tmp_path / "out").exists()


def test_a_model_of_a_trainer_variant_predicts(nnunet_models, tmp_path):
    """nnU-Net finds a variant's trainer class by importing its trainer modules in turn; one that cannot be imported
    here (a torchvision built for another torch) must not stop the search."""
    model, raw = nnunet_models["2d"]
    variant = tmp_path / model.parent.name / model.name.replace("nnUNetTrainer__", "nnUNetTrainerNoMirroring__")
    shutil.copytree(model, variant)
    for checkpoint in variant.glob("fold_*/checkpoint_final.pth"):
        torch.save({**load_checkpoint(checkpoint), "trainer_name": "nnUNetTrainerNoMirroring"}, checkpoint)
    out = tmp_path / "out"
    assert main(["predict", "--model", str(variant), "--input", str(labelled_images(raw)[0]), "--out", str(out)]) == 0
    assert read_report(next(out.glob("*.json"))).samples == 2


def test_a_model_whose_training_did_not_finish_says_so(nnunet_models, tmp_path, capsys):
    model = copy_of(nnunet_models["2d"][0], tmp_path)
    for checkpoint in model.glob("fold_*/checkpoint_final.pth"):
        checkpoint.rename(checkpoint.with_name("checkpoint_best.pth"))
    capsys.readouterr()
    image = str(labelled_images(nnunet_models["2d"][1])[0])
    assert main(["predict", "--model", str(model), "--input", image, "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "fold_0 has only its best or latest checkpoint" in error and len(error.strip().splitlines()) == 1
