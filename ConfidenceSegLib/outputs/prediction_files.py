"""Writing a prediction's outputs (contract 3), all on the input image's grid.

Per input with file stem ``S``: ``S.seg.nrrd`` (one segment per class, quality fields as tags,
REVIEW segments flagged), ``S_<class>_probability.nrrd``, ``S_<class>_entropy.nrrd``,
``S_<class>_mutual_information.nrrd`` (``--maps`` chooses which; float32 in steps of 1/1024, fast
gzip) and the report ``S.json``. All files are first written into
a hidden staging folder beside them and moved into place together at the end, so a failure or a
stop request leaves none of them behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..annotation.layers import level_color
from ..contract import (
    CLASS_TAG,
    DEFAULT_MAPS,
    DICOM_REPORT_KEY,
    DICOM_SEG_SUFFIX,
    FLAGGED_STATUS,
    FRAMES_REPORT_KEY,
    FRAMES_SUMMARY_KEY,
    QUALITY_KEYS,
    QUALITY_TAGS,
    REASON_TAG,
    REPORT_SUFFIX,
    REVIEW,
    SEG_SUFFIX,
    SLICE_BY_SLICE_KEY,
    map_file_name,
    prediction_file_names,
)
from ..inference.measurements import calibrated, report_names
from ..io.images import image_from_array, write_image
from ..io.inputs import has_physical_spacing, is_dicom_folder
from ..io.safe_files import check_can_write
from ..io.segfile import write_segmentation
from ..io.segments import Segment
from ..quality.apply import assess_frames, assess_segment
from ..quality.reasons import first_message

#: Maps are stored in steps of 1/1024 (about 0.001: far below what a heatmap or a threshold can show).
MAP_QUANTUM = 1.0 / 1024
#: gzip level of the maps and the segmentation: 1 is several times faster than the default, and the
#: quantised maps stay small (measured in docs/results.md, "Output cost").
FAST_COMPRESSION = 1
WRITER_THREADS = 2


def _tag_value(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def quantized_map(values: np.ndarray) -> np.ndarray:
    """A map in [0, 1] rounded down to multiples of :data:`MAP_QUANTUM` (float32): floor keeps every
    probability on its side of 0.5, and the file compresses several times better than full float32."""
    return (np.floor(np.asarray(values, dtype=np.float32) / MAP_QUANTUM) * MAP_QUANTUM).astype(np.float32)


def _measurements(quality_config: dict | None, class_name: str, measured: dict, has_spacing: bool) -> dict:
    """Measurements as reported: the bundle's calibration applied, pixel names without spacing."""
    calibration = ((quality_config or {}).get("measurements") or {}).get(class_name)
    return report_names(calibrated(measured or {}, calibration), has_spacing)


def _assess(quality_config: dict | None, result, settings: dict, has_spacing: bool,
            frame_results: list[dict]) -> tuple[dict, dict | None]:
    """One class's quality (from its frames when the model ran slice by slice, adding each frame's with
    its measurements to ``frame_results``) and its frames summary (None for a single image or a 3D model)."""
    if result.frame_summaries is None:
        return assess_segment(quality_config, result.name, result.summary, settings=settings,
                              has_spacing=has_spacing), None
    whole, frames, summary = assess_frames(quality_config, result.name, result.frame_summaries, settings, has_spacing)
    if not frame_results:
        frame_results.extend({} for _ in frames)
    for index, frame in enumerate(frames):
        frame_results[index][result.name] = {
            "present": bool(result.mask[index].any()), **frame,
            "measurements": _measurements(quality_config, result.name, result.frame_measurements[index], has_spacing)}
    return whole, summary


