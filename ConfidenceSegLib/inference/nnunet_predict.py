"""Predicting with an nnU-Net v2 model: each fold is an ensemble member, its probabilities nnU-Net's own.

Per fold, nnU-Net's predictor runs its preprocessing (once), its sliding window with mirroring on the
fold's weights, and its export path (``convert_predicted_logits_to_segmentation_with_correct_shape``:
resampling, softmax or sigmoid, uncropping, axis order) to the fold's probabilities and segmentation on
the input's grid. The folds stream: each one's probabilities are folded into running sums (mean
probability and mean entropy per class) and only its label map (one byte a voxel, :class:`MemberMasks`)
is kept for the agreement between members, so memory does not grow with the number of folds (nor the
number of structures) beyond that.

Classes: every foreground label (softmax; its probability is the label's channel, "this label or not"),
or every region (region-based training, sigmoid). The segmentation is the argmax of the members' mean
probabilities (regions: mean >= 0.5); nnU-Net's own ensemble averages logits instead, which differs at
a few boundary voxels. Maps, agreement, measurements and summaries are then those of ConfidenceSeg's own
models (:mod:`.uncertainty`, :mod:`.measurements`), on the image grid.
"""

from __future__ import annotations

import contextlib
import sys
import time

import numpy as np
import SimpleITK as sitk
import torch

from ..contract import ConfidenceSegError
from ..io.images import as_scalar_image
from ..model.devices import describe_device
from ..model.nnunet_model import NnunetBundle
from .measurements import frame_measurements, volume_measurement
from .prediction import ClassPrediction, Prediction
from .uncertainty import MaskAgreement, entropy_from_probability, segment_summary

#: nnU-Net's "no slice distance" for 2D images (its SimpleITK reader uses the same).
NO_SLICE_SPACING = 999.0


def nnunet_input(bundle: NnunetBundle, image: sitk.Image, source: str = "input image") -> tuple[np.ndarray, list]:
    """The image as nnU-Net takes it: (channels, z, y, x) float32 (z = 1 for a 2D image) and (z, y, x) spacing."""
    channels = bundle.config.in_channels
    if image.GetDimension() not in (2, 3):
        raise ConfidenceSegError(f"{source} is {image.GetDimension()}D; expected a 2D image or a 3D volume")
    if bundle.spatial_dims == 3 and image.GetDimension() != 3:
        raise ConfidenceSegError(f"{source} is 2D but the nnU-Net model {bundle.path} is a 3D model")
    if channels == 1:
        array = sitk.GetArrayFromImage(as_scalar_image(image, source))[np.newaxis]
    elif image.GetNumberOfComponentsPerPixel() == channels:
        array = np.moveaxis(sitk.GetArrayFromImage(image).astype(np.float32), -1, 0)
    else:
        components = image.GetNumberOfComponentsPerPixel()
        raise ConfidenceSegError(f"the nnU-Net model {bundle.path} takes {channels} input channels; {source} has "
                                 f"{components} (give one image with {channels} components, or "
                                 "channel 0's file CASE_0000<ending> with CASE_0001<ending>, ... beside it)")
    if not np.all(np.isfinite(array)):
        raise ConfidenceSegError(f"{source} contains NaN or infinite values")
    spacing = list(reversed(image.GetSpacing()))
    if image.GetDimension() == 2:
        array, spacing = array[:, np.newaxis], [NO_SLICE_SPACING, *spacing]
    return np.ascontiguousarray(array, dtype=np.float32), spacing


def check_sampling(bundle: NnunetBundle, method: str, samples: int | None) -> None:
    if method not in ("auto", "ensemble"):
        raise ConfidenceSegError(f"an nnU-Net model samples its folds: --method ensemble (or auto), not {method}")
    if samples not in (None, len(bundle.members)):
        raise ConfidenceSegError(f"the nnU-Net model {bundle.path} has {len(bundle.members)} folds: --samples "
                                 f"{samples} is not possible (leave it out)")


