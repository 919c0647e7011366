"""Models by name: ``models list``, ``models install`` (folder or zip, sha256, never over a model) and
``--model NAME`` resolving installed and bundled models."""

from __future__ import annotations

import hashlib
import json
import zipfile

import pytest
import SimpleITK as sitk
from tiny_bundles import make_bundle, random_image

from ConfidenceSegLib.cli import main
from ConfidenceSegLib.model.registry import MODELS_ENV, available_models, resolve_model


@pytest.fixture
def user_models(tmp_path, monkeypatch):
    folder = tmp_path / "user-models"
    monkeypatch.setenv(MODELS_ENV, str(folder))
    return folder


@pytest.fixture
def bundle_folder(tmp_path):
    make_bundle(tmp_path / "liver_ct", classes=("liver",), input_size=(16, 16))
    return tmp_path / "liver_ct"


def zipped(folder, path, extra: dict | None = None):
    with zipfile.ZipFile(path, "w") as archive:
        for file in folder.iterdir():
            archive.write(file, f"{folder.name}/{file.name}")
        for name, text in (extra or {}).items():
            archive.writestr(name, text)
    return path


def test_install_a_folder_then_predict_by_name_from_elsewhere(user_models, bundle_folder, tmp_path, capsys,
                                                              monkeypatch):
    assert main(["models", "install", str(bundle_folder)]) == 0
    assert (user_models / "liver_ct" / "config.json").is_file()
    assert main(["models", "list"]) == 0
    listed = capsys.readouterr().out
    assert "liver_ct" in listed and "installed" in listed and "2D" in listed
    image = tmp_path / "scan.nrrd"
    sitk.WriteImage(random_image((20, 24)), str(image))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["predict", "--model", "liver_ct", "--input", str(image), "--out", "out", "--samples", "2"]) == 0
    assert (elsewhere / "out" / "scan.json").is_file()
    assert main(["models", "install", str(bundle_folder)]) == 2
    assert "already installed" in capsys.readouterr().err


def test_install_a_zip_with_its_checksum(user_models, bundle_folder, tmp_path, capsys):
    archive = zipped(bundle_folder, tmp_path / "liver.zip")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert main(["models", "install", str(archive), "--sha256", "0" * 64]) == 2
    assert "sha256 mismatch" in capsys.readouterr().err
    assert not user_models.exists()  # checked before anything is written
    assert main(["models", "install", str(archive), "--sha256", digest, "--name", "liver"]) == 0
    assert resolve_model("liver") == user_models / "liver"
    assert [entry.name for entry in available_models()][0] == "liver"  # installed before bundled


def test_hostile_zips_and_bundles_are_refused(user_models, bundle_folder, tmp_path, capsys):
    traversal = zipped(bundle_folder, tmp_path / "evil.zip", {"../../escape.txt": "x"})
    assert main(["models", "install", str(traversal)]) == 2
    assert "outside its folder" in capsys.readouterr().err
    assert not (tmp_path.parent / "escape.txt").exists()
    (tmp_path / "junk.zip").write_text("not a zip")
    assert main(["models", "install", str(tmp_path / "junk.zip")]) == 2
    assert "cannot read" in capsys.readouterr().err
    (bundle_folder / "member_0.safetensors").unlink()
    assert main(["models", "install", str(bundle_folder)]) == 2
    assert "weight file member_0.safetensors is missing" in capsys.readouterr().err
    assert not any(user_models.iterdir())  # nothing half-installed


def test_an_unknown_name_lists_the_available_ones(user_models, capsys):
    assert main(["predict", "--model", "no_such_model", "--input", "x.nrrd", "--out", "out"]) == 2
    error = capsys.readouterr().err
    assert "model not found: no_such_model" in error and "available:" in error
    if any(entry.name == "fetal_head" for entry in available_models()):
        assert "fetal_head" in error


def test_an_installed_copy_of_the_bundled_model_predicts_as_the_bundled_one(user_models, tmp_path):
    """Every data file of a bundle travels (the domain check's references, RCA references), not only weights."""
    from ConfidenceSegLib.io.resources import default_model_dir, sample_images

    bundled = default_model_dir()
    assert main(["models", "install", str(bundled), "--name", "heads"]) == 0
    assert sorted(p.name for p in (user_models / "heads").iterdir()) == sorted(p.name for p in bundled.iterdir())
    reports = []
    for model in (str(bundled), "heads"):
        out = tmp_path / model.replace("/", "_")
        assert main(["predict", "--model", model, "--input", str(sample_images()[0]), "--out", str(out)]) == 0
        reports.append(json.loads(next(out.glob("*.json")).read_text(encoding="utf-8"))["classes"])
    assert reports[0] == reports[1]
