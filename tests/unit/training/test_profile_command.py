"""``python -m lungapp.training.profile``: the input profile of a model's training folder,
written into a model folder made before profiles existed."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np

from lungapp.inference.card import load_card, write_card
from lungapp.inference.profile import band_levels
from lungapp.inference.quality import mean_spectrum
from lungapp.training.profile import main, profile_of_spectra

from train_helpers import make_dataset  # noqa: E402

BUNDLED = Path(__file__).resolve().parents[3] / "resources" / "model"


def _model_without_profile(tmp_path) -> Path:
    model = tmp_path / "model"
    shutil.copytree(BUNDLED, model)
    write_card(model, dataclasses.replace(load_card(model), input_profile=None))
    return model


def test_writes_the_profile_of_the_folder_into_the_card(tmp_path, capsys):
    model = _model_without_profile(tmp_path)
    data = make_dataset(tmp_path / "data", {f"P{i}": ["Normal", "CAS", "DAS"] for i in range(8)},
                        seconds=5.0, rate=8000)
    (data / "P0_6.0_1_p1_99.json").write_text(json.dumps({"record_annotation": "Poor Quality"}))
    before = json.loads((model / "card.json").read_text())
    assert main([str(model), str(data), "--source", "eight generated patients"]) == 0
    assert "input profile of 24 recordings of 8 patients" in capsys.readouterr().out
    after = json.loads((model / "card.json").read_text())
    assert {k: v for k, v in after.items() if k != "input_profile"} == before  # nothing else
    prof = load_card(model).input_profile
    assert prof.source == "eight generated patients" and prof.recordings == 24
    # a recording of that folder is judged against it: a generated breath is familiar
    x = make_dataset(tmp_path / "one", {"Q": ["Normal"]}, seconds=5.0, rate=8000, seed=7)
    from lungapp.audio import load_audio

    wav = next(x.glob("*.wav"))
    assert prof.check(*mean_spectrum(load_audio(wav, rate=8000).samples, 8000)) is None


def test_too_few_recordings_leave_the_card_as_it_was(tmp_path, capsys):
    model = _model_without_profile(tmp_path)
    data = make_dataset(tmp_path / "data", {"P1": ["Normal", "CAS"], "P2": ["Normal"]}, rate=8000)
    before = (model / "card.json").read_text()
    assert main([str(model), str(data)]) == 1
    err = capsys.readouterr().err
    assert "cannot fit an input profile" in err and str(data) in err
    assert (model / "card.json").read_text() == before


def test_not_a_model_folder_is_an_error_not_a_traceback(tmp_path, capsys):
    assert main([str(tmp_path), str(tmp_path)]) == 1
    assert "error:" in capsys.readouterr().err


def test_a_small_run_trains_without_a_profile():
    rng = np.random.default_rng(0)
    spectra = [(np.abs(rng.normal(size=129)) + 0.1, 31.25) for _ in range(12)]
    assert profile_of_spectra(spectra, [str(i) for i in range(12)]) is None
    many = spectra * 3
    prof = profile_of_spectra(many + [None], [str(i % 9) for i in range(len(many))] + ["x"])
    assert prof is not None and prof.recordings == 36 and prof.patients == 9
    assert band_levels(*spectra[0]) is not None
