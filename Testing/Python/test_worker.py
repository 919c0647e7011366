"""``confidenceseg worker``: the JSON-line protocol (ready, progress, result, error, cancel, quit) with a
real worker process, and that a cancelled or stopped job leaves no partial output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import SimpleITK as sitk
from tiny_bundles import make_bundle, random_image

from ConfidenceSegLib.contract import QUALITY_KEYS, prediction_file_names

CLASSES = ["organ", "lesion"]


class WorkerProcess:
    def __init__(self, model: Path):
        self.process = subprocess.Popen([sys.executable, "-m", "ConfidenceSegLib", "worker", "--model", str(model)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        encoding="utf-8", env=dict(os.environ, OMP_NUM_THREADS="1"))

    def send(self, **request) -> None:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()

    def next_event(self) -> dict:
        line = self.process.stdout.readline()
        assert line, f"the worker ended: {self.process.stderr.read()}"
        return json.loads(line)

    def until(self, *events: str) -> tuple[dict, list[dict]]:
        """The next answer whose event is one of ``events``, and the answers before it."""
        before = []
        while (event := self.next_event())["event"] not in events:
            before.append(event)
        return event, before


@pytest.fixture
def worker(tmp_path):
    model = tmp_path / "model"
    make_bundle(model, classes=CLASSES, input_size=(96, 96))
    process = WorkerProcess(model)
    yield process
    process.process.kill()
    process.process.wait()


def write(image, path: Path) -> str:
    sitk.WriteImage(image, str(path))
    return str(path)


def test_predict_progress_result_error_and_quit(worker, tmp_path):
    ready, _ = worker.until("ready")
    assert ready["classes"] == CLASSES
    image = write(random_image((20, 24)), tmp_path / "scan.nrrd")
    for job in ("1", "2"):  # the second request reuses the loaded model
        worker.send(id=job, command="predict", input=image, out=str(tmp_path / f"out{job}"), samples=4)
        result, before = worker.until("result", "error")
        assert result["event"] == "result" and result["id"] == job, result
        assert before and all(e["event"] == "progress" and e["id"] == job for e in before)
        assert [e["fraction"] for e in before] == sorted(e["fraction"] for e in before)
        report = json.loads(Path(result["report"]).read_text(encoding="utf-8"))
        assert set(result["classes"]) == set(CLASSES)
        for name, fields in result["classes"].items():
            assert {key: report["classes"][name][key] for key in QUALITY_KEYS} == {key: fields[key]
                                                                                  for key in QUALITY_KEYS}
        assert sorted(p.name for p in (tmp_path / f"out{job}").iterdir()) == sorted(
            prediction_file_names("scan", CLASSES))
    worker.send(id="3", command="predict", input=str(tmp_path / "missing.nrrd"), out=str(tmp_path / "out3"))
    error, _ = worker.until("result", "error")
    assert error["event"] == "error" and "file not found" in error["message"] and error["id"] == "3"
    worker.send(id="4", command="bogus")
    assert "unknown command" in worker.until("error")[0]["message"]
    worker.send(command="quit")
    worker.until("bye")
    assert worker.process.wait(timeout=30) == 0
    assert not (tmp_path / "out3").exists()


def slow_job(worker, tmp_path) -> Path:
    worker.until("ready")
    slow = write(random_image((24, 120, 120)), tmp_path / "slow.nrrd")
    out = tmp_path / "slow_out"
    worker.send(id="slow", command="predict", input=slow, out=str(out), samples=40)
    while not ((event := worker.next_event())["event"] == "progress" and event["stage"] == "predict"):
        pass
    return out


def test_cancel_stops_the_job_and_leaves_nothing(worker, tmp_path):
    out = slow_job(worker, tmp_path)
    worker.send(id="c", command="cancel", target="slow")
    cancelled, _ = worker.until("cancelled", "result", "error")
    assert cancelled == {"id": "slow", "event": "cancelled"}
    assert not out.exists()
    worker.send(id="after", command="predict", input=write(random_image((20, 24)), tmp_path / "a.nrrd"),
                out=str(tmp_path / "after"), samples=2)  # the worker goes on after a cancel
    assert worker.until("result", "error")[0]["event"] == "result"


def test_sigterm_ends_the_worker_without_partial_output(worker, tmp_path):
    out = slow_job(worker, tmp_path)
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(timeout=10) == 130
    assert not out.exists()
