"""research/equalise_transfer.py: each recording equalised to the model's input profile."""

from __future__ import annotations

import numpy as np
import pytest

from lungapp import paths, synth
from lungapp.inference.card import load_card
from lungapp.inference.profile import band_levels
from lungapp.inference.quality import mean_spectrum

MODEL = paths.resources_dir() / "model"


def test_equalising_moves_the_band_levels_to_the_profile(repo_script):
    mod = repo_script("research/equalise_transfer.py")
    prof = load_card(MODEL).input_profile
    x = synth.generate("normal", seconds=15.0, rate=8000, seed=4)
    before = band_levels(*mean_spectrum(x, 8000))
    y = mod.equalise(x, 8000, prof)
    after = band_levels(*mean_spectrum(y, 8000))
    target = np.asarray(prof.mean)
    assert np.abs(after - target).max() < 0.5 * np.abs(before - target).max()
    assert prof.distance(after) < prof.distance(before)
    assert len(y) == len(x) and y.dtype == np.float32


def test_a_recording_that_cannot_be_measured_is_left_as_it_is(repo_script):
    mod = repo_script("research/equalise_transfer.py")
    silence = np.zeros(8000 * 5, dtype=np.float32)
    assert mod.equalise(silence, 8000, load_card(MODEL).input_profile) is silence


def test_the_stand_in_predicts_what_the_model_predicts_on_the_equalised_audio(repo_script, tmp_path):
    import soundfile as sf

    from lungapp.inference.predictor import Predictor

    mod = repo_script("research/equalise_transfer.py")
    pred = Predictor.load(MODEL)
    x = synth.generate("wheeze", seconds=15.0, rate=8000, seed=1)
    sf.write(tmp_path / "w.wav", x, 8000, subtype="FLOAT")
    got = mod.Equalised(pred).predict_file(tmp_path / "w.wav")
    want = pred.predict_audio(mod.equalise(x, 8000, pred.card.input_profile), 8000)
    assert got.abnormal_probability == pytest.approx(want.abnormal_probability, abs=1e-6)


def test_no_data_is_said_not_a_traceback(repo_script, tmp_path, capsys):
    mod = repo_script("research/equalise_transfer.py")
    assert mod.main(["--data", str(tmp_path)]) == 2
    assert "no collections found" in capsys.readouterr().err


def test_copy_writes_every_recording_equalised_beside_its_labels(repo_script, tmp_path, capsys):
    import json

    import soundfile as sf

    mod = repo_script("research/equalise_transfer.py")
    data = tmp_path / "data"
    train = data / "sprsound" / "train"
    train.mkdir(parents=True)
    for i, kind in enumerate(("normal", "wheeze")):
        sf.write(train / f"P{i}_6.0_1_p1_{i}.flac", synth.generate(kind, seconds=5.0, rate=8000, seed=i), 8000)
        (train / f"P{i}_6.0_1_p1_{i}.json").write_text(json.dumps({"record_annotation": "Normal"}))
    (train / "P9_6.0_1_p1_9.json").write_text(json.dumps({"record_annotation": "Normal"}))  # no audio
    icbhi = data / "icbhi_subset" / "audio_and_txt"
    icbhi.mkdir(parents=True)
    sf.write(icbhi / "101_1b1_Al_sc_Meditron.wav", synth.generate("normal", seconds=5.0, rate=4000, seed=7), 4000)
    (icbhi / "101_1b1_Al_sc_Meditron.txt").write_text("0.0\t2.0\t0\t0\n")
    (data / "icbhi_subset" / "manifest.csv").write_text(
        "file,device\naudio_and_txt/101_1b1_Al_sc_Meditron.wav,Meditron\n")
    out = tmp_path / "eq"
    assert mod.main(["--data", str(data), "--copy", str(out)]) == 0
    assert "3 equalised recordings" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "sprsound" / "train").iterdir()) == [
        "P0_6.0_1_p1_0.json", "P0_6.0_1_p1_0.wav", "P1_6.0_1_p1_1.json", "P1_6.0_1_p1_1.wav"]
    assert (out / "icbhi_subset" / "manifest.csv").is_file()
    assert (out / "icbhi_subset" / "audio_and_txt" / "101_1b1_Al_sc_Meditron.txt").is_file()
    prof = load_card(MODEL).input_profile
    y, rate = sf.read(out / "sprsound" / "train" / "P0_6.0_1_p1_0.wav")
    x = synth.generate("normal", seconds=5.0, rate=8000, seed=0)
    assert rate == 8000 and prof.distance(band_levels(*mean_spectrum(y, 8000))) < \
        prof.distance(band_levels(*mean_spectrum(x, 8000)))
    # an existing, non-empty folder is not written into
    assert mod.main(["--data", str(data), "--copy", str(out)]) == 1
    assert "not empty" in capsys.readouterr().err
