"""Training augmentation: the affine's pivot, and batches that keep shapes, ranges and statistics."""

from __future__ import annotations

import math

import torch

from ConfidenceSegLib.training.augment import augment_batch, pivoted_affine


def test_rotation_and_zoom_about_the_apex_keep_the_apex_in_place():
    angle, scale = torch.tensor([math.radians(12.0), -0.2]), torch.tensor([1.1, 0.9])
    flip, shift = torch.tensor([1.0, -1.0]), torch.zeros(2, 2)
    for pivot in (-1.0, 0.0):
        theta = pivoted_affine(angle, scale, flip, torch.full((2,), pivot), shift)
        point = torch.tensor([0.0, pivot, 1.0])
        assert torch.allclose(theta @ point, point[:2].expand(2, 2), atol=1e-6)
    moved = pivoted_affine(angle, scale, flip, torch.full((2,), -1.0), shift) @ torch.tensor([0.0, 0.0, 1.0])
    assert not torch.allclose(moved, torch.zeros(2, 2), atol=1e-3)  # the centre moves when turning about the apex


def test_augmented_batches_keep_shapes_and_z_scored_images_and_ignore_pixels_from_outside():
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(6, 1, 32, 48)
    targets = (torch.rand(6, 2, 32, 48) > 0.5).float()
    weights = torch.ones_like(targets)
    out_images, out_targets, out_weights = augment_batch(images, targets, weights, generator)
    assert out_images.shape == images.shape and out_targets.shape == targets.shape
    assert float(out_targets.min()) >= 0.0 and float(out_targets.max()) <= 1.0
    assert float(out_weights.min()) < 0.5  # some pixels came from outside the frame: weight ~0
    assert abs(float(out_images.mean())) < 0.5
