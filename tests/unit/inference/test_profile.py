"""Recordings unlike the training ones (lungapp.inference.profile): band levels, the
profile's fit and check, its place in the card, and the caution in a real prediction."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from lungapp import synth
from lungapp.errors import ModelError
from lungapp.inference.card import load_card, write_card
from lungapp.inference.profile import BAND_EDGES_HZ, InputProfile, Unfamiliar, band_levels, fit_profile
from lungapp.inference.quality import assess, mean_spectrum
from lungapp.inference.quality_blocks import QualityStream

RATE = 8000
BUNDLED = __import__("pathlib").Path(__file__).resolve().parents[3] / "resources" / "model"


def _spectrum(slope_db_per_octave: float, n: int = 129, bin_hz: float = 31.25, scale: float = 1.0):
    f = np.arange(n) * bin_hz
    p = np.zeros(n)
    p[1:] = scale * (f[1:] / 100.0) ** (slope_db_per_octave / (10 * np.log10(2)))
    return p, bin_hz


def test_band_levels_follow_the_slope_and_drop_the_gain():
    levels = band_levels(*_spectrum(-3.0))
    assert len(levels) == len(BAND_EDGES_HZ) - 1 == 10
    assert levels.mean() == pytest.approx(0.0, abs=1e-9)
    steps = np.diff(levels)  # half-octave bands: -1.5 dB a step, to the bins' coarseness
    assert np.all(steps < 0) and np.median(steps) == pytest.approx(-1.5, abs=0.3)
    np.testing.assert_allclose(band_levels(*_spectrum(-3.0, scale=1e4)), levels, atol=1e-9)


def test_band_levels_refuse_what_cannot_be_placed():
    assert band_levels(np.zeros(129), 31.25) is None                # silent
    assert band_levels(*_spectrum(0.0, n=33, bin_hz=31.25)) is None  # nothing above 1 kHz
    assert band_levels(np.ones(129), 0.0) is None
    assert band_levels(np.ones((2, 129)), 31.25) is None


def _levels(rng, n, shift=0.0):
    base = np.array([4, 3, 2, 1, 0, -1, -2, -3, -4, 0], dtype=float)
    out = base + rng.normal(0, 1.0, size=(n, 10)) + shift
    return out - out.mean(axis=1, keepdims=True)


def test_fit_profile_flags_about_one_percent_held_out_and_a_shifted_device():
    rng = np.random.default_rng(0)
    train = _levels(rng, 600)
    prof = fit_profile(train, groups=[i // 3 for i in range(600)], source="test")
    assert prof.recordings == 600 and prof.patients == 200 and prof.source == "test"
    assert 0.005 <= prof.held_out_unfamiliar <= 0.02
    assert 1 <= len(prof.axes) <= 9 and len(prof.axis_var) == len(prof.axes)
    fresh = _levels(rng, 2000)
    share = np.mean([prof.distance(v) > prof.threshold for v in fresh])
    assert share < 0.03
    colour = np.zeros(10)
    colour[7:9] = 12.0  # 707-1414 Hz 12 dB stronger, as a different chest piece might make it
    shifted = _levels(rng, 200, shift=colour)
    assert np.mean([prof.distance(v) > prof.threshold for v in shifted]) > 0.95


def test_fit_profile_refuses_too_little_data():
    rng = np.random.default_rng(1)
    with pytest.raises(ValueError, match="at least 20 recordings"):
        fit_profile(_levels(rng, 10))
    with pytest.raises(ValueError, match="at least 4 patients"):
        fit_profile(_levels(rng, 40), groups=["a", "b", "c"] * 13 + ["a"])
    with pytest.raises(ValueError, match="band levels"):
        fit_profile(np.zeros((40, 5)))


def _profile(seed=0) -> InputProfile:
    return fit_profile(_levels(np.random.default_rng(seed), 300))


def test_check_names_the_bands_that_differ_most():
    prof = _profile()
    p, hz = _spectrum(0.0)
    levels = band_levels(p, hz)
    target = np.asarray(prof.mean)
    gain = np.ones_like(p)
    f = np.arange(len(p)) * hz
    for i, (lo, hi) in enumerate(zip(BAND_EDGES_HZ[:-1], BAND_EDGES_HZ[1:])):
        gain[(f >= lo) & (f <= hi)] = 10 ** ((target[i] - levels[i]) / 10)
    assert prof.check(p * gain, hz) is None  # the profile's own balance is familiar
    gain[(f >= 1000) & (f <= 2000)] *= 10 ** 2.0  # +20 dB above 1 kHz
    u = prof.check(p * gain, hz)
    assert isinstance(u, Unfamiliar) and u.distance > u.threshold == pytest.approx(prof.threshold)
    assert {(lo, hi) for lo, hi, _ in u.differences} <= {(1000.0, BAND_EDGES_HZ[9]), (BAND_EDGES_HZ[9], 2000.0)}
    assert all(d > 10 for _, _, d in u.differences)
    text = u.sentence()
    assert "Unlike the recordings the model was trained on" in text and "stronger" in text
    assert "1000-1414 Hz" in text and "interpret with care" in text
    assert Unfamiliar.from_dict(json.loads(json.dumps(u.to_dict()))).to_dict() == u.to_dict()


def test_profile_round_trips_and_bad_ones_are_named():
    prof = _profile()
    again = InputProfile.from_dict(json.loads(json.dumps(prof.to_dict())))
    assert again.threshold == pytest.approx(prof.threshold) and len(again.axes) == len(prof.axes)
    assert again.problems() == []
    with pytest.raises(ValueError, match="unknown input_profile keys"):
        InputProfile.from_dict({**prof.to_dict(), "typo": 1})
    with pytest.raises(ValueError, match="lacks"):
        InputProfile.from_dict({"bands_hz": [1, 2, 3]})
    assert "threshold must be a positive number" in " ".join(dataclasses.replace(prof, threshold=-1.0).problems())
    assert "sd must hold one value per band" in " ".join(dataclasses.replace(prof, sd=[1.0]).problems())
    assert "finite" in " ".join(dataclasses.replace(prof, mean=[float("nan")] * 10).problems())
    assert "at least 3 increasing" in " ".join(dataclasses.replace(prof, bands_hz=[5.0, 1.0]).problems())
    # a hostile card's wrong types are named, never a TypeError
    hostile = dataclasses.replace(prof, mean=5, axes="x", axis_var=[True], residual_var="big", bands_hz=None)
    problems = " ".join(hostile.problems())
    for name in ("mean", "axes", "axis_var", "residual_var", "bands_hz"):
        assert f"input_profile.{name}" in problems


def test_a_card_with_a_broken_profile_is_refused_naming_it(tmp_path):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(BUNDLED, model)
    card = json.loads((model / "card.json").read_text())
    card["input_profile"]["threshold"] = "far"
    (model / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="input_profile.threshold"):
        load_card(model)


def test_a_card_without_a_profile_saves_without_one(tmp_path):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(BUNDLED, model)
    write_card(model, dataclasses.replace(load_card(model), input_profile=None))
    assert "input_profile" not in json.loads((model / "card.json").read_text())
    assert load_card(model).input_profile is None


# --- the quality check measures the spectrum the profile reads --------------------------

def test_the_quality_verdict_carries_the_mean_spectrum_of_the_whole_recording():
    x = synth.generate("normal", seconds=20.0, rate=RATE, seed=3)
    v = assess(x, RATE)
    spectrum, bin_hz = mean_spectrum(x, RATE)
    assert v.spectrum_bin_hz == bin_hz == 31.25 and len(v.spectrum) == 129
    np.testing.assert_allclose(v.spectrum, spectrum)
    assert "spectrum" not in v.to_dict()  # not stored with results
    # a recording checked in blocks (as long ones are) gives the same balance
    stream = QualityStream(RATE, block_s=5.0)
    for i in range(0, len(x), 3000):
        stream.push(x[i:i + 3000])
    joined = stream.finish()
    np.testing.assert_allclose(band_levels(joined.spectrum, joined.spectrum_bin_hz),
                               band_levels(v.spectrum, v.spectrum_bin_hz), atol=0.2)


def test_a_refused_block_does_not_colour_a_long_recordings_spectrum():
    """A long recording checked in blocks: a block the check refuses (here clipped
    throughout) is left out of the joined mean spectrum, as noisy stretches are within a
    block; with it, that block alone would set the balance of frequencies."""
    x = synth.generate("normal", seconds=20.0, rate=RATE, seed=3)
    rng = np.random.default_rng(0)
    y = x.copy()
    y[5 * RATE:10 * RATE] = np.clip(rng.standard_normal(5 * RATE) * 3, -1, 1)   # block 2 of 4
    stream = QualityStream(RATE, block_s=5.0)
    for i in range(0, len(y), 3000):
        stream.push(y[i:i + 3000])
    joined = stream.finish()
    assert joined.level == "warn" and "5-10 s: heavily clipped" in joined.reason, joined.reason
    clean = np.concatenate([x[:5 * RATE], x[10 * RATE:]])
    want = band_levels(*mean_spectrum(clean, RATE))
    np.testing.assert_allclose(band_levels(joined.spectrum, joined.spectrum_bin_hz), want, atol=1.0)


# --- the bundled model: the caution in a real prediction --------------------------------

def _coloured_like(x: np.ndarray, prof: InputProfile, extra_db=None) -> np.ndarray:
    """``x`` filtered so its band levels are the profile's mean (plus ``extra_db`` per band)."""
    spectrum, hz = mean_spectrum(x, RATE)
    want = np.asarray(prof.mean) + (0 if extra_db is None else np.asarray(extra_db))
    have = band_levels(spectrum, hz)
    X = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / RATE)
    centres = np.sqrt(np.asarray(BAND_EDGES_HZ[:-1]) * np.asarray(BAND_EDGES_HZ[1:]))
    gain_db = np.interp(np.log(np.maximum(f, 1.0)), np.log(centres), want - have)
    y = np.fft.irfft(X * 10 ** (gain_db / 20), n=len(x))
    return (0.1 * y / np.max(np.abs(y))).astype(np.float32)


