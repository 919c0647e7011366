"""The Slicer module's side of the warm-worker protocol (requests it writes, answers it parses),
spoken to a real ``confidenceseg worker`` process: what the Qt client sends and reads, without Qt."""

from __future__ import annotations

import json
import subprocess
import sys

import SimpleITK as sitk
from tiny_bundles import make_bundle, random_image

from ConfidenceSegLib.slicer.process import (
    QUIT_REQUEST,
    cancel_request,
    parse_worker_event,
    predict_request,
    subprocess_environment,
    worker_command,
)


def test_requests_and_answers_round_trip_with_a_real_worker(tmp_path):
    make_bundle(tmp_path / "model", classes=("organ",), input_size=(32, 32))
    image = tmp_path / "scan.nrrd"
    sitk.WriteImage(random_image((20, 24)), str(image))
    process = subprocess.Popen(worker_command(sys.executable, tmp_path / "model"), stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, encoding="utf-8", env=subprocess_environment())
    events = []
    try:
        process.stdin.write(predict_request("1", image, tmp_path / "out", samples=3) + cancel_request("9"))
        process.stdin.flush()
        for line in process.stdout:  # quit only once the job is done: quit cancels a running job
            events.append(parse_worker_event(line))
            if events[-1] is not None and events[-1].event in ("result", "error") and events[-1].job_id == "1":
                break
        process.stdin.write(QUIT_REQUEST)
        process.stdin.flush()
        events += [parse_worker_event(line) for line in process.stdout]
    finally:
        process.kill()
    kinds = [(e.event, e.job_id) for e in events if e is not None]
    assert kinds[0] == ("ready", None) and kinds[-1] == ("bye", None)
    progress = [e.progress() for e in events if e is not None and e.event == "progress"]
    assert progress and all(0.0 <= p.fraction <= 1.0 for p in progress)
    (result,) = [e for e in events if e is not None and e.event == "result"]
    assert result.job_id == "1" and json.loads((tmp_path / "out" / "scan.json").read_text(encoding="utf-8"))["classes"]
    assert ("error", "cancel-9") in kinds  # nothing called 9 was running
    assert parse_worker_event("some log line") is None and parse_worker_event("{not json") is None
