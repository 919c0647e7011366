"""Smoke test of the real-PythonQt harness: the PythonQt 3.6.1 / Qt 5.15 facts that
ConfidenceSeg's process layer (QProcess signals, event loop, launcher) relies on.

Build the harness, then run this file INSIDE the PythonQt host:

    .ci/build_qt_harness.sh /tmp/qt-harness
    /tmp/qt-harness/bin/qt-python-host -m pytest -v Testing/QtHarness/test_smoke_pythonqt.py

Under plain python (no PythonQt) the whole module is skipped.
"""

import os
import subprocess
import sys
import textwrap
import time

import pytest

if "PythonQt" not in sys.modules:
    pytest.skip("needs PythonQt: run under qt-python-host", allow_module_level=True)

import qt  # noqa: E402  (the host's Slicer-like `qt` module)

PY = sys.executable  # the real python3 the harness was built for
HOST = os.readlink("/proc/self/exe")
LAUNCHER = os.path.join(os.path.dirname(HOST), "PythonSlicer")
TIMEOUT_S = 20.0


# --------------------------------------------------------------------------- helpers
def spin_until(predicate, timeout_s=TIMEOUT_S, poll_ms=10):
    """Run a Qt event loop until predicate() is true (or timeout); return predicate().

    Nothing queued by Qt (QProcess signals, QTimer timeouts) reaches Python unless an
    event loop runs: a test must spin one, this is the recommended way (blocks in the
    event loop, no busy polling; a QTimer re-checks the predicate).
    """
    if predicate():
        return True
    loop = qt.QEventLoop()
    timer = qt.QTimer()
    timer.setInterval(poll_ms)
    deadline = time.monotonic() + timeout_s

    def check():
        # An exception in a slot would only be printed by PythonQt (see
        # test_exception_in_slot_is_printed_not_raised) and the loop would never end.
        try:
            done = predicate() or time.monotonic() > deadline
        except BaseException:
            done = True
        if done:
            loop.quit()

    timer.timeout.connect(check)
    timer.start()
    loop.exec_()
    timer.stop()
    return bool(predicate())


def start_python(code, *args, process=None):
    p = process or qt.QProcess()
    p.start(PY, ["-c", textwrap.dedent(code), *args])
    assert p.waitForStarted(int(TIMEOUT_S * 1000)), p.errorString()
    return p


def wait_finished(p):
    assert spin_until(lambda: p.state() == qt.QProcess.NotRunning)


