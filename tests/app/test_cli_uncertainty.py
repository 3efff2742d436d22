"""Ensemble and uncertainty from the user's side: train keeps the ensemble, classify --ensemble uses it,
evaluate reports calibration, the settings' threshold changes the flag."""
from __future__ import annotations

import json

import numpy as np
import pytest

from app.cli.main import main
from tests.support.datasets import write_small_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_small_dataset(tmp_path_factory.mktemp("ds"))


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    """A double-cv model (2 x 2 folds, 1 epoch) and a no-cv one."""
    folder = tmp_path_factory.mktemp("models")
    double, single = folder / "double.safetensors", folder / "single.safetensors"
    assert main([str(a) for a in ["train", dataset, "-o", double, "--epochs", "1", "--folds", "2"]]) == 0
    assert main([str(a) for a in ["train", dataset, "-o", single, "--epochs", "1", "--no-cv"]]) == 0
    return double, single


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _capture(dataset):
    folder = dataset / "ID0030C01"
    return [folder / "raw.tif", "--dark", folder / "dark.tif", "--white", folder / "white.tif"]


def test_double_cv_keeps_every_outer_winner_calibrated_on_its_validation_fold(trained):
    from core.model.files import load_model

    model = load_model(trained[0])
    calibration = model.info.metrics["calibration"]
    assert model.info.ensemble_size == 2 and len(model.members) == 2
    assert model.member_temperatures == pytest.approx(calibration["temperatures"])
    chosen = model.info.metrics["chosen"]["outer"]
    assert model.info.temperature == pytest.approx(calibration["temperatures"][chosen])
    # the chosen model is the chosen outer fold's member
    for key, value in model.net.state_dict().items():
        assert np.array_equal(value.numpy(), model.members[chosen].state_dict()[key].numpy())
    single = load_model(trained[1])
    assert single.info.ensemble_size == 0 and single.info.temperature == 1.0


def test_classify_with_the_ensemble_flags_uncertain_pixels(dataset, trained, capsys):
    code, out, err = _run(capsys, "classify", *_capture(dataset), "--model", trained[0], "--ensemble",
                          "--uncertain-threshold", "0", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert "ensemble of 2" in summary["model"]["name"]
    assert summary["uncertain_fraction"] > 0.5  # nearly every pixel has some entropy
    code, out, err = _run(capsys, "classify", *_capture(dataset), "--model", trained[0], "--ensemble",
                          "--uncertain-threshold", "1", "--json")
    assert code == 0, err
    assert json.loads(out)["uncertain_fraction"] == 0.0
    code, out, err = _run(capsys, "classify", *_capture(dataset), "--model", trained[0], "--json")
    assert code == 0, err
    assert "ensemble" not in json.loads(out)["model"]["name"]


def _one_line_error(code, err, *needles):
    assert code == 2 and "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("neurohsi: error: ")
    for needle in needles:
        assert needle in line


def test_ensemble_of_a_model_without_one_and_a_bad_threshold_are_one_line(dataset, trained, capsys):
    _one_line_error(*_run(capsys, "classify", *_capture(dataset), "--model", trained[1], "--ensemble")[::2],
                    "single.safetensors", "no ensemble")
    _one_line_error(*_run(capsys, "classify", *_capture(dataset), "--model", trained[0],
                          "--uncertain-threshold", "1.5")[::2], "0..1")


def test_evaluate_reports_expected_calibration_error_per_patient(dataset, capsys):
    code, out, err = _run(capsys, "evaluate", dataset, "--epochs", "1", "--json")
    assert code == 0, err
    report = json.loads(out)
    eces = [f["calibration"]["ece"] for f in report["folds"]]
    assert len(eces) == 2 and all(0.0 <= e <= 1.0 for e in eces)
    assert report["folds"][0]["calibration"]["n"] == report["folds"][0]["n"]
    assert report["mean"]["ece"] == pytest.approx(np.mean(eces))


def test_the_threshold_setting_changes_the_mask(tmp_path, dataset, trained, qtbot):
    from app.settings import AppSettings
    from app.settings_dialog import SettingsDialog, SettingsState
    from core.model.ensemble import with_ensemble
    from core.model.files import load_model
    from core.model.inference import classify_files
    from core.model.uncertainty import predictive_entropy, with_uncertainty

    folder = dataset / "ID0030C01"
    result = classify_files(folder / "raw.tif", with_ensemble(load_model(trained[0])), dark=folder / "dark.tif",
                            white=folder / "white.tif")
    u = predictive_entropy(result.probabilities)[result.cube.valid]
    low, high = (int(100 * q) for q in np.quantile(u, [0.2, 0.8]))
    settings = AppSettings.from_file(tmp_path / "s.ini")
    dialog = SettingsDialog(SettingsState.from_settings(settings))
    qtbot.addWidget(dialog)
    dialog.uncertain_check.setChecked(True)
    dialog.threshold_spin.setValue(low)
    dialog.state.save(settings)
    assert settings.uncertainty_threshold() == pytest.approx(low / 100)
    loose = with_uncertainty(result, settings.uncertainty_threshold()).uncertain_mask
    settings.set("uncertainty_threshold", high)
    strict = with_uncertainty(result, settings.uncertainty_threshold()).uncertain_mask
    assert loose.sum() > strict.sum() and (strict <= loose).all()
    settings.set("show_uncertain", False)
    assert settings.uncertainty_threshold() is None
    assert with_uncertainty(result, settings.uncertainty_threshold()).uncertain_mask is None
    assert SettingsState.from_settings(settings).uncertainty_threshold == high


def test_the_main_window_classifies_with_the_ensemble_and_flags_by_the_settings(dataset, trained, make_window,
                                                                                 qtbot, tmp_path):
    from app.settings import AppSettings
    from tests.support.gui import classify_and_wait, open_and_wait

    ini = tmp_path / "gui.ini"
    settings = AppSettings.from_file(ini)
    settings.set("use_ensemble", True)
    settings.set("show_uncertain", True)
    settings.set("uncertainty_threshold", 0)
    settings.sync()
    window = make_window(trained[0], settings_file=ini)
    folder = dataset / "ID0030C01"
    open_and_wait(qtbot, window, folder / "raw.tif", folder / "dark.tif", folder / "white.tif")
    result = classify_and_wait(qtbot, window)
    assert "ensemble of 2" in result.model.name
    assert result.uncertain_mask is not None and result.uncertain_fraction > 0.5
    window.settings.set("show_uncertain", False)
    window.settings.set("use_ensemble", False)
    result = classify_and_wait(qtbot, window)
    assert result.uncertain_mask is None and "ensemble" not in result.model.name
