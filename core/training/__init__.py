"""Training, folds and double cross-validation, training settings, evaluation, metrics and model comparison."""
