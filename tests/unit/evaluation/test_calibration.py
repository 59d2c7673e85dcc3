"""Calibration of the abnormal probability: the Platt fit, reliability figures, the card's
calibration and its use by both inference runtimes, and training's calibrated threshold."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from lungapp.evaluation.calibration import apply_platt, fit_platt, logit, reliability
from lungapp.inference.card import ModelCard, load_card, write_card
from lungapp.inference.card_schema import Calibration


def _miscalibrated(n=20000, a=2.0, b=-0.5, seed=0):
    """Scores p whose true abnormal probability is sigmoid(a * logit(p) + b)."""
    rng = np.random.default_rng(seed)
    p = 1 / (1 + np.exp(-rng.normal(0, 1.2, n)))
    y = (rng.random(n) < apply_platt(p, a, b)).astype(int)
    return y, p


def test_platt_fit_recovers_the_true_scaling_and_refuses_one_class():
    y, p = _miscalibrated()
    a, b = fit_platt(y, p)
    assert a == pytest.approx(2.0, abs=0.1) and b == pytest.approx(-0.5, abs=0.1)
    with pytest.raises(ValueError, match="both"):
        fit_platt(np.ones(10), np.linspace(0.1, 0.9, 10))
    # a separable set does not send the slope to infinity
    a, _ = fit_platt([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert np.isfinite(a) and 0 < a < 100


def test_reliability_tells_calibrated_from_miscalibrated():
    y, p = _miscalibrated()
    before = reliability(y, p)
    after = reliability(y, apply_platt(p, *fit_platt(y, p)))
    assert sum(b["n"] for b in before["bins"]) == len(y) == after["n"]
    assert before["ece"] > 0.05 > 0.02 > after["ece"]
    assert after["brier"] < before["brier"]
    assert reliability([], [])["ece"] is None


def _card(tiny_model_dir, calibration) -> ModelCard:
    return dataclasses.replace(load_card(tiny_model_dir), calibration=calibration)


def test_card_calibration_maps_both_ways_and_keeps_the_class_shares(tiny_model_dir):
    card = _card(tiny_model_dir, Calibration(a=1.7, b=0.2))
    p = np.linspace(0.01, 0.99, 50)
    assert np.allclose(card.uncalibrate(card.calibrate(p)), p, atol=1e-9)
    assert card.calibrate(0.3) == pytest.approx(float(apply_platt(0.3, 1.7, 0.2)))
    probs = np.array([[0.6, 0.1, 0.25, 0.05], [0.2, 0.5, 0.2, 0.1], [1.0, 0.0, 0.0, 0.0]])
    out = card.calibrate_probs(probs)
    assert np.allclose(out.sum(axis=1), 1.0)
    assert np.allclose(1 - out[:, 0], card.calibrate(1 - probs[:, 0]))
    # each abnormal class keeps its share of the abnormal probability
    assert np.allclose(out[:2, 1:] / out[:2, 1:].sum(1, keepdims=True),
                       probs[:2, 1:] / probs[:2, 1:].sum(1, keepdims=True))
    assert np.allclose(card.uncalibrate_probs(out)[:2], probs[:2])
    # no calibration: unchanged
    plain = _card(tiny_model_dir, None)
    assert plain.calibrate(0.3) == 0.3 and plain.calibrate_probs(probs) is probs


def test_card_calibration_round_trips_and_bad_values_are_refused(tiny_model_dir):
    card = _card(tiny_model_dir, Calibration(a=1.7, b=0.2, fitted_on="x", ece=0.01))
    again = ModelCard.from_dict(json.loads(json.dumps(card.to_dict())))
    assert again.calibration == card.calibration
    for bad, words in (({"a": -1.0, "b": 0.0}, "calibration.a"), ({"a": 1.0, "b": 1e9}, "calibration.b"),
                       ({"a": "1", "b": 0.0}, "calibration.a"), ({"method": "isotonic", "a": 1.0, "b": 0.0},
                                                                  "method")):
        d = card.to_dict()
        d["calibration"] = bad
        with pytest.raises(ValueError, match="(?i)" + words):
            ModelCard.from_dict(d)


@pytest.mark.parametrize("runtime", ["onnx", "keras"])
def test_both_runtimes_show_the_calibrated_probability(tiny_model_dir, tmp_path, runtime):
    from lungapp.inference.predictor import Predictor
    from lungapp.synth import generate

    x = generate("wheeze", seconds=6.0, seed=3)
    plain = Predictor.load(tiny_model_dir, runtime=runtime).predict_audio(x, 8000)
    cal_dir = tmp_path / "calibrated"
    shutil.copytree(tiny_model_dir, cal_dir)
    raw_t = 0.4
    card = _card(tiny_model_dir, Calibration(a=2.5, b=-0.7, raw_threshold=raw_t))
    card = dataclasses.replace(card, threshold=float(apply_platt(raw_t, 2.5, -0.7)))
    write_card(cal_dir, card)
    pred = Predictor.load(cal_dir, runtime=runtime).predict_audio(x, 8000)
    assert pred.abnormal_probability == pytest.approx(float(apply_platt(plain.abnormal_probability, 2.5, -0.7)),
                                                      abs=1e-9)
    assert sum(pred.probabilities.values()) == pytest.approx(1.0)
    assert (pred.decision == "abnormal") == (plain.abnormal_probability >= raw_t)
    assert pred.threshold == pytest.approx(card.threshold)
    # the timeline is on the same scale as the threshold drawn against it
    w_plain, w_cal = plain.windows[0], pred.windows[0]
    assert w_cal.abnormal_probability == pytest.approx(
        float(apply_platt(w_plain.abnormal_probability, 2.5, -0.7)), abs=1e-9)


def test_training_report_calibrates_and_keeps_every_decision():
    from lungapp.training.oof import card_threshold, evaluate_oof

    y, p = _miscalibrated(n=600, seed=1)
    probs = np.stack([1 - p, p], axis=1)
    fold_of = np.arange(len(y)) % 4
    labels = ["Abnormal" if v else "Normal" for v in y]
    report = evaluate_oof(y, labels, probs, fold_of, ["Normal", "Abnormal"], "binary")
    c = report["calibration"]
    assert c["a"] > 0 and c["ece"] < c["ece_raw"] and c["nested_ece"] is not None
    assert c["raw_threshold"] == report["threshold"]
    t = card_threshold(report)
    assert t == pytest.approx(float(apply_platt(report["threshold"], c["a"], c["b"])))
    assert np.array_equal(p >= report["threshold"], apply_platt(p, c["a"], c["b"]) >= t)
    assert logit(0.5) == pytest.approx(0.0)
