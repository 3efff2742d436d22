"""One labelling session: a capture folder, its label editor and where things are saved (no Qt).

The widget is a thin view over this object (STYLE.md 2), so tests drive the
session directly where a GUI is not the point.
"""
from __future__ import annotations

import getpass
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.build_info import app_version
from core.labels import store
from core.clock import utc_now_iso
from core.dataset.nemesis_files import read_nemesis_ground_truth
from core.errors import DatasetError
from core.labels.editor import LabelEditor
from core.labels.geometry import Rect


@dataclass
class Prediction:
    """A classification to start labelling from: ``labels`` uint8 (H, W), ``probabilities`` float32 (H, W, C).

    ``model``: identity of the model that made it, ``{"name", "version", "sha256"}``
    (recorded in meta.json when the labels start from this prediction).
    """

    labels: np.ndarray
    probabilities: np.ndarray | None = None
    model: dict[str, str] | None = None


class LabellingSession:
    """Labels of one capture folder (``DATASET/<capture_id>/`` or any folder holding the capture).

    ``shape`` is the cube's ``(H, W)``; ``valid`` optional bool ``(H, W)`` validity
    mask (fills stop at invalid pixels). Labels start from ``labels.png`` in the
    folder when it exists (and matches the shape), else all unlabelled.
    ``recovery_available`` tells whether an autosave newer than ``labels.png`` is
    waiting to be restored; ``removed_temp_files`` lists what an interrupted save
    had left behind (removed on open).
    """

    def __init__(
        self,
        folder: str | Path,
        shape: tuple[int, int],
        *,
        author: str | None = None,
        valid: np.ndarray | None = None,
    ) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise DatasetError(self.folder, "capture folder does not exist")
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"label map shape must be (H, W) with H, W >= 1, got {shape}")
        self.removed_temp_files = store.remove_stale_temp_files(self.folder)
        self.counts_fixed = store.reconcile_counts(self.folder)  # a save killed between labels.png and meta.json
        labels = np.zeros(tuple(int(s) for s in shape), np.uint8)
        saved = self.folder / store.LABELS_NAME
        if saved.is_file():
            from core.labels.maps import read_label_png

            stored = read_label_png(saved)
            if stored.shape != labels.shape:
                raise DatasetError(saved, f"label map is {stored.shape[0]}x{stored.shape[1]}, "
                                          f"the capture's cube is {labels.shape[0]}x{labels.shape[1]}")
            labels = stored
        self.editor = LabelEditor(labels)
        if valid is not None:
            valid = np.asarray(valid, dtype=bool)
            if valid.shape != labels.shape:
                raise ValueError(f"validity mask {valid.shape} does not match the label map {labels.shape}")
            self.editor.valid = valid
        self.os_user = os_user()
        self.author = (author or "").strip() or self.os_user  # display name, editable in Settings
        self.prelabel_model: dict[str, str] | None = None
        self._prelabel_step: int | None = None  # the undo step that copied the prediction in
        # (raw, dark, white) of a camera capture: copied into the folder on save so it can be trained on
        self.capture_files: tuple[Path, Path, Path] | None = None
        self.first_edit: str | None = None  # ISO 8601 UTC of this session's edits
        self.last_edit: str | None = None
        self.editor.listeners.append(self._edited)
        self._saved_state = self.editor.state_id
        self._autosaved_revision = self.editor.revision

    def _edited(self, _rect: Rect) -> None:
        self.last_edit = utc_now_iso()
        self.first_edit = self.first_edit or self.last_edit

    # ---- state
    @property
    def dirty(self) -> bool:
        """The map differs from the last save (or from what was opened); undoing back to it makes it clean."""
        return self.editor.state_id != self._saved_state or self.editor.stroking

    @property
    def needs_autosave(self) -> bool:
        return self.editor.revision != self._autosaved_revision

    @property
    def recovery_available(self) -> bool:
        return store.recovery_pending(self.folder)

    # ---- recovery
    def read_recovery(self) -> tuple[np.ndarray, dict] | None:
        """The autosaved labels and info (None when there are none).

        Raises ``DatasetError`` naming the file when it is damaged or does not fit the capture.
        """
        found = store.read_recovery(self.folder)
        if found is not None and found[0].shape != self.editor.shape:
            raise DatasetError(store.recovery_path(self.folder),
                               f"recovered labels are {found[0].shape}, the capture is {self.editor.shape}")
        return found

    def restore_recovery(self, found: tuple[np.ndarray, dict] | None = None) -> bool:
        """Replace the labels with the autosaved ones (one undo step). False when there are none."""
        found = found if found is not None else self.read_recovery()
        if found is None:
            return False
        labels, info = found
        self.editor.replace_all(labels)
        model = info.get("prelabel_model")
        if isinstance(model, dict):
            self.prelabel_model, self._prelabel_step = model, self.editor.state_id
        if isinstance(info.get("first_edit"), str):
            self.first_edit = min(info["first_edit"], self.first_edit or info["first_edit"])
        return True

    def set_aside_recovery(self, why: str = "discarded") -> Path | None:
        """Move the recovery file to ``recovered/`` (declined or damaged; never deleted)."""
        return store.set_aside_recovery(self.folder, why=why)

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

    def discard_changes(self) -> Path | None:
        """The user chose Discard: keep the unsaved map in ``recovered/`` anyway and mark the session clean.

        Returns where the discarded labels went (None when there was nothing unsaved).
        """
        if not self.dirty:
            return None
        if self.editor.stroking:
            self.editor.end_stroke()
        store.write_recovery(self.folder, self.editor.labels, info=self._info())
        self._saved_state = self.editor.state_id
        self._autosaved_revision = self.editor.revision
        return self.set_aside_recovery("discarded")

    def close(self) -> None:
        """On closing: autosave unsaved work (next open offers it); a stale recovery file goes to ``recovered/``."""
        if self.dirty:
            if self.editor.stroking:
                self.editor.end_stroke()
            self.autosave()
        elif self.recovery_available:
            # a clean map with a newer autosave: the user undid those edits; keep them aside, offer nothing
            self.set_aside_recovery("undone")

    # ---- saving and importing
    def save(self) -> Path:
        """Write labels.png and meta.json (with provenance) atomically; removes the recovery file.

        The undo history is kept: saving is not an undo barrier.
        """
        if self.editor.stroking:
            self.editor.end_stroke()
        state, revision = self.editor.state_id, self.editor.revision
        path = store.save_labels(
            self.folder, self.editor.labels, author=self.author, os_user=self.os_user,
            first_edit=self.first_edit, last_edit=self.last_edit, prelabel_model=self.effective_prelabel_model,
            tool_version=app_version(),
        )
        self._saved_state, self._autosaved_revision = state, revision
        if self.capture_files is not None:
            from core.dataset.camera_captures import adopt_capture_files

            adopt_capture_files(self.folder, *self.capture_files)
        return path

    def prediction_change(self, prediction: Prediction, threshold: float = 0.0) -> tuple[int, int]:
        """(pixels that would change, of which labelled now) if :meth:`copy_prediction` ran."""
        indices = self.editor.prediction_indices(prediction.labels, prediction.probabilities, threshold)
        return int(indices.size), self.editor.labelled_among(indices)

    def copy_prediction(self, prediction: Prediction, threshold: float = 0.0) -> Rect:
        rect = self.editor.copy_prediction(prediction.labels, prediction.probabilities, threshold)
        if not rect.empty and prediction.model:
            self.prelabel_model, self._prelabel_step = dict(prediction.model), self.editor.state_id
        return rect

    @property
    def effective_prelabel_model(self) -> dict[str, str] | None:
        """The prediction's model while the step that copied it is still in the map (None once undone)."""
        if self.prelabel_model is None or self._prelabel_step is None:
            return None
        return self.prelabel_model if self.editor.history.applied(self._prelabel_step) else None

    def import_nemesis(self, path: str | Path) -> Rect:
        """Replace the labels with a NEMESIS ``SNAPgt*.mat`` ground truth (one undo step)."""
        labels = read_nemesis_ground_truth(path)
        if labels.shape != self.editor.shape:
            raise DatasetError(path, f"ground truth is {labels.shape[0]}x{labels.shape[1]}, "
                                     f"the capture's cube is {self.editor.shape[0]}x{self.editor.shape[1]}")
        return self.editor.replace_all(labels)

    def _info(self) -> dict:
        return {"author": self.author, "os_user": self.os_user, "first_edit": self.first_edit,
                "prelabel_model": self.effective_prelabel_model}


def os_user() -> str:
    """The login name of who runs the app ("unknown" where there is none, e.g. in containers)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
