"""Numeric settings read from environment variables (the scoring service's configuration)."""
from __future__ import annotations

import math
import os


def positive_float_env(name: str, default: float) -> float:
    """``float(os.environ[name])``, or ``default`` when unset or empty; ``ValueError`` naming the variable
    when the value is not a positive number."""
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:  # NaN compares false with everything: refuse it explicitly
        raise ValueError(f"{name} must be a positive finite number, got {text!r}")
    return value
