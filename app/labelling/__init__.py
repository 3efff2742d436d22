"""Labelling mode: draw ground truth on a capture (canvas, tools, autosave, recovery).

``LabellingSession`` (no Qt; importing this package loads none) owns the label editor and
the files of one capture folder; the mode's widget is ``app.labelling.widget.LabellingWidget``.
"""
from app.labelling.session import LabellingSession, Prediction, read_nemesis_ground_truth

__all__ = ["LabellingSession", "Prediction", "read_nemesis_ground_truth"]
