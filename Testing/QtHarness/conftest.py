"""Fixtures of the tests that run inside the real-PythonQt host (``qt-python-host -m pytest Testing/QtHarness``).

The host embeds the project's Python with PythonQt 3.6.1 and Qt 5.15 (``import qt`` as in 3D Slicer);
``PythonSlicer`` beside it is a CTKAppLauncher that starts that Python, as Slicer's does. Built by
``Testing/prepare.sh`` (``.ci/build_qt_harness.sh``). Under plain Python every test here is skipped.
"""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
for folder in (REPO_ROOT, REPO_ROOT / "ConfidenceSeg", REPO_ROOT / "Testing" / "Python"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

IN_PYTHONQT = "PythonQt" in sys.modules
HOST_BIN = Path(os.readlink("/proc/self/exe")).parent if IN_PYTHONQT else None
#: The launcher in front of the real Python, as Slicer's ``PythonSlicer``.
LAUNCHER = str(HOST_BIN / "PythonSlicer") if IN_PYTHONQT else ""
TIMEOUT_S = 60.0


def pytest_collection_modifyitems(config, items):
    if not IN_PYTHONQT:
        skip = pytest.mark.skip(reason="needs PythonQt: run under qt-python-host (Testing/prepare.sh builds it)")
        for item in items:
            item.add_marker(skip)


def spin_until(predicate, timeout_s=TIMEOUT_S, poll_ms=10):
    """Run a Qt event loop until ``predicate()`` is true or ``timeout_s`` passed; return ``predicate()``.
    Nothing Qt queues (process signals, timers) reaches Python unless an event loop runs."""
    import qt

    if predicate():
        return True
    loop, timer = qt.QEventLoop(), qt.QTimer()
    timer.setInterval(poll_ms)
    deadline = time.monotonic() + timeout_s

    def check():
        try:
            done = predicate() or time.monotonic() > deadline
        except BaseException:  # noqa: BLE001 - a slot's exception would only be printed: end the loop
            done = True
        if done:
            loop.quit()

    timer.connect("timeout()", check)
    timer.start()
    loop.exec_()
    timer.stop()
    return bool(predicate())


def spin_for(seconds):
    """Let the event loop run for ``seconds`` (timers and process signals are delivered)."""
    deadline = time.monotonic() + seconds
    spin_until(lambda: time.monotonic() >= deadline, timeout_s=seconds + 1)


def run_python(code):
    """Run ``code`` in the project's Python through the launcher (torch stays out of the host process)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "Testing" / "Python")]))
    done = subprocess.run([LAUNCHER, "-c", textwrap.dedent(code)], capture_output=True, encoding="utf-8", env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """A tiny 2D bundle, another one (a model switch), a broken one (no weights) and an image."""
    folder = tmp_path_factory.mktemp("models")
    run_python(f"""
        import SimpleITK as sitk
        from tiny_bundles import make_bundle, random_image
        make_bundle({str(folder / "a")!r}, classes=("organ",), input_size=(32, 32))
        make_bundle({str(folder / "b")!r}, classes=("organ",), input_size=(32, 32))
        make_bundle({str(folder / "broken")!r}, classes=("organ",), input_size=(32, 32))
        sitk.WriteImage(random_image((48, 64), seed=3), {str(folder / "image.nrrd")!r})
        sitk.WriteImage(random_image((24, 1200, 1200), seed=4), {str(folder / "large.nrrd")!r})
    """)
    (folder / "broken" / "member_0.safetensors").unlink()
    return folder
