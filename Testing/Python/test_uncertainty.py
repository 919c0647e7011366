"""Uncertainty measures and streaming aggregation against direct float64 computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import expit

from ConfidenceSegLib.inference.head_sampling import draw_dropout_masks, head_halo, sample_head_logits
from ConfidenceSegLib.inference.uncertainty import (
    SUMMARY_KEYS,
    ChunkAccumulator,
    MaskAgreement,
    boundary_band,
    entropy_from_logits,
    entropy_from_probability,
    segment_summary,
)
from ConfidenceSegLib.model.networks import build_network


def numpy_entropy(p: np.ndarray) -> np.ndarray:
    """Normalised binary entropy, float64, with 0 log 0 = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0) + np.where(p < 1, (1 - p) * np.log(1 - p), 0.0)
    return -terms / np.log(2.0)


def numpy_pairwise(masks: np.ndarray) -> dict[str, float]:
    """Agreement statistics of sample masks (M, pixels) computed directly."""
    m = masks.shape[0]
    volumes = masks.sum(1).astype(float)
    dices = []
    for i in range(m):
        for j in range(i + 1, m):
            total = volumes[i] + volumes[j]
            dices.append(1.0 if total == 0 else 2 * np.logical_and(masks[i], masks[j]).sum() / total)
    union = masks.any(0).sum()
    return {"present_fraction": float((volumes > 0).mean()),
            "mean_pairwise_dice": float(np.mean(dices)) if dices else 1.0,
            "samples_iou": float(masks.all(0).sum() / union) if union else 1.0,
            "volume_cv": float(volumes.std() / volumes.mean()) if volumes.mean() > 0 else 0.0}


def test_entropy_matches_float64_numpy():
    rng = np.random.default_rng(1)
    logits = np.concatenate([rng.normal(0, 4, 500), [0.0, 40.0, -40.0, 800.0, -800.0]])
    p = expit(logits)
    expected = numpy_entropy(p)
    from_logits = entropy_from_logits(torch.tensor(logits, dtype=torch.float64)).numpy()
    from_probability = entropy_from_probability(torch.tensor(p, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(from_logits, expected, atol=1e-12)
    np.testing.assert_allclose(from_probability, expected, atol=1e-12)
    assert from_probability[logits == 0.0][0] == pytest.approx(1.0)
    assert entropy_from_probability(torch.tensor([0.0, 1.0])).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("samples_per_call", [1, 3, 7])
def test_streaming_aggregation_matches_direct_computation(samples_per_call):
    rng = np.random.default_rng(2)
    n_samples, frames, classes, shape = 7, 5, 2, (6, 9)
    logits = rng.normal(0, 2, (n_samples, frames, classes, *shape))
    logits[:, :, 1] -= 3.0  # a rarer class, with some empty sample masks
    p = expit(logits)
    mean = p.mean(0)
    predictive = numpy_entropy(mean)
    expected_entropy = numpy_entropy(p).mean(0)

    agreement = MaskAgreement(n_samples, classes)
    for frame_slice in (slice(0, 2), slice(2, 5)):  # two spatial chunks
        chunk = ChunkAccumulator(n_samples, (frame_slice.stop - frame_slice.start, classes, *shape),
                                 dtype=torch.float64)
        for start in range(0, n_samples, samples_per_call):
            chunk.add(torch.tensor(logits[start:start + samples_per_call, frame_slice]))
        agreement.add(chunk.foreground)
        np.testing.assert_allclose(chunk.mean_probability().numpy(), mean[frame_slice], atol=1e-12)
        np.testing.assert_allclose(chunk.expected_entropy().numpy(), expected_entropy[frame_slice], atol=1e-12)
        information = entropy_from_probability(chunk.mean_probability()) - chunk.expected_entropy()
        np.testing.assert_allclose(information.numpy(), (predictive - expected_entropy)[frame_slice], atol=1e-12)
        assert information.min() >= -1e-12
    for index in range(classes):
        masks = (logits[:, :, index] >= 0).reshape(n_samples, -1)
        expected = numpy_pairwise(masks)
        for key, value in agreement.summary(index).items():
            assert value == pytest.approx(expected[key], abs=1e-12), key


def test_agreement_by_hand():
    # three samples on a 1 x 4 image: {0, 1}, {1, 2} and empty
    masks = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]], dtype=bool)
    logits = torch.tensor(np.where(masks, 5.0, -5.0)).reshape(3, 1, 1, 1, 4)
    chunk = ChunkAccumulator(3, (1, 1, 1, 4))
    chunk.add(logits)
    agreement = MaskAgreement(3, 1)
    agreement.add(chunk.foreground)
    summary = agreement.summary(0)
    assert summary["mean_pairwise_dice"] == pytest.approx((0.5 + 0 + 0) / 3)
    assert summary["samples_iou"] == 0.0
    assert summary["present_fraction"] == pytest.approx(2 / 3)
    assert summary["volume_cv"] == pytest.approx(np.std([2, 2, 0]) / np.mean([2, 2, 0]))
    empty = MaskAgreement(2, 1)
    empty.add(torch.zeros((1, 2, 5), dtype=torch.bool))
    assert empty.summary(0) == {"present_fraction": 0.0, "mean_pairwise_dice": 1.0, "samples_iou": 1.0,
                                "volume_cv": 0.0}


