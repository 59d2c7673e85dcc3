"""Tests for lungapp.dsp.spectrogram: batch and streaming agree column for column, the
config is JSON-serialisable and validated, and the axes (bins, frame times) mean what
they say (a full-scale sine peaks at 0 dB in its bin)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lungapp.dsp.spectrogram import (
    SCALES,
    WINDOWS,
    SpectrogramConfig,
    StreamingSpectrogram,
    normalise,
    spectrogram,
)


def signal(n, rate=8000, seed=0):
    """Noise + two tones + a click, float64 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1234.5 * t) + 0.05 * rng.standard_normal(n)
    if n:
        x[n // 3] += 0.4
    return np.clip(x, -1, 1)


def stream(cfg, x, sizes):
    """Push ``x`` through a StreamingSpectrogram in blocks of ``sizes`` (cycled); return
    the concatenated columns and the streamer."""
    s = StreamingSpectrogram(cfg)
    cols, i, k = [], 0, 0
    while i < len(x):
        n = sizes[k % len(sizes)]
        k += 1
        out = s.push(x[i:i + n])
        assert out.dtype == np.float32 and out.shape[1:] == (cfg.n_bins,)
        cols.append(out)
        i += n
    return (np.concatenate(cols) if cols else np.empty((0, cfg.n_bins), np.float32)), s


# --- streaming == batch ----------------------------------------------------------------

def test_streaming_equals_batch_default_config_random_blocks():
    cfg = SpectrogramConfig()
    x = signal(8000 * 5)
    rng = np.random.default_rng(42)
    sizes = [1, 1, 1, 2, 3, 63, 64, 65, 255, 256, 257, 1000, 4096] + list(rng.integers(1, 700, 200))
    rng.shuffle(sizes)
    got, s = stream(cfg, x, sizes)
    want = spectrogram(x, cfg)
    assert got.shape == want.shape == (cfg.n_frames(len(x)), cfg.n_bins)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert s.frames_emitted == len(want)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    win=st.integers(8, 300),
    hop=st.integers(1, 400),          # includes hops longer than the window
    extra_fft=st.integers(0, 100),
    window=st.sampled_from(WINDOWS),
    scale=st.sampled_from(SCALES),
    sizes=st.lists(st.integers(1, 900), min_size=1, max_size=40),
    n=st.integers(0, 3000),
    seed=st.integers(0, 2 ** 16),
)
def test_streaming_equals_batch_any_config_any_blocks(win, hop, extra_fft, window, scale, sizes, n, seed):
    cfg = SpectrogramConfig(rate=8000, win_length=win, hop_length=hop, n_fft=win + extra_fft,
                            window=window, scale=scale, n_mels=16, fmin=50.0)
    x = signal(n, seed=seed)
    got, s = stream(cfg, x, sizes)
    want = spectrogram(x, cfg)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert s.frames_emitted == cfg.n_frames(n)


def test_streaming_hop_longer_than_window_skips_the_gap():
    # Frames at 0, 20, 40, ... of length 8: samples 8..19 belong to no frame.
    cfg = SpectrogramConfig(rate=8000, win_length=8, hop_length=20, n_fft=8)
    x = signal(200)
    got, _ = stream(cfg, x, [10, 1, 3, 30, 9])
    np.testing.assert_allclose(got, spectrogram(x, cfg), atol=1e-5)


def test_streaming_reset_and_empty_blocks():
    cfg = SpectrogramConfig()
    x = signal(4000)
    s = StreamingSpectrogram(cfg)
    assert s.push(np.zeros(0)).shape == (0, cfg.n_bins)
    s.push(signal(1000, seed=3))
    s.reset()
    assert s.frames_emitted == 0
    got = np.concatenate([s.push(x[:2000]), s.push(np.zeros(0)), s.push(x[2000:])])
    np.testing.assert_allclose(got, spectrogram(x, cfg), atol=1e-5)


def test_streaming_keeps_little_memory():
    cfg = SpectrogramConfig()
    s = StreamingSpectrogram(cfg)
    for block in np.array_split(signal(80000), 1000):
        s.push(block)
        assert len(s._buf) < cfg.win_length + cfg.hop_length


# --- config -----------------------------------------------------------------------------

@pytest.mark.parametrize("cfg", [
    SpectrogramConfig(),
    SpectrogramConfig(rate=4000, win_length=200, hop_length=50, n_fft=256, window="hamming", min_db=-80.0, max_db=10.0),
    SpectrogramConfig(scale="mel", n_mels=40, fmin=50.0, fmax=3500.0, window="blackman"),
    SpectrogramConfig(rate=16000, scale="mel", n_mels=128, fmax=None),
])
def test_config_json_round_trip(cfg):
    text = cfg.to_json()
    back = SpectrogramConfig.from_dict(json.loads(text))
    assert back == cfg
    assert back.to_json() == text
    assert set(json.loads(text)) == set(cfg.to_dict())
    assert cfg.replace(hop_length=32).hop_length == 32 and cfg.replace(hop_length=32) != cfg


