"""The per-input report ``S.json``: its one writer and its one reader.

``S.json`` is the serialisation of an assessed prediction (:class:`PredictionReport`: the run's settings,
per class a :class:`~ConfidenceSegLib.quality.verdict.ClassResult`, per frame of a slice-by-slice run a
:class:`~ConfidenceSegLib.quality.verdict.FrameResult`). :func:`report_json` writes it, :func:`read_report`
reads it back into the same types for every front end (CLI, overlay, review table, Slicer, station);
``confidenceseg assess`` writes the same class entries for a given segmentation. The keys are
:class:`~ConfidenceSegLib.contract.Key`. Standard library only (the Slicer module reads reports before
its dependencies are installed).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..contract import SEG_SUFFIX, ConfidenceSegError, Key
from ..io.safe_files import read_json
from ..quality.verdict import ClassResult, FrameResult, Reason, Verdict


@dataclass
class PredictionReport:
    """What ``S.json`` holds: how the input was predicted, and each class's result (in the model's order)."""

    input: str
    model: str
    method: str
    samples: int
    device: str
    classes: dict[str, ClassResult]
    pass_threshold: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    #: ``S.seg.nrrd`` (None in the report of an assessed given segmentation).
    segmentation: str | None = None
    #: Per frame ``{class: FrameResult}`` when a 2D model ran slice by slice on a stack, else None.
    frames: list[dict[str, FrameResult]] | None = None
    dicom_segmentation: str | None = None
    #: The pixel size the sizes are in: ``{"mm": [x, y(, z)], "source": "image" | "--spacing" | "none"}``
    #: (``none``: 1-unit pixels, sizes in pixels); None in the report of an assessed given segmentation.
    spacing: dict | None = None
    #: Why a DICOM series input got no DICOM SEG (the other outputs were written), else None.
    dicom_segmentation_skipped: str | None = None
    #: Further top-level entries of an assessment report (the given segmentation, per-method details).
    extra: dict = field(default_factory=dict)
    #: The folder the report was read from (its files are relative to it); None for one in memory.
    folder: Path | None = None

    @property
    def slice_by_slice(self) -> bool:
        return self.frames is not None

    @property
    def sampling(self) -> str:
        """How it was predicted, for people: ``ensemble, 5 samples`` (``1 sample``)."""
        return f"{self.method}, {self.samples} sample{'' if self.samples == 1 else 's'}"

    @property
    def stem(self) -> str:
        """The file stem ``S`` of the input's outputs."""
        if self.segmentation is None:
            raise ConfidenceSegError("this report has no segmentation file")
        return self.segmentation.removesuffix(SEG_SUFFIX)

    @property
    def warnings(self) -> list[str]:
        """What was not written although asked for (the main outputs were): one line each."""
        return [f"no DICOM SEG written: {self.dicom_segmentation_skipped}"] if self.dicom_segmentation_skipped else []

    @property
    def has_spacing(self) -> bool:
        """False when the input had no physical spacing (its measurements carry the ``no_spacing`` note)."""
        return not any("note" in result.measurements for result in self.classes.values())

    def frame_results(self, frame: int | None) -> dict[str, FrameResult | ClassResult]:
        """The results at ``frame`` of a slice-by-slice run; the whole input's for a single image, a 3D
        model, or ``frame`` None / out of range."""
        if frame is not None and self.frames is not None and 0 <= frame < len(self.frames):
            return dict(self.frames[frame])
        return dict(self.classes)


# --- writing -----------------------------------------------------------------------------------

def verdict_json(verdict: Verdict) -> dict:
    return {Key.PREDICTED_DICE: verdict.predicted_dice, Key.DICE_LOWER_BOUND: verdict.dice_lower_bound,
            Key.BADGE: verdict.badge,
            Key.REASONS: [{Key.CODE: r.code, Key.MESSAGE: r.message} for r in verdict.reasons]}


def class_json(result: ClassResult, extra: dict | None = None) -> dict:
    """One class entry of ``S.json`` (``extra``: further entries, e.g. an assessment's per-method details)."""
    entry = {Key.PRESENT: result.present, Key.UNCERTAINTY: result.uncertainty, **verdict_json(result.verdict),
             Key.MEASUREMENTS: result.measurements, Key.FILES: result.files}
    if result.frames_summary is not None:
        entry[Key.FRAMES_SUMMARY] = result.frames_summary
    return {**entry, **(extra or {})}


def frame_json(index: int, frame: dict[str, FrameResult]) -> dict:
    return {Key.INDEX: index, Key.CLASSES: {name: {Key.PRESENT: result.present, **verdict_json(result.verdict),
                                                   Key.MEASUREMENTS: result.measurements}
                                            for name, result in frame.items()}}


