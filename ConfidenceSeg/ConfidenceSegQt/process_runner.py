"""A background ``PythonSlicer`` process whose stdout lines and end reach the GUI without blocking it.

The model never runs in the GUI process: ``BackgroundProcess`` starts a command with a ``qt.QProcess``
(ConfidenceSegLib importable, unbuffered output), hands each complete stdout line to ``on_line`` and
calls ``on_finished(exit_code, stderr_text)`` exactly once: when the process ends (a crash gives a
message), or when it could not start at all (``finished`` never fires then). After :meth:`stop` it calls
nothing. Signals are connected by signature: PythonQt binds a signal attribute to the first overload in
Qt's meta-object (``QProcess.finished`` is ``finished(int)``) and never fills in missing arguments.

``PythonSlicer`` is a launcher in front of the real Python and does not pass signals on, so :meth:`stop`
signals the Python itself (its ID arrives as the first stdout line, see
:func:`ConfidenceSegLib.slicer.process.parse_pid`) and every descendant of the launcher, then the launcher
(:mod:`ConfidenceSegLib.slicer.process_tree`).
"""

import signal

import qt

from ConfidenceSegLib.slicer import process as slicer_process
from ConfidenceSegLib.slicer import process_tree

#: How long a stopped process may take to remove its partial outputs before it is killed (ms).
TERMINATE_WAIT_MS = 500
#: Most stderr text kept for the error message (the end of it).
STDERR_KEPT = 64 * 1024


class BackgroundProcess:
    def __init__(self, command, on_line, on_finished):
        self._on_line = on_line
        self._on_finished = on_finished
        self._buffer = ""
        self._errors = ""
        self._done = False
        self.python_pid = None  # announced by the Python behind the launcher
        self.process = qt.QProcess()
        environment = qt.QProcessEnvironment()
        for key, value in slicer_process.subprocess_environment().items():
            environment.insert(key, value)
        self.process.setProcessEnvironment(environment)
        self.process.connect("readyReadStandardOutput()", self._read_output)
        self.process.connect("readyReadStandardError()", self._read_errors)
        self.process.connect("finished(int,QProcess::ExitStatus)", self._on_process_finished)
        self.process.connect("errorOccurred(QProcess::ProcessError)", self._on_error)
        self.process.start(command[0], command[1:])

    def _read_output(self):
        self._buffer += bytes(self.process.readAllStandardOutput().data()).decode("utf-8", "replace")
        *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            pid = slicer_process.parse_pid(line) if self.python_pid is None else None
            if pid is not None:
                self.python_pid = pid
            elif not self._done:
                self._on_line(line)

    def _read_errors(self):
        self._errors = (self._errors + bytes(self.process.readAllStandardError().data()).decode(
            "utf-8", "replace"))[-STDERR_KEPT:]

    def _on_process_finished(self, exit_code, exit_status):
        self._read_output()
        self._read_errors()
        if self._buffer.strip() and not self._done:
            self._on_line(self._buffer)
        self._buffer = ""
        crashed = exit_status == qt.QProcess.CrashExit
        errors = self._errors.strip()
        if crashed:
            errors = (errors + "\n" if errors else "") + f"the background process crashed (exit code {exit_code})"
        self._finish(exit_code if not crashed or exit_code else -1, errors)

    def _on_error(self, error):
        if error == qt.QProcess.FailedToStart:
            self._finish(-1, f"could not start {self.process.program()}: {self.process.errorString()}")

    def _finish(self, exit_code, errors):
        if not self._done:
            self._done = True
            self._on_finished(exit_code, errors)

    def is_running(self):
        return self.process.state() != qt.QProcess.NotRunning

    def write(self, text):
        """Send ``text`` to the process's stdin (UTF-8)."""
        self.process.write(text.encode("utf-8"))

    def stop(self, wait=False):
        """Stop without calling ``on_finished``: SIGTERM to the Python behind the launcher and everything it
        started (the run removes its partial outputs; the launcher ends with it), SIGKILL to whatever is
        left after ``TERMINATE_WAIT_MS``. ``wait``: block until then (application exit); otherwise a timer
        finishes the job and the GUI goes on at once."""
        self._done = True
        launcher = self.process.processId()
        below = [pid for pid in dict.fromkeys([self.python_pid, *process_tree.descendants(launcher)]) if pid] \
            if launcher else [pid for pid in [self.python_pid] if pid]
        everything = [*below, launcher] if launcher else below
        if not any(process_tree.is_running(pid) for pid in everything):
            return
        if wait:
            process_tree.end_processes(below or everything, TERMINATE_WAIT_MS / 1000)
            process_tree.send(everything, process_tree.KILL)
            self.process.waitForFinished(TERMINATE_WAIT_MS)
            return
        process_tree.send(below or everything, signal.SIGTERM)
        qt.QTimer.singleShot(TERMINATE_WAIT_MS, lambda: process_tree.send(everything, process_tree.KILL))
