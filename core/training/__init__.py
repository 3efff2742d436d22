"""Training (the one entry point ``run``: dataset folder to model file), settings, folds, double CV, evaluation, metrics, comparison."""
