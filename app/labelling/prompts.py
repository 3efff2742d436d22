"""The questions the labelling tool asks; each is injectable so tests answer without a modal dialog.

``ask_save`` is asked before unsaved labels would go away (closing the tool or the
app, Ctrl+Q, opening another capture, logging out); Save is its default button.
"""
from __future__ import annotations

from pathlib import Path

from PySide6 import QtWidgets

SAVE, DISCARD, CANCEL = "save", "discard", "cancel"
Button = QtWidgets.QMessageBox.StandardButton


def ask_restore(parent: QtWidgets.QWidget, folder: Path) -> bool:
    """Recovery prompt: Restore (default) or set the autosaved labels aside in ``recovered/``."""
    box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Question, "Recover labels",
                                f"Unsaved labels from an earlier session were found for\n{folder}\n\n"
                                "Restore them? (Not restoring keeps them in the 'recovered' folder.)",
                                Button.Yes | Button.No, parent)
    box.button(Button.Yes).setText("Restore")
    box.button(Button.No).setText("Don't restore")
    box.setDefaultButton(Button.Yes)
    return box.exec() == Button.Yes


def ask_save(parent: QtWidgets.QWidget, folder: Path) -> str:
    """Save / Discard / Cancel for unsaved labels of ``folder``; returns SAVE, DISCARD or CANCEL."""
    box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Warning, "Unsaved labels",
                                f"The labels of\n{folder}\nhave changes that are not saved.\n\n"
                                "Save them before closing?",
                                Button.Save | Button.Discard | Button.Cancel, parent)
    box.setObjectName("ask_save_labels")
    box.setDefaultButton(Button.Save)
    box.setEscapeButton(Button.Cancel)
    answer = box.exec()
    return {Button.Save: SAVE, Button.Discard: DISCARD}.get(Button(answer), CANCEL)


def confirm(parent: QtWidgets.QWidget, title: str, text: str) -> bool:
    """A Yes/No question for an edit that changes much of the map; No is the default."""
    answer = QtWidgets.QMessageBox.question(parent, title, text, Button.Yes | Button.No, Button.No)
    return answer == Button.Yes
