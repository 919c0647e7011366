"""The warm worker from the GUI: one ``confidenceseg worker`` process per model, kept between predictions.

Only the first prediction pays for starting Python, importing torch and loading the model; later
ones send a JSON line and get their badge back in well under a second on a 2D frame. Requests go
out on the process's stdin and answers come back through
:class:`~.process_runner.BackgroundProcess` line by line, so the GUI never waits. When the worker
ends without being asked to (it could not start, its model is broken, it crashed), each job in flight
gets its error and ``on_lost(client, errors)`` is called; a worker that is stopped on purpose (model
switch, module exit) calls nothing. Output on stderr (warnings) is only kept for the error message.
"""

import itertools

import qt

from ConfidenceSegLib.slicer import process as slicer_process

from .process_runner import BackgroundProcess

#: How long a cancel request may take before the worker is killed (ms); it restarts on the next run.
CANCEL_GRACE_MS = 2000


class WorkerClient:
    def __init__(self, python, model, on_lost):
        self.model = str(model)
        self._on_lost = on_lost
        self._jobs = {}  # job id -> (on_progress, on_finished)
        self._ids = itertools.count(1)
        self._alive = True
        self._cancelling = None  # the job id a cancel request is waiting for
        self._runner = BackgroundProcess(slicer_process.worker_command(python, model), self._on_line, self._on_exit)

    def is_alive(self):
        return self._alive and self._runner.is_running()

    @property
    def python_pid(self):
        return self._runner.python_pid

    def predict(self, image, out_dir, method, samples, device, on_progress, on_finished):
        """Send one predict request; ``on_finished(report_path, error_text)`` is called once (not after a
        cancel). Returns the job's id."""
        job_id = str(next(self._ids))
        self._jobs[job_id] = (on_progress, on_finished)
        self._runner.write(slicer_process.predict_request(job_id, image, out_dir, method, samples, device))
        return job_id

    def cancel(self, job_id):
        """Ask the worker to stop the job (it leaves no partial output); end the worker if it does not
        answer within ``CANCEL_GRACE_MS`` (the next run starts a new one)."""
        if self._jobs.pop(job_id, None) is None:
            return
        self._cancelling = job_id
        self._runner.write(slicer_process.cancel_request(job_id))
        qt.QTimer.singleShot(CANCEL_GRACE_MS, lambda: self._stop_if_still_cancelling(job_id))

    def stop(self, wait=False):
        """End the worker now (its jobs are dropped without a callback): a model switch, module exit or
        application exit (``wait``: block until the process tree is gone)."""
        self._alive = False
        self._jobs.clear()
        self._runner.stop(wait)

    def _stop_if_still_cancelling(self, job_id):
        if self._cancelling == job_id:  # no "cancelled" answer in time
            self.stop()

    def _on_line(self, line):
        event = slicer_process.parse_worker_event(line)
        if event is not None and event.job_id is not None and event.job_id == self._cancelling and \
                event.event in ("cancelled", "result", "error"):
            self._cancelling = None
        if event is None or event.job_id not in self._jobs:
            return
        on_progress, on_finished = self._jobs[event.job_id]
        if event.event == "progress":
            on_progress(event.progress())
        elif event.event == "result":
            del self._jobs[event.job_id]
            on_finished(event.fields["report"], None)
        elif event.event in ("error", "cancelled"):
            del self._jobs[event.job_id]
            on_finished(None, event.fields.get("message", "cancelled"))

    def _on_exit(self, exit_code, errors):
        self._alive = False
        jobs, self._jobs = self._jobs, {}
        message = errors.strip() or f"the worker exited with code {exit_code}"
        for _, on_finished in jobs.values():
            on_finished(None, message)
        self._on_lost(self, message)
