"""Model card validation, feature windows, pooling, safe-mode loading and inference."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from lungapp.dsp import SpectrogramConfig
from lungapp.errors import AudioError, ModelError
from lungapp.evaluation.metrics import binary_metrics, choose_threshold, multiclass_metrics
from lungapp.inference.card import FOUR_CLASSES, ModelCard, load_card, write_card
from lungapp.inference.features import FeatureConfig, window_starts, windows_from_samples
from lungapp.inference.predictor import POOR_QUALITY_LABEL, Predictor, outputs_to_classes, pool_recording

FC = FeatureConfig(SpectrogramConfig(rate=4000, win_length=128, hop_length=64, n_fft=128,
                                     scale="mel", n_mels=24), window_s=2.0, hop_s=1.0)


def _card(**kw):
    base = dict(name="m", version="1", task="4class", classes=list(FOUR_CLASSES), features=FC,
                model_files=["model.keras"])
    base.update(kw)
    return ModelCard(**base)


# --- features -------------------------------------------------------------------------

def test_window_starts_cover_the_tail_and_pad_short_signals():
    assert window_starts(100, FC).tolist() == [0]
    starts = window_starts(int(5.5 * 4000), FC)
    assert starts[0] == 0 and starts[-1] + FC.window_samples == int(5.5 * 4000)
    assert np.all(np.diff(starts) <= FC.hop_samples)


def test_windows_shape_range_and_timing():
    x = np.random.default_rng(0).normal(0, 0.1, 4000 * 7).astype(np.float32)
    X, s = windows_from_samples(x, FC)
    assert X.shape[1:] == FC.input_shape and X.dtype == np.float32
    assert X.min() >= 0.0 and X.max() <= 1.0
    assert np.allclose(s, [0, 1, 2, 3, 4, 5], atol=64 / 4000)
    # A window equals the spectrogram of its own slice (same engine, no leakage).
    start = int(round(s[3] * 4000))
    X2, _ = windows_from_samples(x[start: start + 8000], FC)
    np.testing.assert_allclose(X[3], X2[0], atol=1e-6)


def test_feature_config_round_trip_and_errors():
    assert FeatureConfig.from_dict(FC.to_dict()) == FC
    with pytest.raises(ValueError, match="unknown feature config keys"):
        FeatureConfig.from_dict({**FC.to_dict(), "bogus": 1})
    with pytest.raises(ValueError):
        FeatureConfig(FC.spectrogram, window_s=0.0)


# --- card -----------------------------------------------------------------------------

def test_card_round_trip(tmp_path):
    (tmp_path / "model.keras").write_bytes(b"x")
    card = _card(metrics={"auc": 0.9}, pooling="topk:2")
    write_card(tmp_path, card)
    again = load_card(tmp_path)
    assert again.to_dict() == card.to_dict()


@pytest.mark.parametrize("change, message", [
    ({"task": "5class"}, "task must be one of"),
    ({"classes": ["Normal"]}, "at least two"),
    ({"threshold": 1.5}, "threshold must be"),
    ({"pooling": "median"}, "pooling must be"),
    ({"model_files": ["../evil.keras"]}, "model_files"),
    ({"output_kind": "sigmoid", "outputs": ["X"]}, "sigmoid outputs"),
    ({"flag_thresholds": {"CAS": 0.3, "DAS": 0.3}}, "flag_thresholds go with"),
    ({"task": "4class", "classes": ["Normal", "CAS", "DAS", "CAS & DAS"], "output_kind": "sigmoid",
      "outputs": ["CAS", "DAS"], "flag_thresholds": {"CAS": 1.5, "DAS": 0.3}}, "each t in"),
])
def test_invalid_cards_are_refused_with_the_reason(tmp_path, change, message):
    (tmp_path / "model.keras").write_bytes(b"x")
    d = _card().to_dict()
    d.update(change)
    (tmp_path / "card.json").write_text(json.dumps(d))
    with pytest.raises(ModelError, match=message) as err:
        load_card(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_missing_card_corrupt_card_and_missing_file(tmp_path):
    with pytest.raises(ModelError, match="no model card"):
        load_card(tmp_path)
    (tmp_path / "card.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_card(tmp_path)
    (tmp_path / "card.json").write_text(json.dumps(_card().to_dict()))
    with pytest.raises(ModelError, match="missing: model.keras"):
        load_card(tmp_path)
    with pytest.raises(ModelError, match="not found"):
        load_card(tmp_path / "nope")


# --- pooling and metrics --------------------------------------------------------------

def test_sigmoid_flags_pool_into_four_classes():
    card = _card(output_kind="sigmoid", outputs=["CAS", "DAS"], pooling="max")
    # A wheeze in window 0 and a crackle in window 2: the recording is CAS & DAS.
    out = np.array([[0.9, 0.1], [0.1, 0.1], [0.1, 0.8]])
    rec = pool_recording(out, card)
    assert rec.sum() == pytest.approx(1.0)
    assert FOUR_CLASSES[int(np.argmax(rec))] == "CAS & DAS"
    assert np.allclose(outputs_to_classes(out, card).sum(axis=1), 1.0)


def test_softmax_pooling_rules():
    probs = np.array([[0.9, 0.05, 0.05, 0.0], [0.2, 0.7, 0.1, 0.0], [0.8, 0.1, 0.1, 0.0]])
    mean = pool_recording(probs, _card(pooling="mean"))
    top1 = pool_recording(probs, _card(pooling="max"))
    assert 1 - mean[0] == pytest.approx(np.mean(1 - probs[:, 0]))
    assert 1 - top1[0] == pytest.approx(0.8)
    assert FOUR_CLASSES[1 + int(np.argmax(top1[1:]))] == "CAS"


def test_metrics_and_threshold_choice():
    y = [0, 0, 0, 1, 1, 1]
    p = [0.1, 0.2, 0.6, 0.4, 0.8, 0.9]
    m = binary_metrics(y, p, 0.5)
    assert m["confusion"] == [[2, 1], [1, 2]]
    assert m["sensitivity"] == pytest.approx(2 / 3) and m["score"] == pytest.approx(2 / 3)
    t, rule = choose_threshold(y, p)
    assert binary_metrics(y, p, t)["score"] >= m["score"] and "out-of-fold" in rule
    mc = multiclass_metrics(["Normal", "CAS", "DAS"], ["Normal", "DAS", "DAS"], FOUR_CLASSES)
    assert mc["specificity"] == 1.0 and mc["sensitivity"] == 0.5


# --- loading and inference on a real (tiny) model --------------------------------------

def test_predictor_separates_generated_classes(tiny_model_dir):
    from tiny_model import RATE, make_signal

    pred = Predictor.load(tiny_model_dir)
    rng = np.random.default_rng(123)
    normal = pred.predict_audio(make_signal("Normal", 6, rng), RATE)
    wheeze = pred.predict_audio(make_signal("CAS", 6, rng), RATE)
    assert wheeze.abnormal_probability > normal.abnormal_probability
    assert sum(normal.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert len(normal.windows) == 5 and normal.windows[-1].end_s == pytest.approx(6.0)
    d = wheeze.to_dict()
    assert set(d) >= {"file", "duration_s", "label", "abnormal_probability", "probabilities",
                      "windows", "model"}
    # Resampling: the same signal given at 8 kHz gives nearly the same answer.
    from lungapp.audio import resample

    sig = make_signal("CAS", 6, np.random.default_rng(7))
    a = pred.predict_audio(sig, RATE).abnormal_probability
    b = pred.predict_audio(resample(sig, RATE, 8000), 8000).abnormal_probability
    assert abs(a - b) < 0.1


def test_predict_audio_rejects_bad_signals(tiny_model_dir):
    pred = Predictor.load(tiny_model_dir)
    with pytest.raises(AudioError, match="NaN"):
        pred.predict_audio(np.array([0.0, np.nan] * 4000, dtype=np.float32), 4000, path="x.wav")
    with pytest.raises(AudioError, match="non-empty"):
        pred.predict_audio(np.zeros(0, dtype=np.float32), 4000)


def test_quality_gate_decides_poor_quality(tiny_model_dir, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir, d)
    card = load_card(d)
    card.quality_gate = {}
    write_card(d, card)
    pred = Predictor.load(d)
    silent = pred.predict_audio(np.zeros(4000 * 6, dtype=np.float32), 4000)
    assert silent.decision == "poor quality" and silent.label == POOR_QUALITY_LABEL
    assert silent.quality is not None and not silent.quality.ok


def test_quality_gate_verdict_is_the_gates_and_its_errors_reach_the_caller(tiny_model_dir, tmp_path,
                                                                          monkeypatch):
    from lungapp.inference import quality as qmod

    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir, d)
    card = load_card(d)
    card.quality_gate = {}  # the gate on, with its default settings
    write_card(d, card)
    pred = Predictor.load(d)
    x = np.random.default_rng(3).normal(0, 0.05, 4000 * 6).astype(np.float32)
    got = pred.predict_audio(x, 4000)
    assert got.quality is not None and got.quality == qmod.assess(x, 4000, None)

    def broken(*a):
        raise RuntimeError("gate failed")

    monkeypatch.setattr(qmod, "assess", broken)
    with pytest.raises(RuntimeError, match="gate failed"):
        pred.predict_audio(x, 4000)


def test_lambda_layer_model_is_refused(tmp_path):
    import keras

    inp = keras.Input((4,))
    model = keras.Model(inp, keras.layers.Lambda(lambda t: t * 2)(inp))
    model.save(tmp_path / "model.keras")
    card = _card(features=FC, task="binary", classes=["Normal", "Abnormal"])
    write_card(tmp_path, card)
    with pytest.raises(ModelError, match="custom code"):
        Predictor.load(tmp_path)


def test_corrupt_keras_file_and_shape_mismatch(tmp_path, tiny_model_dir):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_model_dir, bad)
    (bad / "model.keras").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ModelError, match="cannot load"):
        Predictor.load(bad, runtime="keras")
    other = tmp_path / "other"
    shutil.copytree(tiny_model_dir, other)
    card = load_card(other)
    card.features = FeatureConfig(card.features.spectrogram, window_s=3.0, hop_s=1.0)
    write_card(other, card)
    for runtime in ("onnx", "keras"):
        with pytest.raises(ModelError, match="input shape"):
            Predictor.load(other, runtime=runtime)


def test_no_model_anywhere_is_a_clear_error(monkeypatch, tmp_path):
    from lungapp.inference import registry

    monkeypatch.delenv("LUNGAPP_MODEL", raising=False)
    monkeypatch.setattr(registry, "bundled_model_dir", lambda: None)
    with pytest.raises(ModelError, match="no model is available"):
        registry.active_model_dir()


def test_install_and_use_never_overwrites(tiny_model_dir, monkeypatch):
    from lungapp.inference import registry

    monkeypatch.delenv("LUNGAPP_MODEL", raising=False)
    a = registry.install_model(tiny_model_dir)
    b = registry.install_model(tiny_model_dir)
    assert a != b and a.is_dir() and b.is_dir()
    registry.set_active_model(b)
    assert registry.active_model_dir() == b.resolve()
    assert registry.installed_models() == sorted([a, b])
    # a half-done install (hidden staging folder, card already copied) is not a model
    from lungapp.fsutil import make_staging

    staging = make_staging(a.with_name("next"))
    (staging / "card.json").write_bytes((a / "card.json").read_bytes())
    assert registry.installed_models() == sorted([a, b])
