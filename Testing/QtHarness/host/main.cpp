// qt-python-host: run a Python program inside a real PythonQt interpreter.
//
// Test harness for ConfidenceSeg (built by .ci/build_qt_harness.sh).  It
// reproduces the part of 3D Slicer that matters to scripted modules:
//   * a QApplication (QT_QPA_PLATFORM defaults to offscreen) -- or a
//     QCoreApplication when built with QT_PYTHON_HOST_WITH_GUI=OFF -- exists
//     on the main thread; no event loop is running: tests spin one
//     themselves, e.g. qt.QEventLoop + qt.QTimer;
//   * Python is embedded and PythonQt 3.6.1 is initialised on top of it,
//     PythonQt_QtAll::init() registers the generated Qt wrappers, and
//     `import qt` gives the PythonQt classes exactly as CTK/Slicer's
//     qt/__init__.py does (`from PythonQt.QtCore import *`, ...).
//
// Usage (same shape as the python command line):
//   qt-python-host SCRIPT [ARGS...]      run SCRIPT as __main__, sys.argv = [SCRIPT, ARGS...]
//   qt-python-host -m MODULE [ARGS...]   run a module as __main__ (e.g. -m pytest -q test_x.py)
//   qt-python-host -c CODE [ARGS...]     run CODE as __main__, sys.argv = ['-c', ARGS...]
// Exit status: 0 on normal end, SystemExit's code if raised (None -> 0,
// int -> that int, anything else -> printed to stderr and 1), 1 after an
// uncaught exception (traceback printed through sys.excepthook), 130 on
// KeyboardInterrupt.
//
// Python's sys.stdout / sys.stderr are the process's real stdout / stderr
// (PythonQt is initialised WITHOUT RedirectStdOut, unlike Slicer's console).
//
// Exit: the host never calls Py_FinalizeEx() -- with PythonQt 3.6.1 and
// Python 3.11 finalisation aborts ("PyThreadState_Get: ... GIL is released")
// or, after PythonQt::cleanup(), segfaults.  Instead it does what matters of
// it (join non-daemon threads, run atexit handlers, flush the streams) and
// then _exit()s with the status.
//
// Environment:
//   QT_PYTHON_HOST_PYTHON    python executable whose installation (stdlib,
//                            site-packages, pyvenv.cfg) the embedded
//                            interpreter uses; default: the one the host was
//                            built against (compile-time definition below).
//   PYTHONPATH, PYTHONHOME, PYTHONDONTWRITEBYTECODE, ... are honoured as by
//                            the python command.
//   QT_QPA_PLATFORM          defaults to offscreen (GUI build).
#include <PythonQt.h>
#include <PythonQt_QtAll.h>

#include <QCoreApplication>
#ifdef QT_PYTHON_HOST_WITH_GUI
#include <QApplication>
#endif

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#ifndef QT_PYTHON_HOST_PYTHON_EXECUTABLE
#define QT_PYTHON_HOST_PYTHON_EXECUTABLE ""
#endif

namespace {

// Runs in its own namespace (not __main__).  Defines _host_main(mode, target)
// which returns the exit status.
const char* const kBootstrap = R"PYTHON(
import sys, types

def _install_qt_module():
    # Same as CTK's Libs/Scripting/Python/Core/Python/qt/__init__.py, which
    # 3D Slicer ships as the `qt` module.
    qt = types.ModuleType('qt', 'Qt classes wrapped by PythonQt (qt-python-host)')
    for kit in ('Core', 'Gui', 'Widgets', 'PrintSupport', 'Network', 'Xml',
                'Svg', 'Sql', 'OpenGL', 'Multimedia', 'Qml', 'Quick', 'UiTools'):
        try:
            exec('from PythonQt.Qt%s import *' % kit, qt.__dict__)
        except ImportError:
            pass
    sys.modules['qt'] = qt

def _finish():
    # What Py_FinalizeEx would do first: join non-daemon threads, run atexit
    # handlers (pytest/coverage/logging rely on them), flush the streams.
    try:
        if 'threading' in sys.modules:
            sys.modules['threading']._shutdown()
    except BaseException:
        pass
    try:
        import atexit
        atexit._run_exitfuncs()
    except BaseException:
        pass
    for name in ('stdout', 'stderr'):
        try:
            getattr(sys, name).flush()
        except BaseException:
            pass

def _exit_code(exc):
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    try:
        print(code, file=sys.stderr)
    except BaseException:
        pass
    return 1

def _host_main(mode, target):
    import os
    main = sys.modules['__main__']
    rc = 0
    try:
        try:
            _install_qt_module()
            if mode == 'module':
                import runpy
                sys.path.insert(0, os.getcwd())
                runpy._run_module_as_main(target, alter_argv=True)
            else:
                if mode == 'command':
                    sys.path.insert(0, '')
                    source, filename = target, '<string>'
                else:
                    filename = target
                    sys.path.insert(0, os.path.dirname(os.path.realpath(target)))
                    import io
                    with io.open_code(filename) as f:
                        source = f.read()
                    main.__file__ = filename
                    main.__cached__ = None
                code = compile(source, filename, 'exec', dont_inherit=True)
                exec(code, main.__dict__)
        except SystemExit as exc:
            rc = _exit_code(exc)
        except BaseException as exc:
            # Like python: the traceback starts at the user's code (drop this frame).
            tb = exc.__traceback__
            tb = tb.tb_next if tb is not None else None
            sys.excepthook(type(exc), exc.with_traceback(tb), tb)
            rc = 130 if isinstance(exc, KeyboardInterrupt) else 1
    finally:
        _finish()
    return rc
)PYTHON";

