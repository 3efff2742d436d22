"""The job part of the retraining dialog: the phase with its own progress, the clock, a chart and the log.

A view of :class:`app.retraining.run_snapshot.RunSnapshot`; it reads no file and
starts no work. The chart draws one line per outer fold (the mean of its inner
models) with titled axes; the log shows a plain summary, the raw job log folded
away behind "Show the full job log".
"""
from __future__ import annotations

import pyqtgraph as pg
from PySide6 import QtWidgets

from app.retraining.run_snapshot import PHASE_TITLES, PHASES, RunSnapshot, outer_fold_curves

CURVE_COLOURS = [(240, 160, 60), (90, 180, 250), (120, 200, 120), (220, 100, 160), (180, 160, 240),
                 (230, 220, 90), (100, 210, 210), (250, 120, 100)]


class JobPanel(QtWidgets.QGroupBox):
    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Job", parent)
        grid = QtWidgets.QGridLayout(self)
        self.steps_label = QtWidgets.QLabel(self)
        self.steps_label.setObjectName("phase_steps")
        self.steps_label.setWordWrap(True)
        self.phase_label = QtWidgets.QLabel("Not started", self)
        self.phase_label.setObjectName("phase")
        self.phase_bar = QtWidgets.QProgressBar(self)
        self.phase_bar.setObjectName("phase_progress")
        self.time_label = QtWidgets.QLabel(self)
        self.timeline_label = QtWidgets.QLabel(self)  # the backend's own statuses, for the record
        self.timeline_label.setObjectName("timeline")
        self.timeline_label.setStyleSheet("color: gray")
        self.timeline_label.setWordWrap(True)
        grid.addWidget(self.steps_label, 0, 0, 1, 2)
        grid.addWidget(self.phase_label, 1, 0)
        grid.addWidget(self.time_label, 1, 1)
        grid.addWidget(self.phase_bar, 2, 0, 1, 2)
        grid.addWidget(self.timeline_label, 3, 0, 1, 2)

        self.tabs = QtWidgets.QTabWidget(self)
        self.chart = pg.GraphicsLayoutWidget(self)
        self.loss_plot = self.chart.addPlot(title="Loss")
        self.loss_plot.setLabel("bottom", "epoch")
        self.loss_plot.setLabel("left", "cross-entropy")
        # side by side: each plot keeps the panel's full height; short titles are never clipped
        self.oacc_plot = self.chart.addPlot(title="Validation OACC")
        self.oacc_plot.setLabel("bottom", "epoch")
        self.oacc_plot.setLabel("left", "OACC", units="%")
        self.oacc_plot.setXLink(self.loss_plot)
        # the legend in its own column, beside the plots: never over the lines
        self.legend = pg.LegendItem(offset=None, labelTextSize="8pt")
        self.chart.addItem(self.legend, row=0, col=2)
        self.loss_plot.legend = self.legend
        self.chart.setMinimumHeight(180)
        self.loss_curves: dict[str, pg.PlotDataItem] = {}
        self.oacc_curves: dict[str, pg.PlotDataItem] = {}
        self.tabs.addTab(self.chart, "Chart")

        log_page = QtWidgets.QWidget(self)
        log_layout = QtWidgets.QVBoxLayout(log_page)
        log_layout.setContentsMargins(0, 0, 0, 0)
        self.summary_view = QtWidgets.QPlainTextEdit(self)
        self.summary_view.setObjectName("summary")
        self.summary_view.setReadOnly(True)
        self.raw_toggle = QtWidgets.QToolButton(self)
        self.raw_toggle.setText("Show the full job log")
        self.raw_toggle.setCheckable(True)
        self.log_view = QtWidgets.QPlainTextEdit(self)
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(500)
        self.log_view.setVisible(False)
        self.raw_toggle.toggled.connect(self._fold_raw)
        log_layout.addWidget(self.summary_view, 1)
        log_layout.addWidget(self.raw_toggle)
        log_layout.addWidget(self.log_view, 2)
        self.tabs.addTab(log_page, "Log")
        grid.addWidget(self.tabs, 4, 0, 1, 2)
        grid.setRowStretch(4, 1)
        self.last: RunSnapshot | None = None
        self._show_steps(None)

    def _fold_raw(self, shown: bool) -> None:
        self.log_view.setVisible(shown)
        self.raw_toggle.setText("Hide the full job log" if shown else "Show the full job log")

    def clear(self) -> None:
        self.last = None
        for plot, curves in ((self.loss_plot, self.loss_curves), (self.oacc_plot, self.oacc_curves)):
            for curve in curves.values():
                plot.removeItem(curve)
            curves.clear()
        self.legend.clear()
        self.log_view.clear()
        self.summary_view.clear()
        self.phase_label.setText("Not started")
        self.phase_bar.setRange(0, 100)
        self.phase_bar.setValue(0)
        self._show_steps(None)

    def _show_steps(self, snap: RunSnapshot | None) -> None:
        reached = {p for p, _ in snap.phases} if snap is not None else set()
        current = None if snap is None or snap.terminal else snap.phase
        marks = []
        for phase in PHASES:
            title = PHASE_TITLES[phase].split()[0]
            if phase == current:
                marks.append(f"▶ {title}")
            elif phase in reached:
                marks.append(f"✓ {title}")
            else:
                marks.append(title)
        self.steps_label.setText("   ".join(marks))

    def show_snapshot(self, snap: RunSnapshot) -> None:
        self._show_steps(snap)
        self.phase_label.setText(snap.phase_title)
        if snap.terminal:
            self.phase_bar.setRange(0, 100)
            self.phase_bar.setValue(100 if snap.phase == "done" and snap.status == "Completed" else 0)
        elif snap.phase_progress is None:
            self.phase_bar.setRange(0, 0)  # busy: this phase cannot be measured
        else:
            self.phase_bar.setRange(0, 100)
            self.phase_bar.setValue(int(round(100 * snap.phase_progress)))
        self.timeline_label.setText("job status: " + "  →  ".join(f"{s} ({t:.0f} s)" for s, t in snap.timeline)
                                    if snap.timeline else "")
        if snap.log != (self.last.log if self.last else None):
            self.log_view.setPlainText(snap.log)
            self.log_view.verticalScrollBar().setValue(self.log_view.verticalScrollBar().maximum())
        summary = "\n".join(snap.summary())
        if summary != self.summary_view.toPlainText():
            self.summary_view.setPlainText(summary)
        if self.last is None or len(snap.epochs) != len(self.last.epochs):
            self._plot(snap)
        remaining = snap.remaining_s()
        text = f"elapsed {snap.elapsed_s():.0f} s"
        if remaining is not None:
            text += f", about {remaining:.0f} s of training left"
        self.time_label.setText(text)
        self.last = snap

    def _plot(self, snap: RunSnapshot) -> None:
        for key, plot, curves, scale in (("loss", self.loss_plot, self.loss_curves, 1.0),
                                         ("val_oacc", self.oacc_plot, self.oacc_curves, 100.0)):
            for name, (xs, ys) in outer_fold_curves(snap.epochs, key).items():
                if name not in curves:
                    colour = CURVE_COLOURS[len(curves) % len(CURVE_COLOURS)]
                    curves[name] = plot.plot(pen=pg.mkPen(colour, width=2))
                    if key == "loss":
                        self.legend.addItem(curves[name], name)
                curves[name].setData(xs, [scale * y for y in ys])