def test_aggregator_state_does_not_grow_with_samples():
    shape = (4, 3, 64, 64)
    sizes = {}
    for n_samples in (5, 30):
        chunk = ChunkAccumulator(n_samples, shape)
        agreement = MaskAgreement(n_samples, 3)
        sizes[n_samples] = (chunk.sum_probability.nbytes + chunk.sum_entropy.nbytes, agreement.intersections.nbytes)
    assert sizes[5][0] == sizes[30][0]  # per-pixel running sums: independent of the sample count
    assert sizes[30][1] < 1e5  # across chunks only M x M counts per class, independent of the image size
    big = MaskAgreement(30, 3)
    big.add(torch.ones((3, 30, 200_000), dtype=torch.bool))
    assert big.intersections.nbytes == sizes[30][1]


def test_boundary_band_and_summary_by_hand():
    mask = np.zeros((9, 9), dtype=bool)
    mask[3:6, 3:6] = True
    band = boundary_band(mask)
    assert band.sum() == 37  # pixels within city-block distance 2 of a 3 x 3 square (its erosion is empty)
    assert not boundary_band(np.ones((5, 5), dtype=bool)).any()  # the image border is not a boundary
    stack = np.zeros((3, 9, 9), dtype=bool)
    stack[1] = mask
    assert boundary_band(stack, in_plane=True).sum() == 37
    assert boundary_band(stack).sum() > 37  # a 3D band reaches the neighbouring slices

    probability = np.where(mask, 0.9, 0.2).astype(np.float32)
    entropy = numpy_entropy(probability.astype(np.float64)).astype(np.float32)
    information = np.full(mask.shape, 0.1, dtype=np.float32)
    information[mask] = 0.3
    agreement = {"present_fraction": 1.0, "mean_pairwise_dice": 0.8, "samples_iou": 0.6, "volume_cv": 0.1}
    summary = segment_summary(mask, probability, entropy, information, agreement)
    assert tuple(summary) == SUMMARY_KEYS
    assert summary["volume_voxels"] == 9 and summary["size_fraction"] == pytest.approx(9 / mask.size)
    assert summary["mean_probability"] == pytest.approx(0.9)
    assert summary["mean_entropy"] == pytest.approx(numpy_entropy(np.array(0.9)), rel=1e-6)
    in_band = (9 * numpy_entropy(np.array(0.9)) + 28 * numpy_entropy(np.array(0.2))) / 37
    assert summary["mean_entropy_boundary"] == pytest.approx(in_band, rel=1e-6)
    assert summary["mean_entropy_image"] == pytest.approx(entropy.mean(dtype=np.float64))
    assert summary["mean_mutual_information"] == pytest.approx(0.3)
    empty = segment_summary(np.zeros_like(mask), probability, entropy, information, agreement)
    assert empty["mean_entropy"] == 0.0 and empty["mean_probability"] == 0.0
    assert empty["mean_mutual_information"] == pytest.approx(information.mean(dtype=np.float64))


def test_batched_head_samples_equal_explicit_dropout():
    architecture = {"name": "ConfidenceSegNet", "spatial_dims": 2, "in_channels": 1, "channels": [8, 16],
                    "strides": [2], "num_res_units": 1, "head_channels": 8, "dropout": 0.3}
    torch.manual_seed(0)
    network = build_network(architecture, 2).eval().double()
    masks = draw_dropout_masks(network.head, 6, torch.Generator().manual_seed(3))
    features = torch.randn(3, 8, 10, 12, dtype=torch.float64)
    with torch.inference_mode():
        batched = sample_head_logits(network.head, features, masks)
        head = network.head
        explicit = []
        for s in range(6):  # the head's layers by hand, dropping the drawn channels
            x = head[2](head[0](features) * masks[0][s].double()[None, :, None, None])
            explicit.append(head[5](head[3](x) * masks[1][s].double()[None, :, None, None]))
    np.testing.assert_allclose(batched.numpy(), torch.stack(explicit).numpy(), atol=1e-12)
    kept = torch.cat(masks) > 0
    assert 0.5 < kept.float().mean() < 0.9  # about 1 - p of the channels kept
    assert head_halo(network.head) == 1
