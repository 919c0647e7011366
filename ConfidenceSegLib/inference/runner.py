"""Running a sampling plan on frames or a volume, sharing work between samples, streaming statistics.

MC-dropout masks are drawn once per run with a fixed seed, so results are reproducible and each
sample is the same thinned network on every frame, slab and window.

Work is shared between samples: the deterministic backbone runs once per frame batch (or volume)
and source (member or flip; flips are batched into one backbone call), and MC-dropout samples
re-run only the head on the cached features, several samples per call
(:mod:`~ConfidenceSegLib.inference.head_sampling`). Statistics are aggregated while streaming over chunks
(:mod:`~ConfidenceSegLib.inference.uncertainty`), so memory does not grow with the number of samples.

Postprocessing (:mod:`.postprocessing`): for 2D models each sample's mask follows the bundle's
chosen steps before it is accumulated.

Grids: samples live on the model grid. The mean probability and the expected entropy are resized
to the image grid once per chunk; predictive entropy is computed from the resized mean
probability and MI = PE - EE there. Resizing EE instead of resizing each sample first is an
approximation near edges (bilinear interpolation of a concave function underestimates it, so MI
is slightly overestimated there); it is exact where the grids coincide. Sample-mask statistics
(pairwise Dice, IoU of all samples, volume CV, present fraction) are computed on the model grid.

CUDA out of memory: the chunk is retried with half the batch sizes, then on the CPU, with a warning.
"""

from __future__ import annotations

import contextlib
import logging
import math

import numpy as np
import torch

from ..contract import ConfidenceSegError
from ..model.bundle import ModelBundle
from ..model.preprocessing import sliding_window, to_image_grid, to_model_input, volume_to_model_input
from .embedding import EmbeddingRecorder
from .head_sampling import draw_dropout_masks, head_halo, sample_head_logits
from .postprocessing import class_steps, postprocess_sample_logits
from .sampling import SamplingPlan
from .uncertainty import ChunkAccumulator, MaskAgreement, entropy_from_probability

logger = logging.getLogger(__name__)

#: Frames of a stack per chunk (2D models) and z-slices per slab (3D models).
FRAME_BATCH = 4
SLAB_DEPTH = 16
#: Samples x voxels per head call (bounds the head's intermediate memory).
HEAD_VOXEL_BUDGET = 1 << 19  # measured fastest on CPU (smaller chunks stay in cache)
SEED = 0


