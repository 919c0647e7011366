"""Writing a prediction's outputs (contract 3), all on the input image's grid.

Per input with file stem ``S``: ``S.seg.nrrd`` (one segment per class, quality fields as tags,
REVIEW segments flagged), ``S_<class>_probability.nrrd``, ``S_<class>_entropy.nrrd``,
``S_<class>_mutual_information.nrrd`` and the report ``S.json``. All files are first written into
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
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ..annotation.layers import level_color
from ..contract import (
    CLASS_TAG,
    FLAGGED_STATUS,
    MAP_KINDS,
    QUALITY_TAGS,
    REPORT_SUFFIX,
    REVIEW,
    SEG_SUFFIX,
    map_file_name,
    prediction_file_names,
)
from ..io.images import image_from_array, write_image
from ..io.safe_files import check_can_write
from ..io.segfile import write_segmentation
from ..io.segments import Segment
from ..quality.apply import assess_segment


def _tag_value(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def write_prediction_outputs(prediction, bundle, out_dir: str | os.PathLike, stem: str,
                             image_path: str | os.PathLike, overwrite: bool = False,
                             progress: Callable[[str, float, str], None] | None = None,
                             finalize: Callable[[], contextlib.AbstractContextManager] | None = None) -> dict:
    """Write ``prediction`` (an :class:`~ConfidenceSegLib.inference.predict.Prediction`) for ``stem``; return the report.

    ``progress`` is called between files (it may raise to stop); ``finalize`` wraps the final moves
    (e.g. :func:`~ConfidenceSegLib.jobs.progress.uninterruptible`).
    """
    out_dir = Path(out_dir)
    names = prediction_file_names(stem, [c.name for c in prediction.classes])
    check_can_write([out_dir / name for name in names], overwrite)
    progress = progress or (lambda stage, fraction, message: None)
    started = time.perf_counter()
    image = prediction.image
    report_classes = {}
    segments = []
    with _staging_folder(out_dir, stem) as staging:
        for number, result in enumerate(prediction.classes):
            quality = assess_segment(bundle.config.get("quality"), result.name, result.summary)
            files = {kind: map_file_name(stem, result.name, kind) for kind in MAP_KINDS}
            for kind in MAP_KINDS:
                progress("write", number / len(prediction.classes), f"{files[kind]}")
                array = np.asarray(getattr(result, kind), dtype=np.float32)
                write_image(image_from_array(array, image), staging / files[kind])
            tags = {CLASS_TAG: result.name}
            tags.update({QUALITY_TAGS[key]: _tag_value(value) for key, value in quality.items() if value is not None})
            segments.append(Segment(name=result.name, mask=result.mask, color=level_color(result.name, 1.0), tags=tags,
                                    status=FLAGGED_STATUS if quality["badge"] == REVIEW else None))
            report_classes[result.name] = {"present": bool(result.mask.any()), "uncertainty": dict(result.summary),
                                           **quality, "files": files}
        progress("write", 1.0, f"{stem}{SEG_SUFFIX}")
        write_segmentation(staging / f"{stem}{SEG_SUFFIX}", segments, image)
        timings = dict(prediction.timings, write_s=time.perf_counter() - started)
        report = {"input": str(image_path), "model": str(bundle.path), "method": prediction.method,
                  "samples": prediction.samples, "device": prediction.device, "timings": timings,
                  "classes": report_classes, "segmentation": f"{stem}{SEG_SUFFIX}"}
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
