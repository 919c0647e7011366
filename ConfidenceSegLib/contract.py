"""Names shared by the library, the command line, the overlay, the HTML report and the Slicer module.

Every value here is part of an interface between stages or front ends (a file name, a tag key in
a ``.seg.nrrd``, a key of the per-input JSON report, a badge and its colour), so it is defined
once, here, and imported everywhere else. Standard library only: the Slicer module imports this
before torch or any other dependency is installed. ``Testing/Python/test_contract.py`` fails if a
badge colour or a tag key is written anywhere else.
"""

from __future__ import annotations

import sys
from enum import Enum

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # Python 3.10: the same behaviour (members are their strings, also in f-strings and str())
    class StrEnum(str, Enum):
        def __str__(self) -> str:
            return str(self.value)

        __format__ = str.__format__


class ConfidenceSegError(Exception):
    """Bad input or a refused action, with a message meant for the user (no traceback needed)."""


# --- the method's numbers ----------------------------------------------------------------------

#: A pixel is in the predicted mask where the samples' mean probability is at least this, and in a
#: reference where its confidence (annotator mask, fraction of raters) is above it.
DECISION_THRESHOLD = 0.5
#: PASS only when the Dice lower bound reaches this (``calibrate --threshold``).
PASS_THRESHOLD = 0.8
#: Miscoverage of the conformal bounds: they hold for about 1 - alpha of segments (``calibrate --alpha``).
ALPHA = 0.1
#: How every front end draws a heatmap (Slicer, its scene files, the station, the overlay PNGs): Inferno
#: over a fixed 0..1 window, transparent below HEATMAP_DISPLAY_THRESHOLD, one opacity for the rest (a
#: Slicer slice layer has one opacity: the alpha of a colour table is not used).
HEATMAP_DISPLAY_THRESHOLD = 0.1
HEATMAP_OPACITY = 0.6
#: Colours of predicted segments, by the class's place in the model (outlines in Slicer, the station and
#: the overlays): bright, apart from the heatmap's red-yellow and from grey images.
SEGMENT_COLORS = ("#00e5ff", "#76ff03", "#ff4dff", "#4d8dff", "#ffffff")
#: ID of the colour table of heatmaps: Slicer's Inferno (loaded at start-up).
INFERNO_COLOR_NODE_ID = "vtkMRMLColorTableNodeFileInferno.txt"


def segment_color(number: int) -> str:
    """Hex colour of the ``number``-th predicted class (0-based; the palette repeats)."""
    return SEGMENT_COLORS[number % len(SEGMENT_COLORS)]


def segment_rgb(number: int) -> tuple[float, float, float]:
    """:func:`segment_color` as red, green, blue in [0, 1] (a Slicer segment's colour)."""
    code = segment_color(number).lstrip("#")
    return tuple(int(code[i:i + 2], 16) / 255.0 for i in (0, 2, 4))


def predicted_mask(probability):
    """The predicted mask of a probability map (array or number): ``probability >= DECISION_THRESHOLD``.
    Maps are stored rounded down to 1/1024, which keeps every value on its side of this test."""
    return probability >= DECISION_THRESHOLD


def reference_mask(confidence):
    """The reference mask of a confidence map: ``confidence > DECISION_THRESHOLD`` (the annotator's mask, or
    the strict majority of raters: a tie of 2 of 4 raters is not foreground)."""
    return confidence > DECISION_THRESHOLD


# --- prediction options ------------------------------------------------------------------------

#: Uncertainty methods of ``--method`` (see :mod:`ConfidenceSegLib.inference.sampling`).
METHODS = ("auto", "mcdropout", "ensemble", "tta", "none")
#: Samples drawn when ``--samples`` is not given (or one per source when there are more sources).
DEFAULT_SAMPLES = 10
#: Compute devices of ``--device``; ``auto`` picks CUDA, then MPS, then CPU.
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
#: Mask postprocessing steps a bundle's ``postprocessing`` may switch on per class (true/false), and the
#: presence step (a fraction of the frame's pixels) (see :mod:`ConfidenceSegLib.inference.postprocessing`).
POSTPROCESSING_STEPS = ("keep_largest_component", "fill_holes", "fit_ellipse")
PRESENCE_STEP = "min_area_fraction"

# --- uncertainty maps --------------------------------------------------------------------------

#: Per-class maps that ``predict`` writes, in file order.
MAP_KINDS = ("probability", "entropy", "mutual_information")
#: Map shown as the heatmap unless the user picks another.
DEFAULT_HEATMAP = "entropy"
#: Maps written unless ``--maps`` asks for others: the heatmap. Writing compressed float maps of a
#: large stack costs more than predicting it (docs/results.md, "Output cost"), so the others are opt-in.
DEFAULT_MAPS = (DEFAULT_HEATMAP,)

# --- background processes (the Slicer module) --------------------------------------------------

