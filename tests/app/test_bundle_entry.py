"""The desktop bundle's entry script and its left-out packages, run in this interpreter as if frozen.

The bundle itself is built and smoke-tested by ``make bundle-test`` (packaging/desktop/smoke_test.py);
these check the entry's own logic quickly: ``-m MODULE`` dispatch, one-line refusals, the finder.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

DESKTOP = Path(__file__).resolve().parents[2] / "packaging" / "desktop"


@pytest.fixture
def frozen_entry(monkeypatch):
    """``entry`` and ``left_out`` imported from packaging/desktop, sys.frozen set, meta_path restored after."""
    monkeypatch.syspath_prepend(str(DESKTOP))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))  # run() appends the finder when frozen
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    for name in ("entry", "left_out"):
        sys.modules.pop(name, None)
    import entry
    import left_out

    yield entry, left_out
    for name in ("entry", "left_out"):
        sys.modules.pop(name, None)


def test_left_out_reason_matches_packages_and_their_submodules(frozen_entry):
    _, left_out = frozen_entry
    assert "Azure ML" in left_out.left_out_reason("azure.ai.ml.entities")
    assert "scoring service" in left_out.left_out_reason("flask")
    assert left_out.left_out_reason("azure.storage.blob") is None  # uploads stay in the bundle
    assert left_out.left_out_reason("flasklike") is None  # a prefix of the name is not enough


def test_finder_raises_the_reason_and_ignores_other_modules(frozen_entry):
    _, left_out = frozen_entry
    finder = left_out.LeftOutFinder()
    assert finder.find_spec("json", None) is None
    with pytest.raises(ModuleNotFoundError, match="not part of the desktop bundle.*no module gunicorn.app"):
        finder.find_spec("gunicorn.app", None)


def test_dash_m_runs_a_module_as_main_with_its_arguments(frozen_entry, monkeypatch, capsys):
    entry, _ = frozen_entry
    # a module not imported yet (runpy warns when asked to run one that is), printing its arguments
    monkeypatch.setattr(sys, "argv", ["neurohsi", "-m", "platform", "--terse"])
    monkeypatch.delitem(sys.modules, "platform", raising=False)
    with pytest.raises(SystemExit) as exit_info:  # a module run as __main__ may exit (platform does)
        entry.run()
    assert exit_info.value.code in (0, None)
    out = capsys.readouterr().out.strip()
    assert out and "Linux" in out  # `python -m platform --terse` prints e.g. "Linux-6.1-x86_64-with-glibc2.36"


def test_dash_m_of_a_left_out_module_is_one_line(frozen_entry, monkeypatch, capsys):
    """runpy wraps the finder's error in its own ImportError: still one line, exit 2."""
    entry, left_out = frozen_entry
    monkeypatch.setitem(left_out.LEFT_OUT, "neurohsi_not_a_module", "left out for this test")
    monkeypatch.setattr(sys, "argv", ["neurohsi", "-m", "neurohsi_not_a_module"])
    assert entry.run() == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["neurohsi: error: left out for this test (no module neurohsi_not_a_module)"]


def test_left_out_command_is_refused_before_it_starts(frozen_entry, monkeypatch, capsys):
    entry, _ = frozen_entry
    monkeypatch.setattr(sys, "argv", ["neurohsi", "serve", "--port", "0"])
    assert entry.run() == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "scoring service is not part of the desktop bundle" in captured.err


def test_other_import_errors_are_not_swallowed(frozen_entry, monkeypatch):
    entry, _ = frozen_entry
    monkeypatch.setattr(sys, "argv", ["neurohsi", "-m", "neurohsi_missing_for_real"])
    with pytest.raises(ImportError):
        entry.run()
