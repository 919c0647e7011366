"""Speed and peak memory of ``confidenceseg predict``: ``--method none`` vs the default uncertainty method.

Inputs (built in a temporary folder, never kept):

- a 64-frame stack of ``../shared/data/lus_pleural`` frames (562 x 410), for a 2D model;
- a synthetic 3D volume (smooth noise with a bright ball, 96 x 160 x 160), for a 3D model.

Models: ``--model`` (a 2D bundle) when given; otherwise random-weight bundles with the training
defaults (``ConfidenceSegNet`` 16-32-64-128, input 192 x 256 for these frames): one member (auto =
MC dropout) and three members (the training default; auto = ensemble with MC dropout in each
member), plus a 3D bundle (roi 64^3). Speed does not depend on the weights.

Every run is a fresh ``confidenceseg predict`` subprocess, so the numbers include start-up, reading
and writing. Wall time is measured around the subprocess; "engine" is the inference + summary time
and "writing" the time to write every output, both from the run's JSON report. Peak memory is the
child's maximum resident set size (``os.wait4`` rusage of that one process; tracemalloc does not see
torch's allocations). Ratios are against ``--method none`` of the same model in the same run;
"peak / fewest samples" is against the smallest sample count (5 by default). With ``--repeats`` the
fastest of the interleaved rounds is kept.

    python benchmarks/uncertainty_speed.py [--model BUNDLE] [--frames 64] [--samples 5 10 30] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from ConfidenceSegLib.annotation.datasets import load_dataset
from ConfidenceSegLib.model.bundle import save_bundle
from ConfidenceSegLib.model.networks import build_network
from ConfidenceSegLib.training.data import default_input_size
from ConfidenceSegLib.training.defaults import DEFAULT_ARCHITECTURE, DEFAULT_LONG_SIDE

REPO_ROOT = Path(__file__).resolve().parents[1]
LUS = REPO_ROOT.parent / "shared" / "data" / "lus_pleural"
VOLUME_SHAPE = (96, 160, 160)


def build_stack(folder: Path, frames: int) -> Path:
    """The first ``frames`` lus_pleural frames (in case order) as one multi-frame stack."""
    dataset = load_dataset(LUS)
    arrays = [sitk.GetArrayFromImage(case.read_image()) for case in dataset.cases[:frames]]
    if len(arrays) < frames:
        raise SystemExit(f"{LUS} has only {len(arrays)} frames")
    first = dataset.cases[0].read_image()
    stack = sitk.GetImageFromArray(np.stack(arrays))
    stack.SetSpacing((*first.GetSpacing(), 1.0))
    path = folder / "lus_stack.nrrd"
    sitk.WriteImage(stack, str(path), useCompression=True)
    return path


def build_volume(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    array = rng.normal(0, 1, VOLUME_SHAPE).astype(np.float32)
    grid = np.indices(VOLUME_SHAPE).astype(np.float32)
    centre = np.array(VOLUME_SHAPE, dtype=np.float32)[:, None, None, None] / 2
    array += 3.0 * (np.sqrt(((grid - centre) ** 2).sum(0)) < 30)
    volume = sitk.GetImageFromArray(array)
    volume.SetSpacing((1.0, 1.0, 1.5))
    path = folder / "volume.nrrd"
    sitk.WriteImage(volume, str(path), useCompression=True)
    return path


def random_bundle(path: Path, spatial_dims: int, members: int, classes: list[str], frame_shape) -> Path:
    architecture = dict(DEFAULT_ARCHITECTURE, spatial_dims=spatial_dims)
    torch.manual_seed(0)
    networks = [build_network(architecture, len(classes)) for _ in range(members)]
    if spatial_dims == 2:
        preprocessing = {"spatial_dims": 2, "input_size": default_input_size(frame_shape, DEFAULT_LONG_SIDE),
                         "intensity": {"method": "zscore"}}
    else:
        preprocessing = {"spatial_dims": 3, "roi_size": [64, 64, 64], "spacing": [1.5, 1.0, 1.0],
                         "intensity": {"method": "zscore"}}
    save_bundle(path, {"architecture": architecture, "classes": classes, "preprocessing": preprocessing}, networks)
    return path


def run_predict(model: Path, image: Path, out: Path, method: str, samples: int | None) -> dict:
    """One fresh ``confidenceseg predict`` process: wall time, engine time and peak RSS."""
    command = [sys.executable, "-m", "ConfidenceSegLib", "predict", "--model", str(model), "--input", str(image),
               "--out", str(out), "--method", method, "--device", "cpu", "--overwrite"]
    if samples:
        command += ["--samples", str(samples)]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed: {process.stderr.read().decode()}")
    report = json.loads((out / f"{image.name.split('.')[0]}.json").read_text(encoding="utf-8"))
    return {"method": report["method"], "samples": report["samples"], "wall_s": wall,
            "engine_s": report["timings"]["inference_s"] + report["timings"]["summary_s"],
            "write_s": report["timings"]["write_s"], "peak_mb": usage.ru_maxrss / 1024}


def benchmark(name: str, model: Path, image: Path, out: Path, samples: list[int], repeats: int) -> list[dict]:
    """``none`` and ``auto`` with each sample count, ``repeats`` interleaved rounds: the fastest time and
    the largest peak memory of each."""
    configurations = [("none", None)] + [("auto", count) for count in samples]
    best: dict[tuple, dict] = {}
    for _ in range(repeats):
        for method, count in configurations:
            run = run_predict(model, image, out, method, count)
            previous = best.setdefault((method, count), run)
            previous.update(wall_s=min(previous["wall_s"], run["wall_s"]),
                            engine_s=min(previous["engine_s"], run["engine_s"]),
                            write_s=min(previous["write_s"], run["write_s"]),
                            peak_mb=max(previous["peak_mb"], run["peak_mb"]))
            print(f"  {name}: {run['method']} {run['samples']} samples: {run['wall_s']:.1f} s", file=sys.stderr)
    rows = [dict(best[configuration], case=name) for configuration in configurations]
    base = rows[0]
    fewest = rows[1] if len(rows) > 1 else base
    for row in rows:
        row["wall_ratio"] = row["wall_s"] / base["wall_s"]
        row["engine_ratio"] = row["engine_s"] / base["engine_s"]
        row["memory_vs_fewest"] = row["peak_mb"] / fewest["peak_mb"]
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| input / model | method | samples | wall s | wall / none | engine s | engine / none | "
             "writing s | writing / engine | peak RSS MB | peak / fewest samples |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['case']} | {row['method']} | {row['samples']} | {row['wall_s']:.1f} | "
                     f"{row['wall_ratio']:.2f} | {row['engine_s']:.1f} | {row['engine_ratio']:.2f} | "
                     f"{row['write_s']:.2f} | {row['write_s'] / row['engine_s']:.2f} | "
                     f"{row['peak_mb']:.0f} | {row['memory_vs_fewest']:.2f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="2D bundle to use for the stack (default: random weights)")
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--samples", type=int, nargs="+", default=[5, 10, 30])
    parser.add_argument("--repeats", type=int, default=1, help="interleaved rounds; the fastest of each is kept")
    parser.add_argument("--skip-volume", action="store_true", help="only the stack")
    args = parser.parse_args()
    if not LUS.is_dir():
        raise SystemExit(f"lus_pleural data not found at {LUS}")
    classes = load_dataset(LUS).classes
    with tempfile.TemporaryDirectory(prefix="confidenceseg-bench-") as temporary:
        folder = Path(temporary)
        stack = build_stack(folder, args.frames)
        frame_shape = sitk.ReadImage(str(stack)).GetSize()[1::-1]
        models = {f"{args.frames}-frame stack, {args.model}": args.model} if args.model else {
            f"{args.frames}-frame stack, 1 member": random_bundle(folder / "one", 2, 1, classes, frame_shape),
            f"{args.frames}-frame stack, 3 members": random_bundle(folder / "three", 2, 3, classes, frame_shape)}
        rows = []
        for name, model in models.items():
            rows += benchmark(name, model, stack, folder / "out", args.samples, args.repeats)
        if not args.skip_volume:
            volume_model = random_bundle(folder / "volume_model", 3, 1, ["ball"], None)
            rows += benchmark(f"volume {VOLUME_SHAPE[::-1]}, 1 member", volume_model, build_volume(folder),
                              folder / "out", args.samples, args.repeats)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
