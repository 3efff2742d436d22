"""Fair comparison: both models scored on the same held-out pixels, plain names, a one-line verdict."""
from __future__ import annotations

import pytest

from core.training.comparison import MetricRow, compare_models, install_problems, metric_rows, verdict


@pytest.fixture(scope="module")
def captures(tmp_path_factory):
    from core.dataset.folders import read_dataset, write_capture_folder
    from core.capture.synthetic.captures import generate_capture, small_profile

    root = tmp_path_factory.mktemp("cmp") / "ds"
    profile = small_profile(16, 24)
    for k, patient in enumerate(("ID18", "ID20", "ID25")):
        cap = generate_capture(seed=k, patient=patient, profile=profile)
        write_capture_folder(root, cap.capture_id, cap.raw, cap.dark, cap.white, cap.labels,
                             metadata=cap.metadata, meta={"patient": patient})
    return read_dataset(root)


def trained(captures, path, epochs, *, profile_id=None):
    from core.model.files import load_model, save_model
    from core.training.trainer import TrainingConfig, train

    result = train(captures, TrainingConfig(epochs=epochs, cross_validation="none", seed=1))
    save_model(path, result.net, name=path.stem, class_ids=result.class_ids, class_names=result.class_names,
               profile_id=profile_id or result.profile_id)
    return load_model(path)


def test_both_models_are_scored_on_the_same_held_out_pixels(captures, tmp_path):
    from core.training.trainer import patch_set_from_captures, predict_patches

    old = trained(captures[1:], tmp_path / "old.safetensors", 1)
    new = trained(captures[1:], tmp_path / "new.safetensors", 4)
    cmp = compare_models(old, new, captures[:1])
    data, _ = patch_set_from_captures(captures[:1], 7)
    for model, score in ((old, cmp.installed), (new, cmp.new)):
        expected = float((predict_patches(model.net, data.patches) == data.targets).mean())
        assert score.metrics["oacc"] == pytest.approx(expected)
        assert score.metrics["n"] == len(data) == cmp.n_pixels
    assert cmp.capture_ids == (captures[0].capture_id,)
    titles = [r.title for r in cmp.rows]
    # ranked by what matters in theatre: tumour sensitivity, macro F1, OACC, then the rest
    assert titles[:3] == ["Tumour: sensitivity", "Macro F1 (mean over classes)", "Overall accuracy (OACC)"]
    assert len(cmp.rows) == 2 + 2 * 5
    assert cmp.verdict == verdict(cmp.rows) and cmp.verdict.endswith(".")


def test_an_installed_model_for_another_camera_is_reported_not_scored(captures, tmp_path):
    new = trained(captures[1:], tmp_path / "new.safetensors", 1)
    other = trained(captures[1:], tmp_path / "other.safetensors", 1, profile_id="thesis-sm5x5-nir")
    cmp = compare_models(other, new, captures[:1])
    assert cmp.installed.metrics is None and "thesis-sm5x5-nir" in cmp.installed.problem
    assert cmp.verdict.startswith("The installed model cannot classify these captures")
    with pytest.raises(ValueError, match="hold out at least one"):
        compare_models(other, new, [])


def test_verdict_opens_with_tumour_sensitivity_and_never_recommends_worse_on_tumour():
    rows = (
        MetricRow("sensitivity:2", "Tumour tissue: sensitivity", 0.70, 0.74),
        MetricRow("macro_f1", "Macro F1 (mean over classes)", 0.80, 0.805),
        MetricRow("oacc", "Overall accuracy (OACC)", 0.90, 0.905),
        MetricRow("specificity:5", "Dura mater: specificity", 0.95, 0.929),
        MetricRow("sensitivity:1", "Healthy tissue: sensitivity", 0.80, 0.82),
    )
    assert verdict(rows) == ("Recommended. Tumour sensitivity 70.0 % → 74.0 % (+4.0 points); worse on dura mater "
                             "specificity by 2.1 points; better on healthy tissue sensitivity by 2.0 points.")
    # the case: better on healthy tissue, 0 % on tumour: never recommended, tumour named first
    useless = (MetricRow("sensitivity:2", "Tumour tissue: sensitivity", 0.70, 0.0),) + rows[1:4] + (
        MetricRow("sensitivity:1", "Healthy tissue: sensitivity", 0.80, 0.812),)
    line = verdict(useless)
    assert line.startswith("Not recommended: it finds no tumour. Tumour sensitivity 70.0 % → 0.0 %")
    assert compare_flags(useless) == (True, False)
    slightly = (MetricRow("sensitivity:2", "Tumour tissue: sensitivity", 0.70, 0.695),) + rows[1:]
    assert verdict(slightly).startswith("Not recommended: worse on tumour sensitivity.")
    assert compare_flags(slightly) == (True, False)  # any drop on tumour: never recommended
    f1_worse = (MetricRow("sensitivity:2", "T: sensitivity", 0.7, 0.7),
                MetricRow("macro_f1", "Macro F1 (mean over classes)", 0.80, 0.75))
    assert compare_flags(f1_worse) == (False, False)
    assert verdict(f1_worse).startswith("Not recommended: same on tumour, worse on macro F1")
    assert compare_flags(rows) == (False, True)
    first = verdict(metric_rows(None, {"oacc": 0.9, "class_ids": [1, 2], "class_names": ["Healthy", "Tumour"],
                                       "sensitivity": [0.9, 0.6], "specificity": [None, None],
                                       "confusion": [[9, 1], [4, 6]]}))
    assert first == ("Recommended with care. No installed model to compare with on these captures; "
                     "Tumour sensitivity 60.0 %; overall accuracy 90.0 %.")


