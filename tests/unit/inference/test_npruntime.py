"""The NumPy inference runtime (lungapp/inference/npruntime.py): the same numbers as Keras
on the bundled model and on every architecture the project builds, refusal of what it
does not run (with fallback to Keras, reported), LUNGAPP_RUNTIME, and no TensorFlow
import on the prediction path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lungapp.errors import ModelError
from lungapp.inference import npruntime
from lungapp.inference.card import ModelCard, load_card, write_card
from lungapp.inference.predictor import Predictor, planned_runtime

ROOT = Path(__file__).resolve().parents[3]
BUNDLED = ROOT / "resources" / "model"
TOL = 1e-4  # max abs difference allowed between the runtimes' outputs

keras = pytest.importorskip("keras")


def _keras_load(path):
    return keras.saving.load_model(str(path), compile=False, safe_mode=True)


def _randomise(model, rng: np.random.Generator) -> None:
    """Random weights that matter: BatchNorm statistics and offsets far from their
    initial values (so a runtime that ignored them would differ), kernels kept at
    he-normal scale so outputs do not saturate."""
    for layer in model.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        kind = type(layer).__name__
        if kind == "BatchNormalization":
            new = []
            for v in layer.weights:
                n = v.path.split("/")[-1]
                shape = tuple(v.shape)
                new.append({"gamma": rng.uniform(0.5, 1.5, shape), "beta": rng.normal(0, 0.3, shape),
                            "moving_mean": rng.normal(0, 0.5, shape),
                            "moving_variance": rng.uniform(0.3, 3.0, shape)}[n])
            layer.set_weights([w.astype(np.float32) for w in new])
        elif kind == "LayerNormalization":
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32) if i == 0 and layer.scale
                               else rng.normal(0, 0.3, w.shape).astype(np.float32)
                               for i, w in enumerate(ws)])
        else:
            layer.set_weights([w if w.ndim > 1 else rng.normal(0, 0.2, w.shape).astype(np.float32)
                               for w in ws])


def _compare(path: Path, X: np.ndarray) -> tuple[float, np.ndarray]:
    want = np.asarray(_keras_load(path).predict_on_batch(X))
    got = npruntime.load(path)(X)
    assert got.shape == want.shape and got.dtype == np.float32
    return float(np.abs(got - want).max()), want


# --- the bundled model ---------------------------------------------------------------

@pytest.fixture(scope="module")
def bundled_card():
    if not (BUNDLED / "card.json").is_file():
        pytest.skip("no bundled model")
    return load_card(BUNDLED)


def test_bundled_model_files_match_keras_on_random_inputs(bundled_card):
    rng = np.random.default_rng(1)
    for fc, files in bundled_card.member_groups():  # each file on its own windows' shape
        shape = tuple(fc.input_shape)
        X = np.concatenate([rng.random((12, *shape), dtype=np.float32),  # features are in [0, 1]
                            rng.normal(0.5, 0.3, (4, *shape)).astype(np.float32),
                            np.zeros((1, *shape), np.float32), np.ones((1, *shape), np.float32)])
        for f in files:
            diff, want = _compare(BUNDLED / f, X)
            assert diff <= TOL, f"{f}: max abs difference {diff:.2e}"
            assert np.ptp(want) > 1e-3  # outputs vary: the comparison is not trivially met


@pytest.fixture(scope="module")
def bundled_predictors(bundled_card):
    return Predictor.load(BUNDLED, runtime="numpy"), Predictor.load(BUNDLED, runtime="keras")


def test_bundled_ensemble_matches_keras_on_real_sprsound_windows(bundled_predictors, sprsound_dir):
    from lungapp.audio import load_audio

    num, ker = bundled_predictors
    assert (num.runtime, ker.runtime) == ("numpy", "keras")
    files = sorted((sprsound_dir / "train").glob("*.flac"))[::97][:12]
    files += sorted((sprsound_dir / "intra_test").glob("*.flac"))[::53][:4]
    assert len(files) >= 8
    worst = 0.0
    for f in files:
        a = load_audio(f, rate=num.card.features.rate)
        for g, (X, _) in enumerate(num.member_windows(a.samples)):  # each member group
            got, want = num.window_outputs(X, g), ker.window_outputs(X, g)
            worst = max(worst, float(np.abs(got - want).max()))
        p, q = num.predict_file(f), ker.predict_file(f)
        assert p.label == q.label and p.decision == q.decision
        assert p.abnormal_probability == pytest.approx(q.abnormal_probability, abs=TOL)
    assert worst <= TOL, f"max abs difference {worst:.2e} on real windows"


def test_bundled_model_uses_the_numpy_runtime_by_default(bundled_card, monkeypatch):
    monkeypatch.delenv("LUNGAPP_RUNTIME", raising=False)
    pred = Predictor.load(BUNDLED)
    assert pred.runtime == "numpy" and pred.runtime_note == ""
    assert planned_runtime(BUNDLED) == ("numpy", "")


# --- the project's architectures, random weights -------------------------------------

ARCH_CASES = [
    ("seed_cnn", (32, 24, 1), "softmax", 3),
    ("seed_cnn", (33, 23, 1), "sigmoid", 2),
    ("cnn4", (31, 17, 1), "softmax", 4),
    ("cnn4", (40, 21, 1), "sigmoid", 2),
    ("lungcnn", (124, 64, 1), "sigmoid", 2),
    ("lungcnn", (45, 19, 1), "softmax", 4),
    ("lungcnn", (37, 33, 1), "sigmoid", 1),
]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("arch,shape,activation,n", ARCH_CASES)
def test_architectures_match_keras(tmp_path, arch, shape, activation, n, seed):
    from lungapp.training import archs

    rng = np.random.default_rng([seed, *shape, n])
    keras.utils.set_random_seed(seed)
    model, _ = archs.build(arch, shape, n, activation=activation)
    _randomise(model, rng)
    path = tmp_path / f"{arch}.keras"
    model.save(path)
    X = rng.random((5, *shape), dtype=np.float32)
    diff, want = _compare(path, X)
    assert diff <= TOL, f"{arch} {shape} {activation}: max abs difference {diff:.2e}"
    assert np.ptp(want) > 1e-3
    if activation == "softmax":
        np.testing.assert_allclose(npruntime.load(path)(X).sum(axis=1), 1.0, atol=1e-5)


def _layer_zoo(shape=(23, 17, 3)):
    """Every supported layer and option, on odd sizes and even kernels/strides."""
    L = keras.layers
    inp = keras.Input(shape, name="x")
    a = L.LayerNormalization(axis=[1, 2], epsilon=1e-4)(inp)                # centre + scale
    a = L.Conv2D(6, 4, strides=(2, 1), padding="same", activation="relu")(a)  # even kernel
    a = L.BatchNormalization(center=False)(a)
    a = L.ReLU(max_value=1.5, negative_slope=0.1, threshold=0.05)(a)
    b = L.Conv2D(5, 2, strides=2, padding="same", activation="sigmoid", use_bias=False)(inp)
    b = L.BatchNormalization(scale=False)(b)
    b = L.AveragePooling2D(3, strides=1, padding="same")(b)               # excludes padding
    b = L.Conv2D(6, (3, 1), padding="valid")(b)
    a = L.MaxPooling2D(3, strides=2, padding="valid")(a)
    b = L.AveragePooling2D(2, padding="valid")(b)
    c = L.Concatenate(axis=-1)([L.GlobalAveragePooling2D(keepdims=True)(a),
                                L.GlobalMaxPooling2D(keepdims=True)(b)])
    c = L.Conv2D(8, 1, activation="linear")(c)
    c = L.Activation("relu")(c)
    c = L.LayerNormalization(axis=-1, center=False)(c)
    c = L.Flatten()(c)
    d = L.Flatten()(L.MaxPooling2D(2, padding="same")(a))
    x = L.Concatenate()([c, d])
    x = L.Dropout(0.5)(x)
    x = L.Dense(7)(x)
    x = L.BatchNormalization()(x)
    x = L.Activation("softmax")(x)
    out = L.Dense(3, activation="sigmoid")(x)
    return keras.Model(inp, out)


def test_every_supported_layer_matches_keras(tmp_path, monkeypatch):
    keras.utils.set_random_seed(1)
    model = _layer_zoo()
    _randomise(model, np.random.default_rng(2))
    path = tmp_path / "zoo.keras"
    model.save(path)
    X = np.random.default_rng(3).normal(0, 1, (6, 23, 17, 3)).astype(np.float32)
    diff, want = _compare(path, X)
    assert diff <= TOL, f"max abs difference {diff:.2e}"
    assert np.ptp(want) > 1e-3
    # convolutions in chunks of windows (as for the bundled model's 27 windows) agree too
    monkeypatch.setattr(npruntime, "_CHUNK_FLOATS", 1)
    assert np.abs(npruntime.load(path)(X) - want).max() <= TOL
    kinds = set(npruntime.load(path).layer_types())
    assert {"Conv2D", "BatchNormalization", "LayerNormalization", "ReLU", "Activation",
            "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
            "Concatenate", "Dropout", "Flatten", "Dense"} <= kinds


def test_a_batch_split_across_threads_gives_the_single_thread_result(tmp_path, monkeypatch):
    """A recording's windows are shared out among CALL_THREADS threads (each running the
    whole plan on its share); the result is the one-thread result, for a model and an
    ensemble, and the threads really run."""
    import threading

    keras.utils.set_random_seed(4)
    paths = []
    for i in range(2):
        model = _layer_zoo()
        _randomise(model, np.random.default_rng(10 + i))
        paths.append(tmp_path / f"m{i}.keras")
        model.save(paths[-1])
    X = np.random.default_rng(5).normal(0, 1, (27, 23, 17, 3)).astype(np.float32)
    one = npruntime.load(paths[0])
    ens = npruntime.NumpyEnsemble([npruntime.load(p) for p in paths])
    monkeypatch.setattr(npruntime, "CALL_THREADS", 1)
    want_one, want_ens = one(X), ens(X)
    seen = []  # (thread, windows) per share; a pool thread may run two shares
    run = one._run

    def spy(x, shared):
        seen.append((threading.get_ident(), len(x)))
        return run(x, shared)

    monkeypatch.setattr(one, "_run", spy)
    for threads in (2, 3):
        monkeypatch.setattr(npruntime, "CALL_THREADS", threads)
        np.testing.assert_allclose(ens(X), want_ens, rtol=0, atol=1e-6)
        seen.clear()
        np.testing.assert_allclose(one(X), want_one, rtol=0, atol=1e-6)
        ids = {t for t, _ in seen}  # the caller took a share, a pool thread another
        assert threading.get_ident() in ids and len(ids) >= 2
        assert sorted(n for _, n in seen) == sorted(len(p) for p in np.array_split(X, threads))
    seen.clear()
    one(X[:5])  # too few windows to be worth splitting
    assert len(seen) == 1


@pytest.mark.parametrize("size", [1, 2, 5, 6, 7, 8])
@pytest.mark.parametrize("k,s", [(1, 1), (2, 2), (3, 1), (3, 2), (4, 3), (5, 2)])
def test_same_padding_matches_keras_for_every_size(tmp_path, size, k, s):
    L = keras.layers
    inp = keras.Input((size, size + 1, 2))
    y = L.Concatenate()([L.MaxPooling2D(k, strides=s, padding="same")(inp),
                         L.AveragePooling2D(k, strides=s, padding="same")(inp),
                         L.Conv2D(3, k, strides=s, padding="same")(inp)])
    model = keras.Model(inp, L.Flatten()(y))
    path = tmp_path / "pad.keras"
    model.save(path)
    X = np.random.default_rng(size * 31 + k).normal(size=(3, size, size + 1, 2)).astype(np.float32)
    diff, _ = _compare(path, X)
    assert diff <= TOL


@pytest.mark.parametrize("size", [5, 6, 9])
@pytest.mark.parametrize("pk,ps", [(2, 2), (3, 2), (2, 1), (4, 3)])
def test_max_pool_without_a_padded_copy_matches_keras(tmp_path, size, pk, ps):
    """Conv -> BN -> ReLU -> SAME max-pool -> conv (the lungcnn block; the pool takes the
    convolution's bias and ReLU). A SAME pool whose padding is all after the data pools
    without a padded copy; odd and even sizes, both ways of pooling."""
    L = keras.layers
    inp = keras.Input((size + 3, size, 2))
    y = L.Conv2D(4, 3, padding="same", use_bias=False)(inp)
    y = L.ReLU()(L.BatchNormalization()(y))
    y = L.MaxPooling2D(pk, strides=ps, padding="same")(y)
    y = L.Conv2D(3, 3, padding="same", activation="relu")(y)
    model = keras.Model(inp, L.Flatten()(y))
    _randomise(model, np.random.default_rng(size))
    path = tmp_path / "block.keras"
    model.save(path)
    pool = next(op for op, *_ in npruntime.load(path)._steps if op.kind == "MaxPooling2D")
    assert pool.post is not None
    if pk == 2:  # a border of at most one cell, which SAME puts after the data
        assert pool.tail_padded(size + 3, size)
    X = np.random.default_rng(size + pk).normal(size=(5, size + 3, size, 2)).astype(np.float32)
    diff, _ = _compare(path, X)
    assert diff <= TOL


def test_sequential_model_matches_keras(tiny_model_dir):
    num = Predictor.load(tiny_model_dir, runtime="numpy")
    ker = Predictor.load(tiny_model_dir, runtime="keras")
    X = np.random.default_rng(0).random((9, *num.card.features.input_shape), dtype=np.float32)
    assert np.abs(num.window_outputs(X) - ker.window_outputs(X)).max() <= TOL


def test_wrong_input_shape_is_a_clear_error(tmp_path):
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 3), keras.layers.Flatten()])
    model.save(tmp_path / "m.keras")
    m = npruntime.load(tmp_path / "m.keras")
    assert m.input_shape == (None, 4, 4, 1) and m.output_shape == (None, 8)
    with pytest.raises(ValueError, match="input shape"):
        m(np.zeros((1, 5, 4, 1), np.float32))


# --- refusal and fallback ------------------------------------------------------------

def _model_dir(tmp_path: Path, model, input_shape, n_out=2, name="m") -> Path:
    """A model folder (card + one .keras file) around ``model``."""
    from lungapp.dsp import SpectrogramConfig
    from lungapp.inference.features import FeatureConfig

    d = tmp_path / name
    d.mkdir()
    model.save(d / "model.keras")
    fc = FeatureConfig(SpectrogramConfig(rate=4000, win_length=128, hop_length=64, n_fft=128,
                                         scale="mel", n_mels=input_shape[1]), window_s=2.0, hop_s=1.0)
    assert tuple(fc.input_shape) == tuple(input_shape), fc.input_shape
    classes = ["Normal", "Abnormal"] if n_out == 2 else ["Normal", "CAS", "DAS", "CAS & DAS"]
    write_card(d, ModelCard(name="t", version="1", task="binary" if n_out == 2 else "4class",
                            classes=classes, features=fc, model_files=["model.keras"]))
    return d


def _fc_shape():
    from lungapp.dsp import SpectrogramConfig
    from lungapp.inference.features import FeatureConfig

    return tuple(FeatureConfig(SpectrogramConfig(rate=4000, win_length=128, hop_length=64, n_fft=128,
                                                 scale="mel", n_mels=16), window_s=2.0, hop_s=1.0).input_shape)


def test_unsupported_layer_falls_back_to_keras_and_says_why(tmp_path, monkeypatch, capsys):
    shape = _fc_shape()
    inp = keras.Input(shape)
    x = keras.layers.Rescaling(2.0, offset=-1.0, name="rescale_me")(inp)
    x = keras.layers.Conv2D(4, 3, padding="same")(x)
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    d = _model_dir(tmp_path, keras.Model(inp, out), shape)
    with pytest.raises(npruntime.UnsupportedModel, match="rescale_me.*Rescaling"):
        npruntime.load(d / "model.keras")
    monkeypatch.delenv("LUNGAPP_RUNTIME", raising=False)
    pred = Predictor.load(d)
    assert pred.runtime == "keras" and "Rescaling" in pred.runtime_note
    assert "Keras runtime" in pred.runtime_text() and "Rescaling" in pred.runtime_text()
    runtime, note = planned_runtime(d)
    assert runtime == "keras" and "Rescaling" in note
    X = np.random.default_rng(0).random((2, *shape), dtype=np.float32)
    assert pred.window_outputs(X).shape == (2, 2)
    # forced numpy: a clear error, no silent fallback
    monkeypatch.setenv("LUNGAPP_RUNTIME", "numpy")
    with pytest.raises(ModelError, match="NumPy runtime.*Rescaling"):
        Predictor.load(d)
    # reported by `lungapp info`
    from lungapp.cli import main

    monkeypatch.delenv("LUNGAPP_RUNTIME")
    monkeypatch.setenv("LUNGAPP_MODEL", str(d))
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "runtime: keras" in out and "Rescaling" in out
    assert main(["models"]) == 0


def test_nested_model_backbone_is_unsupported(tmp_path):
    inner_in = keras.Input((8, 8, 1))
    inner = keras.Model(inner_in, keras.layers.Conv2D(2, 3)(inner_in), name="backbone")
    inp = keras.Input((8, 8, 1))
    out = keras.layers.Dense(2)(keras.layers.Flatten()(inner(inp)))
    keras.Model(inp, out).save(tmp_path / "n.keras")
    with pytest.raises(npruntime.UnsupportedModel, match="nested model|backbone"):
        npruntime.load(tmp_path / "n.keras")


@pytest.mark.parametrize("layer", [
    lambda L: L.Conv2D(2, 3, dilation_rate=2),
    lambda L: L.Conv2D(2, 3, activation="tanh"),
    lambda L: L.DepthwiseConv2D(3),
    lambda L: L.BatchNormalization(renorm=True),
    lambda L: L.LayerNormalization(rms_scaling=True),
])
def test_unsupported_options_are_refused(tmp_path, layer):
    inp = keras.Input((9, 9, 2))
    keras.Model(inp, layer(keras.layers)(inp)).save(tmp_path / "o.keras")
    with pytest.raises(npruntime.UnsupportedModel, match="not supported"):
        npruntime.load(tmp_path / "o.keras")


def _edit_config(src: Path, dst: Path, edit) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                cfg = json.loads(data)
                edit(cfg)
                data = json.dumps(cfg).encode()
            zout.writestr(item, data)


def test_unknown_option_and_custom_objects_are_refused(tmp_path):
    inp = keras.Input((6, 6, 1))
    out = keras.layers.Dense(2)(keras.layers.Flatten()(keras.layers.Conv2D(2, 3, name="c")(inp)))
    keras.Model(inp, out).save(tmp_path / "ok.keras")
    npruntime.load(tmp_path / "ok.keras")  # the unedited file is fine

    def conv(cfg):
        return next(l for l in cfg["config"]["layers"] if l["class_name"] == "Conv2D")

    _edit_config(tmp_path / "ok.keras", tmp_path / "opt.keras",
                 lambda cfg: conv(cfg)["config"].update(some_future_option=True))
    with pytest.raises(npruntime.UnsupportedModel, match="some_future_option"):
        npruntime.load(tmp_path / "opt.keras")

    def custom(cfg):
        conv(cfg).update(module="my_package.layers", registered_name="Custom>Conv2D")
    _edit_config(tmp_path / "ok.keras", tmp_path / "custom.keras", custom)
    with pytest.raises(npruntime.UnsafeModel, match="custom objects"):
        npruntime.load(tmp_path / "custom.keras")

    _edit_config(tmp_path / "ok.keras", tmp_path / "f16.keras",
                 lambda cfg: conv(cfg)["config"].update(dtype="mixed_float16"))
    with pytest.raises(npruntime.UnsupportedModel, match="dtype"):
        npruntime.load(tmp_path / "f16.keras")


def test_lambda_is_refused_by_the_numpy_runtime_itself(tmp_path, monkeypatch):
    shape = _fc_shape()
    inp = keras.Input(shape)
    x = keras.layers.Lambda(lambda t: t * 2)(inp)
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    d = _model_dir(tmp_path, keras.Model(inp, out), shape)
    with pytest.raises(npruntime.UnsafeModel, match="custom code"):
        npruntime.load(d / "model.keras")
    monkeypatch.delenv("LUNGAPP_RUNTIME", raising=False)
    with pytest.raises(ModelError, match="custom code"):
        Predictor.load(d)
    assert planned_runtime(d)[0] == "none"


def test_corrupt_file_is_an_error_not_a_fallback(tmp_path):
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ModelError, match="cannot load") as exc:
        npruntime.load(bad)
    assert not isinstance(exc.value, npruntime.UnsupportedModel)


# --- LUNGAPP_RUNTIME ----------------------------------------------------------------

def test_lungapp_runtime_is_honoured(tiny_model_dir, monkeypatch):
    for value, want in [("keras", "keras"), ("numpy", "numpy"), ("auto", "numpy"), ("", "numpy"),
                        (" NumPy ", "numpy")]:
        monkeypatch.setenv("LUNGAPP_RUNTIME", value)
        assert Predictor.load(tiny_model_dir).runtime == want, value
    monkeypatch.setenv("LUNGAPP_RUNTIME", "keras")
    assert planned_runtime(tiny_model_dir)[0] == "keras"
    assert Predictor.load(tiny_model_dir, runtime="numpy").runtime == "numpy"  # argument wins
    monkeypatch.setenv("LUNGAPP_RUNTIME", "tensorflow")
    with pytest.raises(ModelError, match="LUNGAPP_RUNTIME"):
        Predictor.load(tiny_model_dir)


# --- no TensorFlow on the prediction path ---------------------------------------------

_CHECK_IMPORTS = r"""
import json, sys
{body}
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
print("MODULES " + json.dumps(heavy))
"""


def _heavy_modules(body: str, env_extra: dict) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LUNGAPP_RUNTIME", "LUNGAPP_MODEL")}
    env.update(env_extra)
    r = subprocess.run([sys.executable, "-c", _CHECK_IMPORTS.format(body=body)], capture_output=True,
                       text=True, env=env, cwd=str(ROOT), timeout=300)
    line = next((l for l in r.stdout.splitlines() if l.startswith("MODULES ")), None)
    assert line is not None, f"child failed: {r.stderr[-2000:]}"
    return json.loads(line[len("MODULES "):])


_PREDICT = """
from lungapp.cli import main
code = main(["predict", {wav!r}, "--format", "json"])
assert code == 0, code
"""

_GUI_LOAD = """
from lungapp.gui.context import _load_predictor
class T:
    def progress(self, *a):
        pass
p = _load_predictor(T(), None)
p.predict_file({wav!r})
print("RUNTIME", p.runtime)
"""


@pytest.mark.parametrize("body", [_PREDICT, _GUI_LOAD], ids=["cli-predict", "gui-model-worker"])
def test_prediction_path_never_imports_tensorflow(body, bundled_card):
    wav = str(ROOT / "resources" / "examples" / "synthetic_wheeze.wav")
    assert _heavy_modules(body.format(wav=wav), {}) == []
    # the check can fail: the same path with the Keras runtime imports TensorFlow
    heavy = _heavy_modules(body.format(wav=wav), {"LUNGAPP_RUNTIME": "keras"})
    assert "tensorflow" in heavy and "keras" in heavy
