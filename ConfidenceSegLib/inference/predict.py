"""Segmenting one image with uncertainty: the entry point of the inference stage.

Inputs: a 2D image, a multi-frame stack (a 3D image given to a 2D model runs frame by frame,
frames batched) or a 3D volume (3D model: MONAI sliding-window inference). The sampling plan
(:mod:`.sampling`) says which networks run; :mod:`.runner` runs it chunk by chunk; the result is
a :class:`Prediction` whose arrays all lie on the image grid, in SimpleITK order.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import SimpleITK as sitk
import torch

from ..contract import ConfidenceSegError, predicted_mask
from ..io.images import available_memory
from ..model.bundle import ModelBundle
from ..model.devices import describe_device, pick_device
from ..model.preprocessing import image_frames, spacing_zyx
from .measurements import frame_measurements, volume_measurement
from .postprocessing import apply_per_frame, apply_steps, class_steps
from .prediction import ClassPrediction, Prediction
from .runner import SampleRunner
from .sampling import plan_sampling
from .uncertainty import MaskAgreement, segment_summary

#: Working-memory model of :func:`working_memory` (bytes).
BYTES_PER_PIXEL, BYTES_PER_PIXEL_AND_CLASS, RUNTIME_BYTES = 8, 24, 512 * 2**20
#: progress(stage, fraction 0..1, message); may raise to stop the run between batches.
Progress = Callable[[str, float, str], None]


def working_memory(pixels: int, n_classes: int) -> int:
    """Bytes a prediction of ``pixels`` image pixels needs at its peak, an upper estimate: the maps
    (3 float32 per pixel and class) with their per-chunk torch copies, the frames, and the runtime.
    Measured: an 8000 x 8000 frame with 1 class peaked at 2.3 GB (estimate 2.5 GB)."""
    return pixels * (BYTES_PER_PIXEL + BYTES_PER_PIXEL_AND_CLASS * n_classes) + RUNTIME_BYTES


def check_input(bundle: ModelBundle, image: sitk.Image, source: str = "input image") -> np.ndarray:
    """The image's frames (N, H, W) float32 after checking it suits the bundle's model."""
    in_channels = bundle.config.in_channels
    if in_channels != 1:
        raise ConfidenceSegError(f"model {bundle.path} expects {in_channels} input channels; "
                                 "ConfidenceSeg feeds one intensity channel")
    array = image_frames(image, source)
    if bundle.spatial_dims == 3 and image.GetDimension() != 3:
        raise ConfidenceSegError(f"{source} is 2D but model {bundle.path} is a 3D model; give it a 3D volume")
    if bundle.spatial_dims == 3 and min(array.shape) < 2:
        raise ConfidenceSegError(f"{source} has size {image.GetSize()}: too thin for 3D model {bundle.path}")
    needed = working_memory(array.size, len(bundle.classes))
    available = available_memory()
    if available is not None and needed > available:
        raise ConfidenceSegError(f"{source} ({array.size / 1e6:.0f} megapixels, {len(bundle.classes)} classes) needs "
                                 f"about {needed / 2**30:.1f} GiB of memory to predict; {available / 2**30:.1f} GiB "
                                 "is available (crop or downsample the image, or free memory)")
    return array


def predict_image(bundle: ModelBundle, image: sitk.Image, method: str = "auto", samples: int | None = None,
                  device: str | torch.device | None = None, progress: Progress | None = None) -> Prediction:
    """Segment ``image`` with uncertainty: every map and summary on the image grid, SimpleITK order."""
    if bundle.config.nnunet is not None:
        from .nnunet_predict import predict_nnunet

        return predict_nnunet(bundle, image, method, samples, device if isinstance(device, torch.device)
                              else pick_device(device or "auto"), progress)
    started = time.perf_counter()
    plan = plan_sampling(len(bundle.members), method, samples)
    array = check_input(bundle, image)
    runner = SampleRunner(bundle, plan, device if isinstance(device, torch.device) else pick_device(device or "auto"),
                          progress or (lambda stage, fraction, message: None))
    frame_agreements = None
    with torch.inference_mode():
        if bundle.spatial_dims == 2:
            maps, frame_agreements = runner.frames(array)
            agreement = MaskAgreement.combined(frame_agreements)
        else:
            maps, agreement = runner.volume(array, spacing_zyx(image))
    inferred = time.perf_counter()
    if not all(np.isfinite(value).all() for value in maps.values()):
        raise ConfidenceSegError(f"model {bundle.path} gave non-finite values (NaN or infinity) on this image: "
                                 "its weights are broken; retrain or reinstall it")
    if image.GetDimension() == 2:
        maps = {key: value[:, 0] for key, value in maps.items()}
    voxel_size = float(np.prod(image.GetSpacing()))
    stack = bundle.spatial_dims == 2 and image.GetDimension() == 3
    # model-grid pixel / voxel sizes in mm, for the samples' measurements
    shape, grid = array.shape, agreement.grid_shape
    pixel_mm = (image.GetSpacing()[1], image.GetSpacing()[0])
    sample_pixel_mm = (pixel_mm[0] * shape[-2] / grid[-2], pixel_mm[1] * shape[-1] / grid[-1])
    sample_voxel_mm3 = voxel_size * float(np.prod(shape)) / float(np.prod(grid)) / (
        1.0 if bundle.spatial_dims == 3 else shape[0])
    classes = []
    for index, (name, steps) in enumerate(zip(bundle.classes, class_steps(bundle.config.postprocessing, bundle.classes),
                                              strict=True)):
        probability = maps["probability"][index]
        mask = predicted_mask(probability)
        mask = apply_per_frame(mask, steps) if bundle.spatial_dims == 2 else apply_steps(mask, steps)
        entropy, information = maps["entropy"][index], maps["mutual_information"][index]
        summary = segment_summary(mask, probability, entropy, information, agreement.summary(index),
                                  in_plane=stack)
        frames = frame_sizes = None
        if image.GetDimension() == 2:
            sizes = frame_measurements(mask, frame_agreements[0].moments[index], pixel_mm, sample_pixel_mm)
        else:
            sizes = volume_measurement(int(mask.sum()), agreement.sample_volumes(index), voxel_size, sample_voxel_mm3)
        if stack:  # each frame as the 2D image it is
            frames = [segment_summary(mask[k], probability[k], entropy[k], information[k],
                                      frame_agreements[k].summary(index)) for k in range(mask.shape[0])]
            frame_sizes = [frame_measurements(mask[k], frame_agreements[k].moments[index], pixel_mm, sample_pixel_mm)
                           for k in range(mask.shape[0])]
        classes.append(ClassPrediction(name, mask, probability, entropy, information, summary, sizes, frames,
                                       frame_sizes))
    finished = time.perf_counter()
    timings = {"inference_s": inferred - started, "summary_s": finished - inferred, "total_s": finished - started}
    embeddings = {name: np.concatenate([chunk[name] for chunk in runner.embeddings]) for name in runner.embeddings[0]} \
        if runner.embeddings else None
    flat = array.reshape(array.shape[0] if bundle.spatial_dims == 2 else 1, -1)
    return Prediction(image=image, method=plan.method, samples=plan.samples, device=describe_device(runner.device),
                      timings=timings, classes=classes, embeddings=embeddings, blank=flat.min(1) == flat.max(1))
