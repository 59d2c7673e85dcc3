"""Automatic colour levels for a spectrogram, from the recording's own percentiles (as
annotation tools such as Raven and Sonic Visualiser do): a fixed -100…0 dB range washed
out quiet stethoscope recordings, whose energy sits in a narrow band of it."""

from __future__ import annotations

import numpy as np

LOW_PERCENTILE = 20.0    # the quieter fifth of the picture is the floor (dark)
HIGH_PERCENTILE = 99.8   # the loudest few pixels saturate, not the whole sound
MIN_SPAN_DB = 30.0
MAX_VALUES = 200_000     # a sample of the pixels is enough for two percentiles


def auto_levels(spec_db: np.ndarray) -> tuple[float, float] | None:
    """(low, high) dB levels for ``spec_db`` (frames x bins, dB), whole dB, at least
    MIN_SPAN_DB apart (a narrower spread keeps its low level and widens upwards); None for
    an empty or non-finite spectrogram."""
    values = np.asarray(spec_db, dtype=np.float32).ravel()
    if values.size > MAX_VALUES:
        values = values[:: values.size // MAX_VALUES + 1]
    values = values[np.isfinite(values)]
    if not values.size:
        return None
    lo, hi = np.percentile(values, [LOW_PERCENTILE, HIGH_PERCENTILE])
    lo, hi = float(np.floor(lo)), float(np.ceil(hi))
    if hi - lo < MIN_SPAN_DB:
        # A nearly even picture (silence at the spectrogram's floor, a steady hum) is drawn
        # near the bottom of the colour map: extending the range down instead drew silence
        # at full brightness, as if it were the loudest sound.
        hi = lo + MIN_SPAN_DB
    return lo, hi
