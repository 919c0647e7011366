"""The module's process layer on a real PythonQt with a real CTKAppLauncher in front of Python.

Each background run ends in a state the user can see: a result or an error message reaches its
handler exactly once (a prediction, an assessment, a calibration, a process that cannot start, a worker
whose model is broken, a crash), and cancel, model switch and shutdown leave no Python process behind
the launcher and no partial output. Run under ``qt-python-host -m pytest Testing/QtHarness``.
"""

import json
import os
import signal
import time
from pathlib import Path

import pytest
from conftest import LAUNCHER, REPO_ROOT, run_python, spin_for, spin_until

from ConfidenceSegLib.slicer import process_tree


class Outcome:
    """What a run handed to its handler: every call, in order."""

    def __init__(self):
        self.calls, self.progress = [], []

    def done(self, *args):
        self.calls.append(args)

    def on_progress(self, progress):
        self.progress.append(progress)


@pytest.fixture
def runs(tmp_path):
    from ConfidenceSegQt.runs import ModuleRuns

    runs = ModuleRuns(tmp_path / "temporary", python=LAUNCHER)
    yield runs
    runs.shutdown(wait=True)


def predict(runs, model, image, samples=2):
    outcome = Outcome()
    folder = runs.new_folder("predict")
    runs.predict(str(model), str(image), folder, "auto", samples, "cpu", outcome.on_progress, outcome.done)
    return outcome, folder


def test_a_prediction_result_reaches_its_handler_and_the_worker_stays_warm(runs, models):
    outcome, folder = predict(runs, models / "a", models / "image.nrrd")
    assert spin_until(lambda: outcome.calls), "no result"
    (report_path, error), = outcome.calls
    assert error is None and Path(report_path).is_file() and Path(report_path).parent == folder / "results"
    assert json.loads(Path(report_path).read_text(encoding="utf-8"))["classes"]["organ"]["present"] in (True, False)
    worker = runs.predictions.worker
    assert worker is not None and worker.is_alive() and process_tree.is_running(worker.python_pid)
    again, _ = predict(runs, models / "a", models / "image.nrrd")
    assert spin_until(lambda: again.calls) and again.calls[0][1] is None
    assert runs.predictions.worker is worker, "the warm worker was replaced between two runs of one model"


def test_a_process_that_cannot_start_reports_it(tmp_path, models):
    from ConfidenceSegQt.runs import ModuleRuns

    runs = ModuleRuns(tmp_path, python=str(tmp_path / "no-such-PythonSlicer"))
    outcome, folder = predict(runs, models / "a", models / "image.nrrd")
    assert spin_until(lambda: outcome.calls)
    assert outcome.calls == [(None, outcome.calls[0][1])] and "could not start" in outcome.calls[0][1]
    assert not folder.exists() or not any(folder.rglob("*.json"))
    assert not runs.predictions.is_running(), "Run would stay disabled"
    found = []
    runs.probe_device(found.append)
    assert spin_until(lambda: found) and found[0].startswith("unknown")


def test_a_broken_model_reports_its_error_then_predictions_run_one_shot(runs, models):
    outcome, _ = predict(runs, models / "broken", models / "image.nrrd")
    assert spin_until(lambda: outcome.calls)
    (report_path, error), = outcome.calls
    assert report_path is None and "member_0.safetensors" in error
    assert runs.predictions.worker is None and runs.predictions.worker_failed
    fallback, _ = predict(runs, models / "a", models / "image.nrrd")  # a one-shot process now
    assert spin_until(lambda: fallback.calls) and fallback.calls[0][1] is None and fallback.progress


def test_a_crash_reports_an_error(runs, models):
    outcome, _ = predict(runs, models / "a", models / "large.nrrd", samples=4)
    worker = runs.predictions.worker
    assert spin_until(lambda: worker.python_pid and outcome.progress), "the prediction never started"
    os.kill(worker.python_pid, signal.SIGKILL)
    assert spin_until(lambda: outcome.calls)
    (report_path, error), = outcome.calls
    assert report_path is None and error
    assert not runs.predictions.is_running()


