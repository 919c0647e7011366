"""Cost of the boundary check (:mod:`ConfidenceSegLib.quality.boundary`) per input: preparing the image
once, then one edge profile and p-value per class.

On the bundled sample (a 2D HC18 image, the bundled model's own check and prediction) and on a synthetic
CT-sized volume (``--size`` voxels a side, ``--classes`` balls of different sizes, a check fitted on
profiles of jittered copies). Prints the median milliseconds over ``--runs`` and, for the 2D image, the
share of ``predict``'s compute time (``timings`` of the report) that it adds.

    python benchmarks/boundary_cost.py [--runs 5] [--size 256] [--classes 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import SimpleITK as sitk

from ConfidenceSegLib.io.inputs import InputFacts
from ConfidenceSegLib.io.resources import default_model_dir, sample_images
from ConfidenceSegLib.jobs.predict_job import run_prediction
from ConfidenceSegLib.jobs.settings import PredictionSettings
from ConfidenceSegLib.model.bundle import load_bundle
from ConfidenceSegLib.quality.boundary import ProfileImage, boundary_typicality, fit_boundary
from ConfidenceSegLib.quality.domain import domain_references


def median_ms(work, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def bundled_sample(runs: int) -> None:
    bundle = load_bundle(default_model_dir())
    sample = sample_images()[0]
    assessed = run_prediction(bundle, InputFacts.of(sample), PredictionSettings(device="cpu", maps=()))
    quality = bundle.config.quality
    section = quality.boundary_model("fetal_head")
    references = domain_references(quality.folder, section)["fetal_head"]
    mask = assessed.maps("fetal_head").mask

    def check():
        (profile,) = ProfileImage.of(assessed.image).profiles(mask, frames=False)
        boundary_typicality(section, references, profile)

    cost = median_ms(check, runs)
    compute = 1000 * sum(assessed.prediction.timings.values())
    print(f"| bundled sample {sample.name} (400 x 270, 1 class) | {cost:.1f} | {cost / compute:.1%} of the "
          f"prediction's {compute:.0f} ms |")


def synthetic_volume(runs: int, size: int, classes: int) -> None:
    rng = np.random.default_rng(0)
    zz, yy, xx = np.mgrid[:size, :size, :size].astype(np.float32)
    centres = rng.uniform(0.3 * size, 0.7 * size, (classes, 3))
    radii = np.linspace(0.06, 0.2, classes) * size
    masks = [np.sqrt((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2) < r
             for c, r in zip(centres, radii, strict=True)]
    volume = rng.normal(0, 20, zz.shape).astype(np.float32) + sum(40.0 * (k + 1) * m for k, m in enumerate(masks))
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing((0.8, 0.8, 1.5))
    prepared = ProfileImage.of(image)
    profiles = np.stack([prepared.profiles(masks[0], frames=False)[0] + rng.normal(0, 0.02, 12) for _ in range(60)])
    section, references = fit_boundary(profiles, [f"s{k}" for k in range(60)])

    def check():
        ready = ProfileImage.of(image)
        for mask in masks:
            boundary_typicality(section, references, ready.profiles(mask, frames=False)[0])

    cost = median_ms(check, runs)
    print(f"| synthetic volume {size}^3 ({classes} classes, radii {radii[0]:.0f}-{radii[-1]:.0f} voxels) "
          f"| {cost:.0f} | {cost / classes:.0f} ms per class |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--classes", type=int, default=5)
    args = parser.parse_args()
    print("| input | boundary check, ms | |\n|---|---:|---|")
    bundled_sample(args.runs)
    synthetic_volume(args.runs, args.size, args.classes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
