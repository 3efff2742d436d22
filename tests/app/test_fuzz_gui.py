"""Second fuzz pass, GUI side: hand-edited settings never break the classify slot (issue 26)."""
from __future__ import annotations

import pytest

from app.settings import AppSettings
from tests.support.gui import classify_and_wait, open_and_wait


@pytest.mark.parametrize("text", ["1e309", "-1e309", "nan", "inf", "1e18", "-5", "9" * 5000])
def test_an_absurd_deadline_reads_as_the_default(tmp_path, text):
    path = tmp_path / "s.ini"
    path.write_text(f"[scoring]\ndeadline_s={text}\n[display]\nopacity={text}\n")
    settings = AppSettings.from_file(path)
    assert settings.get("remote_deadline_s") == AppSettings.setting("remote_deadline_s").default
    assert settings.get("opacity") == AppSettings.setting("opacity").default


def test_classify_with_deadline_1e309_in_the_settings_still_makes_a_map(qtbot, make_window, small_files, tmp_path):
    raw, model = small_files
    settings_file = tmp_path / "hand-edited.ini"
    # A dead loopback endpoint: the remote call fails fast and the map is made locally.
    settings_file.write_text("[scoring]\ndeadline_s=1e309\nendpoint_url=http://127.0.0.1:9/score\nuse_remote=true\n")
    window = make_window(model, settings_file=settings_file)
    open_and_wait(qtbot, window, raw)
    result = classify_and_wait(qtbot, window)
    assert result.source == "local"
    assert result.labels.shape == (40, 60)
