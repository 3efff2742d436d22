"""Leave-one-patient-out evaluation: report structure, per-class scores, seeds, baselines, inner selection."""
from __future__ import annotations

import numpy as np
import pytest

from core.training.config import TrainingConfig
from core.training.evaluation import checkpoints, leave_one_patient_out, majority_baseline
from core.training.evaluation_report import evaluation_json, format_evaluation_table, score_fold
from core.training.metrics import per_class_scores
from tests.support.nemesis_mat import write_archive


def test_per_class_scores_by_hand():
    matrix = np.array([[8, 2, 0], [1, 3, 0], [0, 0, 0]])  # class 2 absent from the test pixels
    scores, macro = per_class_scores(matrix, ["a", "b", "c"])
    assert scores["a"] == pytest.approx({"recall": 0.8, "precision": 8 / 9, "f1": 2 * 0.8 * (8 / 9) / (0.8 + 8 / 9), "n": 10})
    assert scores["b"]["recall"] == 0.75 and scores["b"]["precision"] == 0.6 and scores["b"]["n"] == 4
    assert scores["c"] == {"recall": None, "precision": None, "f1": None, "n": 0}
    assert macro == pytest.approx((scores["a"]["f1"] + scores["b"]["f1"]) / 2)  # absent class left out
    _, never_predicted = per_class_scores(np.array([[5, 0], [3, 0]]), ["a", "b"])
    assert never_predicted == pytest.approx((2 * (5 / 8) / (1 + 5 / 8) + 0.0) / 2)  # a present class counts 0


@pytest.fixture(scope="module")
def spectra_dataset(tmp_path_factory):
    from core.dataset.folders import read_dataset
    from core.dataset.nemesis_import import import_nemesis

    root = tmp_path_factory.mktemp("lopo")
    write_archive(root / "src", [("ID0001C01", 1), ("ID0002C01", 2), ("ID0003C02", 3)])
    import_nemesis(root / "src", root / "ds")
    return read_dataset(root / "ds")


def test_report_structure_seeds_baselines_and_inner_selection(spectra_dataset):
    calls = []

    def always_tumour(train_x, train_y, test_x, seed):
        calls.append((train_x.shape, test_x.shape))
        return np.full(len(test_x), 1, dtype=np.int64)

    config = TrainingConfig(epochs=4, batch_size=32, model_kind="spectral", balance="sampling")
    report = leave_one_patient_out(spectra_dataset, config, seeds=2, baselines={"tumour": always_tumour},
                                   extra_fold_fields={"ID0002": {"ece": 0.1}})
    assert set(report) == {"model", "folds", "mean", "baselines"}
    assert report["model"]["kind"] == "spectral" and report["model"]["seeds"] == [0, 1]
    assert [f["patient"] for f in report["folds"]] == ["ID0001", "ID0002", "ID0003"]
    names = report["model"]["class_names"]
    for fold, capture in zip(report["folds"], spectra_dataset):
        assert set(fold) >= {"patient", "oacc", "macro_f1", "per_class", "confusion"}
        n = len(capture.load_spectra().data)
        assert fold["n"] == n and np.sum(fold["confusion"]) == 2 * n  # summed over both seeds
        assert set(fold["per_class"]) == set(names)
        assert sum(v["n"] for v in fold["per_class"].values()) == n
        assert [s["seed"] for s in fold["seeds"]] == [0, 1]
        for s in fold["seeds"]:
            # epochs chosen by the two other patients, among the checkpoints; never by the held-out one
            assert s["chosen"]["epochs"] in checkpoints(4) and len(s["chosen"]["inner_patients"]) == 2
        assert fold["oacc"] == pytest.approx(np.mean([s["oacc"] for s in fold["seeds"]]))
    assert report["folds"][1]["ece"] == 0.1 and "ece" not in report["folds"][0]
    assert report["mean"]["oacc"] == pytest.approx(np.mean([f["oacc"] for f in report["folds"]]))
    # separable synthetic classes: far above chance, and above "always class index 1"
    assert report["mean"]["oacc"] > 0.6
    assert set(report["baselines"]) == {"majority", "tumour"} and len(calls) == 3
    tumour = report["baselines"]["tumour"]["folds"][0]
    assert tumour["per_class"]["Tumour"]["recall"] == 1.0 and tumour["per_class"]["Healthy tissue"]["recall"] == 0.0
    table = format_evaluation_table(report)
    assert "vs majority: beats it on mean OACC" in table and "ID0003" in table and "aim:" in table


def test_inner_selection_needs_two_training_patients(spectra_dataset):
    config = TrainingConfig(epochs=2, batch_size=32, model_kind="spectral")
    report = leave_one_patient_out(spectra_dataset[:2], config)
    for fold in report["folds"]:
        assert fold["seeds"][0]["chosen"]["inner_patients"] == [] and fold["seeds"][0]["chosen"]["epochs"] == 2
    fixed = leave_one_patient_out(spectra_dataset, config, inner=False)
    assert fixed["folds"][0]["seeds"][0]["chosen"]["epochs"] == 2 and fixed["baselines"] == {}


def test_evaluation_json_and_majority_baseline():
    assert majority_baseline(np.zeros((5, 2)), np.array([2, 2, 1, 0, 2]), np.zeros((3, 2)), 0).tolist() == [2, 2, 2]
    names = ["Healthy tissue", "Tumour"]
    folds = [score_fold("P1", ["P1C1"], [(0, np.array([[90, 10], [60, 40]]), None)], names),
             score_fold("P2", ["P2C1"], [(0, np.array([[5, 5], [0, 0]]), None)], names)]
    report = evaluation_json({"class_names": names}, folds, {}, extra_fold_fields={"P1": {"note": 1}})
    aim = report["mean"]["aim"]
    assert aim["folds_checked"] == ["P1"]  # P2 has no tumour pixels
    assert aim["tumour_recall_met"] is True  # 40 / 100 >= 0.4
    assert report["folds"][0]["note"] == 1 and report["folds"][0]["tumour_recall"] == 0.4


def test_inner_models_never_see_their_validation_patient_nor_the_test_patient(spectra_dataset, monkeypatch):
    import core.training.evaluation as evaluation
    from core.training.samples import samples_from_captures

    seen = []
    real = evaluation.train_on_rows

    def spy(data, config, train_rows, **kwargs):
        seen.append([np.asarray(r) for r in train_rows])
        return real(data, config, train_rows, **kwargs)

    monkeypatch.setattr(evaluation, "train_on_rows", spy)
    config = TrainingConfig(epochs=2, batch_size=32, model_kind="spectral")
    data, _ = samples_from_captures(spectra_dataset, "spectral")
    patients = data.capture_index  # one capture per patient here
    train_idx = np.flatnonzero(patients != 0)
    net, chosen = evaluation.train_fold(data, patients, train_idx, config)
    [rows] = seen
    assert len(rows) == 3 and chosen["inner_patients"] == [1, 2]
    assert set(patients[rows[0]]) == {2} and set(patients[rows[1]]) == {1}  # inner model j leaves patient j out
    np.testing.assert_array_equal(rows[2], train_idx)  # the fold's own model: every training patient
    assert not np.isin(np.flatnonzero(patients == 0), np.concatenate(rows)).any()  # the test patient: nowhere