@pytest.mark.parametrize("kwargs,fragment", [
    ({"rate": 50}, "rate must be"),
    ({"rate": 8000.0}, "rate must be"),
    ({"win_length": 4}, "win_length must be"),
    ({"hop_length": 0}, "hop_length must be"),
    ({"hop_length": True}, "hop_length must be"),
    ({"n_fft": 128}, "n_fft"),
    ({"window": "kaiser"}, "window must be one of"),
    ({"scale": "log"}, "scale must be one of"),
    ({"scale": "mel", "n_mels": 1}, "n_mels must be"),
    ({"fmin": 5000.0}, "fmin"),
    ({"fmax": 4001.0}, "fmax"),
    ({"fmin": -1.0}, "fmin"),
    ({"min_db": 0.0, "max_db": -10.0}, "min_db"),
    ({"min_db": float("nan")}, "min_db"),
    ({"min_db": float("-inf")}, "min_db"),
    ({"max_db": "0"}, "max_db"),
    ({"fmin": None}, "fmin"),
    ({"fmax": "4000"}, "fmax"),
])
def test_invalid_config_is_a_clear_value_error(kwargs, fragment):
    with pytest.raises(ValueError) as info:
        SpectrogramConfig(**kwargs)
    msg = str(info.value)
    assert msg.startswith("invalid spectrogram config: ") and fragment in msg, msg


def test_invalid_config_reports_every_problem():
    with pytest.raises(ValueError) as info:
        SpectrogramConfig(win_length=4, window="nope")
    assert "win_length" in str(info.value) and "window" in str(info.value)


def test_from_dict_rejects_unknown_keys_and_non_objects():
    with pytest.raises(ValueError, match="unknown spectrogram config keys: \\['hop'\\]"):
        SpectrogramConfig.from_dict({"hop": 64})
    with pytest.raises(ValueError, match="must be an object"):
        SpectrogramConfig.from_dict([1, 2])
    with pytest.raises(ValueError):
        SpectrogramConfig.from_dict({"rate": "8000"})


def test_numpy_integers_are_accepted_and_serialise():
    cfg = SpectrogramConfig(rate=np.int64(8000), win_length=np.int32(256), hop_length=np.int64(64))
    assert cfg == SpectrogramConfig()
    assert json.loads(cfg.to_json())["rate"] == 8000


# --- shapes and axes -----------------------------------------------------------------

@pytest.mark.parametrize("n", [0, 1, 255, 256, 257, 319, 320, 321, 8000])
@pytest.mark.parametrize("scale,bins", [("linear", 129), ("mel", 64)])
def test_shapes(n, scale, bins):
    cfg = SpectrogramConfig(scale=scale)
    assert cfg.n_bins == bins
    expected = 0 if n < 256 else 1 + (n - 256) // 64
    assert cfg.n_frames(n) == expected
    out = spectrogram(signal(n), cfg)
    assert out.shape == (expected, bins) and out.dtype == np.float32
    assert len(cfg.frequencies()) == bins


