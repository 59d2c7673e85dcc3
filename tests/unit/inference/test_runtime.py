"""The ONNX runtime: exports equal Keras, hashes are checked, TensorFlow stays off the
app's path, and a folder without ONNX files runs on Keras until it is installed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from lungapp import paths
from lungapp.errors import ModelError
from lungapp.inference import registry
from lungapp.inference.card import ModelCard, OnnxFile, load_card
from lungapp.inference.predictor import NO_ONNX_NOTE, Predictor, planned_runtime

TOL = 1e-5
EXAMPLES = paths.resources_dir() / "examples"


def _keras_and_onnx(model_dir, card, model_file):
    from lungapp.inference.predictor import load_keras_model
    from lungapp.inference.runtime import load_onnx_model

    return load_keras_model(model_dir / model_file), load_onnx_model(model_dir, card, model_file)


# --- equality with Keras ----------------------------------------------------------------

@pytest.mark.slow
def test_bundled_members_equal_keras_on_the_examples_windows():
    """Every member of the bundled model, on the windows of its own length cut from the
    bundled example recordings' spectrograms."""
    from lungapp.audio import load_audio

    d = registry.bundled_model_dir()
    card = load_card(d)
    assert set(card.onnx) == set(card.model_files) and len(card.model_files) == 3
    pred = Predictor.load(d, runtime="onnx")
    assert pred.runtime == "onnx" and pred.runtime_text() == "ONNX Runtime"
    windows = [[] for _ in pred.groups]
    for wav in sorted(EXAMPLES.glob("*.wav")):
        audio = load_audio(wav, rate=card.features.rate)
        for g, (X, _) in enumerate(pred.member_windows(audio.samples)):
            windows[g].append(X)
    checked = 0
    for g, (fc, files) in enumerate(card.member_groups()):
        X = np.concatenate(windows[g])
        assert X.shape[1:] == tuple(fc.input_shape) and len(X) >= 8
        for f in files:
            keras_model, onnx_model = _keras_and_onnx(d, card, f)
            want = np.asarray(keras_model.predict_on_batch(X), dtype=np.float64)
            np.testing.assert_allclose(onnx_model(X), want, rtol=0, atol=TOL)
            checked += 1
    assert checked == 3


ARCH_CASES = [
    pytest.param("seed_cnn", "softmax", id="seed_cnn"),
    pytest.param("cnn4", "softmax", id="cnn4"),
    pytest.param("lungcnn", "sigmoid", id="lungcnn"),
    pytest.param("inception_v3", "softmax", id="inception_v3", marks=pytest.mark.slow),
    pytest.param("resnet50", "softmax", id="resnet50", marks=pytest.mark.slow),
]