def alive(pid):
    """True if pid runs and is not a zombie (orphans may not be reaped in containers)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def ppid_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


# --------------------------------------------------------------------------- import qt
def test_import_qt_gives_pythonqt_classes_like_slicer():
    for name in ("QProcess", "QProcessEnvironment", "QTimer", "QEventLoop",
                 "QCoreApplication", "QByteArray"):
        assert getattr(qt, name).__module__ == "PythonQt.QtCore", name
    assert qt.QCoreApplication.instance() is not None  # the host's application object
    from PythonQt.QtCore import QProcess
    assert qt.QProcess is QProcess


# --------------------------------------------------------------------------- (a) finished attribute
def test_finished_attribute_is_bound_to_first_overload_finished_int(capfd):
    p = qt.QProcess()
    # Both overloads exist, the attribute connects the FIRST one of the meta-object
    # (finished(int), deprecated since Qt 5.13): PythonQtSignal.cpp uses
    # m_ml->signature() of the first overload; there is no finished[...] selector.
    assert p.finished.parameterTypes() == (("int",), ("int", "QProcess::ExitStatus"))
    two_params, star_args = [], []
    assert p.finished.connect(lambda code, status: two_params.append((code, status)))
    assert p.finished.connect(lambda *args: star_args.append(args))
    start_python("import sys; sys.exit(3)", process=p)
    assert spin_until(lambda: star_args)
    assert star_args == [(3,)]      # only the exit code is delivered
    assert two_params == []          # the 2-parameter slot never ran ...
    err = capfd.readouterr().err     # ... PythonQt printed its TypeError on stderr,
    assert "TypeError: " in err
    assert "<lambda>() missing 1 required positional argument: 'status'" in err
    # and nothing was raised into the test: the event loop just went on.


def test_finished_attribute_with_defaulted_second_parameter():
    p = qt.QProcess()
    got = []
    p.finished.connect(lambda code, status=None: got.append((code, status)))
    start_python("import sys; sys.exit(4)", process=p)
    assert spin_until(lambda: got)
    assert got == [(4, None)]  # status is never filled in through the attribute


# --------------------------------------------------------------------------- (b) connect by signature
def test_connect_by_signature_string_delivers_code_and_status():
    p = qt.QProcess()
    got = []
    assert p.connect("finished(int,QProcess::ExitStatus)", lambda code, status: got.append((code, status)))
    start_python("import sys; sys.exit(5)", process=p)
    assert spin_until(lambda: got)
    (code, status), = got
    assert code == 5
    assert type(status).__name__ == "ExitStatus"       # PythonQt enum wrapper (an int)
    assert status == qt.QProcess.NormalExit == 0

    crashed = []
    c = qt.QProcess()
    c.connect("finished(int,QProcess::ExitStatus)", lambda code, status: crashed.append((code, status)))
    start_python("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", process=c)
    assert spin_until(lambda: crashed)
    assert crashed[0][1] == qt.QProcess.CrashExit == 1
    assert crashed[0][0] == 9  # exitCode() is the signal number after a crash


def test_slot_with_fewer_parameters_gets_truncated_arguments():
    # PythonQtSignalReceiver passes at most co_argcount arguments.
    p = qt.QProcess()
    got = []
    p.connect("finished(int,QProcess::ExitStatus)", lambda code: got.append(code))
    start_python("import sys; sys.exit(6)", process=p)
    assert spin_until(lambda: got)
    assert got == [6]


# --------------------------------------------------------------------------- (c) event loop
def test_signals_only_arrive_while_an_event_loop_runs():
    p = qt.QProcess()
    got = []
    p.connect("finished(int,QProcess::ExitStatus)", lambda code, status: got.append(code))
    start_python("pass", process=p)
    time.sleep(1.0)  # the child is long gone, but no event loop ran ...
    assert got == []
    assert spin_until(lambda: got)  # ... spinning one delivers the signal
    assert got == [0]


def test_qeventloop_quit_from_signal_with_singleshot_timeout():
    p = qt.QProcess()
    loop = qt.QEventLoop()
    got = []
    p.connect("finished(int,QProcess::ExitStatus)", lambda code, status: (got.append(code), loop.quit()))
    qt.QTimer.singleShot(int(TIMEOUT_S * 1000), loop.quit)  # callable accepted as slot
    start_python("pass", process=p)
    assert loop.exec_() == 0   # exec_ and exec both exist
    assert got == [0]


def test_process_events_polling_alternative():
    p = start_python("pass")
    deadline = time.monotonic() + TIMEOUT_S
    while p.state() != qt.QProcess.NotRunning and time.monotonic() < deadline:
        qt.QCoreApplication.processEvents(qt.QEventLoop.AllEvents, 50)
        time.sleep(0.01)  # processEvents does not wait for events: avoid a busy loop
    assert p.state() == qt.QProcess.NotRunning
    assert p.exitCode() == 0


def test_wait_for_finished_delivers_signals_synchronously():
    p = qt.QProcess()
    got = []
    p.connect("finished(int,QProcess::ExitStatus)", lambda code, status: got.append(code))
    start_python("import sys; sys.exit(2)", process=p)
    assert p.waitForFinished(int(TIMEOUT_S * 1000))
    assert got == [2]  # emitted from inside waitForFinished, no event loop needed


# --------------------------------------------------------------------------- (d) I/O, errors, start, pid
def test_ready_read_write_and_qbytearray():
    p = qt.QProcess()
    assert p.readyReadStandardOutput.parameterTypes() == ((),)  # QPrivateSignal is hidden
    chunks = []
    p.readyReadStandardOutput.connect(lambda: chunks.append(p.readAllStandardOutput()))
    start_python("""
        import sys
        for line in sys.stdin:
            print("echo:" + line.strip(), flush=True)
    """, process=p)
    assert isinstance(p.processId(), int) and p.processId() > 0
    assert p.write(b"bytes\n") == 6            # bytes -> QByteArray
    assert p.write("str \u00e9\n") == 7        # str -> UTF-8 QByteArray
    assert spin_until(lambda: b"".join(c.data() for c in chunks).count(b"\n") == 2)
    p.closeWriteChannel()
    wait_finished(p)
    assert p.processId() == 0                  # 0 once not running
    ba = chunks[0]
    assert type(ba) is qt.QByteArray           # NOT bytes
    data = b"".join(c.data() for c in chunks)  # .data() gives bytes
    assert data == "echo:bytes\necho:str \u00e9\n".encode()
    with pytest.raises(TypeError):
        bytes(ba)                              # no buffer protocol
    assert str(qt.QByteArray(b"ab")) == "b'ab'"  # str() is the bytes repr, not a decode
    assert qt.QByteArray(b"ab") == b"ab"


def test_error_occurred_has_one_overload_and_error_attribute_is_the_getter():
    p = qt.QProcess()
    assert p.errorOccurred.parameterTypes() == (("QProcess::ProcessError",),)
    assert "slot" in repr(p.error)             # p.error is error() (the getter), ...
    errors, old_errors, finished = [], [], []
    p.errorOccurred.connect(lambda e: errors.append(e))
    # ... the deprecated error(QProcess::ProcessError) signal is only reachable by string:
    assert p.connect("error(QProcess::ProcessError)", lambda e: old_errors.append(e))
    p.connect("finished(int,QProcess::ExitStatus)", lambda c, s: finished.append(c))
    p.start("/nonexistent/program", ["x"])
    assert spin_until(lambda: errors)
    assert errors == [qt.QProcess.FailedToStart] and type(errors[0]).__name__ == "ProcessError"
    assert old_errors == [qt.QProcess.FailedToStart]
    spin_until(lambda: False, timeout_s=0.3)
    assert finished == []                      # no finished() after FailedToStart
    assert p.error() == qt.QProcess.FailedToStart and p.processId() == 0


@pytest.mark.parametrize("how", ["list", "tuple", "setProgram", "command-string"])
def test_start_variants(how):
    p = qt.QProcess()
    if how == "list":
        p.start(PY, ["-c", "print(42)"])
    elif how == "tuple":
        p.start(PY, ("-c", "print(42)"))
    elif how == "setProgram":
        p.setProgram(PY)
        p.setArguments(["-c", "print(42)"])
        p.start()
    else:  # start(command) overload, deprecated in Qt 5.15 but present
        p.start(f'{PY} -c "print(42)"')
    assert p.waitForFinished(int(TIMEOUT_S * 1000))
    assert p.readAllStandardOutput().data() == b"42\n"


def test_process_environment():
    env = qt.QProcessEnvironment.systemEnvironment()
    env.insert("CONFIDENCESEG_SMOKE", "yes")
    p = qt.QProcess()
    p.setProcessEnvironment(env)
    start_python("import os; print(os.environ['CONFIDENCESEG_SMOKE'])", process=p)
    wait_finished(p)
    assert p.readAllStandardOutput().data() == b"yes\n"


# --------------------------------------------------------------------------- slot errors
def test_exception_in_slot_is_printed_not_raised(capfd):
    p = qt.QProcess()

    def slot(code, status):
        raise ValueError("boom in slot")

    p.connect("finished(int,QProcess::ExitStatus)", slot)
    start_python("pass", process=p)
    wait_finished(p)  # no exception reaches the test
    err = capfd.readouterr().err
    assert "Traceback" in err and "ValueError: boom in slot" in err


def test_sys_exit_in_slot_terminates_the_whole_host():
    code = ("import qt, sys\n"
            "p = qt.QProcess()\n"
            "p.connect('finished(int,QProcess::ExitStatus)', lambda c, s: sys.exit(9))\n"
            "p.start(sys.executable, ['-c', 'pass']); p.waitForFinished(20000)\n"
            "print('not reached')\n")
    r = subprocess.run([HOST, "-c", code], capture_output=True, timeout=60)
    assert r.returncode == 9 and b"not reached" not in r.stdout


# --------------------------------------------------------------------------- launcher
CHILD = r"""
import os, sys, time
log = open(sys.argv[1], "a", buffering=1)
print(os.getpid(), flush=True)
mode = sys.argv[2]
try:
    if mode == "write":
        for i in range(300):
            time.sleep(0.1)
            print("tick", i, flush=True)
    elif mode == "read":
        log.write("stdin readline returned %r\n" % sys.stdin.readline())
    else:  # no I/O at all for 2 s
        time.sleep(2)
        log.write("alive after 2s, ppid=%d\n" % os.getppid())
