"""One labelling session: a capture folder, its label editor and where things are saved (no Qt).

The widget is a thin view over this object (STYLE.md 2), so tests drive the
session directly where a GUI is not the point.
"""
from __future__ import annotations

import getpass
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import label_store as store
from core.dataset import read_nemesis_ground_truth
from core.errors import DatasetError
from core.label_editor import LabelEditor
from core.label_geometry import Rect


@dataclass
class Prediction:
    """A classification to start labelling from: ``labels`` uint8 (H, W), ``probabilities`` float32 (H, W, C)."""

    labels: np.ndarray
    probabilities: np.ndarray | None = None
    model: str | None = None  # model identity text recorded in meta.json, e.g. "demo 1.0 (1a2b3c4d)"


class LabellingSession:
    """Labels of one capture folder (``DATASET/<capture_id>/`` or any folder holding the capture).

    ``shape`` is the cube's ``(H, W)``. Labels start from ``labels.png`` in the folder
    when it exists (and matches the shape), else all unlabelled. ``recovery_available``
    tells whether an autosave newer than ``labels.png`` is waiting to be restored.
    """

    def __init__(self, folder: str | Path, shape: tuple[int, int], *, author: str | None = None) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise DatasetError(self.folder, "capture folder does not exist")
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"label map shape must be (H, W) with H, W >= 1, got {shape}")
        labels = np.zeros(tuple(int(s) for s in shape), np.uint8)
        saved = self.folder / store.LABELS_NAME
        if saved.is_file():
            from core.labels import read_label_png

            stored = read_label_png(saved)
            if stored.shape != labels.shape:
                raise DatasetError(saved, f"label map is {stored.shape[0]}x{stored.shape[1]}, "
                                          f"the capture's cube is {labels.shape[0]}x{labels.shape[1]}")
            labels = stored
        self.editor = LabelEditor(labels)
        self.author = author or _user()
        self.prelabel_model: str | None = None
        self._saved_revision = self.editor.revision
        self._autosaved_revision = self.editor.revision

    # ---- state
    @property
    def dirty(self) -> bool:
        """Changed since the last save (or since opening)."""
        return self.editor.revision != self._saved_revision

    @property
    def needs_autosave(self) -> bool:
        return self.editor.revision != self._autosaved_revision

    @property
    def recovery_available(self) -> bool:
        return store.recovery_pending(self.folder)

    # ---- recovery
    def restore_recovery(self) -> bool:
        """Replace the labels with the autosaved ones (one undo step). False when there is none or it does not fit."""
        found = store.read_recovery(self.folder)
        if found is None:
            return False
        labels, info = found
        if labels.shape != self.editor.shape:
            raise DatasetError(store.recovery_path(self.folder),
                               f"recovered labels are {labels.shape}, the capture is {self.editor.shape}")
        self.editor.replace_all(labels)
        self.prelabel_model = info.get("prelabel_model", self.prelabel_model)
        return True

    def discard_recovery(self) -> None:
        store.discard_recovery(self.folder)

    def autosave_snapshot(self) -> tuple[int, np.ndarray, dict] | None:
        """What an autosave would write now (revision, copy of labels, info), or None when up to date.

        Split from :meth:`write_autosave` so the widget can copy on the GUI thread
        (fast) and encode the PNG on a worker thread.
        """
        if not self.needs_autosave:
            return None
        return self.editor.revision, self.editor.labels.copy(), self._info()

    def write_autosave(self, snapshot: tuple[int, np.ndarray, dict]) -> Path:
        revision, labels, info = snapshot
        path = store.write_recovery(self.folder, labels, info=info)
        self._autosaved_revision = revision
        return path

    def autosave(self) -> Path | None:
        """Write the recovery file now if anything changed since the last autosave."""
        snapshot = self.autosave_snapshot()
        return None if snapshot is None else self.write_autosave(snapshot)

    # ---- saving and importing
    def save(self) -> Path:
        """Write labels.png and meta.json atomically; removes the recovery file."""
        revision = self.editor.revision
        path = store.save_labels(self.folder, self.editor.labels, author=self.author, model=self.prelabel_model)
        self._saved_revision = self._autosaved_revision = revision
        return path

    def copy_prediction(self, prediction: Prediction, threshold: float = 0.0) -> Rect:
        rect = self.editor.copy_prediction(prediction.labels, prediction.probabilities, threshold)
        if not rect.empty and prediction.model:
            self.prelabel_model = prediction.model
        return rect

    def import_nemesis(self, path: str | Path) -> Rect:
        """Replace the labels with a NEMESIS ``SNAPgt*.mat`` ground truth (one undo step)."""
        labels = read_nemesis_ground_truth(path)
        if labels.shape != self.editor.shape:
            raise DatasetError(path, f"ground truth is {labels.shape[0]}x{labels.shape[1]}, "
                                     f"the capture's cube is {self.editor.shape[0]}x{self.editor.shape[1]}")
        return self.editor.replace_all(labels)

    def _info(self) -> dict:
        return {"author": self.author, "prelabel_model": self.prelabel_model}


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (containers)
        return "unknown"
