"""Model management as users meet it (`lungapp models`, the Models dialog's rows,
`lungapp recalibrate`), on what a QA pass found: a missing folder argument, a tampered
model, a card with an absurd window, LUNGAPP_MODEL overriding the choice, a damaged .keras,
a long card name, a full disk, a file where the models folder goes, two installs at once,
a huge --folds, and recalibrating over the active model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lungapp import paths, settings
from lungapp.cli import main
from lungapp.inference import registry
from lungapp.inference.card import load_card

from mount_helpers import tmpfs

ROOT = Path(__file__).resolve().parents[3]
BUNDLED = ROOT / "resources" / "model"


def model_copy(where: Path, **card_changes) -> Path:
    shutil.copytree(BUNDLED, where)
    if card_changes:
        card = json.loads((where / "card.json").read_text())
        card.update(card_changes)
        (where / "card.json").write_text(json.dumps(card))
    return where


def test_models_use_without_a_folder_keeps_the_active_model(tmp_path, capsys):
    """It returned to the bundled model and erased the setting, exit 0."""
    installed = registry.install_model(model_copy(tmp_path / "m"))
    registry.set_active_model(installed)
    assert main(["models", "use"]) == 2
    assert "models use: name the model folder (or 'bundled'" in capsys.readouterr().err
    assert settings.get("active_model") == str(installed.resolve())


def test_a_tampered_model_is_neither_used_nor_offered(tmp_path, capsys):
    """`models use` and the Models dialog took a model whose ONNX file fails its hash: every
    prediction then failed, and the setting of the working model was gone."""
    from lungapp.gui.models_dialog import model_rows

    good = registry.install_model(model_copy(tmp_path / "good"))
    registry.set_active_model(good)
    bad = model_copy(paths.models_dir() / "tampered")
    with open(bad / "model_1.onnx", "ab") as f:
        f.write(b"\0")
    assert main(["models", "use", str(bad)]) == 2
    assert "does not match the SHA-256" in capsys.readouterr().err
    assert settings.get("active_model") == str(good.resolve())
    rows = {row.path.name: row for row in model_rows()}
    assert rows["tampered"].card is None and "does not match the SHA-256" in rows["tampered"].problem
    assert rows[good.name].card is not None


def test_an_absurd_window_in_a_card_is_an_invalid_card_not_an_overflow(tmp_path, capsys):
    m = model_copy(tmp_path / "m")
    card = json.loads((m / "card.json").read_text())
    card["features"]["window_s"] = 1e308
    (m / "card.json").write_text(json.dumps(card))
    assert main(["models", "install", str(m)]) == 2
    assert "invalid model card: window_s and hop_s must be finite numbers of seconds" in capsys.readouterr().err
    shutil.copytree(m, paths.models_dir() / "huge")
    assert main(["models", "list"]) == 0                       # the others are still listed
    out = capsys.readouterr().out
    assert "BROKEN" in out and "must be finite numbers of seconds" in out and str(BUNDLED) in out


@pytest.mark.parametrize("field,value", [("sensitivity", 1e308), ("specificity", -5.0), ("auc", 1.5)])
def test_an_impossible_figure_in_a_card_is_an_invalid_card(tmp_path, capsys, field, value):
    """A sensitivity of 1e308 was shown as "inf %", a specificity of -5 as "-500 %"."""
    m = model_copy(tmp_path / "m")
    card = json.loads((m / "card.json").read_text())
    card["metrics"]["overall"][field] = value
    (m / "card.json").write_text(json.dumps(card))
    assert main(["models", "install", str(m)]) == 2
    assert f"BinaryScores.{field} must lie between 0 and 1" in capsys.readouterr().err


def test_lungapp_model_in_the_environment_is_said_to_win(tmp_path, monkeypatch, capsys):
    installed = registry.install_model(model_copy(tmp_path / "m"))
    monkeypatch.setenv("LUNGAPP_MODEL", str(tmp_path / "m"))
    assert main(["models", "use", str(installed)]) == 0
    assert "LUNGAPP_MODEL is set" in capsys.readouterr().err
    assert main(["models", "list"]) == 0
    assert "that model is used while it is set" in capsys.readouterr().err


def test_a_damaged_keras_file_is_refused_at_install(tmp_path, capsys):
    """It was installed and made active; Keras prediction and fine-tuning then said
    "File not found" of a file that was there."""
    m = model_copy(tmp_path / "m")
    (m / "model_2.keras").write_bytes(b"not a zip archive" * 300)
    assert main(["models", "install", str(m), "--use"]) == 2
    err = capsys.readouterr().err
    assert f"{m / 'model_2.keras'}: is not a readable Keras model file" in err
    assert not paths.models_dir().exists() or not any(paths.models_dir().iterdir())
    assert settings.get("active_model") is None


def test_a_long_card_name_installs_under_a_shortened_folder_name(tmp_path):
    """A valid model named with 300 characters could not be installed (File name too long)."""
    target = registry.install_model(model_copy(tmp_path / "m", name="Clinic model " + "x" * 287))
    assert target.name == ("Clinic_model_" + "x" * 287)[:registry.MAX_NAME]
    assert load_card(target).name.endswith("x" * 287)


def test_a_full_disk_or_a_file_in_the_way_names_the_models_folder(tmp_path, lungapp_home, monkeypatch, capsys):
    """The full disk's message named the source model file; a file where the models folder
    goes gave "File exists"."""
    with tmpfs(lungapp_home / "models", "200k"):
        assert main(["models", "install", str(BUNDLED)]) == 2
        assert capsys.readouterr().err.strip() == (
            f"lungapp: {lungapp_home / 'models'}: cannot install the model here (No space left on "
            "device); nothing was installed")
        assert list((lungapp_home / "models").iterdir()) == []
    home2 = tmp_path / "home2"
    home2.mkdir()
    (home2 / "models").write_text("a file")
    monkeypatch.setenv("LUNGAPP_HOME", str(home2))
    assert main(["models", "install", str(BUNDLED)]) == 2
    assert "is a file, not a folder: the models folder cannot be made here" in capsys.readouterr().err


def test_an_install_never_replaces_one_that_took_its_name_meanwhile(tmp_path, monkeypatch):
    """Two installs at once: the second one's publishing moved the first one's finished
    model aside (`.replaced-...`), so the model installed with --use could be the other."""
    first = model_copy(tmp_path / "a", threshold=0.9)
    check = registry._load_as_predict_would

    def another_install_finishes_meanwhile(staging):
        check(staging)
        shutil.copytree(first, paths.models_dir() / staging.name.split(".staging-")[0].lstrip("."))

    monkeypatch.setattr(registry, "_load_as_predict_would", another_install_finishes_meanwhile)
    target = registry.install_model(model_copy(tmp_path / "b"))
    names = sorted(p.name for p in paths.models_dir().iterdir())
    assert target.name == "lungapp-sprsound-1-2" and names == ["lungapp-sprsound-1", "lungapp-sprsound-1-2"]
    assert load_card(paths.models_dir() / "lungapp-sprsound-1").threshold == 0.9   # the other's, intact
    assert load_card(target).threshold != 0.9


def test_recalibration_folds_never_exceed_the_patients_of_the_rarer_class():
    """`recalibrate --folds 1000000000` tried every fold count down from a billion."""
    from lungapp.evaluation.recalibrate import _folds

    y = np.array([0, 1] * 12)
    groups = [f"P{i // 2}" for i in range(24)]    # 12 patients, each with one of each class
    folds = _folds(y, groups, 10**9, seed=0)
    assert len(folds) == 12 and all(f.any() for f in folds)




def test_a_card_with_wrong_types_lists_each_problem_once(tmp_path, capsys):
    m = model_copy(tmp_path / "m", name=5, model_files="model_1.keras")
    assert main(["models", "install", str(m)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"lungapp: {m / 'card.json'}: invalid model card: name must be a non-empty string; "
        "model_files must list one or more .keras file names (no folders)")


@pytest.fixture(autouse=True)
def _no_model_env(monkeypatch):
    monkeypatch.delenv("LUNGAPP_MODEL", raising=False)
