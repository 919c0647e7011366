"""The contract module is the one place where shared names are defined (and it needs no dependency)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys

import pytest
from conftest import REPO_ROOT

from ConfidenceSegLib import contract

CONTRACT_FILE = REPO_ROOT / "ConfidenceSegLib" / "contract.py"
#: Every Python file of the library and the Slicer module except the contract itself.
SOURCES = sorted(p for folder in ("ConfidenceSegLib", "ConfidenceSeg") for p in (REPO_ROOT / folder).rglob("*.py")
                 if p != CONTRACT_FILE and "Testing" not in p.relative_to(REPO_ROOT).parts)
#: Names that only the contract may assign at module or class level.
RESERVED_NAME = re.compile(r"^_?([A-Z_]*_TAGS?|[A-Z_]*_SUFFIX|BADGES|[A-Z_]*BADGE_COLORS?|BADGE_(PRIORITY|ORDER)|"
                           r"METHODS|DEVICES|DEVICE_CHOICES|MAP_KINDS|REVIEW_COLUMNS|CSV_COLUMNS|REPORT_KEYS|"
                           r"FLAGGED_STATUS)$")
TAG_VALUE = re.compile(r"^(ConfidenceSeg\.[A-Z]\w*|Segmentation\.Status)$")


def string_constants(tree: ast.AST) -> list[tuple[int, str]]:
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def assigned_names(tree: ast.AST) -> list[tuple[int, str]]:
    names = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        names += [(node.lineno, target.id) for target in targets if isinstance(target, ast.Name)]
    return names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_no_shared_name_is_defined_outside_the_contract(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    colours = {value.lower() for value in contract.BADGE_COLORS.values()} | {"#c62828", "#2e7d32", "#757575"}
    problems = [f"line {line}: defines {name}" for line, name in assigned_names(tree) if RESERVED_NAME.match(name)]
    for line, text in string_constants(tree):
        if TAG_VALUE.match(text):
            problems.append(f"line {line}: tag key {text!r} written out (import it from the contract)")
        problems += [f"line {line}: badge colour {c} written out" for c in colours if c in text.lower()]
    assert not problems, "\n".join(problems)


def test_the_check_itself_catches_a_copy(tmp_path):
    copy = 'BADGE_COLORS = {"REVIEW": "#e8710a"}\nTAG = "ConfidenceSeg.Badge"\n'
    tree = ast.parse(copy)
    assert [name for _, name in assigned_names(tree) if RESERVED_NAME.match(name)] == ["BADGE_COLORS"]
    assert [text for _, text in string_constants(tree) if TAG_VALUE.match(text)] == ["ConfidenceSeg.Badge"]


def test_contract_values_agree_with_each_other():
    assert set(contract.BADGE_PRIORITY) == set(contract.BADGES) | {None}
    assert set(contract.BADGE_COLORS) == set(contract.BADGES) | {None}
    assert all(re.fullmatch(r"#[0-9a-f]{6}", colour) for colour in contract.BADGE_COLORS.values())
    assert len(set(contract.BADGE_COLORS[b] for b in (contract.PASS, contract.REVIEW, contract.ABSENT))) == 3
    assert set(contract.QUALITY_TAG_NAMES) <= set(contract.KNOWN_TAGS)
    assert len(contract.QUALITY_TAG_NAMES) == len(contract.QUALITY_KEYS)
    assert contract.DEFAULT_HEATMAP in contract.MAP_KINDS
    names = contract.prediction_file_names("case", ["a", "b"])
    assert len(names) == len(set(names)) == 2 + 2 * len(contract.DEFAULT_MAPS)
    every = contract.prediction_file_names("case", ["a", "b"], overlay=True, maps=contract.MAP_KINDS)
    assert len(every) == len(set(every)) == 3 + 2 * len(contract.MAP_KINDS)
    assert set(contract.QUALITY_KEYS) <= set(contract.REVIEW_COLUMNS) and set(contract.MAP_KINDS) <= set(
        contract.REVIEW_COLUMNS)


def test_contract_imports_nothing_beyond_the_standard_library():
    code = ("import sys, ConfidenceSegLib.contract\n"
            "print(sorted(m.split('.')[0] for m in sys.modules if m.split('.')[0] in "
            "('numpy', 'torch', 'SimpleITK', 'slicerio', 'monai', 'vtk', 'matplotlib')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, encoding="utf-8", timeout=60,
                            cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
