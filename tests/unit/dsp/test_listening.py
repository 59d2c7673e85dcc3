"""Listening aids: band-pass presets and gain."""

from __future__ import annotations

import numpy as np
import pytest

from lungapp.dsp.listening import PRESETS, band_pass, gain_factor


def _tone_rms(x, rate, hz):
    t = np.arange(len(x)) / rate
    return float(np.hypot(np.mean(x * np.sin(2 * np.pi * hz * t)), np.mean(x * np.cos(2 * np.pi * hz * t))))


@pytest.mark.parametrize("name,inside,outside", [("Bell 20-200 Hz", 100, 800),
                                                 ("Diaphragm 100-1000 Hz", 400, 2500),
                                                 ("Lung 100-2000 Hz", 800, 30)])
def test_presets_keep_their_band_and_cut_the_rest(name, inside, outside):
    rate = 8000
    t = np.arange(2 * rate) / rate
    x = (np.sin(2 * np.pi * inside * t) + np.sin(2 * np.pi * outside * t)).astype(np.float32)
    y = band_pass(x, rate, *PRESETS[name])
    assert y.dtype == np.float32 and len(y) == len(x)
    assert _tone_rms(y, rate, inside) == pytest.approx(_tone_rms(x, rate, inside), rel=0.1)
    assert _tone_rms(y, rate, outside) < 0.1 * _tone_rms(x, rate, outside)


def test_range_above_nyquist_is_cut_or_refused():
    x = np.random.default_rng(0).standard_normal(4000).astype(np.float32)
    assert np.isfinite(band_pass(x, 4000, 100, 5000)).all()  # cut at 2 kHz
    with pytest.raises(ValueError, match="no band left: 3000-4000 Hz at 4000 Hz"):
        band_pass(x, 4000, 3000, 4000)


def test_gain():
    assert gain_factor(0) == 1.0 and gain_factor(20) == pytest.approx(10.0)
    assert gain_factor(-6) == pytest.approx(0.501, abs=1e-3)
