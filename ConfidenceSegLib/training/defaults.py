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
#: Epochs of each fold member with --folds: K members x this train in about 30 minutes on 2 CPU cores (K = 4,
#: lung ultrasound, 208 frames).
DEFAULT_FOLD_EPOCHS = 18
DEFAULT_VALIDATION_FRACTION = 0.2
#: Subjects held out to calibrate the quality badge: never trained on, never chose a checkpoint.
DEFAULT_CALIBRATION_FRACTION = 0.2
DEFAULT_BATCH_SIZE = 8
DEFAULT_BATCH_SIZE_3D = 2
DEFAULT_ROI_SIZE = (64, 64, 64)
