"""Installing and reverting models: the generator jobs and the question text the dialog and the CLI share (no Qt).

Both go through :class:`core.model.installed.ModelStore` (the one store every
classify reads) and :func:`core.training.comparison.install_problems` (what the new
model would stop classifying), so ``neurohsi model install`` asks what "Use this
model" asks and records the same history.
"""
from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

from core.model.installed import HistoryEntry, ModelStore

MIN_REASON_CHARS = 8  # "ok", "test": too short to tell a later reader why a worse model went in
OVERRIDE_NOTE = ("This model is NOT recommended: it is worse on tumour sensitivity than the installed model "
                 "(or finds no tumour). Installing it anyway needs a reason, which the model history keeps.")


def install_question(info, verdict: str, problems: list[str]) -> str:
    """The text asked before installing ``info`` (a ModelInfo): its name and version, the verdict, the problems."""
    text = f"Make {info.name} v{info.version} ({info.sha256[:12]}) the model used for classification?\n\n{verdict}"
    if problems:
        text += "\n\nWarning:\n" + "\n".join(f"• {p}" for p in problems)
    return text


def check_reason(reason: str | None) -> str:
    """The override reason, stripped; ValueError when it is too short to mean anything."""
    text = " ".join((reason or "").split())
    if len(text) < MIN_REASON_CHARS:
        raise ValueError(f"an override needs a reason of at least {MIN_REASON_CHARS} characters, got {text!r}")
    return text


def install_job(src: Path, store: ModelStore, name: str, verdict: str, override: str = "",
                ) -> Generator[str, None, HistoryEntry]:
    """Generator job: copy, verify and record the model as the installed one; its history entry."""
    yield f"installing {name}"
    return store.install(src, name=name, verdict=verdict, override=override, via="gui")


def revert_job(store: ModelStore, version: str | None = None) -> Generator[str, None, HistoryEntry]:
    """Generator job: go back to the model before the current one (or ``version``); the revert entry."""
    yield "reverting"
    return store.revert(version, via="gui")


def history_job(store: ModelStore) -> Generator[str, None, tuple[HistoryEntry | None, HistoryEntry | None]]:
    """Generator job: (the installed model's entry, the entry a revert would go back to); reads history.json."""
    yield "reading the model history"
    return store.current(), store.revert_target()
