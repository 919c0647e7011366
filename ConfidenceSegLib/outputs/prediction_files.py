"""Writing an assessed prediction's outputs, all on the input image's grid.

Per input with file stem ``S``: ``S.seg.nrrd`` (one segment per class, quality fields as tags,
REVIEW segments flagged), ``S_<class>_probability.nrrd``, ``S_<class>_entropy.nrrd``,
``S_<class>_mutual_information.nrrd`` (``--maps`` chooses which; float32 in steps of 1/1024, fast
gzip), ``S.seg.dcm`` for a DICOM series input, and the report ``S.json`` (:mod:`.report`). Nothing is
assessed here: the verdicts come with the :class:`~ConfidenceSegLib.quality.assessed.AssessedPrediction`.
All files are first written into a hidden staging folder beside them and moved into place together at
the end, so a failure or a stop request leaves none of them behind.
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
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..contract import (
    CLASS_TAG,
    DEFAULT_MAPS,
    DICOM_SEG_SUFFIX,
    FLAGGED_STATUS,
    QUALITY_TAG_NAMES,
    REASON_TAG,
    REPORT_SUFFIX,
    SEG_SUFFIX,
    ConfidenceSegError,
    map_file_name,
    prediction_file_names,
    segment_rgb,
)
from ..io.images import image_from_array, write_image
from ..io.safe_files import check_can_write
from ..io.segfile import write_segmentation
from ..io.segments import Segment
from ..quality.assessed import AssessedPrediction
from ..quality.verdict import ClassResult
from .report import PredictionReport, report_json

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
    probability on its side of 0.5, and the file compresses several times better than full float32.
    ``values``: any shape; the result has the same shape."""
    return (np.floor(np.asarray(values, dtype=np.float32) / MAP_QUANTUM) * MAP_QUANTUM).astype(np.float32)


def segment_of(result: ClassResult, mask: np.ndarray, number: int) -> Segment:
    """The segment of one class: its quality fields and first reason as tags, flagged when REVIEW, in the
    colour of the ``number``-th class (:func:`~ConfidenceSegLib.contract.segment_color`, as the overlays).

    ``mask``: bool on the image grid, (H, W), (frames, H, W) or (Z, Y, X)."""
    verdict = result.verdict
    numbers = (verdict.predicted_dice, verdict.dice_lower_bound, verdict.badge)
    tags = {CLASS_TAG: result.name, REASON_TAG: verdict.first_reason}
    tags.update({tag: _tag_value(value) for tag, value in zip(QUALITY_TAG_NAMES, numbers, strict=True)
                 if value is not None})
    return Segment(name=result.name, mask=mask, color=segment_rgb(number), tags=tags,
                   status=FLAGGED_STATUS if verdict.needs_review else None)


def write_prediction_outputs(assessed: AssessedPrediction, model_path: str | os.PathLike, out_dir: str | os.PathLike,
                             stem: str, overwrite: bool = False,
                             progress: Callable[[str, float, str], None] | None = None,
                             finalize: Callable[[], contextlib.AbstractContextManager] | None = None,
                             maps: Sequence[str] = DEFAULT_MAPS) -> PredictionReport:
    """Write ``assessed`` as ``stem`` into ``out_dir`` (checked before the run); return the report written.

    ``maps``: which uncertainty maps to write per class; an input read from a DICOM series folder also
    gets ``S.seg.dcm`` referencing it when one can be made (else the report says why not:
``dicom_segmentation_skipped``). Files are written in parallel threads (compression runs outside
    the GIL). ``progress`` is called between steps (it may raise to stop); ``finalize`` wraps the final
    moves (e.g. :func:`~ConfidenceSegLib.io.stops.uninterruptible`).
    """
    out_dir = Path(out_dir)
    prediction, source = assessed.prediction, assessed.source
    names = prediction_file_names(stem, [c.name for c in assessed.classes], maps=maps, dicom=source.dicom_series)
    progress = progress or (lambda stage, fraction, message: None)
    started = time.perf_counter()
    classes = {result.name: replace(result, files={kind: map_file_name(stem, result.name, kind) for kind in maps})
               for result in assessed.classes}
    with _staging_folder(out_dir, stem) as staging, ThreadPoolExecutor(WRITER_THREADS) as writers:
        pending = []
        for maps_of_class in prediction.classes:
            for kind, file_name in classes[maps_of_class.name].files.items():
                map_image = image_from_array(quantized_map(getattr(maps_of_class, kind)), prediction.image)
                pending.append(writers.submit(write_image, map_image, staging / file_name,
                                              compression_level=FAST_COMPRESSION))
        segments = [segment_of(classes[c.name], c.mask, number) for number, c in enumerate(prediction.classes)]
        pending.append(writers.submit(write_segmentation, staging / f"{stem}{SEG_SUFFIX}", segments, prediction.image,
                                      compression_level=FAST_COMPRESSION))
        dicom_seg, skipped = None, None
        if source.dicom_series:
            from .dicom_seg import dicom_seg_obstacle, write_dicom_seg

            skipped = dicom_seg_obstacle(source.path)
            if skipped is None:
                dicom_seg = writers.submit(write_dicom_seg, staging / f"{stem}{DICOM_SEG_SUFFIX}",
                                           {c.name: c.mask for c in prediction.classes}, classes, source.path,
                                           Path(model_path).name)
        for number, future in enumerate(pending):
            progress("write", number / len(pending), "writing the segmentation and maps")
            future.result()
        if dicom_seg is not None:
            try:
                dicom_seg.result()
            except ConfidenceSegError as error:  # optional: the other outputs are kept
                skipped = str(error)
        if skipped is not None:
            names.remove(f"{stem}{DICOM_SEG_SUFFIX}")
        report = PredictionReport(
            input=str(source.path), model=str(model_path), method=prediction.method, samples=prediction.samples,
            device=prediction.device, classes=classes, pass_threshold=assessed.pass_threshold,
            timings=dict(prediction.timings, write_s=time.perf_counter() - started),
            segmentation=f"{stem}{SEG_SUFFIX}", frames=assessed.frames,
            spacing={"mm": [round(value, 6) for value in prediction.image.GetSpacing()],
                     "source": source.spacing_source},
            dicom_segmentation=f"{stem}{DICOM_SEG_SUFFIX}" if dicom_seg is not None and skipped is None else None,
            dicom_segmentation_skipped=skipped)
        (staging / f"{stem}{REPORT_SUFFIX}").write_text(json.dumps(report_json(report), indent=2, allow_nan=False)
                                                        + "\n", encoding="utf-8")
        with finalize() if finalize else contextlib.nullcontext():
            check_can_write([out_dir / name for name in names], overwrite)  # nothing appeared meanwhile
            for name in names:
                os.replace(staging / name, out_dir / name)
    report.folder = out_dir
    return report


@contextlib.contextmanager
def _staging_folder(out_dir: Path, stem: str) -> Iterator[Path]:
    staging = Path(tempfile.mkdtemp(prefix=f".{stem}.partial-", dir=out_dir))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)
