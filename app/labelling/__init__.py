"""Labelling mode: draw ground truth on a capture (canvas, tools, autosave, recovery).

``LabellingWidget`` is the mode's widget; ``LabellingSession`` (no Qt) owns the
label editor and the files of one capture folder.
"""
from app.labelling.session import LabellingSession, Prediction, read_nemesis_ground_truth
from app.labelling.widget import LabellingWidget

__all__ = ["LabellingSession", "LabellingWidget", "Prediction", "read_nemesis_ground_truth"]
