"""Registered models list (pytest-qt offscreen): rows as the backend gives them, failures as one line."""
from __future__ import annotations

from app.application import create_application
from app.retraining.registry_view import RegistryView


class _Registry:
    name = "local"

    def registered_versions(self):
        return [{"name": "conv2dnet-ward-20261129", "version": "2", "created": "2026-11-29T05:00:00Z",
                 "profile": "synthetic-small", "dataset_sha256": "ab" * 32, "held_out_oacc": "0.9100",
                 "test_oacc_mean": None}]


def _view(qtbot, backend_of):
    create_application([])
    view = RegistryView(backend_of)
    qtbot.addWidget(view)
    return view


def test_rows_show_name_version_profile_and_a_short_dataset_hash(qtbot):
    view = _view(qtbot, _Registry)
    with qtbot.waitSignal(view.listed, timeout=10_000) as shown:
        view.refresh()
    assert shown.args == [1] and view.refresh_button.isEnabled()
    cells = [view.table.item(0, c).text() for c in range(view.table.columnCount())]
    assert cells == ["conv2dnet-ward-20261129", "2", "2026-11-29T05:00:00Z", "synthetic-small", "abababababab…",
                     "91.0 %", ""]  # as the comparison shows accuracy
    assert view.table.item(0, 4).toolTip() == "ab" * 32  # the whole sha256 on hover
    assert view.status_label.text() == "1 registered version(s)"


def test_a_backend_without_registry_or_a_failing_listing_says_so_in_one_line(qtbot):
    class NoRegistry:
        name = "plain"

    view = _view(qtbot, NoRegistry)
    view.refresh()
    qtbot.waitUntil(lambda: not view.busy, timeout=10_000)
    assert view.status_label.text() == "Listing failed: the plain backend has no model registry"

    def broken():
        raise ValueError("no blob storage configured")

    view.backend_of = broken
    view.refresh()
    qtbot.waitUntil(lambda: not view.busy, timeout=10_000)
    assert "no blob storage configured" in view.status_label.text() and view.table.rowCount() == 0
    assert view.refresh_button.isEnabled()
