"""The recording-quality gate (lungapp.inference.quality)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf

from lungapp import synth
from lungapp.inference import quality
from lungapp.inference.quality import QualityVerdict, assess

RATE = 8000


def breath(seconds=10.0, seed=0, rate=RATE):
    return synth.generate("normal", seconds=seconds, rate=rate, seed=seed)


def test_normal_breath_is_ok():
    v = assess(breath(), RATE)
    assert isinstance(v, QualityVerdict)
    assert v.ok, v
    assert v.reason == "good quality"
    for k in quality.NOISE_FEATURES + ("duration_s", "rms_dbfs", "clip_fraction", "noise_score"):
        assert k in v.metrics and math.isfinite(v.metrics[k])
    assert v.metrics["duration_s"] == pytest.approx(10.0)


def test_silence_is_too_quiet():
    v = assess(np.zeros(10 * RATE, dtype=np.float32), RATE)
    assert not v.ok and v.reason == "too quiet"
    assert all(math.isfinite(x) for x in v.metrics.values() if isinstance(x, float))


def test_faint_signal_is_too_quiet():
    v = assess(breath() * 1e-4, RATE)  # about -112 dBFS
    assert not v.ok and v.reason == "too quiet"


def test_clipped():
    x = np.clip(breath() * 100.0, -1.0, 1.0)
    v = assess(x, RATE)
    assert not v.ok and v.reason == "clipped"
    assert v.metrics["clip_fraction"] > 0.001


def test_clipped_below_full_scale():
    # a device limiter: the waveform is held flat at 0.7 for many samples
    x = np.clip(breath() * 100.0, -0.7, 0.7)
    v = assess(x, RATE)
    assert not v.ok and v.reason == "clipped"


def test_loud_but_not_clipped_is_ok():
    x = breath() * (0.95 / np.abs(breath()).max())
    assert assess(x, RATE).ok


def test_too_short():
    v = assess(breath(2.1), RATE)
    assert not v.ok
    assert v.reason == "too short (2.1 s; at least 3 s needed)"


@pytest.mark.parametrize("n", [4000, 4001, 24000, 100000])
def test_any_length_and_silence_never_crash(n):
    for x in (np.zeros(n), np.full(n, 0.2), np.random.default_rng(0).normal(0, 0.1, n)):
        v = assess(x.astype(np.float32), RATE)
        assert isinstance(v.ok, bool) and v.reason
        assert all(math.isfinite(val) for val in v.metrics.values())


def test_other_rates_and_int16():
    x48 = synth.generate("normal", seconds=6.0, rate=48000, seed=1)
    assert assess(x48, 48000).ok
    x16 = (breath(6.0) * 32767).astype(np.int16)
    v = assess(x16, RATE)
    assert v.ok and v.metrics["rms_dbfs"] == pytest.approx(assess(breath(6.0), RATE).metrics["rms_dbfs"], abs=0.1)


def test_broadband_noise_is_too_noisy():
    # loud white noise over breath sounds: energy above 1 kHz and flat spectra
    rng = np.random.default_rng(2)
    x = breath() + 0.3 * rng.standard_normal(10 * RATE).astype(np.float32)
    v = assess(np.clip(x, -0.99, 0.99) * 0.5, RATE)
    assert not v.ok and v.reason == "too noisy", v.metrics["noise_score"]


def test_params_override_and_defaults_are_fitted():
    assert set(quality.DEFAULT_PARAMS["noise_coef"]) == set(quality.NOISE_FEATURES)
    assert 0 < quality.DEFAULT_PARAMS["noise_threshold"] < 1
    assert assess(breath(4.0), RATE, {"min_duration_s": 5.0}).reason.startswith("too short")
    assert assess(breath(), RATE, {"noise_threshold": 0.0}).reason == "too noisy"


def test_flags_more_poor_quality_than_normal(sprsound_dir):
    train = sprsound_dir / "train"
    by_label = {"Poor Quality": [], "Normal": []}
    for jf in sorted(train.glob("*.json")):
        label = json.loads(jf.read_text())["record_annotation"]
        if label in by_label and len(by_label[label]) < 60:
            by_label[label].append(jf.with_suffix(".flac"))
        if all(len(v) >= 60 for v in by_label.values()):
            break
    rates = {}
    for label, files in by_label.items():
        flagged = 0
        for f in files:
            x, rate = sf.read(f, dtype="float32")
            flagged += not assess(x, rate).ok
        rates[label] = flagged / len(files)
    assert rates["Poor Quality"] > rates["Normal"] + 0.15, rates


@pytest.mark.parametrize("n_bins,rate", [(128, 8000), (129, 8000), (64, 4000), (256, 16000)])
def test_cepstrum_band_equals_the_inverse_fft(n_bins, rate):
    from lungapp.inference.quality import cepstrum_band

    log_spec = np.log(np.random.default_rng(n_bins).random((50, n_bins)) + 1e-3)
    full = np.fft.irfft(log_spec, axis=1)
    quef = np.arange(full.shape[1]) / rate
    band = (quef >= 1 / 700) & (quef <= 1 / 150)
    got = cepstrum_band(log_spec, rate, 1 / 700, 1 / 150)
    assert got.shape == (50, int(band.sum())) and band.sum() > 0
    np.testing.assert_allclose(got, full[:, band], atol=1e-10)
