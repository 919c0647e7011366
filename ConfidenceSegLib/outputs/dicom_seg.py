"""DICOM Segmentation output (``S.seg.dcm``) for a prediction made on a DICOM series, with highdicom.

One binary segment per class, referencing the source series instance by instance, so PACS viewers
and 3D Slicer's DICOM module (QuantitativeReporting / DCMQI plugin) place it on the images. Each
segment is labelled with its class, identified as made by the ConfidenceSeg algorithm named after
the model, and described with its badge and predicted Dice ("REVIEW: predicted Dice 0.71, lower
bound 0.52"). Needs the ``[dicom]`` extra (highdicom, pydicom).

The SEG is optional: :func:`dicom_seg_obstacle` says, before anything is written, why a series cannot
have one (no highdicom; several frames without a Frame of Reference UID, which highdicom refuses, as
ultrasound series often have), and :func:`write_dicom_seg` turns any failure of highdicom into a
:class:`ConfidenceSegError`; the caller then writes the other outputs and records the reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import __version__
from ..contract import ConfidenceSegError, badge_label
from ..io.images import series_files
from ..io.safe_files import atomic_output
from ..quality.verdict import ClassResult, Verdict

#: SNOMED CT "Tissue": a generic segmented property (the class name is the segment label).
TISSUE = ("85756007", "SCT", "Tissue")
#: Segment Description is a DICOM LO value: at most 64 characters.
DESCRIPTION_LENGTH = 64
INSTALL_HINT = "pip install 'confidenceseg[dicom]'"


def dicom_seg_obstacle(series_folder: str | os.PathLike) -> str | None:
    """Why no DICOM SEG can be made for the series in ``series_folder`` (read from its first header), or None."""
    try:
        import highdicom  # noqa: F401
        import pydicom
    except ImportError:
        return f"the DICOM SEG needs the [dicom] extra ({INSTALL_HINT})"
    files = series_files(Path(series_folder))
    try:
        first = pydicom.dcmread(files[0], stop_before_pixels=True)
    except (OSError, ValueError, pydicom.errors.InvalidDicomError) as error:
        return f"cannot read the DICOM header of {files[0]}: {error}"
    frames = len(files) * int(first.get("NumberOfFrames", 1) or 1)
    if "FrameOfReferenceUID" not in first and frames > 1:
        return (f"the series has {frames} frames and no Frame of Reference UID; a DICOM SEG without one can "
                "reference a single frame only")
    return None


def quality_description(verdict: Verdict | None) -> str:
    """``PASS: predicted Dice 0.93, lower bound 0.88`` (or the badge alone), as a Segment Description."""
    text = badge_label(verdict.badge if verdict else None)
    if verdict is not None and verdict.predicted_dice is not None:
        text += f": predicted Dice {verdict.predicted_dice:.2f}"
        if verdict.dice_lower_bound is not None:
            text += f", lower bound {verdict.dice_lower_bound:.2f}"
    return text[:DESCRIPTION_LENGTH]


def write_dicom_seg(path: str | os.PathLike, masks: dict[str, np.ndarray], results: dict[str, ClassResult],
                    series_folder: str | os.PathLike, model_name: str, overwrite: bool = False) -> None:
    """Write ``masks`` (class -> bool (Z, Y, X) on the series grid, SimpleITK order) as a DICOM SEG.

    Raises :class:`ConfidenceSegError` with highdicom's reason when the SEG cannot be made."""
    obstacle = dicom_seg_obstacle(series_folder)
    if obstacle:
        raise ConfidenceSegError(obstacle)
    try:
        segmentation = _segmentation(masks, results, series_folder, model_name)
    except Exception as error:  # noqa: BLE001 - highdicom raises many kinds; the SEG is optional
        raise ConfidenceSegError(f"highdicom cannot make a DICOM SEG of this series: {error}") from None
    with atomic_output(path, overwrite) as tmp:
        segmentation.save_as(str(tmp))


def _segmentation(masks: dict[str, np.ndarray], results: dict[str, ClassResult], series_folder: str | os.PathLike,
                  model_name: str):
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    sources = [pydicom.dcmread(name) for name in series_files(Path(series_folder))]
    names = list(masks)
    frames = sum(int(source.get("NumberOfFrames", 1) or 1) for source in sources)
    pixels = np.stack([np.asarray(masks[name], dtype=bool).reshape(frames, *masks[name].shape[-2:])
                       for name in names], axis=-1).astype(np.uint8)
    algorithm = hd.AlgorithmIdentificationSequence(name=f"ConfidenceSeg {model_name}"[:64], version=__version__,
                                                   family=codes.cid7162.ArtificialIntelligence)
    tissue = hd.sr.CodedConcept(*TISSUE)
    descriptions = []
    for number, name in enumerate(names, start=1):
        description = hd.seg.SegmentDescription(
            segment_number=number, segment_label=name[:64], segmented_property_category=tissue,
            segmented_property_type=tissue, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm)
        description.SegmentDescription = quality_description(results[name].verdict if name in results else None)
        descriptions.append(description)
    return hd.seg.Segmentation(
        source_images=sources, pixel_array=pixels, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=900,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="ConfidenceSeg",
        manufacturer_model_name=model_name[:64], software_versions=__version__, device_serial_number="0",
        series_description=f"ConfidenceSeg {model_name}"[:64], omit_empty_frames=False)
