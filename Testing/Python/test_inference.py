"""The inference engine against direct computations, on tiny random-weight bundles."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from conftest import dataset_dir
from scipy.special import expit
from test_uncertainty import numpy_entropy, numpy_pairwise
from tiny_bundles import make_bundle, random_image

from ConfidenceSegLib.annotation.datasets import load_dataset
from ConfidenceSegLib.contract import DEFAULT_SAMPLES, ConfidenceSegError
from ConfidenceSegLib.inference import runner
from ConfidenceSegLib.inference.head_sampling import CHANNEL_DROPOUT, draw_dropout_masks
from ConfidenceSegLib.inference.predict import predict_image
from ConfidenceSegLib.inference.sampling import TTA_FLIPS, plan_sampling
from ConfidenceSegLib.inference.uncertainty import SUMMARY_KEYS
from ConfidenceSegLib.io.images import same_geometry
from ConfidenceSegLib.io.resources import default_model_dir
from ConfidenceSegLib.model.bundle import load_bundle
from ConfidenceSegLib.model.preprocessing import to_model_input


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("bundles") / "tiny2d")


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("bundles") / "ensemble", members=3)


@pytest.fixture(scope="module")
def volume_bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("bundles") / "tiny3d", spatial_dims=3)


def explicit_dropout_logits(head, features: torch.Tensor, masks: list[torch.Tensor], sample: int) -> torch.Tensor:
    """The head layer by layer, multiplying each dropout layer's input channels by the sample's mask."""
    x = features
    drawn = iter(masks)
    for layer in head:
        x = x * next(drawn)[sample].to(x.dtype)[None, :, None, None] if isinstance(layer, CHANNEL_DROPOUT) else layer(x)
    return x


def check_maps_against(prediction, probabilities: np.ndarray, atol: float = 2e-5) -> None:
    """Compare the engine's maps with float64 maps from per-sample probabilities (M, N, C, H, W)."""
    mean = probabilities.mean(0)
    predictive = numpy_entropy(mean)
    information = predictive - numpy_entropy(probabilities).mean(0)
    for index, result in enumerate(prediction.classes):
        np.testing.assert_allclose(result.probability, mean[:, index], atol=atol)
        np.testing.assert_allclose(result.entropy, predictive[:, index], atol=atol)
        np.testing.assert_allclose(result.mutual_information, np.maximum(information[:, index], 0), atol=atol)
        np.testing.assert_array_equal(result.mask, result.probability >= 0.5)
        masks = (probabilities[:, :, index] >= 0.5).reshape(len(probabilities), -1)
        for key, value in numpy_pairwise(masks).items():
            assert result.summary[key] == pytest.approx(value, abs=1e-9), key


def test_mc_dropout_on_a_stack_matches_direct_computation(bundle, monkeypatch):
    # image grid = model grid, so the maps are exact; 6 frames = chunks of 4 + 2, 3 samples per head call
    monkeypatch.setattr(runner, "HEAD_VOXEL_BUDGET", 3 * 4 * 32 * 40)
    stack = random_image((6, 32, 40), seed=3)
    prediction = predict_image(bundle, stack, method="mcdropout", samples=7, device="cpu")
    assert (prediction.method, prediction.samples, prediction.device) == ("mcdropout", 7, "cpu")

    member = bundle.members[0]
    masks = draw_dropout_masks(member.head, 7, torch.Generator().manual_seed(runner.SEED))
    with torch.inference_mode():
        x = to_model_input(sitk.GetArrayFromImage(stack), bundle.config.preprocessing).double()
        features = member.double().features(x)
        logits = torch.stack([explicit_dropout_logits(member.head, features, masks, s) for s in range(7)])
        member.float()
    check_maps_against(prediction, expit(logits.numpy()))
    assert all(result.mask.shape == (6, 32, 40) for result in prediction.classes)


def test_tta_and_ensemble_match_direct_computation(bundle, ensemble):
    image = random_image((32, 40), seed=4)
    x = to_model_input(sitk.GetArrayFromImage(image)[None], bundle.config.preprocessing)
    with torch.inference_mode():
        tta = np.stack([torch.sigmoid(bundle.members[0](x.flip(f) if f else x)).flip(f).numpy() if f else
                        torch.sigmoid(bundle.members[0](x)).numpy() for f in TTA_FLIPS])
        members = np.stack([torch.sigmoid(member(x)).numpy() for member in ensemble.members])
    prediction = predict_image(bundle, image, method="tta", samples=4, device="cpu")
    assert prediction.samples == 4
    check_maps_against(_as_stack(prediction), tta)
    prediction = predict_image(ensemble, image, samples=3, device="cpu")
    assert (prediction.method, prediction.samples) == ("ensemble", 3)
    check_maps_against(_as_stack(prediction), members)
    spread = predict_image(ensemble, image, device="cpu")  # default: 10 samples, MC dropout in each member
    assert (spread.method, spread.samples) == ("ensemble", DEFAULT_SAMPLES)
    assert spread.classes[0].summary["mean_pairwise_dice"] < 1.0


