"""Safe output files: checks before any work, atomic writes that never clobber a user's file silently.

Every command that writes into an output folder calls :func:`check_output_folder` before any
compute and creates the folder with :func:`output_folder`, so a failed run leaves no empty folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ..contract import ConfidenceSegError
from .stops import uninterruptible

#: Free disk space kept beyond the outputs' estimated size (bytes).
FREE_SPACE_MARGIN = 16 * 2**20


def check_can_write(paths: Iterable[str | os.PathLike], overwrite: bool = False) -> None:
    """Raise before any work starts if an output exists (and ``overwrite`` is off) or its folder is missing."""
    for path in map(Path, paths):
        if path.exists() and not overwrite:
            raise ConfidenceSegError(f"output exists: {path} (pass --overwrite to replace it)")
        if not path.parent.is_dir():
            raise ConfidenceSegError(f"output folder does not exist: {path.parent}")


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_writable(folder: Path) -> None:
    """Create and remove a probe file: the real test (permission bits say nothing for root, read-only
    mounts or ACLs)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".confidenceseg-probe-", dir=folder)
    except OSError as error:
        raise ConfidenceSegError(f"cannot write into {folder}: {error.strerror or error}") from None
    os.close(fd)
    os.unlink(probe)


def check_output_folder(out_dir: str | os.PathLike, names: Iterable[str], overwrite: bool = False) -> None:
    """The check of an output folder before any work: it is a folder (or can be created), none of
    ``names`` exists in it unless ``overwrite``, and it is writable."""
    out_dir = Path(out_dir)
    names = list(names)
    check_name_lengths([out_dir, *(out_dir / name for name in names)])
    if out_dir.is_symlink() and not out_dir.exists():
        raise ConfidenceSegError(f"--out {out_dir} is a symbolic link to {os.readlink(out_dir)}, which does not exist")
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfidenceSegError(f"--out {out_dir} is a file, not a folder")
    existing = _nearest_existing(out_dir)
    if not existing.is_dir():
        raise ConfidenceSegError(f"cannot create output folder {out_dir}: {existing} is a file")
    if out_dir.is_dir():
        check_can_write([out_dir / name for name in names], overwrite)
    _check_writable(existing)


#: Longest file or folder name (bytes) on the file systems this runs on (ext4, APFS, NTFS: 255).
NAME_MAX = 255


def check_name_lengths(paths: Iterable[str | os.PathLike]) -> None:
    """Refuse a path with a file or folder name longer than the file system takes."""
    for path in map(Path, paths):
        long = next((part for part in path.parts if len(os.fsencode(part)) > NAME_MAX), None)
        if long is not None:
            raise ConfidenceSegError(f"name too long ({len(os.fsencode(long))} bytes, at most {NAME_MAX}): "
                                     f"{long[:40]}...")


def _contains(outer: Path, inner: Path) -> bool:
    outer, inner = outer.resolve(), inner.resolve()
    return inner == outer or inner.is_relative_to(outer)


def check_replaceable_folder(folder: str | os.PathLike, not_ours: Callable[[Path], str | None],
                             inputs: Iterable[str | os.PathLike] = ()) -> None:
    """The one rule of ``--overwrite`` for a folder output (a bundle): an existing ``folder`` is replaced only
    when ``not_ours(folder)`` finds nothing that this project did not write there, and when it neither holds
    nor lies inside an input of the same command (``inputs``); else a one-line error, before any work."""
    folder = Path(folder)
    if not folder.exists():
        return
    if not folder.is_dir():
        raise ConfidenceSegError(f"--out {folder} is a file, not a folder")
    for item in map(Path, inputs):
        if item.exists() and (_contains(folder, item) or _contains(item, folder)):
            where = "holds" if _contains(folder, item) else "lies inside"
            raise ConfidenceSegError(f"--out {folder} {where} an input of this command ({item}): refusing to replace "
                                     "it; choose another folder")
    problem = not_ours(folder)
    if problem:
        raise ConfidenceSegError(f"--out {folder} was not written by ConfidenceSeg ({problem}): refusing to replace "
                                 "it; choose another folder")


def check_inputs_kept(outputs: Iterable[str | os.PathLike], inputs: Iterable[str | os.PathLike]) -> None:
    """Refuse a run whose output file would replace one of its own inputs (e.g. an input named like
    another input's uncertainty map), before any work."""
    inputs = {Path(item).resolve(): Path(item) for item in inputs if Path(item).exists()}
    for output in map(Path, outputs):
        if output.exists() and output.resolve() in inputs:
            raise ConfidenceSegError(f"output {output} would replace the input {inputs[output.resolve()]}: "
                                     "write into another folder")


def check_free_space(out_dir: str | os.PathLike, needed_bytes: int) -> None:
    """Raise unless the disk that will hold ``out_dir`` has ``needed_bytes`` free, plus a margin."""
    existing = _nearest_existing(Path(out_dir))
    free = shutil.disk_usage(existing).free
    if free < needed_bytes + FREE_SPACE_MARGIN:
        raise ConfidenceSegError(f"not enough free disk space in {existing}: about "
                                 f"{(needed_bytes + FREE_SPACE_MARGIN) / 2**20:.0f} MiB needed, "
                                 f"{free / 2**20:.0f} MiB free")


@contextlib.contextmanager
def output_folder(out_dir: str | os.PathLike) -> Iterator[Path]:
    """Create ``out_dir`` (and missing parents) for a run; if the run fails and leaves the folder
    empty, remove what this created, so a failed run leaves nothing behind."""
    out_dir = Path(out_dir)
    created = []
    for folder in reversed([out_dir, *out_dir.parents]):
        if not folder.exists():
            created.append(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        yield out_dir
    except BaseException:
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only succeeds when empty
        raise


#: Largest JSON file read (bundle config, dataset.json, S.json): far above any real one.
MAX_JSON_BYTES = 256 * 2**20


def read_json(path: str | os.PathLike, what: str, missing: str | None = None):
    """Parse a JSON file, with one-line errors for a missing file (``missing``, default
    ``"<what> not found: <path>"``), an oversized one, one nested too deeply, and a corrupt one."""
    path = Path(path)
    if not path.is_file():
        raise ConfidenceSegError(missing or f"{what} not found: {path}")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise ConfidenceSegError(f"{what} {path} is {path.stat().st_size / 2**20:.0f} MiB: not a file this project "
                                 f"writes (at most {MAX_JSON_BYTES // 2**20} MiB)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfidenceSegError(f"corrupt {what} {path}: {error}") from None
    except RecursionError:
        raise ConfidenceSegError(f"corrupt {what} {path}: nested too deeply") from None


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
        with uninterruptible():
            if path.exists() and not overwrite:  # appeared while we were writing
                raise ConfidenceSegError(f"output exists: {path} (pass --overwrite to replace it)")
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str, overwrite: bool = False) -> None:
    """Write a text file atomically (see :func:`atomic_output`)."""
    with atomic_output(path, overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
