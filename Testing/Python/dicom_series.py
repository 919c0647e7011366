"""Small synthetic DICOM series for tests, written with SimpleITK (GDCM): CT-like with full geometry, or
ultrasound-like without Pixel Spacing and (optionally) without a Frame of Reference UID."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

#: SOP classes of the synthetic series: CT Image Storage, Ultrasound Image Storage.
CT, US = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.6.1"


def write_dicom_series(folder: Path, slices: int = 3, rows: int = 24, columns: int = 28, modality: str = "CT",
                       frame_of_reference: bool = True) -> Path:
    """A small CT-like series (or ultrasound: uint8 frames, without the geometry tags and, as ultrasound
    often is, without a Frame of Reference UID) written with SimpleITK (GDCM), one file per slice."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    pixels = rng.random((slices, rows, columns))
    volume = sitk.GetImageFromArray((pixels * 400 - 200).astype(np.int16) if modality == "CT"
                                    else (pixels * 200).astype(np.uint8))
    volume.SetSpacing((0.7, 0.8, 2.5))
    volume.SetOrigin((-10.0, 5.0, 30.0))
    stamp = time.strftime("%Y%m%d"), time.strftime("%H%M%S")
    uid_root = "1.2.826.0.1.3680043.2.1125.9"
    shared = {"0008|0020": stamp[0], "0008|0030": stamp[1], "0008|0060": modality,
              "0008|0016": CT if modality == "CT" else US, "0010|0010": "Test^Phantom", "0010|0020": "PHANTOM1",
              "0020|000d": f"{uid_root}.1", "0020|000e": f"{uid_root}.2", "0020|0010": "1", "0020|0011": "1",
              "0008|103e": "synthetic series"}
    if modality == "CT":
        shared.update({"0020|0037": "1\\0\\0\\0\\1\\0", "0018|0050": "2.5"})
    if frame_of_reference:
        shared["0020|0052"] = f"{uid_root}.3"
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for index in range(slices):
        image = volume[:, :, index]
        for tag, value in shared.items():
            image.SetMetaData(tag, value)
        image.SetMetaData("0008|0018", f"{uid_root}.4.{index + 1}")
        image.SetMetaData("0020|0013", str(index + 1))
        if modality == "CT":
            image.SetMetaData("0020|0032", "\\".join(
                f"{v:g}" for v in volume.TransformIndexToPhysicalPoint((0, 0, index))))
        writer.SetFileName(str(folder / f"slice{index:03d}.dcm"))
        writer.Execute(image)
    return folder
