"""The Slicer, Qt, CTK and PyTorchUtils names the Slicer module uses, read from its source (AST).

Shared by ``test_slicer_api.py`` (every name must be in the fixture taken from Slicer's source for
the oldest supported release) and ``fixtures/make_slicer_api.py`` (which builds that fixture).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOTS = ("slicer", "qt", "ctk", "PyTorchUtils")
#: Singletons whose members are checked one level deeper (slicer.util.X, slicer.app.X, ...).
DEEP = (("slicer", "util"), ("slicer", "app"), ("slicer", "modules"), ("slicer", "mrmlScene"))
TORCH_LOGIC = "PyTorchUtils.PyTorchUtilsLogic"


def _chain(node: ast.AST) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return [node.id, *reversed(parts)] if isinstance(node, ast.Name) else None


def used_names(source: str) -> set[str]:
    """Dotted names of one Python source: ``slicer.util.loadVolume``, ``qt.QTimer``, imports from
    ``slicer.*``, and methods called on a ``PyTorchUtils.PyTorchUtilsLogic()`` instance."""
    tree = ast.parse(source)
    names: set[str] = set()
    torch_logics = {target.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
                    and isinstance(node.value, ast.Call) and ".".join(_chain(node.value.func) or []) == TORCH_LOGIC
                    for target in node.targets if isinstance(target, ast.Name)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain = _chain(node)
            if chain and chain[0] in ROOTS and len(chain) >= 2:
                names.add(".".join(chain[:3 if tuple(chain[:2]) in DEEP else 2]))
            elif chain and chain[0] in torch_logics and len(chain) >= 2:
                names.add(f"{TORCH_LOGIC}.{chain[1]}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ROOTS:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def module_names(folder: Path) -> set[str]:
    """:func:`used_names` over every Python file of the Slicer module folder."""
    return set().union(*(used_names(path.read_text(encoding="utf-8")) for path in sorted(folder.rglob("*.py"))))
