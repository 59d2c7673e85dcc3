"""Listening aids for playback: band-pass presets that mimic a stethoscope's bell and
diaphragm, a custom range, and gain in dB (no Qt here).

The filter is a 4th-order Butterworth band-pass run forwards and backwards (zero phase: a
crackle's onset is not shifted in time against the cursor). A range reaching past the
recording's Nyquist frequency is cut there; a range with nothing left is refused.
"""

from __future__ import annotations

import numpy as np

PRESETS: dict[str, tuple[float, float] | None] = {
    "Off": None,
    "Lung 100-2000 Hz": (100.0, 2000.0),
    "Bell 20-200 Hz": (20.0, 200.0),
    "Diaphragm 100-1000 Hz": (100.0, 1000.0),
}
ORDER = 4


def band_pass(samples: np.ndarray, rate: int, low_hz: float, high_hz: float) -> np.ndarray:
    """``samples`` band-passed to ``low_hz``-``high_hz`` (float32, same length).

    Raises:
        ValueError: the range is empty or lies above the Nyquist frequency (``rate / 2``).
    """
    from scipy.signal import butter, sosfiltfilt

    nyquist = rate / 2.0
    high = min(float(high_hz), nyquist * 0.99)
    low = max(float(low_hz), 0.0)
    if not low < high:
        raise ValueError(f"no band left: {low_hz:g}-{high_hz:g} Hz at {rate} Hz sampling "
                         f"(the highest frequency is {nyquist:g} Hz)")
    x = np.asarray(samples, dtype=np.float64)
    if len(x) < 3 * (2 * ORDER + 1):  # too short to filter both ways: nothing to hear anyway
        return x.astype(np.float32)
    if low <= 0:
        sos = butter(ORDER, high / nyquist, btype="lowpass", output="sos")
    else:
        sos = butter(ORDER, [low / nyquist, high / nyquist], btype="bandpass", output="sos")
    return sosfiltfilt(sos, x).astype(np.float32)


def gain_factor(db: float) -> float:
    """The amplitude factor of ``db`` decibels."""
    return float(10.0 ** (db / 20.0))