def test_n_fft_zero_padding_changes_bins_not_frames():
    cfg = SpectrogramConfig(win_length=200, hop_length=80, n_fft=512)
    out = spectrogram(signal(8000), cfg)
    assert out.shape == (1 + (8000 - 200) // 80, 257)


def test_input_types():
    cfg = SpectrogramConfig()
    x = signal(2000)
    ref = spectrogram(x, cfg)
    np.testing.assert_allclose(spectrogram(x.astype(np.float32), cfg), ref, atol=1e-3)
    np.testing.assert_allclose(spectrogram(list(x), cfg), ref, atol=1e-6)
    with pytest.raises(ValueError, match="1-D"):
        spectrogram(np.zeros((2, 1000)), cfg)
    with pytest.raises(ValueError, match="1-D"):
        StreamingSpectrogram(cfg).push(np.zeros((10, 2)))


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("amp,db", [(1.0, 0.0), (0.5, -6.0206), (0.01, -40.0)])
def test_sine_peaks_in_its_bin_at_its_level(window, amp, db):
    cfg = SpectrogramConfig(window=window, min_db=-120.0)
    k = 37  # bin centre: 37 * 8000 / 256 = 1156.25 Hz
    f = k * cfg.rate / cfg.n_fft
    x = amp * np.sin(2 * np.pi * f * np.arange(4000) / cfg.rate + 0.3)
    out = spectrogram(x, cfg)
    assert (out.argmax(axis=1) == k).all()
    assert cfg.frequencies()[k] == pytest.approx(f)
    np.testing.assert_allclose(out[:, k], db, atol=0.01)


def test_off_centre_sine_loses_at_most_the_scalloping():
    cfg = SpectrogramConfig()
    f = 37.5 * cfg.rate / cfg.n_fft  # halfway between bins 37 and 38
    out = spectrogram(np.sin(2 * np.pi * f * np.arange(4000) / cfg.rate), cfg)
    assert set(out.argmax(axis=1)) <= {37, 38}
    assert (out.max(axis=1) > -1.5).all() and (out.max(axis=1) <= 0).all()  # Hann: -1.42 dB


@pytest.mark.parametrize("f", [120.0, 600.0, 1500.0, 3000.0])
def test_mel_sine_peaks_in_the_band_that_holds_it(f):
    cfg = SpectrogramConfig(scale="mel", n_mels=40, fmin=50.0, fmax=4000.0)
    out = spectrogram(0.5 * np.sin(2 * np.pi * f * np.arange(8000) / cfg.rate), cfg)
    band = int(np.bincount(out.argmax(axis=1)).argmax())
    centres = cfg.frequencies()
    assert np.all(np.diff(centres) > 0) and centres[0] > 50.0 and centres[-1] < 4000.0
    # The loudest band is one of the two whose centres bracket f.
    nearest = np.argsort(np.abs(centres - f))[:2]
    assert band in nearest
    assert -12.0 < out[:, band].mean() <= 0.0


def test_silence_is_min_db_and_normalise_maps_range():
    cfg = SpectrogramConfig(min_db=-90.0, max_db=-10.0)
    out = spectrogram(np.zeros(2000), cfg)
    assert (out == -90.0).all()
    np.testing.assert_array_equal(normalise(np.array([-90.0, -50.0, -10.0]), cfg), [0.0, 0.5, 1.0])
    assert normalise(out, cfg).dtype == np.float32
    loud = spectrogram(np.ones(2000), cfg)  # DC at full scale: clipped to max_db
    assert loud.max() == -10.0


def test_frame_times_and_frequencies_are_consistent():
    cfg = SpectrogramConfig(rate=8000, win_length=256, hop_length=64)
    t = cfg.frame_times(5)
    np.testing.assert_allclose(t, (np.arange(5) * 64 + 128) / 8000)
    np.testing.assert_allclose(np.diff(t), 1 / cfg.frames_per_second)
    np.testing.assert_allclose(cfg.frame_times(3, start_frame=2), t[2:5])
    freqs = cfg.frequencies()
    assert freqs[0] == 0 and freqs[-1] == 4000 and np.allclose(np.diff(freqs), 8000 / 256)
    # A click at 0.5 s is loudest in the frame whose centre is nearest 0.5 s.
    x = np.zeros(8000)
    x[4000] = 1.0
    out = spectrogram(x, cfg)
    loudest = int(out.mean(axis=1).argmax())
    times = cfg.frame_times(len(out))
    assert abs(times[loudest] - 0.5) <= cfg.hop_length / cfg.rate / 2 + 1e-12


def test_streaming_frame_times_line_up_with_batch():
    cfg = SpectrogramConfig(hop_length=80)
    s = StreamingSpectrogram(cfg)
    x = signal(3000)
    first = s.push(x[:1000])
    start = s.frames_emitted
    second = s.push(x[1000:])
    np.testing.assert_allclose(cfg.frame_times(len(second), start_frame=start),
                               cfg.frame_times(len(first) + len(second))[len(first):])


def test_long_signal_is_processed_in_chunks():
    # More frames than one internal chunk: chunk boundaries must not show.
    cfg = SpectrogramConfig(hop_length=1, win_length=16, n_fft=16)
    x = signal(10000)
    out = spectrogram(x, cfg)
    assert out.shape == (10000 - 15, 9)
    frames = np.lib.stride_tricks.sliding_window_view(x, 16)
    win = np.hanning(17)[:16]
    ref = np.abs(np.fft.rfft(frames * win, axis=1)) ** 2 * 4 / win.sum() ** 2
    np.testing.assert_allclose(out, np.clip(10 * np.log10(ref + 1e-12), -100, 0), atol=1e-4)
    assert math.isfinite(float(out.sum()))


@pytest.mark.parametrize("name", ["hann", "hamming", "blackman", "boxcar"])
def test_windows_equal_scipy_periodic_windows(name):
    from scipy.signal import get_window

    from lungapp.dsp.spectrogram import _window

    for n in (1, 2, 7, 255, 256, 1024):
        assert np.max(np.abs(_window(name, n) - get_window(name, n, fftbins=True))) < 1e-12
