"""The new model beside the installed one: a one-line verdict, the metrics side by side with plain
names, both confusion matrices, and the "Use this model" / "Revert" buttons.

A view of :class:`core.training.comparison.Comparison`; both models were scored on the
same held-out captures (see that module), never on their own stored metrics.
"""
from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

BETTER, WORSE = QtGui.QColor(60, 170, 90), QtGui.QColor(210, 80, 70)


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


class ComparisonView(QtWidgets.QGroupBox):
    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("New model vs installed model (same held-out captures)", parent)
        layout = QtWidgets.QVBoxLayout(self)
        self.verdict_label = QtWidgets.QLabel("Train a model to compare it with the installed one.", self)
        self.verdict_label.setObjectName("verdict")
        self.verdict_label.setWordWrap(True)
        font = self.verdict_label.font()
        font.setBold(True)
        self.verdict_label.setFont(font)
        layout.addWidget(self.verdict_label)
        self.metrics_table = QtWidgets.QTableWidget(0, 4, self)
        self.metrics_table.setHorizontalHeaderLabels(["Metric", "Installed model", "New model", "Difference"])
        self.metrics_table.verticalHeader().setVisible(False)
        self.metrics_table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.tabs = QtWidgets.QTabWidget(self)
        self.tabs.addTab(self.metrics_table, "Metrics")
        matrices_page = QtWidgets.QWidget(self)
        page_layout = QtWidgets.QVBoxLayout(matrices_page)
        page_layout.setContentsMargins(0, 0, 0, 0)
        page_layout.addWidget(QtWidgets.QLabel("Pixels per true class (rows) and predicted class (columns)",
                                               matrices_page))
        matrices = QtWidgets.QHBoxLayout()
        self.installed_matrix = self._matrix("Installed model")
        self.new_matrix = self._matrix("New model")
        matrices.addWidget(self.installed_matrix)
        matrices.addWidget(self.new_matrix)
        page_layout.addLayout(matrices, 1)
        self.tabs.addTab(matrices_page, "Confusion matrices")
        layout.addWidget(self.tabs, 1)
        buttons = QtWidgets.QHBoxLayout()
        self.history_label = QtWidgets.QLabel(self)
        self.history_label.setObjectName("history")
        self.revert_button = QtWidgets.QPushButton("Revert to the previous model", self)
        self.revert_button.setObjectName("revert_button")
        self.use_button = QtWidgets.QPushButton("Use this model", self)
        self.use_button.setObjectName("use_button")
        buttons.addWidget(self.history_label, 1)
        buttons.addWidget(self.revert_button)
        buttons.addWidget(self.use_button)
        layout.addLayout(buttons)

    def _matrix(self, title: str) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox(title, self)
        inner = QtWidgets.QVBoxLayout(box)
        box.setObjectName("matrix")
        table = QtWidgets.QTableWidget(0, 0, box)
        table.setMinimumWidth(120)  # scrolls rather than widening the dialog
        # columns as wide as their numbers and names: never clipped to "1,2…"
        table.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        table.verticalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        inner.addWidget(table)
        box.table = table
        return box

    def clear(self, text: str = "Train a model to compare it with the installed one.") -> None:
        self.verdict_label.setText(text)
        self.metrics_table.setRowCount(0)
        for box in (self.installed_matrix, self.new_matrix):
            box.table.setRowCount(0)
            box.table.setColumnCount(0)

    def show_comparison(self, comparison) -> None:
        """Fill from a :class:`core.training.comparison.Comparison`."""
        pixels = f"{comparison.n_pixels:,} labelled pixels of {', '.join(comparison.capture_ids)}"
        self.verdict_label.setText(f"{comparison.verdict}\n(on {pixels})")
        self.metrics_table.setRowCount(len(comparison.rows))
        for i, row in enumerate(comparison.rows):
            self.metrics_table.setItem(i, 0, QtWidgets.QTableWidgetItem(row.title))
            self.metrics_table.setItem(i, 1, QtWidgets.QTableWidgetItem(_percent(row.installed)))
            self.metrics_table.setItem(i, 2, QtWidgets.QTableWidgetItem(_percent(row.new)))
            delta = row.delta_points
            item = QtWidgets.QTableWidgetItem("" if delta is None else f"{delta:+.1f} points")
            if delta is not None and abs(delta) >= 1.0:
                item.setForeground(BETTER if delta > 0 else WORSE)
            self.metrics_table.setItem(i, 3, item)
        self.metrics_table.resizeColumnsToContents()
        installed = comparison.installed
        self._fill_matrix(self.installed_matrix, None if installed is None else installed.metrics,
                          "no installed model" if installed is None else installed.problem)
        self._fill_matrix(self.new_matrix, comparison.new.metrics, None)

    @staticmethod
    def _fill_matrix(box: QtWidgets.QGroupBox, metrics: dict | None, problem: str | None) -> None:
        table = box.table
        if metrics is None:
            table.setRowCount(1)
            table.setColumnCount(1)
            table.setItem(0, 0, QtWidgets.QTableWidgetItem(problem or "not evaluated"))
            table.resizeColumnsToContents()
            return
        names, matrix = metrics["class_names"], metrics["confusion"]
        table.setRowCount(len(names))
        table.setColumnCount(len(names))
        table.setHorizontalHeaderLabels([n.split()[0] for n in names])
        table.setVerticalHeaderLabels(names)
        for r, row in enumerate(matrix):
            for c, value in enumerate(row):
                item = QtWidgets.QTableWidgetItem(f"{value:,}")
                item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
                table.setItem(r, c, item)
        table.resizeColumnsToContents()