#: Set in a background process's environment: its Python announces its own process ID as the first
#: line on stdout (``{"event": "pid", "pid": N}``), so that a cancel reaches it through any launcher
#: (Slicer's ``PythonSlicer`` does not pass signals on to the Python it starts).
ANNOUNCE_PID_ENV = "CONFIDENCESEG_ANNOUNCE_PID"
PID_EVENT = "pid"

# --- segment tags (.seg.nrrd, MRML segments) ---------------------------------------------------

CLASS_TAG = "ConfidenceSeg.Class"
CONFIDENCE_TAG = "ConfidenceSeg.Confidence"
PREDICTED_DICE_TAG = "ConfidenceSeg.PredictedDice"
DICE_LOWER_BOUND_TAG = "ConfidenceSeg.DiceLowerBound"
BADGE_TAG = "ConfidenceSeg.Badge"
#: The badge's first reason, in words.
REASON_TAG = "ConfidenceSeg.Reason"
#: Segmentation review status tag written by Slicer's ``SetSegmentStatus``.
STATUS_TAG = "Segmentation.Status"
#: Status given to REVIEW segments (Slicer's "flagged").
FLAGGED_STATUS = "flagged"
#: Segment tags of the quality fields stored on a predicted segment (``QUALITY_KEYS``, in order).
QUALITY_TAG_NAMES = (PREDICTED_DICE_TAG, DICE_LOWER_BOUND_TAG, BADGE_TAG)
#: Every tag the library reads back from segments (vtkSegment cannot list its tags from Python).
KNOWN_TAGS = (CLASS_TAG, CONFIDENCE_TAG, STATUS_TAG, *QUALITY_TAG_NAMES, REASON_TAG)

# --- badges ------------------------------------------------------------------------------------

PASS, REVIEW, ABSENT = "PASS", "REVIEW", "ABSENT"
BADGES = (PASS, REVIEW, ABSENT)
#: The word shown for a segment without a badge (the bundle has no quality model for its class).
UNRATED = "UNRATED"
#: Review order: flagged first, unrated last (review.csv, index.html, the Slicer Review table).
BADGE_PRIORITY = {REVIEW: 0, ABSENT: 1, PASS: 2, None: 3}
#: Badge colours (CSS hex) in the overlay, the HTML page and the Slicer panel.
BADGE_COLORS = {PASS: "#1e8e3e", REVIEW: "#e8710a", ABSENT: "#6b7280", None: "#6b7280"}


#: Why a segment got its badge (``reasons`` of the report, the deciding one first).
REASON_CODES = ("lower_bound_above_threshold", "out_of_domain", "lower_bound_below_threshold",
                "too_few_calibration_cases", "absent", "method_differs_from_calibration", "no_spacing",
                "no_quality_model", "frames_need_review", "quality_model_outdated", "given_mask_empty",
                "measurement_implausible", "not_calibrated")


def badge_label(badge: str | None) -> str:
    """The word on the badge: PASS, REVIEW, ABSENT, or UNRATED when there is no quality model."""
    return badge or UNRATED


def badge_color(badge: str | None) -> str:
    return BADGE_COLORS.get(badge or None, BADGE_COLORS[None])


# --- files -------------------------------------------------------------------------------------

#: Image formats that carry no physical spacing (read as 1 mm pixels): the badge says so.
NO_SPACING_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
#: Image files accepted as inputs (a folder is read as a DICOM series).
IMAGE_SUFFIXES = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd", ".png", ".jpg", ".jpeg",
                  ".tif", ".tiff", ".bmp", ".dcm")
SEG_SUFFIX = ".seg.nrrd"
#: DICOM Segmentation written beside the others when the input is a DICOM series.
DICOM_SEG_SUFFIX = ".seg.dcm"
MAP_SUFFIX = ".nrrd"
REPORT_SUFFIX = ".json"
OVERLAY_SUFFIX = "_overlay.png"
#: A 3D Slicer scene per reviewed case (image, segmentation, heatmap), opened by drag and drop.
SCENE_SUFFIX = ".mrml"
REVIEW_CSV = "review.csv"
#: Folder the quick start writes to (then ``-2``, ``-3``, ... so that nothing is overwritten).
QUICKSTART_FOLDER = "confidenceseg-quickstart"
REVIEW_HTML = "index.html"


def map_file_name(stem: str, class_name: str, kind: str) -> str:
    """``S_<class>_<kind>.nrrd``: one uncertainty map of one class."""
    return f"{stem}_{class_name}_{kind}{MAP_SUFFIX}"


def prediction_file_names(stem: str, classes: list[str] | tuple[str, ...], overlay: bool = False,
                          maps: tuple[str, ...] | list[str] = DEFAULT_MAPS, dicom: bool = False,
                          scene: bool = False) -> list[str]:
    """Every file ``predict`` writes for input stem ``S`` (``maps`` per class; with ``overlay`` also
    ``S_overlay.png``, as ``review`` and ``quickstart`` do; with ``dicom`` the DICOM SEG; with ``scene``
    the Slicer scene of ``review``), for checking before any work starts."""
    return [f"{stem}{SEG_SUFFIX}", f"{stem}{REPORT_SUFFIX}"] + [
        map_file_name(stem, name, kind) for name in classes for kind in maps] + (
        [f"{stem}{OVERLAY_SUFFIX}"] if overlay else []) + ([f"{stem}{DICOM_SEG_SUFFIX}"] if dicom else []) + (
        [f"{stem}{SCENE_SUFFIX}"] if scene else [])