def write_prediction_outputs(prediction, bundle, out_dir: str | os.PathLike, stem: str,
                             image_path: str | os.PathLike, overwrite: bool = False,
                             progress: Callable[[str, float, str], None] | None = None,
                             finalize: Callable[[], contextlib.AbstractContextManager] | None = None,
                             maps: Sequence[str] = DEFAULT_MAPS) -> dict:
    """Write ``prediction`` (an :class:`~ConfidenceSegLib.inference.predict.Prediction`) for ``stem``; return the report.

    ``maps``: which uncertainty maps to write per class; an input read from a DICOM series folder also
    gets ``S.seg.dcm`` referencing it. Files are written in parallel threads
    (compression runs outside the GIL). ``progress`` is called between steps (it may raise to stop);
    ``finalize`` wraps the final moves (e.g. :func:`~ConfidenceSegLib.io.stops.uninterruptible`).
    """
    out_dir = Path(out_dir)
    dicom_series = Path(image_path) if is_dicom_folder(Path(image_path)) else None
    names = prediction_file_names(stem, [c.name for c in prediction.classes], maps=maps,
                                  dicom=dicom_series is not None)
    check_can_write([out_dir / name for name in names], overwrite)
    progress = progress or (lambda stage, fraction, message: None)
    started = time.perf_counter()
    image = prediction.image
    settings = {"method": prediction.method, "samples": prediction.samples}
    has_spacing = has_physical_spacing(image_path)
    report_classes = {}
    segments = []
    with _staging_folder(out_dir, stem) as staging, ThreadPoolExecutor(WRITER_THREADS) as writers:
        pending = []
        frame_results: list[dict] = []  # per frame: class -> its quality (2D model run slice by slice)
        for result in prediction.classes:
            quality, frames_summary = _assess(bundle.config.get("quality"), result, settings, has_spacing,
                                              frame_results)
            files = {kind: map_file_name(stem, result.name, kind) for kind in maps}
            for kind in maps:
                map_image = image_from_array(quantized_map(getattr(result, kind)), image)
                pending.append(writers.submit(write_image, map_image, staging / files[kind],
                                              compression_level=FAST_COMPRESSION))
            tags = {CLASS_TAG: result.name, REASON_TAG: first_message(quality["reasons"])}
            tags.update({QUALITY_TAGS[key]: _tag_value(quality[key]) for key in QUALITY_KEYS if quality[key] is not None})
            segments.append(Segment(name=result.name, mask=result.mask, color=level_color(result.name, 1.0), tags=tags,
                                    status=FLAGGED_STATUS if quality["badge"] == REVIEW else None))
            report_classes[result.name] = {
                "present": bool(result.mask.any()), "uncertainty": dict(result.summary), **quality,
                "measurements": _measurements(bundle.config.get("quality"), result.name, result.measurements,
                                              has_spacing), "files": files}
            if frames_summary is not None:
                report_classes[result.name][FRAMES_SUMMARY_KEY] = frames_summary
        pending.append(writers.submit(write_segmentation, staging / f"{stem}{SEG_SUFFIX}", segments, image,
                                      compression_level=FAST_COMPRESSION))
        if dicom_series is not None:
            from .dicom_seg import write_dicom_seg  # highdicom: only for DICOM inputs

            pending.append(writers.submit(
                write_dicom_seg, staging / f"{stem}{DICOM_SEG_SUFFIX}", {c.name: c.mask for c in prediction.classes},
                report_classes, dicom_series, Path(bundle.path).name))
        for number, future in enumerate(pending):
            progress("write", number / len(pending), "writing the segmentation and maps")
            future.result()
        timings = dict(prediction.timings, write_s=time.perf_counter() - started)
        report = {"input": os.path.abspath(image_path), "model": str(bundle.path), "method": prediction.method,
                  "samples": prediction.samples, "device": prediction.device, "timings": timings,
                  "pass_threshold": (bundle.config.get("quality") or {}).get("threshold"), "classes": report_classes, "segmentation": f"{stem}{SEG_SUFFIX}",
                  SLICE_BY_SLICE_KEY: bool(frame_results)}
        if frame_results:
            report[FRAMES_REPORT_KEY] = [{"index": index, "classes": classes} for index, classes in enumerate(frame_results)]
        if dicom_series is not None:
            report[DICOM_REPORT_KEY] = f"{stem}{DICOM_SEG_SUFFIX}"
        (staging / f"{stem}{REPORT_SUFFIX}").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        with finalize() if finalize else contextlib.nullcontext():
            check_can_write([out_dir / name for name in names], overwrite)
            for name in names:
                os.replace(staging / name, out_dir / name)
    return report


@contextlib.contextmanager
def _staging_folder(out_dir: Path, stem: str) -> Iterator[Path]:
    staging = Path(tempfile.mkdtemp(prefix=f".{stem}.partial-", dir=out_dir))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)
