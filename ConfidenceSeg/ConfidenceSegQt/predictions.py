"""Background predictions of the module: in a warm worker per model, or one-shot ``predict`` processes.

:class:`Predictions` is what the module's logic delegates to: it starts the warm worker of a model on
first use (:mod:`.worker_client`), falls back to a one-shot ``confidenceseg predict`` process
(:mod:`.process_runner`) if the worker cannot run, and cancels without blocking the GUI.
"""

import pathlib
import shutil
import sys

from ConfidenceSegLib.contract import ConfidenceSegError
from ConfidenceSegLib.slicer import process as slicer_process

from .process_runner import BackgroundProcess
from .worker_client import WorkerClient


class Predictions:
    def __init__(self):
        self._job = None  # (worker, job id) or (one-shot process, None) while a prediction runs
        self._worker = None
        self._workerFailed = False
        self._probe = None
        self.lastReportPath = None

    @staticmethod
    def pythonExecutable():
        return shutil.which("PythonSlicer") or sys.executable

    def probeDevice(self, onFound):
        """``onFound(text)`` with the device ``auto`` picks, from a short background process."""
        found = []
        self._probe = BackgroundProcess(slicer_process.device_probe_command(self.pythonExecutable()),
                                        lambda line: found.append(line.strip()),
                                        lambda exitCode, errors: onFound(found[-1] if exitCode == 0 and found
                                                                         else "unknown (torch not installed yet?)"))

    def start(self, model, inputPath, outputDir, method, samples, device, onProgress, onFinished):
        """Predict ``inputPath`` into ``outputDir``; ``onFinished(reportPath, errorText)`` is called once
        (not after a cancel). The GUI never waits for the model."""
        if self.isRunning():
            raise ConfidenceSegError("a segmentation is already running")

        def onDone(reportPath, errors):
            self._job = None
            if reportPath is not None:
                self.lastReportPath = pathlib.Path(reportPath)
            onFinished(self.lastReportPath if reportPath is not None else None, errors)

        worker = self._warmWorker(model)
        if worker is not None:
            self._job = (worker, worker.predict(inputPath, outputDir, method, samples, device, onProgress, onDone))
        else:
            self._job = (self._oneShot(model, inputPath, outputDir, method, samples, device, onProgress, onDone), None)

    def _warmWorker(self, model):
        """The worker process of ``model`` (started if needed), or None after it failed (fallback)."""
        if self._worker is not None and (self._worker.model != str(model) or not self._worker.is_alive()):
            self._worker.stop()
            self._worker = None
        if self._worker is None and not self._workerFailed:
            def onLost(errors):
                self._workerFailed = bool(errors.strip())  # a crash: use one-shot processes from now on
                self._worker = None

            self._worker = WorkerClient(self.pythonExecutable(), model, onLost)
        return self._worker

    def _oneShot(self, model, inputPath, outputDir, method, samples, device, onProgress, onDone):
        command = slicer_process.predict_command(self.pythonExecutable(), model, inputPath, outputDir,
                                                 method, samples, device)

        def onLine(line):
            progress = slicer_process.parse_progress(line)
            if progress is not None:
                onProgress(progress)

        def onExit(exitCode, errors):
            if exitCode != 0:
                onDone(None, errors.strip() or f"predict exited with code {exitCode}")
                return
            try:
                onDone(slicer_process.find_report(outputDir), None)
            except ConfidenceSegError as error:
                onDone(None, str(error))

        return BackgroundProcess(command, onLine, onExit)

    def isRunning(self):
        return self._job is not None

    def cancel(self):
        """Stop the running prediction at once; it leaves no partial output. Never blocks the GUI long."""
        job, self._job = self._job, None
        if job is None:
            return
        runner, jobId = job
        if jobId is not None:
            runner.cancel(jobId)
        else:
            runner.stop()

    def shutdown(self):
        """Cancel any prediction and end the worker (module cleanup)."""
        self.cancel()
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
