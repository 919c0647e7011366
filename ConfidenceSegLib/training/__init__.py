"""Confidence-aware training of segmentation ensembles into model bundles (see :mod:`.trainer`)."""

from .trainer import TrainOptions, train_bundle

__all__ = ["TrainOptions", "train_bundle"]