def predict_nnunet(bundle: NnunetBundle, image: sitk.Image, method: str = "auto", samples: int | None = None,
                   device: torch.device | None = None, progress=None) -> Prediction:
    """Segment ``image`` with every fold of ``bundle``: maps, masks and summaries on the image grid."""
    check_sampling(bundle, method, samples)
    progress = progress or (lambda stage, fraction, message: None)
    device = device or torch.device("cpu")
    started = time.perf_counter()
    array, spacing = nnunet_input(bundle, image)
    predictor = bundle.predictor(device)
    labels = bundle.label_manager
    with contextlib.redirect_stdout(sys.stderr):
        preprocessor = predictor.configuration_manager.preprocessor_class(verbose=False)
        data, _, properties = preprocessor.run_case_npy(array, None, {"spacing": spacing}, predictor.plans_manager,
                                                        predictor.configuration_manager, predictor.dataset_json)
    grid, n_classes, n_members = array.shape[1:], len(bundle.classes), len(bundle.members)
    sum_probability = torch.zeros((n_classes, *grid))
    sum_entropy = torch.zeros((n_classes, *grid))
    member_masks = MemberMasks(n_members, n_classes, grid, labels.has_regions)
    x = torch.from_numpy(data)
    for index, weights in enumerate(bundle.weights):
        progress("predict", index / n_members, f"nnU-Net fold {index + 1} of {n_members}")
        probability = member_probability(predictor, weights, x, properties)
        foreground = probability if labels.has_regions else probability[1:]
        sum_probability += foreground
        sum_entropy += entropy_from_probability(foreground)
        member_masks.keep(index, foreground, None if labels.has_regions else probability[0])
    inferred = time.perf_counter()
    mean = sum_probability / n_members
    background = None if labels.has_regions else (1.0 - mean.sum(0)).clamp_(0.0, 1.0)
    masks = class_masks(mean, labels.has_regions, background)
    entropy = entropy_from_probability(mean)
    information = (entropy - sum_entropy / n_members).clamp_min_(0.0) if n_members > 1 else torch.zeros_like(entropy)
    maps = {"probability": mean.numpy(), "entropy": entropy.numpy(), "mutual_information": information.numpy()}
    classes = class_predictions(bundle, image, masks, maps, member_masks)
    finished = time.perf_counter()
    flat = array.reshape(array.shape[0], array.shape[1], -1) if bundle.spatial_dims == 2 else array.reshape(1, 1, -1)
    return Prediction(image=image, method="ensemble", samples=n_members, device=describe_device(device),
                      timings={"inference_s": inferred - started, "summary_s": finished - inferred,
                               "total_s": finished - started},
                      classes=classes, embeddings=None, blank=(flat.min(2) == flat.max(2)).all(0))


def member_probability(predictor, weights: dict, x: torch.Tensor, properties: dict) -> torch.Tensor:
    """One fold's probabilities on the image grid (channels, z, y, x), through nnU-Net's own export path."""
    from nnunetv2.inference.export_prediction import convert_predicted_logits_to_segmentation_with_correct_shape

    predictor.network.load_state_dict(weights)
    with contextlib.redirect_stdout(sys.stderr):
        logits = predictor.predict_sliding_window_return_logits(x).cpu()
        _, probability = convert_predicted_logits_to_segmentation_with_correct_shape(
            logits, predictor.plans_manager, predictor.configuration_manager, predictor.label_manager, properties,
            return_probabilities=True, num_threads_torch=torch.get_num_threads())
    return torch.as_tensor(np.ascontiguousarray(probability), dtype=torch.float32)


def class_masks(foreground: torch.Tensor, regions: bool, background: torch.Tensor | None) -> np.ndarray:
    """Each class's mask (classes, z, y, x) bool: regions where p >= 0.5; labels where theirs is the largest
    probability (background included)."""
    if regions:
        return (foreground >= 0.5).numpy()
    best, label = foreground.max(0)
    return ((label[None] == torch.arange(foreground.shape[0]).view(-1, *[1] * label.dim()))
            & (best > background)[None]).numpy()


