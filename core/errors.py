"""Domain errors. Each subclasses a builtin so callers may catch ``ValueError``.

Messages are one line and name the file (when there is one) and the problem, so
the CLI can print them as they are and the GUI can show them in a message box.
"""
from __future__ import annotations

from pathlib import Path


class NeuroHSIError(Exception):
    """Base of every error NeuroHSI raises on purpose (bad input, not bugs)."""


class _PathError(NeuroHSIError, ValueError):
    """An error about one file: ``str(err) == "<path>: <problem>"``."""

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(problem if self.path is None else f"{self.path}: {problem}")


class CaptureError(_PathError):
    """A raw, dark or white frame cannot be read or does not fit the profile."""


class ProfileError(NeuroHSIError, ValueError):
    """Unknown or inconsistent camera profile."""


class ModelFileError(_PathError):
    """A model file is missing, corrupt, not a NeuroHSI model or incompatible."""


class DatasetError(_PathError):
    """A dataset folder or archive is missing pieces or is inconsistent."""


class TrainingCancelled(NeuroHSIError):
    """Raised inside training when the progress callback asks to stop."""


# Exceptions that describe bad input (shown as they are); anything else is a bug
# and is shown with its type so it can be reported.
_EXPECTED = (ValueError, OSError)


def one_line(exc: BaseException) -> str:
    """The exception as one line for a user: file name kept, newlines dropped, secrets redacted.

    The CLI prints it after ``neurohsi: error:``; the GUI's error sink shows it; the
    scoring service and the training job log it. Unexpected exceptions (bugs) keep
    their type name so they can be reported.
    """
    from core.redaction import redact

    if isinstance(exc, OSError) and exc.filename:
        text = f"{exc.filename}: {exc.strerror or exc}"
    elif isinstance(exc, (*_EXPECTED, NeuroHSIError)):
        text = str(exc) or exc.__class__.__name__
    else:
        text = f"unexpected {exc.__class__.__name__}: {exc}"
    # Redact before shortening, so a secret is never cut where its pattern no longer matches.
    return escape_controls(shorten(redact(" ".join(text.split()))))


# A message line longer than this echoes the user's input back (a 52 MB option value, a
# 5 MB model header): keep its start (the file) and its end (the problem).
MAX_LINE_CHARS = 600


def shorten(text: str, limit: int = MAX_LINE_CHARS) -> str:
    """``text`` cut in the middle to about ``limit`` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    head, tail = limit * 2 // 3, limit // 3
    return f"{text[:head]} ...[{len(text) - head - tail} characters cut]... {text[-tail:]}"


def escape_controls(text: str) -> str:
    """``text`` with control characters (ESC, BEL, DEL, C1...) written as ``\\xNN``.

    A file name can hold them; printed raw they would drive the user's terminal.
    """
    return "".join(f"\\x{ord(ch):02x}" if (ord(ch) < 32 or 127 <= ord(ch) < 160) else ch for ch in text)