def _flip(tensor: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    return tensor.flip(dims) if dims else tensor


class SampleRunner:
    """Runs a sampling plan chunk by chunk on one device, halving batches / moving to CPU on CUDA OOM."""

    def __init__(self, bundle: ModelBundle, plan: SamplingPlan, device: torch.device, progress):
        """``progress(stage, fraction, message)`` is called after every chunk (it may raise to stop)."""
        self.bundle = bundle
        self.plan = plan
        self.progress = progress
        self.frame_batch = FRAME_BATCH
        self.slab_depth = SLAB_DEPTH
        self.head_budget = HEAD_VOXEL_BUDGET
        self.n_classes = len(bundle.classes)
        self.class_steps = class_steps(bundle.config.postprocessing, bundle.classes)
        generator = torch.Generator().manual_seed(SEED)
        self.dropout_masks = [
            draw_dropout_masks(bundle.members[member].head, count, generator) if plan.stochastic else []
            for (member, _), count in zip(plan.sources, plan.counts, strict=True)]
        #: What the first member's encoder sees (:mod:`.embedding`): one descriptor per frame (2D) or volume.
        self.recorder = EmbeddingRecorder(bundle.members[plan.sources[0][0]])
        self.embeddings: list[dict[str, np.ndarray]] = []  # per frame chunk (2D) or one for the volume
        self._move_to(device)

    def _move_to(self, device: torch.device) -> None:
        self.device = device
        for member, _ in self.plan.sources:
            self.bundle.members[member].to(device).eval()

    def _out_of_memory(self) -> None:
        """Called on CUDA OOM: halve the batch sizes, else fall back to the CPU."""
        if self.device.type == "cpu":
            raise ConfidenceSegError("out of memory on the CPU; use a smaller image or fewer samples")
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        if self.frame_batch > 1 or self.slab_depth > 1 or self.head_budget > 1 << 14:
            self.frame_batch = max(1, self.frame_batch // 2)
            self.slab_depth = max(1, self.slab_depth // 2)
            self.head_budget = max(1 << 14, self.head_budget // 2)
            logger.warning("GPU out of memory: retrying with smaller batches (%d frames, %d slices)",
                           self.frame_batch, self.slab_depth)
        else:
            logger.warning("GPU out of memory even with the smallest batches: falling back to the CPU (slower)")
            self._move_to(torch.device("cpu"))

    def _groups(self) -> dict[int, list[int]]:
        """Source indices by member, so one backbone call serves all flips of a member."""
        groups: dict[int, list[int]] = {}
        for index, (member, _) in enumerate(self.plan.sources):
            groups.setdefault(member, []).append(index)
        return groups

    def _add_samples(self, chunk: ChunkAccumulator, source: int, features: torch.Tensor,
                     crop: slice | None = None) -> None:
        """Run the head of ``source`` on its features and add the (unflipped, cropped) samples to ``chunk``."""
        member_index, flip = self.plan.sources[source]
        member = self.bundle.members[member_index]
        if self.plan.stochastic:
            per_call = max(1, self.head_budget // math.prod(features.shape[:1] + features.shape[2:]))
            masks = self.dropout_masks[source]
            batches = [[m[start:start + per_call] for m in masks]
                       for start in range(0, self.plan.counts[source], per_call)]
        else:
            batches = [None]
        for batch_masks in batches:
            logits = (member.head_logits(features)[None] if batch_masks is None
                      else sample_head_logits(member.head, features, batch_masks))
            logits = _flip(logits, flip)
            # without crop (2D frames): each sample postprocessed as the final mask will be
            logits = (logits[:, :, :, crop] if crop is not None
                      else postprocess_sample_logits(logits, self.class_steps))
            chunk.add(logits)

    def _image_grid_maps(self, chunk: ChunkAccumulator, shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
        return self._maps_from_model_grid(chunk.mean_probability(), chunk.expected_entropy(), shape)

    def _maps_from_model_grid(self, mean_probability: torch.Tensor, expected_entropy: torch.Tensor,
                              shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
        probability = to_image_grid(mean_probability, shape)
        entropy = entropy_from_probability(probability)
        if self.plan.samples == 1:
            information = torch.zeros_like(entropy)
        else:
            information = (entropy - to_image_grid(expected_entropy, shape)).clamp_min_(0.0)
        return {"probability": probability, "entropy": entropy, "mutual_information": information}

    def frames(self, frames: np.ndarray) -> tuple[dict[str, np.ndarray], list[MaskAgreement]]:
        """2D model on N frames (N, H, W): maps (C, N, H, W) float32 and each frame's sample agreement."""
        n_frames, frame_shape = frames.shape[0], frames.shape[1:]
        maps = {key: np.empty((self.n_classes, *frames.shape), dtype=np.float32)
                for key in ("probability", "entropy", "mutual_information")}
        grid = tuple(self.bundle.config.preprocessing["input_size"])
        agreements = [MaskAgreement(self.plan.samples, self.n_classes, grid, frame=True) for _ in range(n_frames)]
        start = 0
        while start < n_frames:
            end = min(start + self.frame_batch, n_frames)
            self.recorder.take()  # nothing of an attempt that ran out of memory
            try:
                chunk_maps, foreground = self._frame_chunk(frames[start:end], frame_shape)
            except torch.OutOfMemoryError:
                self._out_of_memory()
                continue
            self.embeddings.append(self.recorder.take())
            per_frame = foreground.reshape(*foreground.shape[:2], end - start, -1)  # (C, M, frames, pixels)
            for offset in range(end - start):
                agreements[start + offset].add(per_frame[:, :, offset])
            for key, value in chunk_maps.items():
                maps[key][:, start:end] = value.transpose(0, 1).float().cpu().numpy()
            start = end
            self.progress("predict", end / n_frames, f"frame {end} of {n_frames}")
        return maps, agreements

    def _frame_chunk(self, frames: np.ndarray, frame_shape: tuple[int, ...]):
        preprocessing = self.bundle.config.preprocessing
        x = to_model_input(frames, preprocessing).to(self.device)
        chunk = ChunkAccumulator(self.plan.samples, (x.shape[0], self.n_classes, *x.shape[2:]), self.device)
        for member_index, sources in self._groups().items():
            flips = [self.plan.sources[source][1] for source in sources]
            with self.recorder.recording(keep=x.shape[0]) if member_index == self.plan.sources[0][0] else \
                    contextlib.nullcontext():
                features = self.bundle.members[member_index].features(torch.cat([_flip(x, f) for f in flips]))
            for source, source_features in zip(sources, features.split(x.shape[0]), strict=True):
                self._add_samples(chunk, source, source_features)
        return self._image_grid_maps(chunk, tuple(frame_shape)), chunk.foreground

    def volume(self, volume: np.ndarray, spacing: tuple[float, ...]) -> tuple[dict[str, np.ndarray], MaskAgreement]:
        """3D model on a volume (Z, Y, X): maps (C, Z, Y, X) float32 and the sample agreement.

        The volume is normalised as a whole and resampled to the bundle's ``spacing`` ((z, y, x) mm)
        when it has one; the backbone runs once per source with sliding windows of ``roi_size``.
        """
        x = volume_to_model_input(volume, spacing, self.bundle.config.preprocessing)
        while True:
            try:
                return self._volume_on_device(x.to(self.device), volume.shape)
            except torch.OutOfMemoryError:
                self._out_of_memory()

    def _volume_on_device(self, x: torch.Tensor, image_shape: tuple[int, ...]):
        roi_size = self.bundle.config.preprocessing["roi_size"]
        features = [None] * len(self.plan.sources)
        groups = self._groups()
        self.recorder.take()  # nothing of an attempt that ran out of memory
        for done, (member_index, sources) in enumerate(groups.items()):
            flips = [self.plan.sources[source][1] for source in sources]
            with self.recorder.recording() if member_index == self.plan.sources[0][0] else \
                    contextlib.nullcontext():
                batch = sliding_window(torch.cat([_flip(x, f) for f in flips]), roi_size,
                                       self.bundle.members[member_index].features)
            for source, source_features in zip(sources, batch.split(1), strict=True):
                features[source] = source_features
            self.progress("features", (done + 1) / len(groups), f"backbone {done + 1} of {len(groups)}")
        depth = x.shape[2]
        halo = max(head_halo(self.bundle.members[member].head) for member, _ in self.plan.sources)
        model_shape = (1, self.n_classes, *x.shape[2:])
        mean_probability = torch.empty(model_shape, device=self.device)
        expected_entropy = torch.empty(model_shape, device=self.device)
        agreement = MaskAgreement(self.plan.samples, self.n_classes, tuple(x.shape[2:]))
        for start in range(0, depth, self.slab_depth):
            end = min(start + self.slab_depth, depth)
            low, high = max(start - halo, 0), min(end + halo, depth)
            chunk = ChunkAccumulator(self.plan.samples, (1, self.n_classes, end - start, *x.shape[3:]), self.device)
            for source, source_features in enumerate(features):
                self._add_samples(chunk, source, source_features[:, :, low:high],
                                  crop=slice(start - low, start - low + end - start))
            agreement.add(chunk.foreground)
            mean_probability[:, :, start:end] = chunk.mean_probability()
            expected_entropy[:, :, start:end] = chunk.expected_entropy()
            self.progress("predict", end / depth, f"slice {end} of {depth}")
        maps = self._maps_from_model_grid(mean_probability, expected_entropy, tuple(image_shape))
        self.embeddings = [{name: windows.mean(axis=0, keepdims=True)
                            for name, windows in self.recorder.take().items()}]
        return {key: value[0].float().cpu().numpy() for key, value in maps.items()}, agreement

