"""research/adabn_transfer.py: batch-norm statistics re-estimated on unlabelled windows."""

from __future__ import annotations

import numpy as np
import pytest

from lungapp import paths

MODEL = paths.resources_dir() / "model"
EXAMPLES = paths.resources_dir() / "examples"


def test_halves_split_patients_alternately_and_skip_missing_ids(repo_script):
    mod = repo_script("research/adabn_transfer.py")
    a, b = mod.halves(["p3", "p1", None, "p2", "p1", "p4", "p5"])
    assert a == {"p1", "p3", "p5"} and b == {"p2", "p4"}


def test_scores_read_evaluate_folders_rows(repo_script):
    mod = repo_script("research/adabn_transfer.py")
    from lungapp.inference.card import load_card

    card = load_card(MODEL)
    t = card.threshold
    rows = [{"truth": "abnormal", "abnormal_probability": t + 0.2, "class": "CAS", "predicted_class": "CAS"},
            {"truth": "abnormal", "abnormal_probability": t - 0.1, "class": "DAS", "predicted_class": "Normal"},
            {"truth": "normal", "abnormal_probability": t - 0.2, "class": "Normal", "predicted_class": "Normal"},
            {"truth": "normal", "abnormal_probability": t + 0.1, "class": "Normal", "predicted_class": "DAS"}]
    s = mod.scores(rows, card)
    assert (s["sensitivity"], s["specificity"], s["score"], s["n"]) == (0.5, 0.5, 0.5, 4)
    assert s["auc"] == pytest.approx(0.75)
    assert s["four_class"] is not None and s["best_threshold"] is not None
    one_class = mod.scores(rows[2:], card)
    assert one_class["best_threshold"] is None and one_class["auc"] is None


@pytest.mark.slow
def test_reestimated_statistics_normalise_the_windows_they_were_estimated_on(repo_script):
    """After re-estimation each BatchNormalization layer's statistics are its inputs' mean and
    variance over the windows, so on those windows its output has, per channel, mean beta and
    standard deviation |gamma|; the original model is left as it was."""
    mod = repo_script("research/adabn_transfer.py")
    import keras

    adapter = mod.Adapter(MODEL)
    Xs = mod.windows_of(sorted(EXAMPLES.glob("*.wav")), adapter.fcs, stride=2)
    assert [X.shape[1:] for X in Xs] == [fc.input_shape for fc in adapter.fcs]
    model = adapter.groups[0][1][0]
    before = [w.copy() for w in model.get_weights()]
    X = Xs[0] * 0.5 + 0.25  # a shifted, rescaled input: other statistics than training's
    adapted = mod.reestimate_bn(model, X)
    for w0, w1 in zip(before, model.get_weights()):
        np.testing.assert_array_equal(w0, w1)
    for layer in mod.bn_layers(adapted):
        inp = np.asarray(keras.Model(adapted.input, layer.input)(X, training=False), dtype=np.float64)
        out = np.asarray(keras.Model(adapted.input, layer.output)(X, training=False), dtype=np.float64)
        inp, out = inp.reshape(-1, inp.shape[-1]), out.reshape(-1, out.shape[-1])
        np.testing.assert_allclose(layer.moving_mean, inp.mean(0), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(layer.moving_variance, inp.var(0), rtol=1e-3, atol=1e-5)
        np.testing.assert_allclose(out.mean(0), layer.beta, atol=1e-3)
        live = inp.var(0) > 1e-3  # channels that carry signal
        np.testing.assert_allclose(out.std(0)[live], np.abs(layer.gamma)[live], rtol=1e-2)
    as_is = adapter.predictor().predict_file(EXAMPLES / "synthetic_wheeze.wav").abnormal_probability
    from lungapp.inference.predictor import Predictor

    assert as_is == pytest.approx(Predictor.load(MODEL).predict_file(
        EXAMPLES / "synthetic_wheeze.wav").abnormal_probability, abs=1e-5)
    moved = adapter.predictor([x * 0.5 + 0.25 for x in Xs]).predict_file(
        EXAMPLES / "synthetic_wheeze.wav").abnormal_probability
    assert moved != pytest.approx(as_is, abs=1e-4)
