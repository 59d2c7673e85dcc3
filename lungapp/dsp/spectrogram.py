"""One spectrogram engine for the GUI and the model.

The user sees and the model reads the same columns: both call :func:`spectrogram`
(a whole signal) or :class:`StreamingSpectrogram` (blocks of any size, for the live
view), which share :func:`_frames_to_columns`, so the two agree to float precision.

Conventions
-----------
* Frame ``i`` covers samples ``[i * hop_length, i * hop_length + win_length)``; there
  is no centring or padding, so a stream can emit a column as soon as its last sample
  arrives, and ``n_frames = 1 + (n - win_length) // hop_length`` (0 if ``n < win_length``).
* Output is time-major, ``float32`` of shape ``(n_frames, n_bins)``, in dB relative to
  full scale (a full-scale sine peaks at 0 dB in the linear scale), clipped to
  ``[min_db, max_db]``. An absolute reference (not the signal's maximum) keeps streaming
  and batch identical.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from lungapp.dsp.scratch import scratch

SCALES = ("linear", "mel")
WINDOWS = ("hann", "hamming", "blackman", "boxcar")
_EPS = 1e-12
# Frames processed per chunk in batch mode. Each chunk's intermediate arrays (about 2.5 MB
# at 512 frames of a 256-point FFT) are per-thread scratch arrays, reused from call to call
# rather than mapped afresh: page faults on new memory made a 15-s recording take 3-5 times
# longer with 4096-frame chunks (benchmarks/bench_predict.py). It also bounds memory for
# hour-long signals.
_CHUNK_FRAMES = 512


@dataclass(frozen=True)
class SpectrogramConfig:
    """Everything that defines a spectrogram; JSON-serialisable (see :meth:`to_dict`).

    rate: sample rate in Hz the signal must have.
    win_length: analysis window length in samples; n_fft >= win_length (zero padded).
    hop_length: step between frames in samples.
    window: a name from ``WINDOWS``.
    scale: ``"linear"`` (n_fft // 2 + 1 bins from 0 Hz to rate / 2) or ``"mel"``
        (``n_mels`` triangular bands between ``fmin`` and ``fmax``, HTK mel formula).
    fmin, fmax: band limits in Hz for ``mel`` (fmax None = rate / 2).
    min_db, max_db: the dB range; values are clipped to it and :func:`normalise`
        maps it to [0, 1].
    """

    rate: int = 8000
    win_length: int = 256
    hop_length: int = 64
    n_fft: int = 256
    window: str = "hann"
    scale: str = "linear"
    n_mels: int = 64
    fmin: float = 0.0
    fmax: float | None = None
    min_db: float = -100.0
    max_db: float = 0.0

    def __post_init__(self):
        # Numpy integers (e.g. from arrays) become plain ints so to_json() works.
        for name in ("rate", "win_length", "hop_length", "n_fft", "n_mels"):
            value = getattr(self, name)
            if isinstance(value, np.integer):
                object.__setattr__(self, name, int(value))
        problems = []
        if not (_is_int(self.rate) and 100 <= self.rate <= 384_000):
            problems.append(f"rate must be an integer Hz in 100..384000, not {self.rate!r}")
        if not (_is_int(self.win_length) and self.win_length >= 8):
            problems.append(f"win_length must be an integer >= 8, not {self.win_length!r}")
        if not (_is_int(self.hop_length) and self.hop_length >= 1):
            problems.append(f"hop_length must be a positive integer, not {self.hop_length!r}")
        if not (_is_int(self.n_fft) and _is_int(self.win_length) and self.n_fft >= self.win_length):
            problems.append(f"n_fft ({self.n_fft!r}) must be an integer >= win_length")
        if self.window not in WINDOWS:
            problems.append(f"window must be one of {WINDOWS}, not {self.window!r}")
        if self.scale not in SCALES:
            problems.append(f"scale must be one of {SCALES}, not {self.scale!r}")
        if self.scale == "mel" and not (_is_int(self.n_mels) and self.n_mels >= 2):
            problems.append(f"n_mels must be an integer >= 2, not {self.n_mels!r}")
        if not _is_real(self.fmin):
            problems.append(f"fmin must be a finite number of Hz, not {self.fmin!r}")
        elif not (self.fmax is None or _is_real(self.fmax)):
            problems.append(f"fmax must be a finite number of Hz or null, not {self.fmax!r}")
        elif _is_int(self.rate):
            top = self.rate / 2
            fmax = top if self.fmax is None else self.fmax
            if not (0 <= self.fmin < fmax <= top + 1e-9):
                problems.append(f"need 0 <= fmin < fmax <= rate/2 (got fmin={self.fmin}, fmax={self.fmax})")
        if not (_is_real(self.min_db) and _is_real(self.max_db)):
            problems.append(f"min_db and max_db must be finite numbers, not "
                            f"{self.min_db!r} and {self.max_db!r}")
        elif not self.min_db < self.max_db:
            problems.append(f"min_db ({self.min_db}) must be below max_db ({self.max_db})")
        if problems:
            raise ValueError("invalid spectrogram config: " + "; ".join(problems))

    # --- serialisation -------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> SpectrogramConfig:
        """Build from a dict; unknown keys are an error (a typo must not pass silently)."""
        if not isinstance(d, dict):
            raise ValueError(f"spectrogram config must be an object, not {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown spectrogram config keys: {sorted(unknown)}")
        return cls(**d)

    def replace(self, **changes) -> SpectrogramConfig:
        return dataclasses.replace(self, **changes)

    # --- axes ----------------------------------------------------------------------
    @property
    def n_bins(self) -> int:
        return self.n_mels if self.scale == "mel" else self.n_fft // 2 + 1

    def frequencies(self) -> np.ndarray:
        """Centre frequency in Hz of each output bin, shape (n_bins,)."""
        if self.scale == "mel":
            edges = _mel_edges_hz(self.fmin, self._fmax, self.n_mels)
            return edges[1:-1].astype(np.float64)
        return np.fft.rfftfreq(self.n_fft, 1.0 / self.rate)

    @property
    def _fmax(self) -> float:
        return self.rate / 2 if self.fmax is None else float(self.fmax)

    def n_frames(self, n_samples: int) -> int:
        """Number of complete frames in ``n_samples`` samples."""
        if n_samples < self.win_length:
            return 0
        return 1 + (n_samples - self.win_length) // self.hop_length

    def frame_times(self, n_frames: int, start_frame: int = 0) -> np.ndarray:
        """Centre time in seconds of frames ``start_frame .. start_frame + n_frames - 1``."""
        idx = np.arange(start_frame, start_frame + n_frames, dtype=np.float64)
        return (idx * self.hop_length + self.win_length / 2) / self.rate

    @property
    def frames_per_second(self) -> float:
        return self.rate / self.hop_length


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) \
        and math.isfinite(v)


# --- the shared math -----------------------------------------------------------------

@lru_cache(maxsize=32)
def _window(name: str, length: int) -> np.ndarray:
    """The periodic ("fftbins") window, as ``scipy.signal.get_window(name, length)`` gives it,
    computed here: importing scipy.signal costs about 1 s at start-up."""
    coeffs = _COSINE_WINDOWS[name]
    if length == 1:
        return np.ones(1)
    phase = 2.0 * np.pi * np.arange(length) / length
    return sum(((-1) ** k) * a * np.cos(k * phase) for k, a in enumerate(coeffs)) + np.zeros(length)


# Generalised cosine windows: w[n] = sum_k (-1)^k a_k cos(2 pi k n / N).
_COSINE_WINDOWS = {"hann": (0.5, 0.5), "hamming": (0.54, 0.46), "blackman": (0.42, 0.5, 0.08),
                   "boxcar": (1.0,)}


def _hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def _mel_edges_hz(fmin: float, fmax: float, n_mels: int) -> np.ndarray:
    return _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))


@lru_cache(maxsize=32)
def _mel_matrix(rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Triangular mel filterbank, shape (n_fft // 2 + 1, n_mels), peak weight 1."""
    fft_f = np.fft.rfftfreq(n_fft, 1.0 / rate)
    edges = _mel_edges_hz(fmin, fmax, n_mels)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (fft_f[:, None] - lower[None, :]) / np.maximum(centre - lower, _EPS)[None, :]
    falling = (upper[None, :] - fft_f[:, None]) / np.maximum(upper - centre, _EPS)[None, :]
    weights = np.clip(np.minimum(rising, falling), 0.0, None)
    # A band narrower than one FFT bin would be all zeros: give it its nearest bin.
    for j in np.flatnonzero(weights.sum(axis=0) == 0):
        weights[np.argmin(np.abs(fft_f - centre[j])), j] = 1.0
    return weights


def _frames_to_columns(frames: np.ndarray, cfg: SpectrogramConfig, out: np.ndarray) -> None:
    """(n, win_length) float64 frames -> ``out``, (n, n_bins) float32 dB columns. The
    intermediate arrays are this thread's scratch arrays (:mod:`lungapp.dsp.scratch`)."""
    win = _window(cfg.window, cfg.win_length)
    n, n_spec = len(frames), cfg.n_fft // 2 + 1
    windowed = np.multiply(frames, win, out=scratch("spectrogram.frames", n, (cfg.win_length,), np.float64))
    spec = np.fft.rfft(windowed, n=cfg.n_fft, axis=1,
                       out=scratch("spectrogram.spectra", n, (n_spec,), np.complex128))
    # Power scaled so that a full-scale sine peaks at 0 dB (amplitude 1 -> 1.0).
    power = np.square(spec.real, out=scratch("spectrogram.power", n, (n_spec,), np.float64))
    power += np.square(spec.imag, out=scratch("spectrogram.imag", n, (n_spec,), np.float64))
    power *= 4.0 / (win.sum() ** 2)
    if cfg.scale == "mel":
        power = np.matmul(power, _mel_matrix(cfg.rate, cfg.n_fft, cfg.n_mels, float(cfg.fmin), cfg._fmax),
                          out=scratch("spectrogram.mel", n, (cfg.n_mels,), np.float64))
    power += _EPS
    db = np.log10(power, out=power)
    db *= 10.0
    out[...] = np.clip(db, cfg.min_db, cfg.max_db, out=db)


def _as_signal(x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D mono signal, got shape {x.shape}")
    return x.astype(np.float64, copy=False)


def spectrogram(x, cfg: SpectrogramConfig) -> np.ndarray:
    """dB spectrogram of a whole mono signal sampled at ``cfg.rate``.

    x: 1-D array of samples in [-1, 1] (any float or int dtype is cast to float64).
    Returns float32 array of shape ``(cfg.n_frames(len(x)), cfg.n_bins)``.
    Memory stays bounded for long signals (frames are processed in chunks).
    """
    x = _as_signal(x)
    n = cfg.n_frames(len(x))
    out = np.empty((n, cfg.n_bins), dtype=np.float32)
    if n == 0:
        return out
    view = np.lib.stride_tricks.sliding_window_view(x, cfg.win_length)[:: cfg.hop_length]
    for start in range(0, n, _CHUNK_FRAMES):
        stop = min(n, start + _CHUNK_FRAMES)
        _frames_to_columns(view[start:stop], cfg, out[start:stop])
    return out


class StreamingSpectrogram:
    """Spectrogram of a signal that arrives in blocks of any size.

    ``push(block)`` returns the columns completed by that block (possibly none), in
    order; concatenated, they equal :func:`spectrogram` of the concatenated blocks.
    Only ``win_length - 1`` samples (plus one hop) are kept between calls.
    """

    def __init__(self, cfg: SpectrogramConfig):
        self.cfg = cfg
        self.reset()

    def reset(self) -> None:
        self._buf = np.zeros(0, dtype=np.float64)
        # Samples still to drop before the next frame starts (when hop > win_length,
        # the next frame can start after the last sample received).
        self._skip = 0
        self.frames_emitted = 0

    def push(self, block) -> np.ndarray:
        block = _as_signal(block)
        if self._skip:
            dropped = min(self._skip, len(block))
            block = block[dropped:]
            self._skip -= dropped
        buf = np.concatenate([self._buf, block]) if len(self._buf) else block.copy()
        n = self.cfg.n_frames(len(buf))
        if n == 0:
            self._buf = buf
            return np.empty((0, self.cfg.n_bins), dtype=np.float32)
        cols = spectrogram(buf[: (n - 1) * self.cfg.hop_length + self.cfg.win_length], self.cfg)
        consumed = n * self.cfg.hop_length
        self._skip = max(0, consumed - len(buf))
        self._buf = buf[consumed:].copy()
        self.frames_emitted += n
        return cols


def normalise(db: np.ndarray, cfg: SpectrogramConfig) -> np.ndarray:
    """Map dB values from ``[cfg.min_db, cfg.max_db]`` to float32 ``[0, 1]``."""
    return ((np.asarray(db, dtype=np.float32) - cfg.min_db) / (cfg.max_db - cfg.min_db)).astype(np.float32)