def test_a_model_calling_everything_tumour_is_never_recommended():
    # 100 % tumour sensitivity by calling every pixel tumour: specificity and macro F1 collapse.
    everything = (
        MetricRow("sensitivity:2", "Tumour tissue: sensitivity", 0.70, 1.00),
        MetricRow("macro_f1", "Macro F1 (mean over classes)", 0.80, 0.12),
        MetricRow("oacc", "Overall accuracy (OACC)", 0.90, 0.21),
        MetricRow("specificity:2", "Tumour tissue: specificity", 0.95, 0.02),
    )
    assert compare_flags(everything) == (False, False)
    # Installing it anyway takes a typed reason, as for a model worse on tumour (the dialog asks).
    from core.training.comparison import Comparison

    assert Comparison(None, None, ("ID1",), 10, everything, verdict(everything)).tumour_worse
    assert not Comparison(None, None, ("ID1",), 10, everything[:3], verdict(everything[:3])).tumour_worse
    assert verdict(everything).startswith(
        "Not recommended: it calls most other tissue tumour (tumour specificity 2.0 %). "
        "Tumour sensitivity 70.0 % → 100.0 % (+30.0 points)")
    # The first model of a hospital, no installed one to compare with: the same guard.
    first = tuple(MetricRow(r.key, r.title, None, r.new) for r in everything)
    assert not compare_flags(first)[1]
    assert verdict(first).startswith("Not recommended: it calls most other tissue tumour")
    # A tumour gain does not buy a larger loss of macro F1, even with specificity above the floor.
    trade = (
        MetricRow("sensitivity:2", "Tumour tissue: sensitivity", 0.70, 0.75),
        MetricRow("macro_f1", "Macro F1 (mean over classes)", 0.80, 0.70),
        MetricRow("specificity:2", "Tumour tissue: specificity", 0.95, 0.80),
    )
    assert compare_flags(trade) == (False, False)
    assert verdict(trade).startswith("Not recommended: it loses more on macro F1 than it gains on tumour")
    # ...while a gain larger than the F1 loss still wins, as tumour comes first.
    fair = (trade[0], MetricRow("macro_f1", "Macro F1 (mean over classes)", 0.80, 0.78), trade[2])
    assert compare_flags(fair) == (False, True)


def compare_flags(rows):
    from core.training.comparison import recommended, tumour_worse

    return tumour_worse(rows), recommended(rows)


def test_install_problems_name_bands_profile_and_classes():
    from core.model.files import ModelInfo

    def info(**kw):
        base = dict(name="m", version="1", sha256="0" * 64, format_version=1, architecture="Conv2DNet",
                    patch_size=7, n_bands=25, padding="reflect", class_ids=(1, 2, 3, 4, 5),
                    class_names=("a", "b", "c", "d", "e"), profile_id="thesis-sm5x5-nir", created="")
        return ModelInfo(**{**base, **kw})

    assert install_problems(info(), info()) == []
    problems = install_problems(info(n_bands=16, profile_id="other"), info(), captures_profile="thesis-sm5x5-nir")
    assert len(problems) == 3
    assert "16 bands" in problems[1] and "'other'" in problems[0] and "'other'" in problems[2]
    assert install_problems(info(class_ids=(1, 2), class_names=("a", "b")), info())[0].startswith("The new model has")