except BaseException as e:
    log.write("child got %s\n" % type(e).__name__)
    raise
"""


@pytest.mark.skipif(not os.access(LAUNCHER, os.X_OK), reason="no PythonSlicer launcher next to the host")
@pytest.mark.parametrize("mode", ["sleep", "write", "read"])
def test_sigterm_to_launcher_is_not_forwarded_to_python_child(mode, tmp_path):
    log = tmp_path / "child.log"
    log.write_text("")
    p = qt.QProcess()
    out, fin = [], []
    p.readyReadStandardOutput.connect(lambda: out.append(p.readAllStandardOutput().data()))
    p.connect("finished(int,QProcess::ExitStatus)", lambda c, s: fin.append((c, s)))
    p.start(LAUNCHER, ["-c", CHILD, str(log), mode])
    assert spin_until(lambda: out)
    child = int(out[0].split()[0])
    launcher = p.processId()
    assert ppid_of(child) == launcher          # launcher -> python child
    try:
        p.terminate()                          # SIGTERM to the launcher
        assert spin_until(lambda: fin)
        assert fin == [(15, qt.QProcess.CrashExit)]  # launcher died of the signal
        if mode == "sleep":
            # The child was not signalled: it is orphaned and keeps running.
            assert alive(child) and ppid_of(child) != launcher
            assert spin_until(lambda: "alive after 2s" in log.read_text(encoding="utf-8"), timeout_s=10)
        elif mode == "write":
            # Still alive until its next write to the (now closed) stdout pipe.
            assert spin_until(lambda: not alive(child), timeout_s=10)
            assert "child got BrokenPipeError" in log.read_text(encoding="utf-8")
        else:
            # Its stdin pipe was closed with the launcher: readline() returns EOF.
            assert spin_until(lambda: not alive(child), timeout_s=10)
            assert "stdin readline returned ''" in log.read_text(encoding="utf-8")
    finally:
        if alive(child):
            os.kill(child, 9)
