"""``neurohsi train`` / ``neurohsi evaluate``: progress JSON lines, summary, model file, bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest

from app.cli.main import main
from tests.support.datasets import write_small_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_small_dataset(tmp_path_factory.mktemp("ds"))


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_writes_model_summary_and_progress_lines(dataset, tmp_path, capsys):
    from core.model.files import load_model

    model, progress = tmp_path / "m.safetensors", tmp_path / "p.jsonl"
    code, out, err = _run(["train", dataset, "-o", model, "--no-cv", "--epochs", "3", "--seed", "1",
                           "--test-capture", "ID0034C03", "--progress-jsonl", progress], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["model"] == str(model) and summary["mode"] == "no-cv"
    assert summary["training_ids"] == ["ID0030C01", "ID0030C02"] and summary["test_ids"] == ["ID0034C03"]
    assert summary["metrics"]["held_out"]["overall"]["n"] > 0
    assert "timings_s" in summary and summary["timings_s"]["train"] > 0
    events = [json.loads(line) for line in progress.read_text().splitlines()]
    assert [e["event"] for e in events] == ["epoch"] * 3 + ["done"]
    assert [e["epoch"] for e in events[:3]] == [1, 2, 3] and all(e["epochs"] == 3 for e in events[:3])
    assert all(set(e) >= {"fold", "loss", "val_oacc"} for e in events[:3])
    assert events[-1]["model"] == str(model) and events[-1]["metrics"]["mode"] == "no-cv"
    assert "training" in err  # tqdm bar on stderr
    loaded = load_model(model)
    assert loaded.info.training["data_ids"] == ["ID0030C01", "ID0030C02"]
    assert loaded.info.training["hyper_parameters"]["epochs"] == 3
    assert loaded.info.metrics["held_out"]["capture_ids"] == ["ID0034C03"]
    assert loaded.info.profile_id == "synthetic-small" and loaded.info.sha256 == summary["sha256"]


def test_train_double_cv_reports_every_fold(dataset, tmp_path, capsys):
    progress = tmp_path / "p.jsonl"
    code, out, err = _run(["train", dataset, "-o", tmp_path / "m.safetensors", "--epochs", "1", "--folds", "2",
                           "--progress-jsonl", progress], capsys)
    assert code == 0, err
    events = [json.loads(line) for line in progress.read_text().splitlines()]
    assert sorted(e["fold"] for e in events[:-1]) == [0, 1, 2, 3]
    assert json.loads(out)["metrics"]["mode"] == "double-cv"


def test_evaluate_leave_one_patient_out(dataset, capsys):
    code, out, err = _run(["evaluate", dataset, "--epochs", "2", "--json", "--seeds", "2"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert set(report) == {"model", "folds", "mean", "baselines"} and report["model"]["kind"] == "conv2dnet"
    assert [f["patient"] for f in report["folds"]] == ["ID30", "ID34"]
    assert report["folds"][0]["capture_ids"] == ["ID0030C01", "ID0030C02"]
    for fold in report["folds"]:
        assert np.array(fold["confusion"]).sum() == 2 * fold["n"]  # two seeds
        assert sum(c["n"] for c in fold["per_class"].values()) == fold["n"]
        assert fold["std"]["oacc"] is not None and len(fold["seeds"]) == 2
    code, out, _ = _run(["evaluate", dataset, "--epochs", "1", "--baseline", "--model-kind", "spectral"], capsys)
    assert code == 0 and "baseline linear_svm" in out and "vs linear_svm: beats it on" in out and "ID34" in out


def _one_line_error(code, err, *needles):
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith("neurohsi: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[-1]


def test_bad_input_is_one_line(dataset, tmp_path, capsys):
    model = tmp_path / "m.safetensors"
    _one_line_error(*_run(["train", tmp_path / "nope", "-o", model], capsys)[::2], "nope")
    _one_line_error(*_run(["train", dataset, "-o", model, "--test-capture", "ID9999C01"], capsys)[::2],
                    "unknown test capture id ID9999C01")
    _one_line_error(*_run(["train", dataset, "-o", model, "--epochs", "0"], capsys)[::2], "epochs")
    _one_line_error(*_run(["train", dataset, "-o", tmp_path / "no" / "m.safetensors"], capsys)[::2], "folder")


def test_dataset_without_labels_is_refused(tmp_path, capsys):
    from core.dataset.folders import write_capture_folder
    from core.capture.synthetic.captures import generate_capture, small_profile

    c = generate_capture(seed=0, profile=small_profile())
    write_capture_folder(tmp_path / "ds", "ID0001C01", c.raw, c.dark, c.white, np.zeros_like(c.labels),
                         metadata=c.metadata)
    code, _, err = _run(["train", tmp_path / "ds", "-o", tmp_path / "m.safetensors", "--no-cv"], capsys)
    _one_line_error(code, err, "no labelled pixels")


def test_fold_models_one_by_one_then_train_select_match_local_double_cv(tmp_path):
    """What the cluster runs (neurohsi train --fold M for every M, then train-select) picks what local training picks."""
    import json
    import subprocess
    import sys

    from core.dataset.folders import write_capture_folder
    from core.model.files import load_model
    from core.capture.synthetic.captures import generate_capture, small_profile

    root = tmp_path / "ds"
    for k, patient in enumerate(("ID18", "ID20")):
        cap = generate_capture(seed=k, patient=patient, profile=small_profile(12, 16))
        write_capture_folder(root, cap.capture_id, cap.raw, cap.dark, cap.white, cap.labels,
                             metadata=cap.metadata, meta={"patient": patient})
    common = ["--epochs", "2", "--folds", "2", "--seed", "1", "--name", "cv"]

    def cli(*args):
        out = subprocess.run([sys.executable, "-m", "app.cli.main", *map(str, args)], capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    local = cli("train", root, "-o", tmp_path / "local.safetensors", "--workers", "2", *common)
    folds = tmp_path / "folds"
    folds.mkdir()
    for m in range(4):
        cli("train", root, "-o", folds / "unused.safetensors", "--fold", m, *common)
    selected = cli("train-select", folds, "-o", tmp_path / "selected.safetensors", "--folds", "2")
    assert selected["chosen"] == local["metrics"]["chosen"]
    a = load_model(tmp_path / "local.safetensors").info.metrics
    b = load_model(tmp_path / "selected.safetensors").info.metrics
    assert b["test_oacc_mean"] == a["test_oacc_mean"] and b["mode"] == "double-cv"
    # both keep the same calibrated ensemble of outer winners (issue 21, item 5)
    local_model, selected_model = load_model(tmp_path / "local.safetensors"), load_model(tmp_path / "selected.safetensors")
    assert selected_model.info.ensemble_size == local_model.info.ensemble_size == 2
    assert selected_model.member_temperatures == pytest.approx(local_model.member_temperatures, rel=1e-5)
    assert selected_model.info.temperature == pytest.approx(local_model.info.temperature, rel=1e-5)


def test_train_spectral_model_on_labelled_spectra_and_refuse_conv2dnet_without_positions(tmp_path, capsys):
    from core.dataset.nemesis_import import import_nemesis
    from core.model.files import load_model
    from tests.support.nemesis_mat import write_archive

    write_archive(tmp_path / "src", [("ID0001C01", 1), ("ID0002C01", 2)], forms=("spectra",))
    import_nemesis(tmp_path / "src", tmp_path / "ds")
    model = tmp_path / "s.safetensors"
    code, out, err = _run(["train", tmp_path / "ds", "-o", model, "--no-cv", "--epochs", "2", "--model-kind",
                           "spectral", "--balance", "loss", "--batch-size", "32"], capsys)
    assert code == 0, err
    info = load_model(model).info
    assert info.model_kind == "spectral" and info.inputs == "spectra" and info.ood_available
    assert info.training["hyper_parameters"]["balance"] == "loss" and info.profile_id == "thesis-sm5x5-nir"
    code, _, err = _run(["train", tmp_path / "ds", "-o", model, "--no-cv", "--epochs", "1"], capsys)
    _one_line_error(code, err, "ID0001C01: Conv2DNet needs 7x7 patches", "--model-kind spectral")