def test_the_bundled_model_cautions_on_a_recording_unlike_its_training_ones():
    from lungapp.inference.predictor import Predictor
    from lungapp.store.results_cache import prediction_from_dict

    pred = Predictor.load(BUNDLED)
    prof = pred.card.input_profile
    assert prof is not None and prof.recordings > 1000 and prof.patients > 200
    x = synth.generate("normal", seconds=15.0, rate=RATE, seed=5)
    like = pred.predict_audio(_coloured_like(x, prof), RATE)
    assert like.unfamiliar is None and like.to_dict()["unfamiliar"] is None
    assert not any("Unlike the recordings" in n for n in like.notes())
    # SPRSound's own recordings differ by up to about 15 dB in a band (its profile's main
    # axes hold a tilt of about +-7.5 dB): 20 dB more at 177-354 Hz lies beyond them
    boost = np.zeros(10)
    boost[3:5] = 20.0
    unlike = pred.predict_audio(_coloured_like(x, prof, boost), RATE)
    assert unlike.unfamiliar is not None and unlike.decision in ("normal", "abnormal")  # still answered
    assert {lo for lo, _, _ in unlike.unfamiliar.differences} & {BAND_EDGES_HZ[3], BAND_EDGES_HZ[4]}
    assert any("Unlike the recordings" in n and "stronger" in n for n in unlike.notes())
    d = unlike.to_dict()
    assert d["unfamiliar"]["distance"] > d["unfamiliar"]["threshold"]
    again = prediction_from_dict(json.loads(json.dumps(d)))  # the Review list's cache
    assert again.unfamiliar.to_dict() == d["unfamiliar"]
    assert again.notes() == unlike.notes()


def test_on_real_collections_it_cautions_on_other_devices_not_on_the_training_one(sprsound_dir):
    """The bundled model's profile: at most 2 % of SPRSound intra_test (the training
    children's other recordings) is called unlike the training recordings, and most of
    ICBHI's Meditron recordings (another stethoscope) are."""
    from lungapp.audio import load_audio

    prof = load_card(BUNDLED).input_profile

    def share(files):
        flags = []
        for f in files:
            v = assess(load_audio(f, rate=RATE).samples, RATE)
            flags.append(v.ok and prof.check(v.spectrum, v.spectrum_bin_hz) is not None)
        return np.mean(flags)

    assert share(sorted((sprsound_dir / "intra_test").glob("*.flac"))) <= 0.02
    icbhi = sprsound_dir.parent / "icbhi_subset" / "audio_and_txt"
    if not icbhi.is_dir():
        pytest.skip("ICBHI subset not found")
    assert share(sorted(icbhi.glob("*_Meditron.wav"))) >= 0.8
