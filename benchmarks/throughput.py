"""Start-up, the warm worker and batch-QC throughput, measured in one run (ratios from that run).

- **start-up**: wall time of ``confidenceseg --help``, ``--version``, ``predict --help`` and a
  missing-file error (median of ``--repeats`` fresh processes);
- **worker**: ``confidenceseg worker`` with the bundled model: time to ``ready``, then the first and
  the later predict requests on one HC18 frame (request sent -> result received); idle, and under
  load: ``--load N`` busy processes (one CPU-bound Python loop each) running beside it;
- **review**: ``confidenceseg review`` of ``--images`` HC18 frames with the bundled model: in one
  process (reading, inference and writing overlapped), ``--workers 2``, and a Dask ``LocalCluster``
  of 2 single-threaded workers on 127.0.0.1 (cluster start-up not counted), each as images/s from
  its own wall clock. With ``--baseline PATH`` (a checkout of an earlier ConfidenceSeg) its
  ``review`` runs first, as the reference of the ratios.

    python benchmarks/throughput.py [--images 40] [--repeats 5] [--load 2] [--baseline /tmp/old-checkout]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
HC18 = REPO_ROOT.parent / "shared" / "data" / "hc18"
MODEL = REPO_ROOT / "Resources" / "models" / "fetal_head"
CLI = [sys.executable, "-m", "ConfidenceSegLib"]


def seconds(command: list[str], env: dict | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
    return time.perf_counter() - started


def startup(repeats: int) -> list[tuple[str, float]]:
    cases = {"confidenceseg --help": ["--help"], "confidenceseg --version": ["--version"],
             "confidenceseg predict --help": ["predict", "--help"],
             "predict, missing input (error)": ["predict", "--model", str(MODEL), "--input", "/no/such.nrrd",
                                                "--out", "/tmp/unused"]}
    return [(name, statistics.median(seconds(CLI + argv) for _ in range(repeats))) for name, argv in cases.items()]


BUSY_LOOP = "while True: pass"


def worker_calls(image: Path, folder: Path, calls: int = 5, load: int = 0) -> dict:
    """Seconds to ``ready`` and per predict request, with ``load`` busy processes beside the worker."""
    folder.mkdir(parents=True, exist_ok=True)
    busy = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(load)]
    try:
        return _timed_worker(image, folder, calls)
    finally:
        for process in busy:
            process.kill()
            process.wait()


def _timed_worker(image: Path, folder: Path, calls: int) -> dict:
    process = subprocess.Popen(CLI + ["worker", "--model", str(MODEL)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, encoding="utf-8")
    started = time.perf_counter()

    def answer(*events):
        while (event := json.loads(process.stdout.readline()))["event"] not in events:
            pass
        return event

    answer("ready")
    ready = time.perf_counter() - started
    times = []
    for call in range(calls):
        sent = time.perf_counter()
        process.stdin.write(json.dumps({"id": str(call), "command": "predict", "input": str(image),
                                        "out": str(folder / f"worker{call}")}) + "\n")
        process.stdin.flush()
        assert answer("result", "error")["event"] == "result"
        times.append(time.perf_counter() - sent)
    process.stdin.write(json.dumps({"command": "quit"}) + "\n")
    process.stdin.flush()
    process.wait()
    return {"ready_s": ready, "first_s": times[0], "later_s": statistics.median(times[1:])}


def review(images: Path, out: Path, extra: list[str], env: dict | None = None, cli=CLI) -> float:
    """Images per second of one ``review`` run."""
    count = len(list(images.iterdir()))
    elapsed = seconds(cli + ["review", "--model", str(MODEL), "--inputs", str(images), "--out", str(out), *extra],
                      env)
    if not (out / "review.csv").is_file():
        raise SystemExit(f"review {' '.join(extra)} wrote no review.csv")
    return count / elapsed


def dask_review(images: Path, out: Path) -> float:
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0", env={"OMP_NUM_THREADS": "1"}) as cluster:
        return review(images, out, ["--dask", cluster.scheduler_address])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--load", type=int, default=2, help="busy processes beside the worker in its loaded run")
    parser.add_argument("--baseline", type=Path, help="checkout of an earlier ConfidenceSeg to compare review with")
    args = parser.parse_args()
    if not HC18.is_dir():
        raise SystemExit(f"hc18 data not found at {HC18}")
    cases = json.loads((HC18 / "dataset.json").read_text(encoding="utf-8"))["cases"][-args.images:]
    with tempfile.TemporaryDirectory(prefix="confidenceseg-throughput-") as temporary:
        folder = Path(temporary)
        images = folder / "images"
        images.mkdir()
        for case in cases:
            shutil.copy(HC18 / case["image"], images)
        print(f"| start-up (median of {args.repeats}) | s |\n|---|---:|")
        for name, value in startup(args.repeats):
            print(f"| {name} | {value:.2f} |")
        idle = worker_calls(next(images.iterdir()), folder / "idle")
        loaded = worker_calls(next(images.iterdir()), folder / "loaded", load=args.load)
        print(f"\n| worker, bundled model, one HC18 frame | idle s | {args.load} busy processes beside it, s |"
              "\n|---|---:|---:|")
        for key, label in (("ready_s", "start until ready"), ("first_s", "first predict"),
                           ("later_s", "later predicts (median)")):
            print(f"| {label} | {idle[key]:.3f} | {loaded[key]:.3f} |")
        rows = []
        if args.baseline:
            env = dict(os.environ, PYTHONPATH=str(args.baseline))
            rows.append((f"earlier checkout ({args.baseline.name}), sequential",
                         review(images, folder / "baseline", [], env)))
        rows.append(("one process, overlapped (default)", review(images, folder / "local", [])))
        rows.append(("--workers 2", review(images, folder / "workers", ["--workers", "2"])))
        rows.append(("Dask LocalCluster, 2 workers", dask_review(images, folder / "dask")))
        reference = rows[0][1]
        print(f"\n| review of {len(cases)} HC18 frames | images/s | vs {rows[0][0]} |\n|---|---:|---:|")
        for name, rate in rows:
            print(f"| {name} | {rate:.2f} | {rate / reference:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
