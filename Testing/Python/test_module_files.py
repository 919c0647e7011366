"""The Slicer module and extension files, checked without Slicer: .ui, Python, CMake lists, catalog entry."""

from __future__ import annotations

import ast
import json
import py_compile
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from conftest import REPO_ROOT
from PIL import Image

MODULE_DIR = REPO_ROOT / "ConfidenceSeg"
UI_FILE = MODULE_DIR / "Resources" / "UI" / "ConfidenceSeg.ui"
MODULE_FILE = MODULE_DIR / "ConfidenceSeg.py"
SELF_TEST = MODULE_DIR / "Testing" / "Python" / "ConfidenceSegSelfTest.py"
MODULE_PYTHON_FILES = sorted(p for p in MODULE_DIR.rglob("*.py") if "Testing" not in p.relative_to(MODULE_DIR).parts)
#: Qt classes a .ui file may use without declaring them as custom widgets.
QT_WIDGETS = {"QWidget", "QLabel", "QLineEdit", "QPushButton", "QCheckBox", "QComboBox", "QSpinBox",
              "QDoubleSpinBox", "QFrame", "QProgressBar", "QTableWidget", "QGroupBox", "QTextEdit", "QSlider"}


def ui_widgets() -> dict[str, ElementTree.Element]:
    return {w.get("name"): w for w in ElementTree.parse(UI_FILE).getroot().iter("widget")}


def parameter_names() -> dict[str, str]:
    """SlicerParameterName -> widget name, from the .ui file."""
    names = {}
    for name, widget in ui_widgets().items():
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                names[prop.findtext("string")] = name
    return names


def parameter_node_fields() -> set[str]:
    tree = ast.parse((MODULE_DIR / "ConfidenceSegQt" / "parameters.py").read_text(encoding="utf-8"))
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ConfidenceSegParameterNode"]
    return {n.target.id for n in cls.body if isinstance(n, ast.AnnAssign)}


def ui_attribute_uses(path: Path) -> set[str]:
    """Names used as ``ui.NAME`` (``self.ui.NAME``, ``self.widget.ui.NAME``) in a Python file."""
    return set(re.findall(r"\bui\.([A-Za-z_]\w*)", path.read_text(encoding="utf-8")))


def test_ui_file_parses_and_declares_its_custom_widgets():
    root = ElementTree.parse(UI_FILE).getroot()
    assert root.findtext("class") == "ConfidenceSeg"
    declared = {c.findtext("class") for c in root.iter("customwidget")}
    used = {w.get("class") for w in root.iter("widget")}
    assert used - declared <= QT_WIDGETS, f"undeclared widget classes: {used - declared - QT_WIDGETS}"
    names = [w.get("name") for w in root.iter("widget")]
    assert len(names) == len(set(names)), "widget names must be unique"
    mrml_widgets = {w.get("name") for w in root.iter("widget") if w.get("class", "").startswith("qMRML")} - {
        "ConfidenceSeg"}
    connected = {c.findtext("receiver") for c in root.iter("connection")
                 if c.findtext("slot") == "setMRMLScene(vtkMRMLScene*)"}
    assert mrml_widgets == connected, "every MRML widget must get the scene"


@pytest.mark.parametrize("path", [MODULE_FILE, SELF_TEST], ids=lambda p: p.name)
def test_every_widget_the_code_uses_exists_in_the_ui(path):
    used = ui_attribute_uses(path)
    assert used, f"{path.name} uses no widgets?"
    missing = used - set(ui_widgets())
    assert not missing, f"{path.name} uses widgets missing from {UI_FILE.name}: {sorted(missing)}"


def test_parameter_node_binds_the_ui_widgets():
    bound = parameter_names()
    fields = parameter_node_fields()
    assert set(bound) <= fields, f"SlicerParameterName without a parameter: {sorted(set(bound) - fields)}"
    for name in ("inputVolume", "annotation", "className", "method", "samples", "device", "heatmapOpacity",
                 "heatmapThreshold", "reviewFolder"):
        assert name in bound, f"{name} has no widget"


