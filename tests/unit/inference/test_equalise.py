"""Equalised model input (lungapp.inference.equalise): the filter, the card section, and
the predictor equalising what the model reads but not what the quality check reads."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
from scipy.signal import lfilter

from lungapp import paths
from lungapp.audio import load_audio
from lungapp.errors import ModelError
from lungapp.inference.card import load_card, write_card
from lungapp.inference.equalise import Equalisation, fit_equalisation
from lungapp.inference.profile import BAND_EDGES_HZ, band_levels
from lungapp.inference.quality import mean_spectrum
from lungapp.training.card_text import card_markdown

MODEL = paths.resources_dir() / "model"
EXAMPLE = paths.resources_dir() / "examples" / "synthetic_wheeze.wav"
RATE = 8000
TILT = [3.0 * (i - 4.5) for i in range(10)]  # +3 dB a half octave, zero mean


def _levels(x, rate=RATE):
    return band_levels(*mean_spectrum(x, rate))


def _coloured_noise(seed=0, seconds=10.0):
    """Noise with a strong low-frequency lift (a one-pole low-pass)."""
    x = np.random.default_rng(seed).standard_normal(int(seconds * RATE))
    return (lfilter([1.0], [1.0, -0.95], x) * 0.01).astype(np.float32)


def test_the_filter_moves_a_recordings_band_levels_to_the_target():
    x = _coloured_noise()
    eq = Equalisation(list(BAND_EDGES_HZ), TILT)
    before, after = _levels(x), _levels(eq.apply(x, RATE))
    assert np.max(np.abs(before - TILT)) > 10  # far from the target to start with
    assert np.max(np.abs(after - TILT)) < 1.5
    y = eq.apply(x, RATE)
    assert y.dtype == np.float32 and len(y) == len(x)


def test_recordings_whose_levels_cannot_be_measured_are_left_as_they_are():
    eq = Equalisation(list(BAND_EDGES_HZ), TILT)
    silence = np.zeros(RATE * 3, dtype=np.float32)
    assert np.array_equal(eq.apply(silence, RATE), silence)
    low = _coloured_noise()[: 2000 * 3]  # at 2 kHz the bands above 1 kHz hold no bin
    assert np.array_equal(eq.apply(low, 2000), low)
    assert len(eq.apply(np.zeros(0, dtype=np.float32), RATE)) == 0


def test_the_target_is_the_mean_of_the_recordings_levels():
    xs = [_coloured_noise(seed) for seed in range(3)]
    spectra = [mean_spectrum(x, RATE) for x in xs] + [mean_spectrum(np.zeros(RATE, np.float32), RATE)]
    eq = fit_equalisation(spectra, source="three noises")
    assert eq.recordings == 3 and eq.source == "three noises"  # the silent one left out
    np.testing.assert_allclose(eq.target_db, np.mean([_levels(x) for x in xs], axis=0))
    with pytest.raises(ValueError, match="no recording"):
        fit_equalisation([mean_spectrum(np.zeros(RATE, np.float32), RATE)])


@pytest.mark.parametrize("bad, named", [
    ({"target_db": "loud"}, "equalisation.target_db must be a list"),
    ({"bands_hz": [True, 2, 3]}, "equalisation.bands_hz must be a list"),
    ({"target_db": [1.0, 2.0]}, "one value per band (10)"),
    ({"target_db": [100.0] * 10}, "within +-60 dB"),
    ({"bands_hz": [100.0, 50.0, 200.0], "target_db": [0.0, 0.0]}, "increasing band edges"),
    ({"recordings": -1}, "recordings must be a whole number"),
    ({"gain": 3}, "unknown equalisation keys"),
])
def test_a_bad_equalisation_in_a_card_is_named(tmp_path, bad, named):
    model = tmp_path / "m"
    model.mkdir()
    card = json.loads((MODEL / "card.json").read_text())
    card["equalisation"] = {"bands_hz": list(BAND_EDGES_HZ), "target_db": TILT, **bad}
    (model / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match=named.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        load_card(model)


@pytest.fixture(scope="module")
def equalising_model(tmp_path_factory):
    """The bundled model with an equalisation to a strong tilt in its card."""
    model = tmp_path_factory.mktemp("eq") / "model"
    shutil.copytree(MODEL, model)
    write_card(model, dataclasses.replace(load_card(model), equalisation=Equalisation(
        list(BAND_EDGES_HZ), TILT, recordings=5, source="a test")))
    return model


def test_the_card_keeps_its_equalisation_and_says_what_it_does(equalising_model):
    card = load_card(equalising_model)
    assert card.equalisation == Equalisation(list(BAND_EDGES_HZ), TILT, 5, "a test")
    assert "equalisation" not in load_card(MODEL).to_dict()  # absent unless set
    md = card_markdown(card)
    assert "## Equalised input" in md and "measured on 5 recordings (a test)" in md


def test_the_model_reads_the_equalised_recording_and_the_quality_check_the_recording(equalising_model):
    from lungapp.inference.predictor import Predictor

    plain, eq = Predictor.load(MODEL), Predictor.load(equalising_model)
    x = load_audio(EXAMPLE, rate=RATE).samples
    got = eq.predict_file(EXAMPLE)
    # the same as the plain model given the equalised recording
    want = plain.predict_audio(eq.card.equalisation.apply(x, RATE), RATE)
    assert got.abnormal_probability == pytest.approx(want.abnormal_probability, abs=1e-6)
    assert got.abnormal_probability != pytest.approx(plain.predict_file(EXAMPLE).abnormal_probability,
                                                     abs=1e-3)  # the tilt changes what it reads
    assert eq.predict_audio(x, RATE).abnormal_probability == pytest.approx(got.abnormal_probability,
                                                                            abs=1e-6)
    # the quality check and the caution saw the recording as it is
    raw = plain.predict_file(EXAMPLE)
    assert got.quality.spectrum == raw.quality.spectrum and got.unfamiliar == raw.unfamiliar
    # windows for research tools are the model's input too
    (X_eq, _), *_ = eq.member_windows(x)
    (X_plain, _), *_ = plain.member_windows(eq.card.equalisation.apply(x, RATE))
    np.testing.assert_array_equal(X_eq, X_plain)
