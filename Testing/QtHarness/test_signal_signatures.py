"""Every Qt signal the module connects is connected by a signature that exists, never by attribute.

PythonQt binds ``obj.signal.connect(f)`` to the signal's FIRST overload in Qt's meta-object
(``QProcess.finished`` is ``finished(int)``) and never fills in missing arguments, so an overloaded
signal connected by attribute silently calls the slot with the wrong arguments; and a signature string
that names no signal only prints a warning. The signatures of every Qt class are read from the real
meta-objects here; the three Slicer signals the module uses are Slicer's own (their headers at v5.10.0).
"""

import functools
import re

from conftest import REPO_ROOT

#: Signals of Slicer classes (not in Qt's wrappers), where Slicer v5.10.0 declares them.
SLICER_SIGNALS = {
    "startupCompleted()": "Base/QTGUI/qSlicerApplication.h:246",
    "layoutChanged(int)": "Libs/MRML/Widgets/qMRMLLayoutManager.h:274",
    "effectRegistered(QString)": "Modules/Loadable/Segmentations/EditorEffects/qSlicerSegmentEditorEffectFactory.h:62",
}
MODULE_SOURCES = sorted((REPO_ROOT / "ConfidenceSeg").rglob("*.py"))


#: The Qt classes whose signals a scripted module connects (instances of every ``qt`` class would include
#: dialogs and printers, which crash PythonQt's offscreen platform when they are made and destroyed).
QT_CLASSES = ("QProcess", "QTimer", "QPushButton", "QToolButton", "QCheckBox", "QRadioButton", "QComboBox",
              "QLineEdit", "QSpinBox", "QDoubleSpinBox", "QSlider", "QTableWidget", "QListWidget", "QTreeWidget",
              "QTabWidget", "QAction", "QButtonGroup", "QFileSystemWatcher")


@functools.cache
def qt_signals() -> dict[str, set[str]]:
    """Signal signatures per Qt class, from the meta-objects of live instances."""
    import qt

    found = {}
    for name in QT_CLASSES:
        meta = getattr(qt, name)().metaObject()
        found[name] = {bytes(meta.method(i).methodSignature().data()).decode() for i in range(meta.methodCount())
                       if meta.method(i).methodType() == qt.QMetaMethod.Signal}
    return found


def test_every_connected_signature_names_a_real_signal():
    signals = qt_signals()
    known = set().union(*signals.values())
    assert {"finished(int)", "finished(int,QProcess::ExitStatus)"} <= signals["QProcess"]  # the check can fail
    connection = r"""\.(?:dis)?connect\(\s*["']([\w:]+\([^"')]*\))["']"""
    used = {signature for path in MODULE_SOURCES for signature in re.findall(connection, path.read_text("utf-8"))}
    assert used, "no signal connected by signature?"
    unknown = sorted(used - known - set(SLICER_SIGNALS))
    assert not unknown, f"signatures that name no signal: {unknown}"


def test_no_overloaded_signal_is_connected_by_attribute():
    overloaded = {name for signatures in qt_signals().values()
                  for name, count in _counts(signatures).items() if count > 1}
    assert {"finished", "clicked", "currentIndexChanged", "activated"} <= overloaded
    by_attribute = [(path.name, name) for path in MODULE_SOURCES
                    for name in re.findall(r"\.(\w+)\.connect\(\s*(?![\"'\s])", path.read_text(encoding="utf-8"))]
    assert not [use for use in by_attribute if use[1] in overloaded], by_attribute


def _counts(signatures):
    counts = {}
    for signature in signatures:
        name = signature.split("(")[0]
        counts[name] = counts.get(name, 0) + 1
    return counts
