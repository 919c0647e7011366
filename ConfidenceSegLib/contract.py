"""Names shared by the library, the command line, the overlay, the HTML report and the Slicer module.

Every value here is part of an interface between stages or front ends (a file name, a tag key in
a ``.seg.nrrd``, a key of the per-input JSON report, a badge and its colour), so it is defined
once, here, and imported everywhere else. Standard library only: the Slicer module imports this
before torch or any other dependency is installed. ``Testing/Python/test_contract.py`` fails if a
badge colour or a tag key is written anywhere else.
"""

from __future__ import annotations


class ConfidenceSegError(Exception):
    """Bad input or a refused action, with a message meant for the user (no traceback needed)."""


# --- prediction options ------------------------------------------------------------------------

#: Uncertainty methods of ``--method`` (see :mod:`ConfidenceSegLib.inference.sampling`).
METHODS = ("auto", "mcdropout", "ensemble", "tta", "none")
#: Samples drawn when ``--samples`` is not given (or one per source when there are more sources).
DEFAULT_SAMPLES = 10
#: Compute devices of ``--device``; ``auto`` picks CUDA, then MPS, then CPU.
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")

# --- uncertainty maps --------------------------------------------------------------------------

#: Per-class maps that ``predict`` writes, in file order.
MAP_KINDS = ("probability", "entropy", "mutual_information")
#: Map shown as the heatmap unless the user picks another.
DEFAULT_HEATMAP = "entropy"
#: Maps written unless ``--maps`` asks for others: the heatmap. Writing compressed float maps of a
#: large stack costs more than predicting it (docs/results.md, "Output cost"), so the others are opt-in.
DEFAULT_MAPS = (DEFAULT_HEATMAP,)

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
#: Report key -> segment tag for the quality fields stored on a predicted segment.
QUALITY_TAGS = {"predicted_dice": PREDICTED_DICE_TAG, "dice_lower_bound": DICE_LOWER_BOUND_TAG, "badge": BADGE_TAG}
#: Every tag the library reads back from segments (vtkSegment cannot list its tags from Python).
KNOWN_TAGS = (CLASS_TAG, CONFIDENCE_TAG, STATUS_TAG, *QUALITY_TAGS.values(), REASON_TAG)

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
                "no_quality_model", "frames_need_review", "quality_model_outdated", "given_mask_empty")


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


# --- the per-input JSON report (S.json) ---------------------------------------------------------

#: Top-level keys of ``S.json`` (then ``frames`` for a stack run slice by slice, and
#: ``dicom_segmentation`` when a DICOM SEG was written).
REPORT_KEYS = ("input", "model", "method", "samples", "device", "timings", "pass_threshold", "classes",
               "segmentation", "slice_by_slice")
DICOM_REPORT_KEY = "dicom_segmentation"
#: A 2D model run slice by slice on a stack or volume: ``S.json`` also has ``frames`` (one entry
#: ``{"index", "classes": {CLASS: {"present", *QUALITY_KEYS, "reasons", "measurements"}}}`` per frame, in order) and
#: each class a ``frames_summary`` (``{"PASS", "REVIEW", "ABSENT", "worst_frame"}``).
FRAMES_REPORT_KEY = "frames"
FRAMES_SUMMARY_KEY = "frames_summary"
SLICE_BY_SLICE_KEY = "slice_by_slice"
#: Quality fields of one class in ``S.json`` (also the segment tags above).
QUALITY_KEYS = tuple(QUALITY_TAGS)
#: Keys of one class in ``S.json``: presence, uncertainty summary, quality fields, reasons, measurements
#: (area / ellipse circumference / volume with their intervals), map files.
CLASS_REPORT_KEYS = ("present", "uncertainty", *QUALITY_KEYS, "reasons", "measurements", "files")

#: Measurement names in ``classes.CLASS.measurements`` (mm), and their names for images without spacing.
AREA, CIRCUMFERENCE, VOLUME = "area_mm2", "ellipse_circumference_mm", "volume_mm3"
PIXEL_NAMES = {AREA: "area_px", CIRCUMFERENCE: "ellipse_circumference_px", VOLUME: "volume_px"}

# --- the batch QC table (review.csv) -----------------------------------------------------------

#: Columns of ``review.csv``: one row per case and class, paths relative to the folder.
REVIEW_COLUMNS = ("case", "class", *QUALITY_KEYS, "reason", "measurement", "frames", "segmentation", *MAP_KINDS, "json")

# --- review decisions (decisions.csv, beside review.csv) ---------------------------------------

DECISIONS_CSV = "decisions.csv"
#: A reviewer's verdict on one case and class, as every front end records it.
DECISIONS = ("accept", "needs_correction", "reject")
#: Columns of ``decisions.csv``: one row per decision, in the order made (the latest per case and
#: class counts); badge and predicted Dice as they were when the decision was made; time in UTC.
DECISION_COLUMNS = ("case", "class", "decision", "note", "badge", "predicted_dice", "time")