def test_module_python_files_compile(tmp_path):
    files = sorted(MODULE_DIR.rglob("*.py"))
    assert MODULE_FILE in files and SELF_TEST in files
    for path in files:
        py_compile.compile(str(path), cfile=str(tmp_path / (path.name + "c")), doraise=True)


def test_gui_process_imports_need_no_packages_slicer_lacks():
    """What ConfidenceSeg.py imports from ConfidenceSegLib must load before the dependencies are installed."""
    imports = []
    for path in MODULE_PYTHON_FILES:
        source = path.read_text(encoding="utf-8")
        for module, names in re.findall(r"^\s*from (ConfidenceSegLib[\w.]*) import ([\w, ]+)", source, re.M):
            imports += [module] + [f"{module}.{name.strip()}" for name in names.split(",") if name.strip().islower()]
    assert imports, "the module imports nothing from ConfidenceSegLib?"
    code = ("import importlib, sys\n"
            f"for name in {imports!r}:\n"
            "    try: importlib.import_module(name)\n"
            "    except ModuleNotFoundError as e:\n"
            "        if not e.name.startswith('ConfidenceSegLib'): raise\n"
            "print(sorted(m for m in ('torch', 'monai', 'slicerio', 'nrrd', 'skimage', 'sklearn', 'matplotlib') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, encoding="utf-8", timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --- CMake --------------------------------------------------------------------------------------

def cmake_list(path: Path, variable: str) -> list[str]:
    text = path.read_text(encoding="utf-8")
    match = re.search(rf"set\({variable}\s+(.*?)\)", text, re.S)
    assert match, f"{variable} not set in {path}"
    return [entry.replace("${MODULE_NAME}", "ConfidenceSeg") for entry in match.group(1).split()]


def files_on_disk(folder: Path) -> set[str]:
    return {p.relative_to(REPO_ROOT).as_posix() for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith(".") and p.suffix != ".pyc"}


def test_module_cmake_lists_every_file_of_the_module():
    cmake = MODULE_DIR / "CMakeLists.txt"
    listed = {f"ConfidenceSeg/{f}" for f in cmake_list(cmake, "MODULE_PYTHON_SCRIPTS") + cmake_list(
        cmake, "MODULE_PYTHON_RESOURCES")}
    testing = MODULE_DIR / "Testing" / "Python" / "CMakeLists.txt"
    tests = {f"ConfidenceSeg/Testing/Python/{s}" for s in re.findall(r"slicer_add_python_unittest\(SCRIPT (\S+)\)",
                                                                    testing.read_text(encoding="utf-8"))}
    cmake_files = {p for p in files_on_disk(MODULE_DIR) if p.endswith("CMakeLists.txt")}
    on_disk = files_on_disk(MODULE_DIR)
    assert listed | tests | cmake_files == on_disk, (
        f"not in the CMake lists: {sorted(on_disk - listed - tests - cmake_files)}; "
        f"listed but missing: {sorted((listed | tests) - on_disk)}")
    assert "add_subdirectory(Testing)" in cmake.read_text(encoding="utf-8")
    assert "add_subdirectory(Python)" in (MODULE_DIR / "Testing" / "CMakeLists.txt").read_text(encoding="utf-8")


def test_module_cmake_ships_every_file_of_confidenceseglib():
    cmake = MODULE_DIR / "CMakeLists.txt"
    listed = set(cmake_list(cmake, "CONFIDENCESEGLIB_PYTHON_SCRIPTS"))
    on_disk = files_on_disk(REPO_ROOT / "ConfidenceSegLib")
    assert listed == on_disk, (f"add to ConfidenceSeg/CMakeLists.txt: {sorted(on_disk - listed)}; "
                               f"remove (no such file): {sorted(listed - on_disk)}")
    assert all(f.endswith(".py") for f in cmake_list(cmake, "CONFIDENCESEGLIB_PYTHON_SCRIPTS"))
    assert re.search(r"ctkMacroCompilePythonScript\(\s*TARGET_NAME ConfidenceSegLib", cmake.read_text(encoding="utf-8"))


def test_extension_cmake_and_catalog_entry_agree():
    text = (REPO_ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    for required in ("find_package(Slicer REQUIRED)", "include(${Slicer_USE_FILE})", "add_subdirectory(ConfidenceSeg)",
                     "include(${Slicer_EXTENSION_GENERATE_CONFIG})", "include(${Slicer_EXTENSION_CPACK})"):
        assert required in text
    depends = re.search(r'set\(EXTENSION_DEPENDS "([^"]*)"\)', text).group(1).split()
    assert depends == ["PyTorch"]
    entry = json.loads((REPO_ROOT / "ConfidenceSeg.json").read_text(encoding="utf-8"))
    allowed = {"$schema", "category", "scm_url", "scm_revision", "scm_type", "build_dependencies",
               "dicom_support_rule", "build_subdirectory", "enabled", "tier"}  # catalog entry schema v1.0.2
    assert set(entry) <= allowed and {"$schema", "category", "scm_url"} <= set(entry)
    assert entry["$schema"].endswith("slicer-extension-catalog-entry-schema-v1.0.2.json#")
    assert entry["build_dependencies"] == depends
    assert entry["category"] == re.search(r'set\(EXTENSION_CATEGORY "([^"]*)"\)', text).group(1)
    assert 1 <= entry["tier"] <= 5
    assert "\r" not in (REPO_ROOT / "ConfidenceSeg.json").read_text(encoding="utf-8")  # LF only (the index checks)


def test_icon_licence_and_requirements():
    with Image.open(MODULE_DIR / "Resources" / "Icons" / "ConfidenceSeg.png") as icon:
        assert icon.format == "PNG" and icon.size == (128, 128)
    licence = (REPO_ROOT / "LICENSE.txt").read_text(encoding="utf-8")
    assert "Apache License" in licence and "Version 2.0" in licence
    requirements = (MODULE_DIR / "Resources" / "requirements.txt").read_text(encoding="utf-8")
    names = {re.split(r"[<>=!~ ]", line.strip(), maxsplit=1)[0].lower()
             for line in requirements.splitlines() if line.strip() and not line.startswith("#")}
    pyproject = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    dependencies = re.search(r"dependencies = \[(.*?)\]", pyproject, re.S).group(1)
    needed = {re.split(r"[<>=!~ ]", d, maxsplit=1)[0].lower() for d in re.findall(r'"([^"]+)"', dependencies)}
    bundled_with_slicer = {"numpy", "simpleitk", "torch"}  # torch comes through the PyTorch extension
    assert needed - bundled_with_slicer <= names, ("missing from requirements.txt: "
                                                   f"{needed - bundled_with_slicer - names}")
    assert "torch" not in names
    from ConfidenceSegLib.slicer.process import torch_requirement

    torch_file = MODULE_DIR / "Resources" / "torch-requirement.txt"
    assert torch_requirement(torch_file) == torch_requirement(REPO_ROOT / "pyproject.toml") != ""


def test_sample_data_sources_name_the_bundled_files_with_their_checksums():
    import hashlib
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    from ConfidenceSegLib.slicer.sample_data import sample_data_sources

    sources = sample_data_sources()
    assert len(sources) == len(list((REPO_ROOT / "Resources" / "SampleData").glob("*.nrrd"))) > 0
    for source in sources:
        path = Path(url2pathname(urlparse(source["uris"]).path))
        assert source["uris"].startswith("file:") and path.is_file() and path.name == source["fileNames"]
        assert source["checksums"] == "SHA256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_signal_is_connected_by_signature():
    """PythonQt binds ``obj.signal.connect(f)`` to the signal's first overload (``QProcess.finished`` is
    ``finished(int)``): the module connects by signature string only. The signatures themselves are checked
    against Qt's meta-objects under the real PythonQt (Testing/QtHarness/test_signal_signatures.py)."""
    by_attribute = [f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}"
                    for path in sorted(MODULE_DIR.rglob("*.py"))
                    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
                    if re.search(r"\.\w+\.(dis)?connect\(\s*(?![\"'\s]|$)", line)]
    assert not by_attribute, "\n".join(by_attribute)
