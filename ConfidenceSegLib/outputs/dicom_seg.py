"""DICOM Segmentation output (``S.seg.dcm``) for a prediction made on a DICOM series, with highdicom.

One binary segment per class, referencing the source series instance by instance, so PACS viewers
and 3D Slicer's DICOM module (QuantitativeReporting / DCMQI plugin) place it on the images. Each
segment is labelled with its class, identified as made by the ConfidenceSeg algorithm named after
the model, and described with its badge and predicted Dice ("REVIEW: predicted Dice 0.71, lower
bound 0.52"). Needs the ``[dicom]`` extra (highdicom, pydicom).
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
    """Write ``masks`` (class -> bool (Z, Y, X) on the series grid, SimpleITK order) as a DICOM SEG."""
    try:
        import highdicom as hd
        import pydicom
        from pydicom.sr.codedict import codes
    except ImportError:
        raise ConfidenceSegError("DICOM SEG output needs highdicom: pip install 'confidenceseg[dicom]'") from None
    sources = [pydicom.dcmread(name) for name in series_files(Path(series_folder))]
    names = list(masks)
    pixels = np.stack([np.asarray(masks[name], dtype=bool).reshape(len(sources), *masks[name].shape[-2:])
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
    try:
        segmentation = hd.seg.Segmentation(
            source_images=sources, pixel_array=pixels, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=900,
            sop_instance_uid=hd.UID(), instance_number=1, manufacturer="ConfidenceSeg",
            manufacturer_model_name=model_name[:64], software_versions=__version__, device_serial_number="0",
            series_description=f"ConfidenceSeg {model_name}"[:64], omit_empty_frames=False)
    except (ValueError, TypeError, AttributeError) as error:
        raise ConfidenceSegError(f"cannot make a DICOM SEG for {series_folder}: {error}") from None
    with atomic_output(path, overwrite) as tmp:
        segmentation.save_as(str(tmp))
