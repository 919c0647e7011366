"""The boundary check: a segment whose edge is unlike the calibration segments' edges gets no number.

Known answers on synthetic images (a bright rim around a dark disc, as a skull around fluid), the
p-value's behaviour on new in-domain segments. The bundled model's check on real images of another
kind: ``test_domain.py``."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from ConfidenceSegLib.quality.boundary import (
    BAND_COUNT,
    BAND_EDGES,
    ProfileImage,
    boundary_profile,
    boundary_typicality,
    fit_boundary,
)


def rimmed_disc(rng, radius=30.0, rim=1.0, shape=(120, 140), centre=None, pixel=1.0):
    """A noisy image of a dark disc inside a bright rim (a skull-like edge) and the disc's mask.

    ``pixel``: the pixel size in mm (the same scene in mm at another sampling)."""
    height, width = int(shape[0] / pixel), int(shape[1] / pixel)
    yy, xx = np.mgrid[:height, :width] * pixel
    cy, cx = centre or (shape[0] / 2, shape[1] / 2)
    distance = np.hypot(yy - cy, xx - cx)
    image = 0.4 + 0.05 * rng.normal(size=(height, width))
    image[distance < radius] = 0.15 + 0.05 * rng.normal(size=int((distance < radius).sum()))
    image[np.abs(distance - radius) < 0.12 * radius] += rim
    return image, distance < radius


def in_domain_segment(rng):
    """A rimmed disc as the calibration draws them (size, rim brightness and position vary)."""
    image, mask = rimmed_disc(rng, radius=rng.uniform(20, 40), rim=rng.uniform(0.6, 1.4),
                              centre=(rng.uniform(55, 65), rng.uniform(60, 80)))
    return boundary_profile(image, mask, (1.0, 1.0))


def test_the_profile_shows_the_rim_on_the_edge_and_does_not_depend_on_the_pixel_size():
    rng = np.random.default_rng(0)
    image, mask = rimmed_disc(rng)
    profile = boundary_profile(image, mask, (1.0, 1.0))
    centres = (BAND_EDGES[:-1] + BAND_EDGES[1:]) / 2
    assert profile.shape == (BAND_COUNT,)
    assert abs(centres[np.argmax(profile)]) < 0.1  # brightest at the edge
    assert profile[0] < profile[-1] < profile.max()  # dark inside, grey outside, bright rim
    fine_image, fine_mask = rimmed_disc(rng, pixel=0.5)
    fine = boundary_profile(fine_image, fine_mask, (0.5, 0.5))  # a sharp rim edge falls on other pixels
    assert np.corrcoef(fine, profile)[0, 1] > 0.98 and np.abs(fine - profile).max() < 0.15
    assert boundary_profile(image, np.zeros_like(mask), (1.0, 1.0)) is None
    assert boundary_profile(image, np.ones_like(mask), (1.0, 1.0)) is None


def test_a_volume_and_a_stack_frame_by_frame():
    rng = np.random.default_rng(1)
    frames = [rimmed_disc(rng) for _ in range(3)]
    stack = sitk.GetImageFromArray(np.stack([image for image, _ in frames]).astype(np.float32))
    masks = np.stack([mask for _, mask in frames])
    masks[1] = False
    per_frame = ProfileImage.of(stack).profiles(masks, frames=True)
    assert per_frame[1] is None and per_frame[0].shape == per_frame[2].shape == (BAND_COUNT,)
    zz, yy, xx = np.mgrid[:60, :70, :70]
    ball = np.hypot(np.hypot(zz - 30, yy - 35), xx - 35) < 20
    volume = sitk.GetImageFromArray(np.where(ball, 0.2, 0.6).astype(np.float32))
    (profile,) = ProfileImage.of(volume).profiles(ball, frames=False)
    assert profile[:BAND_COUNT // 2 - 1].max() < profile[BAND_COUNT // 2 + 1:].min()  # dark in, bright out


@pytest.fixture(scope="module")
def calibration():
    """The check fitted on 150 rimmed discs of 50 subjects (sizes and positions vary)."""
    rng = np.random.default_rng(2)
    profiles, subjects = [], []
    for subject in range(50):
        for _ in range(3):
            profiles.append(in_domain_segment(rng))
            subjects.append(f"s{subject}")
    return fit_boundary(np.stack(profiles), subjects, alpha=0.05)


def test_a_new_rimmed_disc_is_in_domain_and_a_segment_around_something_else_is_not(calibration):
    rng = np.random.default_rng(4)
    new = [boundary_typicality(*calibration, in_domain_segment(rng)) for _ in range(200)]
    flagged = np.mean([t.outside for t in new])
    assert flagged <= 0.05 + 0.05, flagged  # at most about alpha of in-domain segments
    p_values = np.array([t.p_value for t in new])
    assert 0.3 < np.median(p_values) < 0.7  # roughly uniform, not all near 1
    # no rim: a disc that is brighter than its surroundings (another structure, the same shape)
    image, mask = rimmed_disc(rng, rim=0.0)
    other = boundary_typicality(*calibration, boundary_profile(1.0 - image, mask, (1.0, 1.0)))
    assert other.outside and other.reason.code == "out_of_domain" and "edge" in other.reason.message
    assert boundary_typicality(*calibration, None) is None


def test_a_malformed_boundary_check_in_a_bundle_is_refused_before_any_compute(calibration):
    from ConfidenceSegLib.contract import ConfidenceSegError
    from ConfidenceSegLib.model.bundle_config import QualityConfig

    section, _ = calibration
    checked = QualityConfig.checked({"threshold": 0.8, "boundary": {"disc": section}}, "config.json")
    assert checked.boundary_model("disc") == section
    for broken in ({**section, "alpha": "0.01"}, {**section, "scores": []}, {**section, "k": True},
                   {**section, "feature_scale": section["feature_scale"][:-1]}, {**section, "references": None}, []):
        with pytest.raises(ConfidenceSegError, match="boundary check of 'disc' is malformed"):
            QualityConfig.checked({"threshold": 0.8, "boundary": {"disc": broken}}, "config.json")
