"""Background predictions of the module: in a warm worker per model, or one-shot ``predict`` processes.

:class:`Predictions` is what the module's logic delegates to: it starts the warm worker of a model on
first use (:mod:`.worker_client`; switching models ends the old worker first, so one worker is alive at
a time), falls back to one-shot ``confidenceseg predict`` processes (:mod:`.process_runner`) once a
worker ended without being asked to, and cancels without blocking the GUI. Every prediction ends in
exactly one ``on_finished(report_path, error_text)`` call, unless it was cancelled.
"""

import shutil
import sys

from ConfidenceSegLib.contract import ConfidenceSegError
from ConfidenceSegLib.slicer import process as slicer_process

from .process_runner import BackgroundProcess
from .worker_client import WorkerClient


def python_executable():
    """Slicer's ``PythonSlicer`` launcher (the real Python behind it has Slicer's environment), else this Python."""
    return shutil.which("PythonSlicer") or sys.executable


class Predictions:
    def __init__(self, python=None):
        self.python = python or python_executable()
        self._job = None  # (worker, job id) or (one-shot process, None) while a prediction runs
        self._worker = None
        self.worker_failed = False  # a worker ended on its own: one-shot processes from now on

    @property
    def worker(self):
        return self._worker

    def start(self, model, input_path, output_dir, method, samples, device, on_progress, on_finished):
        """Predict ``input_path`` into ``output_dir``; ``on_finished(report_path, error_text)`` is called once
        (not after a cancel). The GUI never waits for the model."""
        if self.is_running():
            raise ConfidenceSegError("a segmentation is already running")

        def on_done(report_path, errors):
            self._job = None
            on_finished(report_path, errors)

        worker = self._warm_worker(model)
        if worker is not None:
            self._job = (worker, worker.predict(input_path, output_dir, method, samples, device, on_progress, on_done))
        else:
            self._job = (self._one_shot(model, input_path, output_dir, method, samples, device, on_progress,
                                        on_done), None)

    def _warm_worker(self, model):
        """The worker process of ``model`` (started if needed), or None after a worker failed (fallback)."""
        if self._worker is not None and (self._worker.model != str(model) or not self._worker.is_alive()):
            self._worker.stop()
            self._worker = None
        if self._worker is None and not self.worker_failed:
            self._worker = WorkerClient(self.python, model, self._on_worker_lost)
        return self._worker

    def _on_worker_lost(self, client, _errors):
        if client is self._worker:  # a worker stopped on purpose (model switch) never reports
            self._worker = None
            self.worker_failed = True

    def _one_shot(self, model, input_path, output_dir, method, samples, device, on_progress, on_done):
        command = slicer_process.predict_command(self.python, model, input_path, output_dir, method, samples, device)

        def on_line(line):
            progress = slicer_process.parse_progress(line)
            if progress is not None:
                on_progress(progress)

        def on_exit(exit_code, errors):
            if exit_code != 0:
                on_done(None, errors.strip() or f"predict exited with code {exit_code}")
                return
            try:
                on_done(slicer_process.find_report(output_dir), None)
            except ConfidenceSegError as error:
                on_done(None, str(error))

        return BackgroundProcess(command, on_line, on_exit)

    def is_running(self):
        return self._job is not None

    def cancel(self):
        """Stop the running prediction at once; it leaves no partial output. Never blocks the GUI."""
        job, self._job = self._job, None
        if job is None:
            return
        runner, job_id = job
        if job_id is not None:
            runner.cancel(job_id)
        else:
            runner.stop()

    def shutdown(self, wait=False):
        """Cancel any prediction and end the worker (module cleanup; ``wait``: application exit)."""
        job, self._job = self._job, None
        if job is not None and job[1] is None:
            job[0].stop(wait)
        if self._worker is not None:
            self._worker.stop(wait)
            self._worker = None
