"""`lungapp models install [--use]` on hostile or broken model folders: the model is loaded
at install, as predict would run it, and refused there in one line (a Lambda layer, a
custom layer, random bytes as .keras); names cannot escape or hide in the models folder;
`models list` shows every folder, flagging broken ones; symbolic links are never followed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lungapp import paths, settings
from lungapp.cli import main
from lungapp.inference import registry
from lungapp.inference.card import load_card

from tiny_model import strip_onnx  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.fixture
def keras_folder(tiny_model_dir, tmp_path, monkeypatch):
    """A copy of the tiny model without its ONNX export (installing it loads the Keras file)."""
    monkeypatch.delenv("LUNGAPP_MODEL", raising=False)
    return strip_onnx(shutil.copytree(tiny_model_dir, tmp_path / "m"))


def _assert_refused(capsys, rc: int, needle: str):
    out, err = capsys.readouterr()
    assert rc != 0 and len(err.strip().splitlines()) == 1 and needle in err, (out, err)
    assert "installed" not in out
    assert registry.model_folders() == []  # nothing half-installed left behind
    assert settings.get("active_model") is None


def _lambda_model(folder: Path) -> None:
    import keras

    shape = load_card(folder).features.input_shape
    inp = keras.Input(shape)
    x = keras.layers.Lambda(lambda t: t * 2)(inp)
    out = keras.layers.Dense(len(load_card(folder).outputs))(keras.layers.Flatten()(x))
    keras.Model(inp, out).save(folder / "model.keras")


def test_install_refuses_a_lambda_layer(keras_folder, capsys):
    _lambda_model(keras_folder)
    _assert_refused(capsys, main(["models", "install", str(keras_folder), "--use"]), "custom code")


def test_install_refuses_random_bytes_as_keras(keras_folder, capsys):
    (keras_folder / "model.keras").write_bytes(os.urandom(4096))
    _assert_refused(capsys, main(["models", "install", str(keras_folder), "--use"]),
                    "is not a readable Keras model file")  # before Keras is asked to load it


_CUSTOM = """
import sys, keras
from lungapp.inference.card import load_card

@keras.saving.register_keras_serializable(package="evil")
class Evil(keras.layers.Layer):
    def call(self, x):
        return x * 2

folder = sys.argv[1]
card = load_card(folder)
inp = keras.Input(card.features.input_shape)
x = keras.layers.Flatten()(Evil()(inp))
keras.Model(inp, keras.layers.Dense(len(card.outputs))(x)).save(folder + "/model.keras")
"""


@pytest.mark.slow  # two processes importing TensorFlow: about 15 s
def test_install_refuses_a_custom_layer_in_a_real_process(keras_folder, lungapp_home):
    made = subprocess.run([sys.executable, "-c", textwrap.dedent(_CUSTOM), str(keras_folder)],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr[-2000:]
    proc = subprocess.run([sys.executable, "-m", "lungapp", "models", "install", str(keras_folder),
                           "--use"], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("lungapp:")]
    assert proc.returncode == 2 and len(lines) == 1 and "custom objects" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert registry.model_folders() == [] and settings.get("active_model") is None


def test_names_cannot_escape_or_hide_and_list_shows_every_folder(tiny_model_dir, tmp_path,
                                                                 monkeypatch, capsys):
    monkeypatch.delenv("LUNGAPP_MODEL", raising=False)
    src = shutil.copytree(tiny_model_dir, tmp_path / "m")
    card = json.loads((src / "card.json").read_text())
    card["name"], card["version"] = "../../.evil", "1"
    (src / "card.json").write_text(json.dumps(card))
    assert main(["models", "install", str(src)]) == 0
    (installed,) = registry.installed_models()
    assert installed.parent == paths.models_dir() and not installed.name.startswith(".")
    assert ".." not in installed.name and "/" not in installed.name
    assert registry.safe_model_name("..") == "_" and registry.safe_model_name(".x") == "x"
    assert registry.safe_model_name("a/b\\c") == "a_b_c"
    # folders an older version (or a user) left there: all listed, broken ones flagged
    shutil.copytree(tiny_model_dir, paths.models_dir() / ".hidden")
    (paths.models_dir() / "empty").mkdir()
    capsys.readouterr()
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert str(installed) in out and str(paths.models_dir() / ".hidden") in out
    assert f"BROKEN {paths.models_dir() / 'empty'}:" in out


def test_symbolic_links_are_never_followed(tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LUNGAPP_MODEL", raising=False)
    secret = tmp_path / "shadow.txt"
    secret.write_text("root:$6$secret")
    src = shutil.copytree(tiny_model_dir, tmp_path / "m")
    (src / "notes.txt").symlink_to(secret)
    assert main(["models", "install", str(src)]) == 0
    out, err = capsys.readouterr()
    assert f"{src / 'notes.txt'}: a symbolic link, not copied" in err
    (installed,) = registry.installed_models()
    assert not (installed / "notes.txt").exists()
    # a link in place of one of the model's own files refuses the folder
    onnx = src / load_card(src).onnx["model.keras"].file
    real = tmp_path / "real.onnx"
    shutil.move(onnx, real)
    onnx.symlink_to(real)
    rc = main(["models", "install", str(src)])
    err = capsys.readouterr().err
    assert rc == 2 and "is a symbolic link" in err and str(onnx) in err
    assert registry.installed_models() == [installed]


def test_install_refuses_random_bytes_as_onnx_even_with_a_matching_hash(tiny_model_dir, tmp_path,
                                                                       monkeypatch, capsys):
    """The card's hash only proves the file is the one the card names; a session is created
    at install so that a file ONNX Runtime cannot run is refused there, not at predict."""
    import hashlib

    monkeypatch.delenv("LUNGAPP_MODEL", raising=False)
    src = shutil.copytree(tiny_model_dir, tmp_path / "m")
    junk = os.urandom(2048)
    (src / "model.onnx").write_bytes(junk)
    card = json.loads((src / "card.json").read_text())
    card["onnx"]["model.keras"]["sha256"] = hashlib.sha256(junk).hexdigest()
    (src / "card.json").write_text(json.dumps(card))
    _assert_refused(capsys, main(["models", "install", str(src), "--use"]), str(Path("model.onnx")))
