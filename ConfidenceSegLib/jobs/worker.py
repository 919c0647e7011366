"""A warm worker: the model stays loaded, predictions are asked for as JSON lines on stdin.

``confidenceseg worker --model MODEL`` loads the bundle once and answers one JSON object per line
on stdout. Requests (one per line on stdin; ``id`` is the caller's, echoed in every answer):

- ``{"id": "7", "command": "predict", "input": IMAGE, "out": FOLDER, "method": "auto",
  "samples": null, "device": "auto", "maps": ["entropy", ...], "overwrite": false}``
  (everything after ``out`` is optional, with the defaults of ``confidenceseg predict``);
- ``{"id": "8", "command": "cancel", "target": "7"}``: stop job 7 at its next progress report;
  it leaves no partial output (as SIGTERM does for ``predict``);
- ``{"command": "quit"}`` (or the end of stdin): cancel the running job, if any, and exit.

Answers: ``{"event": "ready", "model": ..., "classes": [...]}`` once loaded; per job
``{"id", "event": "progress", "stage", "fraction", "message"}``, then exactly one of
``{"id", "event": "result", "report": S.json, "classes": {CLASS: {present and the quality fields of
S.json}}, "seconds"}`` (:func:`~ConfidenceSegLib.outputs.report.verdict_json`), ``{"id", "event": "error",
"message"}`` or
``{"id", "event": "cancelled"}``; ``{"event": "bye"}`` on exit. Jobs run one at a time, in order.
SIGTERM and SIGINT stop the running job cleanly and end the worker (exit code 130).
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from ..contract import DEFAULT_MAPS, REPORT_SUFFIX, ConfidenceSegError, Key
from ..io.inputs import input_stem
from ..io.safe_files import output_folder
from ..io.stops import StopRequested, cancel_pending, clear_cancel, request_cancel
from ..model.bundle_config import BundleConfig
from ..outputs.report import PredictionReport, verdict_json
from .predict_job import predict_input
from .preflight import check_prediction_run
from .progress import ProgressReporter, progress_record
from .settings import PredictionSettings
from .worker_requests import Request, parse_request


class _Answers:
    """Thread-safe JSON-line writer (the stdin reader and the job both answer)."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.lock = threading.Lock()

    def send(self, **fields) -> None:
        with self.lock:
            print(json.dumps(fields), file=self.stream, flush=True)


class _JobProgress(ProgressReporter):
    """Progress reports of one job as worker answers (``event: progress`` with the job's id)."""

    def __init__(self, answers: _Answers, job_id):
        super().__init__(json_lines=True)
        self.answers = answers
        self.job_id = job_id

    def emit(self, stage: str, fraction: float, message: str = "") -> None:
        self.answers.send(id=self.job_id, event="progress", **progress_record(stage, fraction, message))


class Worker:
    """Reads requests on ``requests`` (a text stream) and answers on ``answers``; the model stays loaded."""

    def __init__(self, model: str | Path, requests: TextIO | None = None, answers: TextIO | None = None,
                 config: BundleConfig | None = None):
        from ..model.bundle import load_bundle

        self.model = Path(model)
        self.bundle = load_bundle(self.model, config)
        self.requests = requests or sys.stdin
        self.answers = _Answers(answers or sys.stdout)
        self.queue: queue.Queue = queue.Queue()
        self.running_id = None
        self.waiting: set[str] = set()  # ids of queued jobs
        self.cancelled: set[str] = set()  # queued jobs asked to be cancelled
        self.stopping = False

    def serve(self) -> int:
        """Answer requests until ``quit`` or the end of the input; returns the exit code."""
        self.answers.send(event="ready", model=str(self.model), classes=self.bundle.classes)
        threading.Thread(target=self._read_requests, name="worker-requests", daemon=True).start()
        while True:
            request = self.queue.get()
            if request is None:
                self.answers.send(event="bye")
                return 0
            self._run_job(request)

    def _read_requests(self) -> None:
        for line in self.requests:
            if not line.strip():
                continue
            try:
                request = parse_request(line)
            except ConfidenceSegError as error:
                self.answers.send(event="error", message=f"refused request: {error}")
                continue
            if request.command == "predict":
                if request.job_id is not None:
                    self.waiting.add(request.job_id)
                self.queue.put(request)
            elif request.command == "cancel":
                self._cancel(request)
            else:
                break
        self.stopping = True  # queued jobs are answered "cancelled", none runs after quit
        if self.running_id is not None:
            request_cancel()
        self.queue.put(None)

    def _cancel(self, request: Request) -> None:
        target = request.target if request.target is not None else self.running_id
        if target is not None and target == self.running_id:
            request_cancel()
        elif target in self.waiting and target not in self.cancelled:
            self.cancelled.add(target)  # a queued job: answered "cancelled" when its turn comes
        else:
            self.answers.send(id=request.job_id, event="error",
                              message=f"no running or queued job {target!r} to cancel")

    def _run_job(self, request: Request) -> None:
        job_id = request.job_id
        self.waiting.discard(job_id)
        if self.stopping or job_id in self.cancelled:
            self.cancelled.discard(job_id)
            self.answers.send(id=job_id, event="cancelled")
            return
        clear_cancel()
        self.running_id = job_id
        started = time.perf_counter()
        try:
            report, report_path = self._predict(request, _JobProgress(self.answers, job_id))
            classes = {name: {Key.PRESENT: result.present, **verdict_json(result.verdict)}
                       for name, result in report.classes.items()}
            self.answers.send(id=job_id, event="result", classes=classes, report=str(report_path),
                              seconds=round(time.perf_counter() - started, 4))
        except StopRequested:
            self.answers.send(id=job_id, event="cancelled")
            if not cancel_pending():
                raise  # a stop signal, not a cancel request: end the worker (see cli.main)
        except ConfidenceSegError as error:
            self.answers.send(id=job_id, event="error", message=str(error))
        except OSError as error:  # a full disk, a vanished folder: this job fails, the worker goes on
            self.answers.send(id=job_id, event="error", message=f"cannot write the outputs: {error.strerror or error}")
        finally:
            self.running_id = None
            clear_cancel()

    def _predict(self, request: Request, progress: _JobProgress) -> tuple[PredictionReport, Path]:
        """Check and run one predict request; its report and the report's path."""
        path, out_dir = Path(request.input), Path(request.out)
        settings = PredictionSettings(request.method, request.samples, request.device, request.maps or DEFAULT_MAPS)
        overwrite = request.overwrite
        check_prediction_run(self.model, [path], out_dir, overwrite, maps=settings.maps, config=self.bundle.config)
        settings.check(len(self.bundle.members), self.bundle.spatial_dims)
        stem = input_stem(path)
        with output_folder(out_dir):
            written = predict_input(self.bundle, path, out_dir, settings, overwrite, progress, stem=stem)
        return written.report, out_dir / f"{stem}{REPORT_SUFFIX}"
