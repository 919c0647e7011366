"""Batch QC off the main process: ``--workers 2`` and a real Dask ``LocalCluster`` of 2 workers on
127.0.0.1 write the same outputs and the same ``review.csv`` as the default in-process run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import nrrd
import pytest
import SimpleITK as sitk
import torch
from tiny_bundles import make_bundle, random_image

from ConfidenceSegLib.contract import REVIEW_CSV
from ConfidenceSegLib.jobs.review import run_review

CLASSES = ("organ", "lesion")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A tiny bundle, a folder of 4 images (one unreadable) and the in-process review of them."""
    root = tmp_path_factory.mktemp("cohort")
    make_bundle(root / "model", classes=CLASSES, input_size=(32, 32))
    images = root / "images"
    images.mkdir()
    for number in range(3):
        sitk.WriteImage(random_image((24, 30), seed=number), str(images / f"case{number}.nrrd"))
    (images / "broken.nrrd").write_text("not an image")
    # One torch thread, as each worker below has: float sums are bit-identical only at the same thread count.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = run_review(root / "model", [images], root / "local", samples=4, progress=False)
    finally:
        torch.set_num_threads(threads)
    assert len(result.failures) == 1 and len(result.rows) == 3 * len(CLASSES)
    return root / "model", images, root / "local"


def same_outputs(first: Path, second: Path) -> None:
    """Identical files (reports compared without their timings); the page embeds the model path only."""
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    assert (first / REVIEW_CSV).read_text(encoding="utf-8") == (second / REVIEW_CSV).read_text(encoding="utf-8")
    for name in names:
        if name.endswith(".json"):
            reports = [json.loads((folder / name).read_text(encoding="utf-8")) for folder in (first, second)]
            for report in reports:
                report.pop("timings")
            assert reports[0] == reports[1], name
        elif name.endswith(".seg.nrrd"):  # pynrrd stamps the writing time in a header comment
            (data_1, header_1), (data_2, header_2) = (nrrd.read(str(folder / name)) for folder in (first, second))
            assert (data_1 == data_2).all() and str(header_1) == str(header_2), name
        elif name.endswith(".nrrd"):
            assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_local_worker_processes_match_the_in_process_run(cohort, tmp_path):
    model, images, local = cohort
    result = run_review(model, [images], tmp_path / "pool", samples=4, progress=False, workers=2)
    assert len(result.failures) == 1 and "broken.nrrd" in result.failures[0]
    same_outputs(local, tmp_path / "pool")


def test_a_dask_local_cluster_matches_the_in_process_run(cohort, tmp_path):
    distributed = pytest.importorskip("distributed", reason="the [dask] extra is not installed")
    model, images, local = cohort
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0", env={"OMP_NUM_THREADS": "1"}) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        result = run_review(model, [images], tmp_path / "dask", samples=4, progress=False,
                            dask_address=cluster.scheduler_address)
    assert len(result.failures) == 1 and result.images_per_second > 0
    same_outputs(local, tmp_path / "dask")


def test_an_unreachable_scheduler_is_a_clear_error(cohort, tmp_path):
    pytest.importorskip("distributed", reason="the [dask] extra is not installed")
    from ConfidenceSegLib.contract import ConfidenceSegError

    model, images, _ = cohort
    with pytest.raises(ConfidenceSegError, match="cannot reach the Dask scheduler"):
        run_review(model, [images], tmp_path / "none", samples=4, progress=False, dask_address="tcp://127.0.0.1:9")
    assert not (tmp_path / "none").exists()


def test_a_stop_during_a_review_with_workers_leaves_whole_cases_and_no_process(tmp_path):
    """SIGTERM once the first case is written: the workers stop too; every case has all its files or none."""
    make_bundle(tmp_path / "model", classes=CLASSES, input_size=(32, 32))
    images = tmp_path / "images"
    images.mkdir()
    for number in range(40):
        sitk.WriteImage(random_image((48, 60), seed=number), str(images / f"case{number:02d}.nrrd"))
    out = tmp_path / "out"
    review = subprocess.Popen([sys.executable, "-m", "ConfidenceSegLib", "review", "--model", str(tmp_path / "model"),
                               "--inputs", str(images), "--out", str(out), "--workers", "2", "--samples", "4"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, encoding="utf-8")
    deadline = time.monotonic() + 120
    while not list(out.glob("*.json")) and time.monotonic() < deadline and review.poll() is None:
        time.sleep(0.02)
    workers = children_of(review.pid)
    review.send_signal(signal.SIGTERM)
    _, err = review.communicate(timeout=60)
    assert review.returncode == 130, err[-2000:]
    files = [path.name for path in out.iterdir()]
    assert not [name for name in files if name.startswith(".")], files  # no staging folder left
    written = {name.split(".")[0].split("_")[0] for name in files}
    assert written and not (out / REVIEW_CSV).exists()
    for case in written:  # json, seg.nrrd, entropy maps of both classes, overlay, scene
        assert len([name for name in files if name.split(".")[0].split("_")[0] == case]) == 6, (case, files)
    time.sleep(0.5)
    assert workers and not [pid for pid in workers if running(pid)], "a worker process is left"


def running(pid: int) -> bool:
    """Whether process ``pid`` still runs (an exited one not yet reaped, a zombie, does not)."""
    try:
        state = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("State"))
    except (OSError, StopIteration):
        return False
    return "zombie" not in state


def children_of(pid: int) -> list[int]:
    """Process IDs whose parent is ``pid`` (Linux /proc)."""
    children = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            children.append(int(status.parent.name))
    return children
