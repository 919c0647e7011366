"""Every background run of the module, and the temporary folders they use: what the logic delegates to.

:class:`ModuleRuns` starts the device probe, predictions (:mod:`.predictions`), assessments of a given
segmentation and recalibrations, each in its own ``PythonSlicer`` process, and ends them: a cancel, a
closed scene (:meth:`cancel_all`) or the module's cleanup and the application's exit (:meth:`shutdown`)
leave no process behind and call no handler. Every run that is not cancelled calls its ``on_done``
exactly once, with a result or an error text, whatever the process does (fails to start, crashes,
prints warnings). Each run writes into its own temporary folder under ``root`` (Slicer's
``slicer.app.temporaryPath``), removed when the caller releases it, when a run fails or is cancelled,
and at shutdown. Needs Qt only (no ``slicer``), so a real PythonQt drives it in the tests.
"""

import itertools
import pathlib
import shutil
import tempfile

import qt

from ConfidenceSegLib.contract import REPORT_SUFFIX, ConfidenceSegError
from ConfidenceSegLib.io.inputs import input_stem
from ConfidenceSegLib.outputs.report import read_report
from ConfidenceSegLib.slicer import process as slicer_process

from .predictions import Predictions, python_executable
from .process_runner import TERMINATE_WAIT_MS, BackgroundProcess

#: Shown while the device is unknown (torch not importable yet, or the probe failed).
UNKNOWN_DEVICE = "unknown (torch not installed yet?)"


class ModuleRuns:
    def __init__(self, root=None, python=None):
        self.python = python or python_executable()
        self.root = pathlib.Path(root or tempfile.gettempdir()) / "ConfidenceSeg"
        self.predictions = Predictions(self.python)
        self._processes = {}  # run name -> BackgroundProcess (probe, assess, calibrate)
        self._folders = set()
        self._prediction_folder = None
        self._numbers = itertools.count(1)

    # --- temporary folders -----------------------------------------------------------------

    def new_folder(self, kind):
        """A new empty folder for one run (its input, its outputs)."""
        self.root.mkdir(parents=True, exist_ok=True)
        folder = pathlib.Path(tempfile.mkdtemp(prefix=f"{kind}-{next(self._numbers)}-", dir=self.root))
        self._folders.add(folder)
        return folder

    def release(self, folder):
        """Remove a run's folder (its results are loaded, or no longer shown)."""
        if folder is not None:
            self._folders.discard(pathlib.Path(folder))
            shutil.rmtree(folder, ignore_errors=True)

    def release_later(self, folder):
        """Remove a cancelled run's folder once its process has surely ended (it may still be cleaning up)."""
        if folder is not None:
            qt.QTimer.singleShot(2 * TERMINATE_WAIT_MS, lambda: self.release(folder))

    # --- runs ------------------------------------------------------------------------------

    def is_running(self, name):
        return name == "predict" and self.predictions.is_running() or name in self._processes

    def _start(self, name, command, on_line, on_exit):
        if self.is_running(name):
            raise ConfidenceSegError(f"a {name} run is already going on")

        def finished(exit_code, errors):
            self._processes.pop(name, None)
            on_exit(exit_code, errors)

        self._processes[name] = BackgroundProcess(command, on_line, finished)

    def probe_device(self, on_found):
        """``on_found(text)`` with the device ``auto`` picks, from a short background process."""
        found = []
        self._start("probe", slicer_process.device_probe_command(self.python), lambda line: found.append(line.strip()),
                    lambda code, _errors: on_found(found[-1] if code == 0 and found else UNKNOWN_DEVICE))

    def predict(self, model, input_path, folder, method, samples, device, on_progress, on_done):
        """Predict ``input_path`` into ``folder/results`` (``folder``: the run's, from :meth:`new_folder`);
        ``on_done(report_path, error)``. A failed or cancelled run's folder goes."""
        def finished(report_path, errors):
            self._prediction_folder = None
            if report_path is None:
                self.release(folder)
            on_done(report_path, errors)

        self.predictions.start(model, input_path, pathlib.Path(folder) / "results", method, samples, device,
                               on_progress, finished)
        self._prediction_folder = folder

    def assess(self, model, image, segmentation, folder, class_name, on_done):
        """Assess the given ``segmentation`` of ``image`` (files in ``folder``): ``on_done(report, error)``."""
        out = pathlib.Path(folder) / "results"
        report_path = out / f"{input_stem(image)}{REPORT_SUFFIX}"

        def finished(exit_code, errors):
            try:
                if exit_code != 0:
                    raise ConfidenceSegError(errors.strip() or f"assess exited with code {exit_code}")
                on_done(read_report(report_path, need_segmentation=False), None)
            except ConfidenceSegError as error:
                on_done(None, str(error))
            finally:
                self.release(folder)

        command = slicer_process.assess_command(self.python, model, image, segmentation, out, class_name)
        self._start("assess", command, lambda line: None, finished)

    def calibrate(self, model, dataset, out, on_done, scratch=None):
        """Recalibrate ``model`` on ``dataset`` into the new bundle ``out``: ``on_done(out, error)``;
        ``scratch``: a temporary folder of this run (the exported scene cases), removed at the end."""
        def finished(exit_code, errors):
            self.release(scratch)
            if exit_code != 0:
                on_done(None, errors.strip() or f"calibrate exited with code {exit_code}")
            else:
                on_done(pathlib.Path(out), None)

        self._start("calibrate", slicer_process.calibrate_command(self.python, model, dataset, out),
                    lambda line: None, finished)

    # --- ending ----------------------------------------------------------------------------

    def cancel_prediction(self):
        """Stop the running prediction: no handler is called; its folder goes once the process has ended."""
        if self.predictions.is_running():
            self.predictions.cancel()
            folder, self._prediction_folder = self._prediction_folder, None
            self.release_later(folder)

    def cancel_all(self, wait=False):
        """Stop every run now (a closed scene): no handler is called, no partial output is left."""
        self.cancel_prediction()
        processes, self._processes = self._processes, {}
        for process in processes.values():
            process.stop(wait)

    def shutdown(self, wait=False):
        """Module cleanup or application exit: every run and the warm worker end, every folder goes."""
        self.cancel_all(wait)
        self.predictions.shutdown(wait)
        for folder in list(self._folders):
            self.release(folder)