def _as_stack(prediction):
    """A 2D prediction viewed as a one-frame stack (for check_maps_against)."""
    for result in prediction.classes:
        for key in ("mask", "probability", "entropy", "mutual_information"):
            setattr(result, key, getattr(result, key)[None])
    return prediction


def test_prediction_is_on_the_image_grid(bundle):
    image = random_image((50, 70), spacing=(0.3, 0.2), seed=5)
    prediction = predict_image(bundle, image, device="cpu")
    assert prediction.image is image and prediction.samples == DEFAULT_SAMPLES
    assert set(prediction.timings) >= {"inference_s", "total_s"}
    for result in prediction.classes:
        assert result.probability.shape == result.mask.shape == (50, 70)
        assert result.probability.dtype == result.entropy.dtype == result.mutual_information.dtype == np.float32
        assert result.entropy.min() >= 0 and result.entropy.max() <= 1
        assert result.mutual_information.min() >= 0
        assert tuple(result.summary) == SUMMARY_KEYS
        assert result.summary["size_fraction"] == pytest.approx(result.mask.sum() / result.mask.size)
        assert result.measurements["area_mm2"]["value"] == pytest.approx(result.mask.sum() * 0.3 * 0.2)
    plain = predict_image(bundle, image, method="none", device="cpu")
    assert plain.samples == 1
    assert all(not result.mutual_information.any() for result in plain.classes)
    assert all(result.summary["mean_pairwise_dice"] == 1.0 for result in plain.classes)


def test_volume_slabs_match_a_single_slab(volume_bundle, monkeypatch):
    volume = random_image((20, 22, 26), spacing=(1.0, 1.0, 1.0), seed=6)
    first = predict_image(volume_bundle, volume, samples=5, device="cpu")
    monkeypatch.setattr(runner, "SLAB_DEPTH", 3)  # several slabs, each with a halo
    second = predict_image(volume_bundle, volume, samples=5, device="cpu")
    for a, b in zip(first.classes, second.classes, strict=True):
        assert a.probability.shape == (20, 22, 26)
        np.testing.assert_allclose(a.probability, b.probability, atol=1e-5)
        np.testing.assert_allclose(a.mutual_information, b.mutual_information, atol=1e-5)
        assert a.summary["mean_pairwise_dice"] == pytest.approx(b.summary["mean_pairwise_dice"], abs=1e-6)


def test_sampling_plans():
    assert plan_sampling(1).method == "mcdropout" and plan_sampling(1).samples == DEFAULT_SAMPLES
    assert plan_sampling(3).method == "ensemble" and plan_sampling(3).counts == (4, 3, 3)
    assert plan_sampling(3).stochastic
    assert plan_sampling(12).counts == (1,) * 12 and not plan_sampling(12).stochastic
    assert not plan_sampling(3, "ensemble", 3).stochastic
    assert plan_sampling(1, "tta", 9).counts == (3, 2, 2, 2)
    assert plan_sampling(2, "none").samples == 1
    with pytest.raises(ConfidenceSegError, match="single prediction"):
        plan_sampling(1, "none", 10)
    with pytest.raises(ConfidenceSegError, match="several members"):
        plan_sampling(1, "ensemble")
    with pytest.raises(ConfidenceSegError, match="at least 4 samples"):
        plan_sampling(1, "tta", 3)
    with pytest.raises(ConfidenceSegError, match="at least 1"):
        plan_sampling(1, "auto", 0)
    with pytest.raises(ConfidenceSegError, match="unknown method"):
        plan_sampling(1, "bootstrap")


def _vector_image(components: int) -> sitk.Image:
    return sitk.GetImageFromArray(np.ones((8, 9, components), dtype=np.float32), isVector=True)


def _nan_image() -> sitk.Image:
    array = np.ones((8, 9), dtype=np.float32)
    array[2, 3] = np.nan
    return sitk.GetImageFromArray(array)


