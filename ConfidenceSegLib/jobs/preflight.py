"""The one pre-flight check of a prediction run, before the model stack is even imported.

``predict``, ``review`` and ``quickstart`` call :func:`check_prediction_run` first: inputs exist and
have distinct stems, the bundle config is sound, and the output folder can take every output
(:func:`~ConfidenceSegLib.io.safe_files.check_output_folder`). Only then do they load torch and the
model, so a mistake is answered in a fraction of a second.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..contract import DEFAULT_MAPS, prediction_file_names
from ..io.inputs import check_inputs, is_dicom_folder
from ..io.safe_files import check_free_space, check_inputs_kept, check_output_folder
from ..model.bundle_config import BundleConfig, read_config


def output_bytes(paths: Sequence[Path], n_maps: int) -> int:
    """Upper estimate of the disk space the outputs of ``paths`` take (from the images' headers): 4 bytes
    per pixel and map (float32; stored compressed) plus the segmentation."""
    from ..io.images import pixel_count  # SimpleITK: loaded once the quick checks have passed

    return sum(pixel_count(path) for path in paths) * (4 * n_maps + 1)


def check_prediction_run(model: str | os.PathLike, paths: Sequence[Path], out_dir: str | os.PathLike,
                         overwrite: bool = False, overlay: bool = False, extra_names: Sequence[str] = (),
                         maps: Sequence[str] = DEFAULT_MAPS, scene: bool = False,
                         config: BundleConfig | None = None) -> tuple[list[str], BundleConfig]:
    """Check a run of ``model`` on ``paths`` into ``out_dir``; return the inputs' stems and the bundle's
    config (read once here; the run loads the bundle with it).

    ``overlay`` / ``scene``: each input also writes ``S_overlay.png`` / ``S.mrml``; ``extra_names``: files
    of the whole run; ``config``: the bundle's config when the caller has it (a warm worker).
    """
    stems = check_inputs(list(paths))
    config = read_config(model) if config is None else config
    names = [name for path, stem in zip(paths, stems, strict=True)
             for name in prediction_file_names(stem, config.classes, overlay, maps, dicom=is_dicom_folder(Path(path)),
                                              scene=scene)]
    check_output_folder(out_dir, [*names, *extra_names], overwrite)
    check_inputs_kept([Path(out_dir) / name for name in [*names, *extra_names]], paths)
    check_free_space(out_dir, output_bytes(paths, len(config.classes) * len(maps)))
    return stems, config
