"""The waveform envelope the Review view draws (lungapp.dsp.envelope)."""

from __future__ import annotations

import numpy as np
import pytest

from lungapp.dsp.envelope import wave_points


def test_long_recording_waveform_is_a_min_max_envelope():
    rng = np.random.default_rng(3)
    x = (0.1 * rng.standard_normal(2_500_001)).astype(np.float32)
    x[1_234_567] = 0.99     # one click must stay visible at full width
    x[2_000_000] = -0.97
    t, y = wave_points(x, 44100, max_points=100_000)
    assert len(t) == len(y) <= 100_000 and t.dtype == y.dtype == np.float32
    assert y.max() == pytest.approx(0.99) and y.min() == pytest.approx(-0.97)
    assert np.all(np.diff(t) >= 0) and t[-1] <= len(x) / 44100
    t2, y2 = wave_points(x[:5000], 8000)
    assert len(t2) == 5000 and y2 is not None and t2[1] == pytest.approx(1 / 8000)