BAD_INPUTS = {
    "4D": (lambda: sitk.Image([4, 5, 6, 2], sitk.sitkFloat32), "4D"),
    "two channels": (lambda: _vector_image(2), "2 channels"),
    "NaN": (_nan_image, "NaN"),
    "empty": (lambda: sitk.Image([0, 5], sitk.sitkFloat32), "empty"),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_inputs_are_refused(bundle, name):
    make, message = BAD_INPUTS[name]
    with pytest.raises(ConfidenceSegError, match=message):
        predict_image(bundle, make(), device="cpu")


def test_dimension_mismatch_is_refused(volume_bundle, tmp_path):
    with pytest.raises(ConfidenceSegError, match="2D but model .* is a 3D model"):
        predict_image(volume_bundle, random_image((20, 20)), device="cpu")
    three_channel_model = make_bundle(tmp_path / "rgb", extra={})
    three_channel_model.config.architecture["in_channels"] = 3
    with pytest.raises(ConfidenceSegError, match="expects 3 input channels"):
        predict_image(three_channel_model, random_image((20, 20)), device="cpu")


def test_geometry_is_kept_for_stacks(bundle):
    stack = random_image((3, 30, 35), spacing=(0.4, 0.5, 2.0), origin=(1.0, -2.0, 3.0))
    prediction = predict_image(bundle, stack, method="none", device="cpu")
    assert same_geometry(prediction.image, stack)
    assert prediction.classes[0].mask.shape == (3, 30, 35)


@pytest.mark.slow
def test_uncertainty_is_higher_where_the_bundled_model_is_wrong():
    """On held-out HC18 frames (subjects outside the bundle's training split), the entropy and mutual
    information maps are higher on wrongly segmented pixels than on correctly segmented ones."""
    try:
        model_dir = default_model_dir()
    except ConfidenceSegError as error:
        pytest.skip(f"the bundled fetal_head model is not there yet: {error}")
    bundle = load_bundle(model_dir)
    split = bundle.config.training.get("split", {})
    if "subject_ids" not in split.get("training", {}):
        pytest.skip("the bundled model's config does not record its training subjects")
    trained_on = set(split["training"]["subject_ids"])
    dataset = load_dataset(dataset_dir("hc18"))
    held_out = [case for case in dataset.cases if case.subject not in trained_on][:6]
    assert len(held_out) >= 4, "too few held-out HC18 cases"
    sums = {"entropy": np.zeros(2), "mutual_information": np.zeros(2)}
    counts = np.zeros(2)
    for case in held_out:
        image = case.read_image()
        truth = case.confidence_map("fetal_head", image) >= 0.5
        result = predict_image(bundle, image, device="cpu").classes[bundle.classes.index("fetal_head")]
        wrong = result.mask != truth
        counts += (wrong.sum(), (~wrong).sum())
        for key in sums:
            values = getattr(result, key).astype(np.float64)
            sums[key] += (values[wrong].sum(), values[~wrong].sum())
    assert counts[0] > 0, "the model made no mistakes on these frames: nothing to compare"
    for key, (on_wrong, on_right) in sums.items():
        mean_wrong, mean_right = on_wrong / counts[0], on_right / counts[1]
        print(f"{key}: {mean_wrong:.4f} on wrong pixels vs {mean_right:.4f} on right ones")
        assert mean_wrong > 1.5 * mean_right, (f"{key}: {mean_wrong:.4f} on wrong pixels vs "
                                               f"{mean_right:.4f} on right ones")


def test_heatmap_is_smooth_at_image_resolution_without_block_edges(tmp_path):
    """Maps are computed on the image grid from the interpolated mean probability: no piecewise-constant
    blocks of model-grid pixels (nearest-neighbour upsampling by 4 would make 3 of 4 row neighbours equal)."""
    bundle = make_bundle(tmp_path / "b", input_size=(32, 40))
    image = random_image((128, 160), seed=3)
    entropy = predict_image(bundle, image, method="mcdropout", device="cpu").classes[0].entropy
    assert entropy.shape == (128, 160)
    steps = np.abs(np.diff(entropy.astype(np.float64), axis=1))
    uncertain = (entropy[:, 1:] > 0.05) | (entropy[:, :-1] > 0.05)
    assert uncertain.sum() > 500
    assert np.mean(steps[uncertain] < 1e-6) < 0.1  # almost no equal neighbours: not blocks
    assert steps.max() < 0.25  # a 4x upsampled model grid changes by at most a quarter step per pixel
