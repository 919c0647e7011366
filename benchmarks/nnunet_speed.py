"""ConfidenceSeg on an nnU-Net model against nnU-Net's own predictor: wall time and peak memory, as ratios.

The anchor: ``nnUNetPredictor.predict_from_files_sequential`` with the same folds and mirroring, writing
its averaged probabilities (``save_probabilities=True``) and segmentation. Ours: ``confidenceseg
predict --model FOLDER`` (every fold's probabilities through nnU-Net's predictor, the heatmap, the
badge, the report). Each run is a fresh process timed by ``/usr/bin/time`` (wall seconds, peak RSS),
alternating anchor and ours, ``--runs`` times; the table gives medians and the ratios. Models: the
tiny 2D and 3D nnU-Net models of the tests (``Testing/Python/nnunet_models.py``, built under
``--cache`` on first use); inputs: a 3D volume for the 3D model and a 2D stack of two channels (one
file each, as nnU-Net lays them out) for the 2D model.

    python benchmarks/nnunet_speed.py --cache /tmp/nnunet-bench [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "Testing" / "Python"))
from nnunet_models import build_in_subprocess  # noqa: E402

ANCHOR = """
import os, sys, torch
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=True,
                            perform_everything_on_device=False, device=torch.device("cpu"), allow_tqdm=False)
predictor.initialize_from_trained_model_folder(sys.argv[1], use_folds=(0, 1))
os.makedirs(sys.argv[3], exist_ok=True)
predictor.predict_from_files_sequential([sys.argv[2].split(",")], [sys.argv[3] + "/case"], save_probabilities=True)
"""


def volume(path: Path, shape: tuple[int, ...], spacing: tuple[float, ...], seed: int) -> Path:
    """A noisy image with bright blobs (spheres, or discs per frame), written as NIfTI (one channel's file)."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape).astype(np.float32)
    image = np.zeros(shape, np.float32)
    for _ in range(12):
        centre = [rng.uniform(8, size - 8) for size in shape]
        image[sum((axis - c) ** 2 for axis, c in zip(grid[-2:], centre[-2:], strict=True))
              + (0 if len(shape) == 2 else (grid[0] - centre[0]) ** 2) < rng.uniform(5, 9) ** 2] = 1
    image = 100 + 50 * image + 6 * rng.normal(size=shape).astype(np.float32)
    written = sitk.GetImageFromArray(image)
    written.SetSpacing(spacing)
    sitk.WriteImage(written, str(path), True)
    return path


def timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of ``command`` in a fresh process."""
    result = subprocess.run(["/usr/bin/time", "-f", "TIMED %e %M", *command], capture_output=True, encoding="utf-8",
                            env=dict(os.environ, OMP_NUM_THREADS=str(os.cpu_count())))
    line = next((line for line in result.stderr.splitlines() if line.startswith("TIMED")), None)
    if result.returncode != 0 or line is None:
        raise SystemExit(f"{command[:4]} failed:\n{result.stderr[-3000:]}")
    _, wall, peak_kb = line.split()
    return float(wall), int(peak_kb) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True, help="folder for the tiny models and inputs")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    cases = {"3D volume 96x112x80, 3d_fullres model": ("3d_fullres", [volume(args.cache / "volume_0000.nii.gz",
                                                                              (96, 112, 80), (1.0, 1.0, 1.6), 1)]),
             "2D stack 24 x 256x256 x 2 channels, 2d model": ("2d", [
                 volume(args.cache / f"stack_{channel:04d}.nii.gz", (24, 256, 256), (1.0, 1.0, 1.0), 2 + channel)
                 for channel in (0, 1)])}
    print("| input | anchor s | ours s | time ratio | anchor MiB | ours MiB | memory ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, (configuration, channel_files) in cases.items():
        model, _ = build_in_subprocess(args.cache / "models", configuration)
        anchor, ours = [], []
        for run in range(args.runs):
            out = args.cache / f"out-{configuration}-{run}"
            anchor.append(timed([sys.executable, "-c", ANCHOR, str(model), ",".join(map(str, channel_files)),
                                 str(out / "anchor")]))
            ours.append(timed([sys.executable, "-m", "ConfidenceSegLib", "predict", "--model", str(model), "--input",
                               str(channel_files[0]), "--out", str(out / "ours"), "--overwrite"]))
        a_time, a_memory = (statistics.median(value[i] for value in anchor) for i in (0, 1))
        o_time, o_memory = (statistics.median(value[i] for value in ours) for i in (0, 1))
        print(f"| {label} | {a_time:.1f} | {o_time:.1f} | {o_time / a_time:.2f}x | {a_memory:.0f} | {o_memory:.0f} "
              f"| {o_memory / a_memory:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
