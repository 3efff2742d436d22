"""The thesis's training and inference defaults, in one place (thesis section 3.2).

The CLI, the GUI's retraining form, the training backends and the cloud job all
read these; a changed default changes everywhere at once.
"""
from __future__ import annotations

PATCH_SIZE = 7  # px, square patch centred on the pixel
BATCH_SIZE = 16
LEARNING_RATE = 1e-3  # Adam
EPOCHS = 100
FOLDS = 5  # outer and inner folds of double cross-validation
SEED = 0
MODEL_NAME = "conv2dnet"  # the name a trained model gets unless the user gives one (the thesis's network)
REMOTE_DEADLINE_S = 20.0  # s: the whole remote attempt at a map, retries included (issue 14); then local