void usage(FILE* out)
{
  std::fprintf(out,
    "usage: qt-python-host SCRIPT [ARGS...]\n"
    "       qt-python-host -m MODULE [ARGS...]\n"
    "       qt-python-host -c CODE [ARGS...]\n"
    "Runs Python under PythonQt 3.6.1 with a QCoreApplication; `import qt` works as in 3D Slicer.\n");
}

[[noreturn]] void finish(int rc)
{
  std::fflush(stdout);
  std::fflush(stderr);
  _exit(rc & 0xff);
}

}  // namespace

int main(int argc, char** argv)
{
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help")) {
    usage(stdout);
    return 0;
  }

  std::string mode = "script";
  std::string target = argv[1];
  std::vector<std::string> pyArgv;  // becomes sys.argv
  int rest = 2;
  if (!std::strcmp(argv[1], "-m") || !std::strcmp(argv[1], "-c")) {
    if (argc < 3) {
      std::fprintf(stderr, "qt-python-host: argument expected for the %s option\n", argv[1]);
      return 2;
    }
    mode = argv[1][1] == 'm' ? "module" : "command";
    target = argv[2];
    pyArgv.push_back(argv[1]);  // like python: '-m' (runpy replaces it) / '-c'
    rest = 3;
  } else {
    pyArgv.push_back(argv[1]);
  }
  for (int i = rest; i < argc; ++i) {
    pyArgv.push_back(argv[i]);
  }

  // Qt must not see (and strip) the script's arguments.
  int qtArgc = 1;
  char* qtArgv[] = {argv[0], nullptr};
#ifdef QT_PYTHON_HOST_WITH_GUI
  // Widgets need a QApplication; no display on CI machines.
  setenv("QT_QPA_PLATFORM", "offscreen", 0);
  if (!std::getenv("XDG_RUNTIME_DIR")) {
    // Qt's own fallback, set explicitly so QStandardPaths does not warn on stderr.
    std::string dir = "/tmp/runtime-" + std::to_string(getuid());
    if (mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) {
      setenv("XDG_RUNTIME_DIR", dir.c_str(), 0);
    }
  }
  QApplication app(qtArgc, qtArgv);
#else
  QCoreApplication app(qtArgc, qtArgv);
#endif
  QCoreApplication::setApplicationName("qt-python-host");

  // Initialise Python ourselves (PythonQt would call it "PythonQt" and guess
  // the installation from PATH), so the embedded interpreter uses the same
  // prefix / site-packages as the python3 the harness was built for.
  PyConfig config;
  PyConfig_InitPythonConfig(&config);
  config.parse_argv = 0;
  PyStatus status;
  const char* exe = std::getenv("QT_PYTHON_HOST_PYTHON");
  if (!exe || !*exe) {
    exe = QT_PYTHON_HOST_PYTHON_EXECUTABLE;
  }
  if (*exe) {
    status = PyConfig_SetBytesString(&config, &config.program_name, exe);
    if (PyStatus_Exception(status)) {
      PyConfig_Clear(&config);
      Py_ExitStatusException(status);
    }
  }
  std::vector<char*> cargv;
  for (auto& a : pyArgv) {
    cargv.push_back(const_cast<char*>(a.c_str()));
  }
  status = PyConfig_SetBytesArgv(&config, static_cast<Py_ssize_t>(cargv.size()), cargv.data());
  if (PyStatus_Exception(status)) {
    PyConfig_Clear(&config);
    Py_ExitStatusException(status);
  }
  status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(status)) {
    Py_ExitStatusException(status);
  }

  PythonQt::init(PythonQt::PythonAlreadyInitialized);
  PythonQt_QtAll::init();

  PyObject* ns = PyDict_New();
  PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins());
  PyObject* nsName = PyUnicode_FromString("_qt_python_host");
  PyDict_SetItemString(ns, "__name__", nsName);
  Py_DECREF(nsName);
  PyObject* r = PyRun_String(kBootstrap, Py_file_input, ns, ns);
  if (!r) {
    PyErr_Print();
    finish(1);
  }
  Py_DECREF(r);
  PyObject* fn = PyDict_GetItemString(ns, "_host_main");  // borrowed
  PyObject* res = fn ? PyObject_CallFunction(fn, "ss", mode.c_str(), target.c_str()) : nullptr;
  int rc = 1;
  if (!res) {
    PyErr_Print();
  } else {
    rc = static_cast<int>(PyLong_AsLong(res));
    if (PyErr_Occurred()) {
      PyErr_Print();
      rc = 1;
    }
    Py_DECREF(res);
  }
  Py_DECREF(ns);
  finish(rc);
}
