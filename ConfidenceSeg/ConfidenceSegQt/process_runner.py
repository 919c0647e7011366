"""A background ``PythonSlicer`` process whose stdout lines and end reach the GUI without blocking it.

The model never runs in the GUI process: ``BackgroundProcess`` starts a command with a
``qt.QProcess`` (ConfidenceSegLib importable, unbuffered output), hands each complete stdout line
to ``on_line`` and calls ``on_finished(exit_code, stderr_text)`` exactly once: when the process
ends, or when it could not start at all (``errorOccurred``; ``finished`` never fires then).
"""

import contextlib

import qt

from ConfidenceSegLib.slicer import process as slicer_process

#: How long ``stop`` waits for the process to end after SIGTERM before killing its tree (ms).
TERMINATE_WAIT_MS = 300


class BackgroundProcess:
    def __init__(self, command, on_line, on_finished):
        self._on_line = on_line
        self._on_finished = on_finished
        self._buffer = ""
        self._done = False
        self.process = qt.QProcess()
        environment = qt.QProcessEnvironment()
        for key, value in slicer_process.subprocess_environment().items():
            environment.insert(key, value)
        self.process.setProcessEnvironment(environment)
        self.process.readyReadStandardOutput.connect(self._read_output)
        self.process.finished.connect(lambda exit_code, _status: self._finish(exit_code, self._stderr()))
        self.process.errorOccurred.connect(self._on_error)
        self.process.start(command[0], command[1:])

    def _stderr(self):
        return bytes(self.process.readAllStandardError().data()).decode("utf-8", "replace")

    def _read_output(self):
        self._buffer += bytes(self.process.readAllStandardOutput().data()).decode("utf-8", "replace")
        *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            self._on_line(line)

    def _on_error(self, error):
        if error == qt.QProcess.FailedToStart:
            self._finish(-1, f"could not start {self.process.program()}: {self.process.errorString()}")

    def _finish(self, exit_code, errors):
        if not self._done:
            self._done = True
            self._on_finished(exit_code, errors)

    def is_running(self):
        return self.process.state() != qt.QProcess.NotRunning

    def stop(self):
        """Stop without calling ``on_finished``: SIGTERM (the run removes its partial outputs), then,
        if it has not ended within ``TERMINATE_WAIT_MS``, kill the whole process tree."""
        self._done = True
        if not self.is_running():
            return
        process_id = self.process.processId()
        self.process.terminate()
        if self.process.waitForFinished(TERMINATE_WAIT_MS):
            return
        try:
            import psutil
        except ImportError:
            psutil = None
        if psutil is not None:
            with contextlib.suppress(psutil.Error):  # gone already
                for child in psutil.Process(process_id).children(recursive=True):
                    child.kill()
        self.process.kill()