def report_json(report: PredictionReport, class_extras: dict[str, dict] | None = None) -> dict:
    """The JSON object of ``S.json``."""
    data = {Key.INPUT: report.input, **report.extra, Key.MODEL: report.model, Key.METHOD: report.method,
            Key.SAMPLES: report.samples, Key.DEVICE: report.device, Key.TIMINGS: report.timings,
            Key.PASS_THRESHOLD: report.pass_threshold,
            Key.CLASSES: {name: class_json(result, (class_extras or {}).get(name))
                          for name, result in report.classes.items()}}
    if report.segmentation is not None:
        data.update({Key.SEGMENTATION: report.segmentation, Key.SLICE_BY_SLICE: report.slice_by_slice})
    if report.spacing is not None:
        data[Key.SPACING] = report.spacing
    if report.frames is not None:
        data[Key.FRAMES] = [frame_json(index, frame) for index, frame in enumerate(report.frames)]
    if report.dicom_segmentation is not None:
        data[Key.DICOM_SEGMENTATION] = report.dicom_segmentation
    if report.dicom_segmentation_skipped is not None:
        data[Key.DICOM_SEGMENTATION_SKIPPED] = report.dicom_segmentation_skipped
    return data


# --- reading -----------------------------------------------------------------------------------

def verdict_from_json(entry: dict) -> Verdict:
    reasons = tuple(Reason(r[Key.CODE], r[Key.MESSAGE]) for r in entry.get(Key.REASONS) or ())
    return Verdict(entry.get(Key.BADGE) or None, entry.get(Key.PREDICTED_DICE), entry.get(Key.DICE_LOWER_BOUND),
                   reasons or (Reason("no_quality_model", "no quality fields in this report"),))


def class_from_json(name: str, entry: dict) -> ClassResult:
    return ClassResult(name, bool(entry.get(Key.PRESENT)), dict(entry.get(Key.UNCERTAINTY) or {}),
                       verdict_from_json(entry), dict(entry.get(Key.MEASUREMENTS) or {}),
                       entry.get(Key.FRAMES_SUMMARY), dict(entry.get(Key.FILES) or {}))


def report_from_json(data, where: str | os.PathLike = "report") -> PredictionReport:
    """A :class:`PredictionReport` from the JSON object of ``S.json`` (one-line error if it is not one)."""
    if not isinstance(data, dict) or not isinstance(data.get(Key.CLASSES), dict):
        raise ConfidenceSegError(f"{where} is not a ConfidenceSeg prediction report (no '{Key.CLASSES}')")
    try:
        classes = {name: class_from_json(name, entry) for name, entry in data[Key.CLASSES].items()}
        frames = None if data.get(Key.FRAMES) is None else [
            {name: FrameResult(bool(entry.get(Key.PRESENT)), verdict_from_json(entry),
                               dict(entry.get(Key.MEASUREMENTS) or {}))
             for name, entry in frame[Key.CLASSES].items()} for frame in data[Key.FRAMES]]
    except (AttributeError, KeyError, TypeError) as error:
        raise ConfidenceSegError(f"{where} is a malformed prediction report ({error!r})") from None
    known = {Key.INPUT, Key.MODEL, Key.METHOD, Key.SAMPLES, Key.DEVICE, Key.TIMINGS, Key.PASS_THRESHOLD,
             Key.CLASSES, Key.SEGMENTATION, Key.SLICE_BY_SLICE, Key.FRAMES, Key.DICOM_SEGMENTATION,
             Key.DICOM_SEGMENTATION_SKIPPED, Key.SPACING}
    return PredictionReport(
        input=str(data.get(Key.INPUT, "")), model=str(data.get(Key.MODEL, "")), method=data.get(Key.METHOD),
        samples=data.get(Key.SAMPLES), device=data.get(Key.DEVICE), classes=classes,
        pass_threshold=data.get(Key.PASS_THRESHOLD), timings=dict(data.get(Key.TIMINGS) or {}),
        segmentation=data.get(Key.SEGMENTATION), frames=frames, dicom_segmentation=data.get(Key.DICOM_SEGMENTATION),
        dicom_segmentation_skipped=data.get(Key.DICOM_SEGMENTATION_SKIPPED), spacing=data.get(Key.SPACING),
        extra={key: value for key, value in data.items() if key not in known})


def read_report(path: str | os.PathLike, need_segmentation: bool = True) -> PredictionReport:
    """Read ``S.json`` (one-line errors for a missing, corrupt or foreign file); ``need_segmentation``:
    refuse an assessment report, which has no segmentation of its own."""
    path = Path(path)
    report = report_from_json(read_json(path, "prediction report"), path)
    if need_segmentation and report.segmentation is None:
        raise ConfidenceSegError(f"{path} is not a ConfidenceSeg prediction report (no '{Key.SEGMENTATION}')")
    report.folder = path.parent
    return report
