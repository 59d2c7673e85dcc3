"""Waveform envelopes for drawing: a long recording as the min/max of sample blocks."""

from __future__ import annotations

import numpy as np


def wave_points(samples: np.ndarray, rate: int,
                max_points: int = 1_000_000) -> tuple[np.ndarray, np.ndarray]:
    """(t, y) to draw a waveform of ``samples`` (1-D float32) at ``rate`` Hz.

    Every sample (t in seconds) when there are at most ``max_points``; else the min and
    the max of consecutive blocks of k samples (k chosen so 2 points per block fit in
    ``max_points``; a trailing partial block is dropped), placed at the block's start and
    middle: how a long recording looks at full width, without gigabytes of plot arrays
    for an hour at 44.1 kHz. Both arrays are float32 (``y`` is ``samples`` itself when
    every sample is kept)."""
    n = len(samples)
    if n <= max_points:
        return np.arange(n, dtype=np.float32) / np.float32(rate), samples
    k = -(-n // (max_points // 2))
    m = n // k
    blocks = samples[: m * k].reshape(m, k)
    y = np.empty(2 * m, dtype=np.float32)
    y[0::2] = blocks.min(axis=1)
    y[1::2] = blocks.max(axis=1)
    starts = np.arange(m, dtype=np.float64) * k
    t = np.empty(2 * m, dtype=np.float32)
    t[0::2] = starts / rate
    t[1::2] = (starts + k / 2) / rate
    return t, y
