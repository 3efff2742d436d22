"""``neurohsi model``: install then classify names the new model; revert then classify names the previous one."""
from __future__ import annotations

import io
import json

import pytest

from app.cli.main import main
from core.capture.synthetic.captures import generate_capture, small_profile
from core.model.files import load_model
from core.model.installed import ModelStore
from tests.support.gui import write_capture, write_model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli-model")
    raw = write_capture(folder, generate_capture(seed=3, profile=small_profile(16, 24)), name="ID0031C01")
    old = write_model(folder / "old.safetensors", raw, seed=0)
    return raw, old, write_model(folder / "new.safetensors", raw, seed=1)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def classified_sha(capsys, raw) -> str:
    code, out, err = run(capsys, "classify", raw, "--json")
    assert code == 0, err
    return json.loads(out)["model"]["sha256"]


def test_install_then_classify_names_it_and_revert_goes_back(capsys, files, monkeypatch):
    raw, old, new = files
    old_sha, new_sha = load_model(old).info.sha256, load_model(new).info.sha256
    assert old_sha != new_sha
    assert run(capsys, "model", "install", old, "--yes")[0] == 0
    assert classified_sha(capsys, raw) == old_sha
    code, out, _ = run(capsys, "model", "install", new, "--yes", "--reason", "night shift test")
    assert code == 0 and "gui-test v3" in out and new_sha in out
    assert classified_sha(capsys, raw) == new_sha  # classify without --model reads the store
    code, out, _ = run(capsys, "model", "current")
    assert code == 0 and new_sha in out and "v3" in out
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # no terminal and no --yes: nothing changes
    code, _out, err = run(capsys, "model", "revert")
    assert code == 2 and err.count("\n") == 1 and "--yes" in err
    assert classified_sha(capsys, raw) == new_sha
    code, out, _ = run(capsys, "model", "revert", "--yes")
    assert code == 0 and "is the model in use again" in out
    assert classified_sha(capsys, raw) == old_sha
    code, out, _ = run(capsys, "model", "list")
    lines = out.splitlines()
    assert code == 0 and lines[-1].startswith("* ") and "revert" in lines[-1]
    assert "override: night shift test" in out and "(cli)" in out
    assert [e.action for e in ModelStore().entries()] == ["install", "install", "revert"]


def test_bad_files_and_versions_are_one_line_and_change_nothing(capsys, files, tmp_path):
    raw, old, _new = files
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    code, _out, err = run(capsys, "model", "install", bad, "--yes")
    assert code == 2 and str(bad) in err and err.count("\n") == 1 and "Traceback" not in err
    code, _out, err = run(capsys, "model", "revert", "7", "--yes")
    assert code == 2 and "no installed model of version 7" in err
    assert ModelStore().entries() == []
    code, out, _ = run(capsys, "model", "list")
    assert code == 0 and "nothing installed" in out
