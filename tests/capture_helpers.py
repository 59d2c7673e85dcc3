"""Helpers for the tests that play a known signal into the PulseAudio null sink and
record it back (tests/integration/test_capture.py, tests/unit/audio/test_recorder.py)."""

from __future__ import annotations

import subprocess

import numpy as np

RATE = 48000


def make_signal(rate=RATE, seed=0) -> np.ndarray:
    """0.3 s silence, 1.5 s chirp 150 Hz -> 6 kHz, 0.5 s noise burst, 0.3 s silence."""
    from scipy.signal import chirp

    rng = np.random.default_rng(seed)
    t = np.arange(int(1.5 * rate)) / rate
    sweep = 0.5 * chirp(t, 150, t[-1], 6000, method="logarithmic")
    burst = 0.3 * rng.standard_normal(int(0.5 * rate)).clip(-3, 3) / 3
    gap = np.zeros(int(0.3 * rate))
    return np.concatenate([gap, sweep, burst, gap]).astype(np.float32)


def aligned_correlation(played: np.ndarray, recorded: np.ndarray) -> tuple[float, int]:
    """(Pearson correlation after the best alignment, lag in samples)."""
    from scipy.signal import correlate

    xc = correlate(recorded.astype(np.float64), played.astype(np.float64), mode="valid",
                   method="fft")
    lag = int(np.argmax(np.abs(xc)))
    seg = recorded[lag:lag + len(played)]
    return float(np.corrcoef(seg, played)[0, 1]), lag


def paplay(path, sink="ci_sink", wait=True):
    cmd = ["paplay", f"--device={sink}", str(path)]
    if wait:
        subprocess.run(cmd, check=True, timeout=60)
        return None
    return subprocess.Popen(cmd)


def use_the_null_sink(qtbot, view, patient: str, site: str = "Trachea") -> None:
    """Set the Record view up to record from PulseAudio's ALSA "pulse" device (the null
    sink's monitor) until stopped, for ``patient`` at ``site``; skips without that device."""
    import pytest

    qtbot.waitUntil(lambda: view.record_button.isEnabled() and bool(view.devices), timeout=20000)
    names = [d.name for d in view.devices]
    if "pulse" not in names:
        pytest.skip(f"no ALSA 'pulse' input device (have {names})")
    view.device_combo.setCurrentIndex(names.index("pulse"))
    view.duration_combo.setCurrentText("Until stopped")
    view.site_combo.setCurrentText(site)
    view.patient_edit.setText(patient)
