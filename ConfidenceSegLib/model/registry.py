"""Models by name: the bundled models and those installed in the user's model folder.

``--model`` takes a bundle folder or a name. A name is looked up in the user's model folder
(``$CONFIDENCESEG_MODELS``, else the platform's data folder: ``~/.local/share/confidenceseg/models``
on Linux, ``~/Library/Application Support/ConfidenceSeg/models`` on macOS,
``%LOCALAPPDATA%\\ConfidenceSeg\\models`` on Windows), then among the bundled models
(``Resources/models``); an installed model of the same name comes first. ``confidenceseg models
install`` copies a bundle folder or a ``.zip`` of one into the user folder, checked first and never
over an existing model. Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..contract import ConfidenceSegError
from ..io.resources import resources_dir
from ..io.safe_files import give_default_permissions
from ..io.stops import uninterruptible
from .bundle_config import BUNDLE_FILES, CLASS_NAME, CONFIG_NAME, BundleConfig, member_path, read_config

MODELS_ENV = "CONFIDENCESEG_MODELS"
#: Largest zip accepted by ``models install`` once unpacked (bytes).
MAX_UNPACKED_BYTES = 2 * 2**30


@dataclass(frozen=True)
class ModelEntry:
    """One model that ``--model NAME`` can name."""

    name: str
    path: Path
    source: str  # "installed" or "bundled"
    config: BundleConfig

    def summary(self) -> dict:
        """Name, classes, input kind, calibration and path, as ``models list`` prints them."""
        quality = self.config.quality
        data = quality.calibration_data if quality else {}
        calibration = (f"calibrated on {data.get('n_cases', '?')} cases of {data.get('dataset', '?')}"
                       if quality else "not calibrated (no quality badge)")
        return {"name": self.name, "source": self.source, "classes": self.config.classes,
                "input": f"{self.config.spatial_dims}D", "calibration": calibration,
                "path": str(self.path)}


def user_models_dir() -> Path:
    """The folder ``models install`` writes to (it need not exist yet)."""
    if os.environ.get(MODELS_ENV):
        return Path(os.environ[MODELS_ENV])
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "ConfidenceSeg" / "models"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "ConfidenceSeg" / "models"
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "confidenceseg" / "models"


def _bundled_models_dir() -> Path | None:
    try:
        return resources_dir() / "models"
    except ConfidenceSegError:
        return None


def available_models() -> list[ModelEntry]:
    """Every named model, installed ones first; folders that are not valid bundles are left out."""
    entries, seen = [], set()
    for source, folder in (("installed", user_models_dir()), ("bundled", _bundled_models_dir())):
        if folder is None or not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.name in seen or path.name.startswith(".") or not (path / CONFIG_NAME).is_file():
                continue
            try:
                entries.append(ModelEntry(path.name, path, source, read_config(path)))
                seen.add(path.name)
            except ConfidenceSegError:
                continue
    return entries


def resolve_model(value: str | os.PathLike) -> Path:
    """``--model``: an existing folder as it is, else the installed or bundled model of that name."""
    path = Path(value)
    if path.is_dir():
        return path
    models = available_models()
    for entry in models:
        if entry.name == str(value):
            return entry.path
    names = ", ".join(entry.name for entry in models) or "none"
    raise ConfidenceSegError(f"model not found: {value} is not a folder, and no installed or bundled model has "
                             f"that name (available: {names}; see confidenceseg models list)")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _unpack(archive: Path, folder: Path) -> Path:
    """Extract ``archive`` into ``folder`` (every member must stay inside it); the bundle folder in it."""
    try:
        with zipfile.ZipFile(archive) as bundle_zip:
            members = bundle_zip.infolist()
            if sum(member.file_size for member in members) > MAX_UNPACKED_BYTES:
                raise ConfidenceSegError(f"{archive} unpacks to more than {MAX_UNPACKED_BYTES >> 30} GiB")
            for member in members:
                if not (folder / member.filename).resolve().is_relative_to(folder.resolve()):
                    raise ConfidenceSegError(f"{archive} holds a path outside its folder: {member.filename!r}")
            bundle_zip.extractall(folder)
    except zipfile.BadZipFile as error:
        raise ConfidenceSegError(f"cannot read {archive}: {error}") from None
    if (folder / CONFIG_NAME).is_file():
        return folder
    candidates = [path for path in folder.iterdir() if (path / CONFIG_NAME).is_file()]
    if len(candidates) != 1:
        raise ConfidenceSegError(f"{archive} holds no model bundle ({CONFIG_NAME} at its top or in one folder)")
    return candidates[0]


def bundle_files(bundle: Path) -> list[str]:
    """The files of a checked bundle folder that make the model: its config and README, and every
    ``.safetensors`` file (the members' weights and the quality model's references: domain, RCA)."""
    return [item.name for item in sorted(bundle.iterdir()) if item.is_file() and not item.is_symlink()
            and (item.name in BUNDLE_FILES or item.name.endswith(".safetensors"))]


def install_model(source: str | os.PathLike, name: str | None = None, sha256: str | None = None) -> ModelEntry:
    """Check the bundle at ``source`` (a folder or a ``.zip``) and copy it into the user model folder
    as ``name`` (default: its folder or zip name). Never replaces an installed model."""
    source = Path(source)
    if not source.exists():
        raise ConfidenceSegError(f"file not found: {source}")
    if sha256 is not None:
        if not source.is_file():
            raise ConfidenceSegError("--sha256 checks a .zip file, not a folder")
        actual = _sha256(source)
        if actual != sha256.strip().lower():
            raise ConfidenceSegError(f"sha256 mismatch for {source}: expected {sha256}, got {actual}")
    name = name or (source.stem if source.is_file() else source.name)
    if not CLASS_NAME.match(name):
        raise ConfidenceSegError(f"model name {name!r} must be letters, digits, '_', '-' or '.' (no leading dot)")
    target_root = user_models_dir()
    target = target_root / name
    if target.exists():
        raise ConfidenceSegError(f"a model called {name} is already installed at {target} (choose another --name)")
    target_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=target_root))
    try:
        bundle = _unpack(source, staging / "unpacked") if source.is_file() else source
        config = read_config(bundle)
        for member in config.members:
            if not member_path(bundle, member).is_file():
                raise ConfidenceSegError(f"model bundle {source} is incomplete: weight file {member} is missing")
        copy = staging / "bundle"
        copy.mkdir()
        for file in bundle_files(bundle):
            shutil.copyfile(bundle / file, copy / file)
            give_default_permissions(copy / file)
        give_default_permissions(copy)
        with uninterruptible():
            if target.exists():
                raise ConfidenceSegError(f"a model called {name} is already installed at {target}")
            copy.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ModelEntry(name, target, "installed", read_config(target))
