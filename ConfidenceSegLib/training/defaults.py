"""Training defaults and label modes, shared by ``confidenceseg train`` and the trainer (no torch here,
so that the command line builds its parser without loading the training stack)."""

from __future__ import annotations

from ..model.bundle_config import ARCHITECTURE_NAME

#: How a confidence map becomes a training target (see :mod:`.targets`).
LABEL_MODES = ("threshold", "soft", "weighted")
#: Default threshold of each label mode (60% beats the naive 50% in lung ultrasound).
DEFAULT_THRESHOLD = {"threshold": 0.6, "weighted": 0.5, "soft": None}
DEFAULT_ARCHITECTURE = {"name": ARCHITECTURE_NAME, "spatial_dims": 2, "in_channels": 1,
                        "channels": [16, 32, 64, 128, 256], "strides": [2, 2, 2, 2], "num_res_units": 1,
                        "head_channels": 16, "dropout": 0.2}
DEFAULT_LONG_SIDE = 256
DEFAULT_MEMBERS = 3
DEFAULT_EPOCHS = 30
#: Optimiser steps of each fold member with --folds (the default epochs follow from the training frames, so
#: that a larger data set does not train longer): 18 epochs of the 156 training frames of one 4-fold member
#: of the lung-ultrasound set (208 frames, batch 8); K = 4 members train in about 20 minutes on 2 CPU cores.
FOLD_STEP_BUDGET = 360
MAX_FOLD_EPOCHS = 60
DEFAULT_VALIDATION_FRACTION = 0.2
#: Subjects held out to calibrate the quality badge: never trained on, never chose a checkpoint.
DEFAULT_CALIBRATION_FRACTION = 0.2
DEFAULT_BATCH_SIZE = 8
DEFAULT_BATCH_SIZE_3D = 2
DEFAULT_ROI_SIZE = (64, 64, 64)


def default_fold_epochs(training_frames: int, batch_size: int = DEFAULT_BATCH_SIZE) -> int:
    """Epochs of a fold member training on ``training_frames`` frames: :data:`FOLD_STEP_BUDGET` steps,
    rounded to whole epochs (1 to :data:`MAX_FOLD_EPOCHS`)."""
    steps_per_epoch = max(1, -(-int(training_frames) // batch_size))
    return max(1, min(MAX_FOLD_EPOCHS, round(FOLD_STEP_BUDGET / steps_per_epoch)))