@pytest.mark.slow
@pytest.mark.parametrize("arch, activation", ARCH_CASES)
def test_every_train_tab_architecture_exports_equal_to_keras(arch, activation, tmp_path, monkeypatch):
    """Random weights (no cached ImageNet file: KERAS_HOME is empty), an input the
    backbones resize up (InceptionV3) or take as it is (ResNet50)."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    import keras

    from lungapp.inference.runtime import OnnxModel
    from lungapp.training import archs
    from lungapp.training.export import export_file

    keras.utils.set_random_seed(1)
    shape = (64, 40, 1)
    model, info = archs.build(arch, shape, 2, activation=activation)
    assert info.weights == "random"
    path = tmp_path / "m.keras"
    model.save(path)
    entry = export_file(path, shape)
    assert entry.file == "m.onnx" and (tmp_path / "m.onnx").is_file()
    x = np.random.default_rng(7).uniform(0, 1, (3, *shape)).astype(np.float32)
    want = np.asarray(model.predict_on_batch(x), dtype=np.float64)
    got = OnnxModel((tmp_path / "m.onnx").read_bytes(), tmp_path / "m.onnx")(x)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)


def test_tiny_model_runs_on_onnx_and_equals_the_keras_runtime(tiny_model_dir):
    from tiny_model import RATE, make_signal

    onnx_pred = Predictor.load(tiny_model_dir)
    keras_pred = Predictor.load(tiny_model_dir, runtime="keras")
    assert onnx_pred.runtime == "onnx" and keras_pred.runtime == "keras"
    assert keras_pred.runtime_text() == "Keras runtime (LUNGAPP_RUNTIME=keras)"
    x = make_signal("CAS & DAS", 7, np.random.default_rng(5))
    a, b = onnx_pred.predict_audio(x, RATE), keras_pred.predict_audio(x, RATE)
    assert a.label == b.label
    assert abs(a.abnormal_probability - b.abnormal_probability) <= TOL
    for wa, wb in zip(a.windows, b.windows, strict=True):
        assert max(abs(wa.probabilities[k] - wb.probabilities[k]) for k in wa.probabilities) <= TOL


def test_export_refuses_an_export_that_differs_from_keras(tiny_model_dir, tmp_path, monkeypatch):
    from lungapp.training import export

    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir, d)
    from lungapp.inference import runtime  # the check imports OnnxModel from here, lazily

    class Off(runtime.OnnxModel):
        def __call__(self, x):
            return super().__call__(x) + np.float32(1e-3)

    monkeypatch.setattr(runtime, "OnnxModel", Off)
    with pytest.raises(ModelError, match="differ from Keras's by 0.001") as err:
        export.export_model_folder(d)
    assert "model.keras" in str(err.value)


# --- TensorFlow stays off the app's path ------------------------------------------------

@pytest.mark.parametrize("command", [["predict", "{wav}", "--format", "json"], ["info"], ["models"]])
def test_cli_never_imports_tensorflow_or_keras(command, monkeypatch):
    monkeypatch.delenv("LUNGAPP_MODEL", raising=False)
    monkeypatch.delenv("LUNGAPP_RUNTIME", raising=False)
    argv = [a.format(wav=EXAMPLES / "synthetic_wheeze.wav") for a in command]
    code = ("import sys, io, contextlib\n"
            "from lungapp.cli import main\n"
            "out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out):\n"
            f"    rc = main({argv!r})\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx'))\n"
            "print(rc, heavy, out.getvalue().count('onnx'))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    rc, heavy, _ = res.stdout.strip().splitlines()[-1].split(" ", 2)
    assert rc == "0" and heavy.startswith("[]"), res.stdout


# --- hashes -----------------------------------------------------------------------------

def test_tampered_onnx_file_is_refused(tiny_model_dir, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir, d)
    onnx = d / load_card(d).onnx["model.keras"].file
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0x01
    onnx.write_bytes(bytes(data))
    for runtime in ("auto", "onnx"):
        with pytest.raises(ModelError, match="does not match the SHA-256") as err:
            Predictor.load(d, runtime=runtime)
        assert str(onnx) in str(err.value)
    runtime, note = planned_runtime(d)
    assert runtime == "none" and "SHA-256" in note
    with pytest.raises(ModelError, match="SHA-256"):
        registry.install_model(d)
    assert registry.installed_models() == []


def test_missing_onnx_file_is_refused(tiny_model_dir, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir, d)
    (d / "model.onnx").unlink()
    with pytest.raises(ModelError, match=r"ONNX file\(s\) listed in the card are missing: model.onnx"):
        Predictor.load(d)
    assert planned_runtime(d)[0] == "none"


@pytest.mark.parametrize("onnx, message", [
    ({"model.keras": {"file": "model.onnx", "sha256": "ABC"}}, "64 lowercase hex"),
    ({"model.keras": {"file": "../model.onnx", "sha256": "0" * 64}}, "a .onnx file name"),
    ({"model.keras": {"file": "model.onnx"}}, "each onnx entry must be"),
    ({"other.keras": {"file": "model.onnx", "sha256": "0" * 64}}, "every model file"),
    (["model.onnx"], "onnx must map"),
])
def test_invalid_onnx_entries_are_refused(tiny_model_dir, tmp_path, onnx, message):
    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir, d)
    raw = json.loads((d / "card.json").read_text())
    raw["onnx"] = onnx
    (d / "card.json").write_text(json.dumps(raw))
    with pytest.raises(ModelError, match=message):
        load_card(d)


def test_onnx_entries_round_trip_and_are_optional(tiny_model_dir, tmp_path):
    card = load_card(tiny_model_dir)
    assert isinstance(card.onnx["model.keras"], OnnxFile)
    assert ModelCard.from_dict(card.to_dict()) == card
    raw = card.to_dict()
    del raw["onnx"]  # a card written before the field
    assert ModelCard.from_dict(raw).onnx == {}


# --- folders without ONNX files ---------------------------------------------------------

def test_folder_without_onnx_runs_on_keras_until_installed(tiny_model_dir, tmp_path, monkeypatch, capsys):
    from lungapp.cli import main

    from tiny_model import RATE, make_signal, strip_onnx

    monkeypatch.delenv("LUNGAPP_MODEL", raising=False)
    d = strip_onnx(shutil.copytree(tiny_model_dir, tmp_path / "old"))
    assert load_card(d).onnx == {} and not list(d.glob("*.onnx"))
    old = Predictor.load(d)
    assert old.runtime == "keras" and old.runtime_text() == f"Keras runtime ({NO_ONNX_NOTE})"
    assert planned_runtime(d) == ("keras", NO_ONNX_NOTE)
    assert planned_runtime(d, "onnx")[0] == "none"
    with pytest.raises(ModelError, match="no ONNX export"):
        Predictor.load(d, runtime="onnx")

    assert main(["models", "install", str(d)]) == 0
    installed = registry.installed_models()
    assert len(installed) == 1 and "installed" in capsys.readouterr().out
    card = load_card(installed[0])
    assert (installed[0] / card.onnx["model.keras"].file).is_file()
    assert load_card(d).onnx == {}  # the source folder is left as it was
    new = Predictor.load(installed[0])
    assert new.runtime == "onnx"
    x = make_signal("DAS", 5, np.random.default_rng(2))
    assert abs(new.predict_audio(x, RATE).abnormal_probability
               - old.predict_audio(x, RATE).abnormal_probability) <= TOL
    assert main(["models"]) == 0
    assert "runtime onnx" in capsys.readouterr().out


def test_unknown_runtime_names_the_choices(tiny_model_dir, monkeypatch):
    monkeypatch.setenv("LUNGAPP_RUNTIME", "numpy")
    with pytest.raises(ModelError, match="must be one of auto, onnx, keras"):
        Predictor.load(tiny_model_dir)
    monkeypatch.setenv("LUNGAPP_RUNTIME", "onnx")
    monkeypatch.setenv("LUNGAPP_THREADS", "two")
    with pytest.raises(ModelError, match="LUNGAPP_THREADS must be a whole number"):
        Predictor.load(tiny_model_dir)
