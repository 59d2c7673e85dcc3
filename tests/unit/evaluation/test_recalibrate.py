"""`lungapp recalibrate`: a model's threshold and calibration chosen again on a clinic's
own labelled recordings, checked on held-out patients first."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from lungapp.cli import main
from lungapp.inference.card import load_card
from lungapp.inference.predictor import Predictor

from tiny_model import RATE, make_signal
from train_helpers import clinic_csv_folder as _csv_folder

ICBHI = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "icbhi_subset"


def test_recalibrate_writes_a_model_whose_decisions_follow_the_new_threshold(tiny_model_dir, tmp_path, capsys):
    folder = _csv_folder(tmp_path / "clinic", 10, shift=0.08)
    out = tmp_path / "recalibrated"
    assert main(["recalibrate", str(folder), "--model", str(tiny_model_dir), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "3 folds by patients" in text and "recalibrated threshold:" in text
    card, old = load_card(out), load_card(tiny_model_dir)
    assert card.name == f"{old.name}-recalibrated-clinic"   # which folder, in the Models list
    assert card.calibration is not None and card.calibration.a > 0
    assert "recordings of clinic (lungapp recalibrate)" in card.calibration.fitted_on
    assert card.model_files == old.model_files and card.onnx == old.onnx
    for f in old.model_files:
        assert (out / f).read_bytes() == (tiny_model_dir / f).read_bytes()
    # the held-out check is recorded in the card and its text
    check = card.external_checks[-1]
    assert check.n == 20 and "recalibration check" in check.name
    assert "recalibration check" in (out / "MODEL_CARD.md").read_text()
    # the new model gives calibrated probabilities, decided at its own threshold, and its
    # raw scale is the old model's
    x = make_signal("CAS", 4, np.random.default_rng(9))
    a = Predictor.load(tiny_model_dir).predict_audio(x, RATE)
    b = Predictor.load(out).predict_audio(x, RATE)
    assert b.abnormal_probability == pytest.approx(card.calibrate(a.abnormal_probability), abs=1e-9)
    assert (b.decision == "abnormal") == (b.abnormal_probability >= card.threshold)
    # the same folder again: the output exists, so it is refused without --overwrite
    assert main(["recalibrate", str(folder), "--model", str(tiny_model_dir), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_recalibrate_refuses_too_few_recordings_and_an_output_inside_the_data(tiny_model_dir, tmp_path, capsys):
    small = _csv_folder(tmp_path / "small", 4)
    assert main(["recalibrate", str(small), "--model", str(tiny_model_dir), "--out",
                 str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert str(small) in err and "needs at least 12" in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()
    assert main(["recalibrate", str(small), "--model", str(tiny_model_dir), "--out",
                 str(small / "model")]) == 2
    assert "inside the data folder" in capsys.readouterr().err
    assert sorted(os.listdir(small)) == sorted(["labels.csv"] + [f"p{p}_{k}.wav" for p in range(4) for k in range(2)])


def _device(tmp_path: Path, device: str) -> Path:
    d = tmp_path / device
    d.mkdir()
    for f in (ICBHI / "audio_and_txt").glob(f"*_{device}.*"):
        (d / f.name).symlink_to(f)
    return d


@pytest.mark.skipif(not ICBHI.is_dir(), reason="the ICBHI subset is not in ../shared/data")
def test_recalibrating_the_bundled_model_to_another_stethoscope(tmp_path, capsys):
    # Littmann 3200: the bundled model ranks its recordings well (AUC 0.82) but its own
    # threshold calls every normal recording abnormal; a threshold chosen on other patients
    # of the same device does better on held-out patients.
    folder = _device(tmp_path, "Litt3200")
    out = tmp_path / "litt"
    assert main(["recalibrate", str(folder), "--layout", "icbhi", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    own = text.split("model's own threshold:")[1].split("\n")[0]
    new = text.split("recalibrated threshold:")[1].split("\n")[0]
    score = lambda line: float(line.split("score ")[1])  # noqa: E731
    assert score(new) > score(own) + 0.1
    assert main(["evaluate", str(folder), "--layout", "icbhi", "--model", str(out), "--json"]) == 0
    # AKG C417L: the model ranks its recordings no better than chance: refused, in one line
    akg = _device(tmp_path, "AKGC417L")
    assert main(["recalibrate", str(akg), "--layout", "icbhi", "--out", str(tmp_path / "akg")]) == 2
    err = capsys.readouterr().err
    assert "no better than chance" in err and str(akg) in err


def test_gain_interval_resamples_patients_whole():
    from lungapp.evaluation.recalibrate import gain_interval

    y = np.array([1, 1, 0, 0] * 10, dtype=bool)
    before = np.ones(40, dtype=bool)              # every recording called abnormal: score 0.5
    after = y.copy()                              # every one right: score 1.0
    lo, hi = gain_interval(y, before, after, [f"P{i // 4}" for i in range(40)])
    assert lo == hi == 0.5                        # every resample gains exactly 0.5
    lo, hi = gain_interval(y, before, before, None)
    assert lo == hi == 0.0
    # one patient's recordings move together: a gain carried by one patient of ten is
    # uncertain, the same gain spread over all ten is not
    after = before.copy()
    after[[2, 3, 6, 7]] = False                   # two normal recordings of patients P0, P1
    one = gain_interval(y, before, after, ["P0"] * 8 + [f"P{i // 4}" for i in range(8, 40)])
    spread = gain_interval(y, before, after, [f"P{i}" for i in range(40)])
    assert one[0] == 0.0 and spread[0] > 0.0 and one[1] > spread[1]


def test_recalibrating_over_the_active_models_folder_says_it_is_now_in_use(tiny_model_dir, tmp_path, capsys):
    from lungapp import paths
    from lungapp.inference import registry

    active = registry.install_model(tiny_model_dir)
    registry.set_active_model(active)
    folder = _csv_folder(tmp_path / "clinic", 10, shift=0.08)
    assert main(["recalibrate", str(folder), "--out", str(active), "--overwrite"]) == 0
    out, err = capsys.readouterr()
    assert "it was the active model's folder, so the recalibrated model is now the one in use" in out
    kept = next(paths.models_dir().glob(f"{active.name}.replaced-*"))
    assert f"the model folder that was at {active} is kept at {kept}" in err
    assert load_card(active).calibration is not None


def test_evaluating_a_model_on_its_own_training_folder_says_so(tiny_model_dir, tmp_path, capsys):
    """`evaluate` gave the bundled model's figures on SPRSound's train/ recordings, which it
    was trained on, with nothing said."""
    import json

    folder = _csv_folder(tmp_path / "clinic", 6)
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    card = json.loads((model / "card.json").read_text())
    card.setdefault("training", {}).setdefault("data", {})["folder"] = str(folder)
    (model / "card.json").write_text(json.dumps(card))
    assert main(["evaluate", str(folder), "--model", str(model)]) == 0
    assert (f"warning: {folder}: the model was trained on {folder}; these figures are on (some of) its "
            "own training recordings") in capsys.readouterr().out
    other = _csv_folder(tmp_path / "other", 6)
    assert main(["evaluate", str(other), "--model", str(model)]) == 0
    assert "its own training recordings" not in capsys.readouterr().out


def test_evaluate_and_predict_name_the_model_by_its_absolute_folder_and_card(tiny_model_dir, tmp_path,
                                                                             capsys, monkeypatch):
    """`evaluate --json` named the model by name and version only, so two models of one name
    could not be told apart; `predict --model m` recorded the folder as typed ("m")."""
    import json

    shutil.copytree(tiny_model_dir, tmp_path / "m")
    _csv_folder(tmp_path / "clinic", 4)
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "clinic", "--model", "m", "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)["model"]
    assert main(["predict", "--model", "m", "--format", "json", "clinic/p0_0.wav"]) == 0
    predicted = json.loads(capsys.readouterr().out)[0]["model"]
    assert evaluated["path"] == predicted["path"] == str(tmp_path / "m")
    assert evaluated["card"] == predicted["card"] and len(evaluated["card"]) == 16
