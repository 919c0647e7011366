"""Safe output files: atomic writes that never clobber a user's file silently."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..contract import ConfidenceSegError


def check_can_write(paths: Iterable[str | os.PathLike], overwrite: bool = False) -> None:
    """Raise before any work starts if an output exists (and ``overwrite`` is off) or its folder is missing."""
    for path in map(Path, paths):
        if path.exists() and not overwrite:
            raise ConfidenceSegError(f"output exists: {path} (pass --overwrite to replace it)")
        if not path.parent.is_dir():
            raise ConfidenceSegError(f"output folder does not exist: {path.parent}")


def give_default_permissions(path: Path) -> None:
    """Undo the private 0600/0700 modes of ``tempfile`` for outputs: the user's umask applies."""
    mask = os.umask(0)
    os.umask(mask)
    path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


def double_suffix(path: Path) -> str:
    """``.seg.nrrd`` / ``.nii.gz`` style suffix of a path, so temporary files keep the writer's format."""
    suffixes = path.suffixes
    if len(suffixes) >= 2 and suffixes[-1].lower() in {".nrrd", ".gz"}:
        return "".join(suffixes[-2:])
    return path.suffix


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` in one step.

    On any error the temporary file is removed and ``path`` is untouched. An existing ``path`` is
    an error unless ``overwrite`` is true.
    """
    path = Path(path)
    check_can_write([path], overwrite)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=double_suffix(path), dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    give_default_permissions(tmp)
    try:
        yield tmp
        if path.exists() and not overwrite:  # appeared while we were writing
            raise ConfidenceSegError(f"output exists: {path} (pass --overwrite to replace it)")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str, overwrite: bool = False) -> None:
    """Write a text file atomically (see :func:`atomic_output`)."""
    with atomic_output(path, overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
