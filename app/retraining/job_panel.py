"""The job part of the retraining dialog: upload progress, status timeline, clock, log, loss/OACC chart,
and the metrics of the new model beside the current one with "Use this model".

A view of :class:`app.retraining.runner.RunSnapshot`; it reads no file and starts no work.
"""
from __future__ import annotations

import pyqtgraph as pg
from PySide6 import QtWidgets

from app.retraining.runner import RunSnapshot


class JobPanel(QtWidgets.QWidget):
    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        progress = QtWidgets.QGroupBox("Job", self)
        grid = QtWidgets.QGridLayout(progress)
        self.upload_bar = QtWidgets.QProgressBar(self)
        self.upload_bar.setFormat("upload %p%")
        self.timeline_label = QtWidgets.QLabel(self)
        self.timeline_label.setObjectName("timeline")
        self.time_label = QtWidgets.QLabel(self)
        self.log_view = QtWidgets.QPlainTextEdit(self)
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(500)
        self.chart = pg.GraphicsLayoutWidget(self)
        self.loss_plot = self.chart.addPlot(title="loss")
        self.chart.nextRow()
        self.oacc_plot = self.chart.addPlot(title="validation OACC")
        self.oacc_plot.setXLink(self.loss_plot)
        self.loss_curve = self.loss_plot.plot(pen=pg.mkPen((240, 160, 60), width=2), symbol="o", symbolSize=4)
        self.oacc_curve = self.oacc_plot.plot(pen=pg.mkPen((90, 180, 250), width=2), symbol="o", symbolSize=4)
        self.chart.setMinimumHeight(200)
        grid.addWidget(self.upload_bar, 0, 0)
        grid.addWidget(self.time_label, 0, 1)
        grid.addWidget(self.timeline_label, 1, 0, 1, 2)
        grid.addWidget(self.log_view, 2, 0)
        grid.addWidget(self.chart, 2, 1)
        layout.addWidget(progress, 3)

        result = QtWidgets.QHBoxLayout()
        self.metrics_table = QtWidgets.QTableWidget(0, 3, self)
        self.metrics_table.setHorizontalHeaderLabels(["Metric", "Current model", "New model"])
        self.metrics_table.verticalHeader().setVisible(False)
        self.metrics_table.setMaximumHeight(160)
        self.use_button = QtWidgets.QPushButton("Use this model", self)
        self.use_button.setObjectName("use_button")
        result.addWidget(self.metrics_table, 1)
        result.addWidget(self.use_button)
        layout.addLayout(result)
        self.last: RunSnapshot | None = None

    def clear(self) -> None:
        self.last = None
        self.loss_curve.setData([], [])
        self.oacc_curve.setData([], [])
        self.log_view.clear()
        self.metrics_table.setRowCount(0)

    def show_snapshot(self, snap: RunSnapshot) -> None:
        done, total = snap.upload
        self.upload_bar.setValue(int(100 * done / total) if total else 0)
        self.timeline_label.setText("  →  ".join(f"{s} ({t:.0f} s)" for s, t in snap.timeline))
        if snap.log != (self.last.log if self.last else None):
            self.log_view.setPlainText(snap.log)
            self.log_view.verticalScrollBar().setValue(self.log_view.verticalScrollBar().maximum())
        if self.last is None or len(snap.epochs) != len(self.last.epochs):
            x = list(range(1, len(snap.epochs) + 1))
            self.loss_curve.setData(x, [float(e.get("loss", float("nan"))) for e in snap.epochs])
            oacc = [(i, e["val_oacc"]) for i, e in zip(x, snap.epochs) if e.get("val_oacc") is not None]
            self.oacc_curve.setData([i for i, _ in oacc], [float(v) for _, v in oacc])
        remaining = snap.remaining_s()
        text = f"elapsed {snap.elapsed_s():.0f} s"
        if remaining is not None:
            text += f", about {remaining:.0f} s left"
        self.time_label.setText(text)
        self.last = snap

    def show_metrics(self, current: dict[str, float], new: dict[str, float]) -> None:
        """Flat metrics of the current and the new model, one row per key."""
        keys = sorted(set(new) | set(current))
        self.metrics_table.setRowCount(len(keys))
        for i, key in enumerate(keys):
            self.metrics_table.setItem(i, 0, QtWidgets.QTableWidgetItem(key))
            for col, source in ((1, current), (2, new)):
                value = source.get(key)
                self.metrics_table.setItem(i, col, QtWidgets.QTableWidgetItem("" if value is None else f"{value:.4f}"))
        self.metrics_table.resizeColumnsToContents()