class MemberMasks:
    """Every fold's masks, kept compactly for the agreement between folds: one label map per fold (a byte a
    voxel; two past 254 labels) for softmax labels, a bool per class and fold for regions (they overlap)."""

    def __init__(self, n_members: int, n_classes: int, grid: tuple[int, ...], regions: bool):
        self.n_members, self.n_classes, self.regions = n_members, n_classes, regions
        dtype = bool if regions else np.uint8 if n_classes < 255 else np.uint16
        self.stored = np.zeros((n_members, n_classes, *grid) if regions else (n_members, *grid), dtype)

    def keep(self, member: int, foreground: torch.Tensor, background: torch.Tensor | None) -> None:
        """Store fold ``member``'s masks from its probabilities (classes, z, y, x) (:func:`class_masks`'s rule)."""
        if self.regions:
            self.stored[member] = class_masks(foreground, True, None)
            return
        best, label = foreground.max(0)
        codes = label.to(torch.uint8 if self.stored.dtype == np.uint8 else torch.int16).add_(1)
        del label  # int64: the codes take a byte or two a voxel
        self.stored[member] = codes.masked_fill_(best <= background, 0).numpy()

    def frames(self, start: int, stop: int) -> np.ndarray:
        """The folds' masks of frames ``start`` .. ``stop`` - 1: (members, classes, frames, y, x) bool."""
        if self.regions:
            return self.stored[:, :, start:stop]
        labels = self.stored[:, start:stop]
        values = np.arange(1, self.n_classes + 1, dtype=labels.dtype).reshape(1, -1, 1, 1, 1)
        return labels[:, None] == values


def class_predictions(bundle: NnunetBundle, image: sitk.Image, masks: np.ndarray, maps: dict[str, np.ndarray],
                      member_masks: MemberMasks) -> list[ClassPrediction]:
    """Per class: maps, summary and measurements, per frame too for a 2D model on a stack (arrays (z, y, x),
    z = 1 for a 2D image, squeezed in what is returned)."""
    two_d, stack = image.GetDimension() == 2, bundle.spatial_dims == 2 and image.GetDimension() == 3
    pixel_mm, voxel_mm3 = (image.GetSpacing()[1], image.GetSpacing()[0]), float(np.prod(image.GetSpacing()))
    n_members, n_classes, frames = member_masks.n_members, member_masks.n_classes, masks.shape[1]

    def chunk(start: int, stop: int) -> torch.Tensor:  # (classes, members, pixels), as MaskAgreement takes it
        return torch.from_numpy(member_masks.frames(start, stop).reshape(n_members, n_classes, -1)
                                .transpose(1, 0, 2).copy())

    if bundle.spatial_dims == 2:
        agreements = [MaskAgreement(n_members, n_classes, masks.shape[2:], frame=True) for _ in range(frames)]
        for frame, agreement in enumerate(agreements):
            agreement.add(chunk(frame, frame + 1))
        whole = MaskAgreement.combined(agreements)
    else:
        whole = MaskAgreement(n_members, n_classes, masks.shape[1:])
        for start in range(0, frames, 8):
            whole.add(chunk(start, start + 8))
    results = []
    for index, name in enumerate(bundle.classes):
        mask, probability, entropy, information = (
            array[index][0] if two_d else array[index]
            for array in (masks, maps["probability"], maps["entropy"], maps["mutual_information"]))
        summary = segment_summary(mask, probability, entropy, information, whole.summary(index), in_plane=stack)
        if two_d:
            sizes = frame_measurements(mask, agreements[0].moments[index], pixel_mm, pixel_mm)
        else:
            sizes = volume_measurement(int(mask.sum()), whole.sample_volumes(index), voxel_mm3, voxel_mm3)
        per_frame = per_frame_sizes = None
        if stack:
            per_frame = [segment_summary(mask[k], probability[k], entropy[k], information[k],
                                         agreements[k].summary(index)) for k in range(frames)]
            per_frame_sizes = [frame_measurements(mask[k], agreements[k].moments[index], pixel_mm, pixel_mm)
                               for k in range(frames)]
        results.append(ClassPrediction(name, mask, probability, entropy, information, summary, sizes, per_frame,
                                       per_frame_sizes))
    return results
