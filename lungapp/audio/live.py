"""What the live view shows, computed from the capture ring buffer (no Qt).

:class:`LiveMonitor` is the data side of the Record view's live display (the Qt widget
in :mod:`lungapp.gui.live_spectrogram` only draws it): at each GUI frame it reads the
samples captured since the last frame, feeds them to the core's
:class:`~lungapp.dsp.spectrogram.StreamingSpectrogram`, and keeps

* a ring of the last ``seconds`` of spectrogram columns (bins up to ``fmax``),
* a min/max envelope of the waveform over the same span (``points`` pairs),
* the input level (peak, RMS) and clipping since the last frame.

Work per frame is proportional to the new samples only, never to the visible window.
"""

from __future__ import annotations

import numpy as np

from lungapp.dsp.spectrogram import SpectrogramConfig, StreamingSpectrogram

CLIP_LEVEL = 0.999  # |sample| at or above this counts as clipped (full scale is 1.0)


def live_config(rate: int) -> SpectrogramConfig:
    """The live spectrogram at the capture rate: ~32 ms Hann windows, 16 ms hop
    (62.5 columns/s: 625 columns for 10 s, about one per screen pixel), whatever the
    rate, so the picture looks the same on any device."""
    win = int(round(0.032 * rate))
    n_fft = 1 << (win - 1).bit_length()
    return SpectrogramConfig(rate=int(rate), win_length=win, hop_length=max(1, int(round(0.016 * rate))),
                             n_fft=n_fft, window="hann", scale="linear", min_db=-110.0, max_db=0.0)


class LiveMonitor:
    def __init__(self, ring, rate: int, seconds: float = 10.0, fmax: float = 4000.0,
                 points: int = 1000, cfg: SpectrogramConfig | None = None):
        self.rate = int(rate)
        self.seconds = float(seconds)
        self.cfg = cfg or live_config(self.rate)
        self.reader = ring.reader(from_now=False)
        self._stream = StreamingSpectrogram(self.cfg)
        freqs = self.cfg.frequencies()
        self.n_bins = int(np.searchsorted(freqs, min(fmax, self.rate / 2), side="right"))
        self.fmax = float(freqs[self.n_bins - 1])
        self.n_cols = max(1, int(round(self.seconds * self.cfg.frames_per_second)))
        self._cols = np.full((self.n_cols, self.n_bins), self.cfg.min_db, dtype=np.float32)
        # The same columns scaled to 0..255 once, when they arrive: the display draws
        # uint8 through a colour table (no per-frame float rescaling of the window).
        self._cols8 = np.zeros((self.n_cols, self.n_bins), dtype=np.uint8)
        self.columns_total = 0
        # Waveform envelope: one (min, max) pair per `decim` samples.
        self.points = int(points)
        self.decim = max(1, int(round(self.seconds * self.rate / self.points)))
        self._env = np.zeros((self.points, 2), dtype=np.float32)
        self.env_total = 0
        self._pending = np.zeros(0, dtype=np.float32)
        self.samples_total = 0
        self.peak = 0.0         # of the samples read by the last update()
        self.rms = 0.0
        self.clipped = 0        # clipped samples seen in total

    def update(self) -> int:
        """Consume what was captured since the last call; returns new samples read."""
        x = self.reader.read()[:, 0]
        n = len(x)
        if n == 0:
            self.peak = 0.0 if self.samples_total == 0 else self.peak
            return 0
        self.samples_total += n
        ax = np.abs(x)
        self.peak = float(ax.max())
        self.rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
        self.clipped += int(np.count_nonzero(ax >= CLIP_LEVEL))
        cols = self._stream.push(x)
        if len(cols):
            cols = cols[:, : self.n_bins]
            scale = 255.0 / (self.cfg.max_db - self.cfg.min_db)
            cols8 = ((cols - self.cfg.min_db) * scale + 0.5).clip(0, 255).astype(np.uint8)
            total = self.columns_total
            self._append(self._cols, cols, "columns_total")
            self.columns_total = total
            self._append(self._cols8, cols8, "columns_total")
        buf = np.concatenate([self._pending, x]) if len(self._pending) else x
        k = len(buf) // self.decim
        if k:
            blocks = buf[: k * self.decim].reshape(k, self.decim)
            env = np.stack([blocks.min(axis=1), blocks.max(axis=1)], axis=1)
            self._append(self._env, env, "env_total")
        self._pending = buf[k * self.decim:].copy()
        return n

    def _append(self, ring: np.ndarray, rows: np.ndarray, counter: str) -> None:
        size = len(ring)
        total = getattr(self, counter)
        if len(rows) >= size:
            ring[:] = rows[-size:]
            # keep the ring's order consistent with the counter
            shift = (total + len(rows)) % size
            ring[:] = np.roll(ring, shift, axis=0)
        else:
            i = total % size
            first = min(len(rows), size - i)
            ring[i:i + first] = rows[:first]
            if first < len(rows):
                ring[: len(rows) - first] = rows[first:]
        setattr(self, counter, total + len(rows))

    @staticmethod
    def _ordered(ring: np.ndarray, total: int) -> np.ndarray:
        i = total % len(ring)
        return np.concatenate([ring[i:], ring[:i]]) if i else ring.copy()

    def image(self) -> np.ndarray:
        """(n_cols, n_bins) float32 dB, oldest column first, newest last."""
        return self._ordered(self._cols, self.columns_total)

    def image8(self) -> np.ndarray:
        """:meth:`image` mapped linearly from [min_db, max_db] to uint8 0..255."""
        return self._ordered(self._cols8, self.columns_total)

    def envelope(self) -> tuple[np.ndarray, np.ndarray]:
        """(t, y) for a line plot of the min/max envelope of the last ``seconds``:
        t in seconds relative to now (negative), y interleaved min, max."""
        env = self._ordered(self._env, self.env_total)
        t = (np.arange(self.points) - self.points) * (self.decim / self.rate)
        return np.repeat(t, 2), env.reshape(-1)

    @property
    def lost_frames(self) -> int:
        return self.reader.lost_frames
