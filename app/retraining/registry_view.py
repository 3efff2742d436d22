"""Registered models: every trained version the chosen backend knows, with the tags that decide its use.

Rows come from ``backend.registered_versions()`` (the Azure ML workspace model registry,
or for the local backend the models its jobs uploaded to storage), as
:func:`remote.training_backends.model_registry.version_row` dicts. The listing runs on
the app's job runner: storage and the workspace are network calls.
"""
from __future__ import annotations

from collections.abc import Callable, Generator

from PySide6 import QtCore, QtWidgets

from app.job_runner import run_job
from core.errors import one_line

PERCENT_KEYS = {"held_out_oacc", "test_oacc_mean"}  # shown as the comparison shows them: 37.7 %, not 0.3771
COLUMNS = (("name", "Name"), ("version", "Registry version"), ("created", "Created"), ("profile", "Camera profile"),
           ("dataset_sha256", "Dataset sha256"), ("held_out_oacc", "Held-out OACC"),
           ("test_oacc_mean", "CV OACC"))


def registry_job(backend_of: Callable[[], object]) -> Generator[str, None, list[dict]]:
    """The rows of the backend ``backend_of()`` returns (a generator job: nothing to yield but a start)."""
    yield "listing"
    backend = backend_of()
    lister = getattr(backend, "registered_versions", None)
    if lister is None:
        raise ValueError(f"the {getattr(backend, 'name', '?')} backend has no model registry")
    return list(lister())


class RegistryView(QtWidgets.QWidget):
    """Table of registered model versions with a Refresh button; ``backend_of`` is called on the worker."""

    listed = QtCore.Signal(int)  # number of rows shown after a refresh

    def __init__(self, backend_of: Callable[[], object], parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.backend_of = backend_of
        self.rows: list[dict] = []
        self._worker = None
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS), self)
        self.table.setObjectName("registry_table")
        self.table.setHorizontalHeaderLabels([title for _key, title in COLUMNS])
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(self.table, 1)
        row = QtWidgets.QHBoxLayout()
        self.status_label = QtWidgets.QLabel("Press Refresh to list the registered models.", self)
        self.status_label.setObjectName("registry_status")
        self.status_label.setWordWrap(True)
        self.refresh_button = QtWidgets.QPushButton("Refresh", self)
        self.refresh_button.setObjectName("registry_refresh")
        self.refresh_button.clicked.connect(self.refresh)
        row.addWidget(self.status_label, 1)
        row.addWidget(self.refresh_button)
        layout.addLayout(row)

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def refresh(self) -> None:
        if self._worker is not None:
            return
        self.refresh_button.setEnabled(False)
        self.status_label.setText("Listing registered models…")

        def done() -> None:
            self._worker = None
            self.refresh_button.setEnabled(True)

        self._worker = run_job(registry_job, self.backend_of, on_return=self.show_rows, on_error=self._failed,
                               on_finish=done, owner=self, context="Model registry")

    def stop(self) -> None:
        """Stop watching a listing in progress (the dialog is closing)."""
        if self._worker is not None:
            for signal in (self._worker.returned, self._worker.errored):
                signal.disconnect()
            self._worker.quit()

    def show_rows(self, rows: list[dict]) -> None:
        self.rows = list(rows)
        self.table.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            for c, (key, _title) in enumerate(COLUMNS):
                value = row.get(key)
                text = "" if value is None else str(value)
                if key in PERCENT_KEYS and value is not None:
                    try:
                        text = f"{100 * float(value):.1f} %"
                    except ValueError:
                        pass  # a tag someone typed by hand: shown as it is
                item = QtWidgets.QTableWidgetItem(text[:12] + "…" if key == "dataset_sha256" and len(text) > 12
                                                  else text)
                item.setToolTip(text)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        self.status_label.setText(f"{len(self.rows)} registered version(s)" if self.rows
                                  else "No registered model yet: a completed training job registers one.")
        self.listed.emit(len(self.rows))

    def _failed(self, exc: BaseException) -> None:
        self.status_label.setText(f"Listing failed: {one_line(exc)}")