@pytest.mark.parametrize("warm", [True, False], ids=["warm worker", "one-shot"])
def test_cancel_leaves_no_python_and_no_output(runs, models, warm):
    if not warm:
        runs.predictions.worker_failed = True  # as after a failed worker: one-shot processes
    outcome, folder = predict(runs, models / "a", models / "large.nrrd", samples=4)
    runner = runs.predictions.worker._runner if warm else runs.predictions._job[0]
    assert spin_until(lambda: runner.python_pid and outcome.progress), "the prediction never started"
    python = runner.python_pid
    runs.cancel_prediction()
    cancelled = time.monotonic()
    if warm:  # the worker stops the job and stays warm
        assert spin_until(lambda: not any(folder.rglob("*.partial-*")), timeout_s=5)
        assert runs.predictions.worker.is_alive() and process_tree.is_running(python)
    else:
        assert spin_until(lambda: not process_tree.is_running(python), timeout_s=1.0), \
            "the Python behind the launcher outlived the cancel by 1 s"
        assert time.monotonic() - cancelled <= 1.0
    spin_for(1.2)  # the cancelled run's folder goes once its process has ended
    assert not folder.exists(), list(folder.rglob("*")) if folder.exists() else None
    assert outcome.calls == [], "a cancelled run called its handler"


def test_a_model_switch_leaves_exactly_one_worker(runs, models):
    first, _ = predict(runs, models / "a", models / "image.nrrd")
    assert spin_until(lambda: first.calls)
    old = runs.predictions.worker.python_pid
    second, _ = predict(runs, models / "b", models / "image.nrrd")
    assert spin_until(lambda: second.calls) and second.calls[0][1] is None
    new = runs.predictions.worker.python_pid
    assert new != old and process_tree.is_running(new)
    assert spin_until(lambda: not process_tree.is_running(old), timeout_s=2), "the old worker is still alive"
    workers = [pid for pid in process_tree.descendants(os.getpid())
               if " worker " in _command(pid) and _executable(pid).startswith("python")]
    assert workers == [new], [(pid, _command(pid)) for pid in workers]


def test_shutdown_leaves_no_process_and_no_folder(runs, models):
    outcome, _ = predict(runs, models / "a", models / "large.nrrd", samples=4)
    assert spin_until(lambda: runs.predictions.worker.python_pid and outcome.progress)
    found = []
    runs.probe_device(found.append)
    runs.shutdown(wait=True)
    assert [pid for pid in process_tree.descendants(os.getpid()) if process_tree.is_running(pid)] == []
    assert not any(runs.root.iterdir()), list(runs.root.iterdir())
    spin_for(0.5)
    assert outcome.calls == [] and found == []


def test_the_device_probe_answers(runs):
    found = []
    runs.probe_device(found.append)
    assert spin_until(lambda: found) and found == ["cpu"]


def test_an_assessment_result_reaches_its_handler(runs, tmp_path):
    sample = REPO_ROOT / "Resources" / "SampleData" / "hc18-012.nrrd"
    folder = runs.new_folder("assess")
    mask = folder / "hc18-012_mask.nrrd"
    run_python(f"""
        import SimpleITK as sitk
        label = sitk.ReadImage({str(REPO_ROOT / "Resources" / "SampleData" / "labels" / "hc18-012_fetal_head.nrrd")!r})
        sitk.WriteImage(label, {str(mask)!r})
    """)
    outcome = Outcome()
    runs.assess(str(REPO_ROOT / "Resources" / "models" / "fetal_head"), str(sample), str(mask), folder, None,
                outcome.done)
    assert spin_until(lambda: outcome.calls, timeout_s=120)
    (report, error), = outcome.calls
    assert error is None, error
    assert report.classes["fetal_head"].verdict.badge in ("PASS", "REVIEW")
    assert not folder.exists(), "the assessment's temporary folder was left behind"


def test_a_calibration_result_reaches_its_handler(runs, tmp_path):
    dataset = tmp_path / "discs"
    run_python(f"""
        from test_training import write_disc_dataset
        write_disc_dataset(__import__("pathlib").Path({str(dataset)!r}), n_subjects=4, frames_per_subject=1, seed=2)
        from tiny_bundles import make_bundle
        make_bundle({str(tmp_path / "model")!r}, classes=("disc",), input_size=(32, 32))
    """)
    outcome = Outcome()
    runs.calibrate(str(tmp_path / "model"), str(dataset), str(tmp_path / "recalibrated"), outcome.done)
    assert spin_until(lambda: outcome.calls, timeout_s=300)
    (out, error), = outcome.calls
    assert error is None, error
    assert json.loads((out / "config.json").read_text(encoding="utf-8"))["quality"]["calibration_data"]["n_cases"] == 4
    failed = Outcome()
    runs.calibrate(str(tmp_path / "model"), str(tmp_path / "no-dataset"), str(tmp_path / "again"), failed.done)
    assert spin_until(lambda: failed.calls)
    assert failed.calls[0][0] is None and "no-dataset" in failed.calls[0][1]


def _executable(pid):
    try:
        return Path(os.readlink(f"/proc/{pid}/exe")).name
    except OSError:
        return ""


def _command(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