# --- the per-input JSON report (S.json), review.csv and decisions.csv ---------------------------


class Key(StrEnum):
    """Keys of ``S.json``, the worker's answers and the columns of ``review.csv`` / ``decisions.csv``.

    Code names them through this enum (a member is its string); only
    :mod:`ConfidenceSegLib.outputs.report` turns the in-memory results into ``S.json`` and back.
    """

    INPUT = "input"
    MODEL = "model"
    METHOD = "method"
    SAMPLES = "samples"
    DEVICE = "device"
    TIMINGS = "timings"
    PASS_THRESHOLD = "pass_threshold"
    CLASSES = "classes"
    SEGMENTATION = "segmentation"
    SLICE_BY_SLICE = "slice_by_slice"
    FRAMES = "frames"
    FRAMES_SUMMARY = "frames_summary"
    WORST_FRAME = "worst_frame"
    MEASURED_FRAME = "measured_frame"
    DICOM_SEGMENTATION = "dicom_segmentation"
    DICOM_SEGMENTATION_SKIPPED = "dicom_segmentation_skipped"
    SPACING = "spacing"
    INDEX = "index"
    PRESENT = "present"
    UNCERTAINTY = "uncertainty"
    PREDICTED_DICE = "predicted_dice"
    DICE_LOWER_BOUND = "dice_lower_bound"
    BADGE = "badge"
    REASONS = "reasons"
    CODE = "code"
    MESSAGE = "message"
    MEASUREMENTS = "measurements"
    FILES = "files"
    CASE = "case"
    CLASS = "class"
    REASON = "reason"
    MEASUREMENT = "measurement"
    JSON = "json"
    DECISION = "decision"
    NOTE = "note"
    TIME = "time"


#: Top-level keys of ``S.json``; then ``frames`` for a 2D model run slice by slice on a stack (one entry
#: ``{"index", "classes": {CLASS: {"present", *QUALITY_KEYS, "reasons", "measurements"}}}`` per frame, in
#: order; each class then has a ``frames_summary``: ``{"PASS", "REVIEW", "ABSENT", "worst_frame",
#: "measured_frame"}`` (0-based indices; the class's measurements are those of ``measured_frame``), and
#: for a DICOM series input ``dicom_segmentation`` (the SEG written) or ``dicom_segmentation_skipped`` (why not).
REPORT_KEYS = (Key.INPUT, Key.MODEL, Key.METHOD, Key.SAMPLES, Key.DEVICE, Key.TIMINGS, Key.PASS_THRESHOLD,
               Key.CLASSES, Key.SEGMENTATION, Key.SLICE_BY_SLICE, Key.SPACING)
#: Quality fields of one class in ``S.json`` (also stored as the segment tags ``QUALITY_TAG_NAMES``).
QUALITY_KEYS = (Key.PREDICTED_DICE, Key.DICE_LOWER_BOUND, Key.BADGE)
#: Keys of one class in ``S.json``: presence, uncertainty summary, quality fields, reasons, measurements
#: (area / ellipse circumference / volume with their intervals), map files.
CLASS_REPORT_KEYS = (Key.PRESENT, Key.UNCERTAINTY, *QUALITY_KEYS, Key.REASONS, Key.MEASUREMENTS, Key.FILES)

#: Measurement names in ``classes.CLASS.measurements`` (mm), and their names for images without spacing.
AREA, CIRCUMFERENCE, VOLUME = "area_mm2", "ellipse_circumference_mm", "volume_mm3"
PIXEL_NAMES = {AREA: "area_px", CIRCUMFERENCE: "ellipse_circumference_px", VOLUME: "volume_px"}

# --- the batch QC table (review.csv) -----------------------------------------------------------

#: Columns of ``review.csv``: one row per case and class, paths relative to the folder.
REVIEW_COLUMNS = (Key.CASE, Key.CLASS, *QUALITY_KEYS, Key.REASON, Key.MEASUREMENT, Key.FRAMES, Key.SEGMENTATION,
                  *MAP_KINDS, Key.JSON)

# --- review decisions (decisions.csv, beside review.csv) ---------------------------------------

DECISIONS_CSV = "decisions.csv"
#: A reviewer's verdict on one case and class, as every front end records it.
DECISIONS = ("accept", "needs_correction", "reject")
#: Columns of ``decisions.csv``: one row per decision, in the order made (the latest per case and
#: class counts); badge and predicted Dice as they were when the decision was made; time in UTC.
DECISION_COLUMNS = (Key.CASE, Key.CLASS, Key.DECISION, Key.NOTE, Key.BADGE, Key.PREDICTED_DICE, Key.TIME)

