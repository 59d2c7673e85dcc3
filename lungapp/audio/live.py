"""What the live view shows, computed from the capture ring buffer (no Qt).

:class:`LiveMonitor` is the data side of the Record view's live display (the Qt widget
in :mod:`lungapp.gui.live_spectrogram` only draws it): at each GUI frame it reads the
samples captured since the last frame, feeds them to the core's
:class:`~lungapp.dsp.spectrogram.StreamingSpectrogram`, and keeps

* a ring of the last ``seconds`` of spectrogram columns (bins up to ``fmax``), in dB
  and mapped once to uint8 for display,
* a min/max envelope of the waveform over the same span (``points`` pairs, one per
  column by default),
* the input level (peak, RMS) and clipping since the last frame.

Columns and envelope points have absolute indices (0 = the first of the stream), so a
display can ask for exactly the ones it has not drawn yet (:meth:`LiveMonitor.columns8`,
:meth:`LiveMonitor.envelope_since`). Work per frame is proportional to the new samples
only, never to the visible window.

:class:`ScrollClock` says which stream time a display should put at its right edge at
a given wall-clock time, so the picture scrolls at an even speed although audio
arrives in bursts.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from lungapp.dsp.spectrogram import SpectrogramConfig, StreamingSpectrogram

CLIP_LEVEL = 0.999  # |sample| at or above this counts as clipped (full scale is 1.0)
FMAX = 4000.0       # the live view's top frequency (lung sounds live below ~2 kHz)
SECONDS = 10.0      # the live view's span


def live_config(rate: int) -> SpectrogramConfig:
    """The live spectrogram at the capture rate: ~32 ms Hann windows, 16 ms hop
    (62.5 columns/s: 625 columns for 10 s, about one per screen pixel), whatever the
    rate, so the picture looks the same on any device."""
    win = int(round(0.032 * rate))
    n_fft = 1 << (win - 1).bit_length()
    return SpectrogramConfig(rate=int(rate), win_length=win, hop_length=max(1, int(round(0.016 * rate))),
                             n_fft=n_fft, window="hann", scale="linear", min_db=-110.0, max_db=0.0)


def live_bins(cfg: SpectrogramConfig, fmax: float = FMAX) -> tuple[int, float]:
    """(number of bins shown, centre frequency in Hz of the top one) for a live view of
    ``cfg`` up to ``fmax`` Hz (or the Nyquist frequency, whichever is lower)."""
    freqs = cfg.frequencies()
    n = int(np.searchsorted(freqs, min(fmax, cfg.rate / 2), side="right"))
    return n, float(freqs[n - 1])


def _ring_put(ring: np.ndarray, total: int, rows: np.ndarray) -> None:
    """Write ``rows`` into ``ring`` as if appended after ``total`` rows (slot = index
    % len(ring)); only the last len(ring) rows are kept."""
    size = len(ring)
    if len(rows) > size:
        total += len(rows) - size
        rows = rows[-size:]
    i = total % size
    first = min(len(rows), size - i)
    ring[i:i + first] = rows[:first]
    if first < len(rows):
        ring[: len(rows) - first] = rows[first:]


def _ring_get(ring: np.ndarray, start: int, end: int) -> np.ndarray:
    """Rows with absolute indices ``start .. end - 1`` (all still in the ring), a copy."""
    size = len(ring)
    n = end - start
    out = np.empty((n,) + ring.shape[1:], dtype=ring.dtype)
    if n <= 0:
        return out[:0]
    i = start % size
    first = min(n, size - i)
    out[:first] = ring[i:i + first]
    if first < n:
        out[first:] = ring[: n - first]
    return out


class LiveMonitor:
    def __init__(self, ring, rate: int, seconds: float = SECONDS, fmax: float = FMAX,
                 points: int = 625, cfg: SpectrogramConfig | None = None):
        self.rate = int(rate)
        self.seconds = float(seconds)
        self.cfg = cfg or live_config(self.rate)
        self.reader = ring.reader(from_now=False)
        self._stream = StreamingSpectrogram(self.cfg)
        # Build the engine's cached window here, in the thread that makes the monitor
        # (a worker), not in the GUI's first frame.
        StreamingSpectrogram(self.cfg).push(np.zeros(self.cfg.win_length, dtype=np.float32))
        self.n_bins, self.fmax = live_bins(self.cfg, fmax)
        self.n_cols = max(1, int(round(self.seconds * self.cfg.frames_per_second)))
        self._cols = np.full((self.n_cols, self.n_bins), self.cfg.min_db, dtype=np.float32)
        # The same columns scaled to 0..255 once, when they arrive: the display colours
        # each new column once through a 256-entry table and never touches it again.
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
            _ring_put(self._cols, self.columns_total, cols)
            _ring_put(self._cols8, self.columns_total, cols8)
            self.columns_total += len(cols)
        buf = np.concatenate([self._pending, x]) if len(self._pending) else x
        k = len(buf) // self.decim
        if k:
            blocks = buf[: k * self.decim].reshape(k, self.decim)
            env = np.stack([blocks.min(axis=1), blocks.max(axis=1)], axis=1)
            _ring_put(self._env, self.env_total, env)
            self.env_total += k
        self._pending = buf[k * self.decim:].copy()
        return n

    # --- incremental access (what a display has not drawn yet) --------------------------
    def columns8(self, start: int) -> tuple[int, np.ndarray]:
        """(first index, uint8 columns) for the columns with absolute index >= ``start``
        still kept (at most ``n_cols``, the newest), shape (k, n_bins), oldest first."""
        first = max(int(start), self.columns_total - self.n_cols, 0)
        return first, _ring_get(self._cols8, first, self.columns_total)

    def envelope_since(self, start: int) -> tuple[int, np.ndarray]:
        """(first index, (k, 2) float32 min/max pairs) for envelope points >= ``start``."""
        first = max(int(start), self.env_total - self.points, 0)
        return first, _ring_get(self._env, first, self.env_total)

    def column_left_s(self, k) -> float | np.ndarray:
        """Stream time in seconds of the left edge of column ``k`` drawn ``hop`` wide
        around its window's centre (column k covers [left, left + hop / rate))."""
        cfg = self.cfg
        return (np.asarray(k, dtype=np.float64) * cfg.hop_length
                + (cfg.win_length - cfg.hop_length) / 2) / cfg.rate

    @property
    def column_s(self) -> float:
        """Width of one column in seconds (the hop)."""
        return self.cfg.hop_length / self.cfg.rate

    def envelope_time_s(self, j) -> float | np.ndarray:
        """Stream time in seconds of the centre of envelope point ``j``."""
        return (np.asarray(j, dtype=np.float64) + 0.5) * self.decim / self.rate

    @property
    def stream_s(self) -> float:
        """Seconds of audio consumed so far."""
        return self.samples_total / self.rate

    # --- whole windows (tests, screenshots) ---------------------------------------------
    def image(self) -> np.ndarray:
        """(n_cols, n_bins) float32 dB, oldest column first, newest last (min_db where
        nothing was captured yet)."""
        out = np.full((self.n_cols, self.n_bins), self.cfg.min_db, dtype=np.float32)
        first = max(0, self.columns_total - self.n_cols)
        out[self.n_cols - (self.columns_total - first):] = _ring_get(self._cols, first, self.columns_total)
        return out

    def image8(self) -> np.ndarray:
        """:meth:`image` mapped linearly from [min_db, max_db] to uint8 0..255."""
        out = np.zeros((self.n_cols, self.n_bins), dtype=np.uint8)
        first, cols = self.columns8(0)
        out[self.n_cols - len(cols):] = cols
        return out

    def envelope(self) -> tuple[np.ndarray, np.ndarray]:
        """(t, y) for a line plot of the min/max envelope of the last ``seconds``:
        t in seconds relative to now (negative), y interleaved min, max."""
        env = np.zeros((self.points, 2), dtype=np.float32)
        first, got = self.envelope_since(0)
        env[self.points - len(got):] = got
        t = (np.arange(self.points) - self.points) * (self.decim / self.rate)
        return np.repeat(t, 2), env.reshape(-1)

    @property
    def lost_frames(self) -> int:
        return self.reader.lost_frames


class ScrollClock:
    """The stream time a live display puts at its right edge, advancing evenly.

    Audio reaches the GUI in bursts (PortAudio blocks, sound-server periods: tens of
    milliseconds apart), while the display ticks every ~33 ms. Drawing each burst as it
    lands makes the picture jump by a burst and stand still in between. Instead the
    display shows the stream slightly in the past, on a clock that runs at real-time
    speed, so every frame moves by the same amount (Friture scrolls its spectrogram the
    same way). The delay is just what the bursts need: at wall time ``now`` the audio
    received ends at least at ``now - (latest arrival - its stream time) - (largest
    burst)``, both taken over the last ``window_s`` seconds, minus ``margin_s``.

    Pure arithmetic on the times it is given (no clock of its own), so it is tested
    with made-up arrival patterns. ``observe()`` each time new audio arrived; ``time()``
    once per frame.
    """

    def __init__(self, window_s: float = 3.0, margin_s: float = 0.005,
                 max_correction: float = 0.1, jump_s: float = 0.5):
        self.window_s = float(window_s)
        self.margin_s = float(margin_s)
        self.max_correction = float(max_correction)  # at most 10 % faster/slower than real time
        self.jump_s = float(jump_s)                  # further off than this: jump
        # (wall time, wall time - stream time, stream seconds this arrival brought)
        self._obs: deque[tuple[float, float, float]] = deque()
        self._off_max = None   # the latest arrival in the window
        self._step_max = 0.0   # the largest burst in the window
        self._latest = None    # newest stream time observed
        self._shown = None     # last value returned by time()
        self._shown_at = None

    def reset(self) -> None:
        self.__init__(self.window_s, self.margin_s, self.max_correction, self.jump_s)

    def observe(self, stream_s: float, now: float) -> None:
        """Audio up to ``stream_s`` seconds of the stream has arrived at wall time ``now``."""
        step = 0.0 if self._latest is None else max(0.0, stream_s - self._latest)
        self._latest = stream_s if self._latest is None else max(self._latest, stream_s)
        off = now - stream_s
        self._obs.append((now, off, step))
        dropped = False
        while len(self._obs) > 1 and self._obs[0][0] < now - self.window_s:
            self._obs.popleft()
            dropped = True
        if dropped or self._off_max is None:
            self._off_max = max(o for _, o, _ in self._obs)
            self._step_max = max(b for _, _, b in self._obs)
        else:
            self._off_max = max(self._off_max, off)
            self._step_max = max(self._step_max, step)

    @property
    def delay_s(self) -> float | None:
        """How far the right edge runs behind the audio received, at most (seconds)."""
        if not self._obs:
            return None
        off_min = min(o for _, o, _ in self._obs)
        return self._off_max - off_min + self._step_max + self.margin_s

    def target(self, now: float) -> float | None:
        """Where the right edge should be at ``now`` (before smoothing)."""
        if self._off_max is None:
            return None
        return now - self._off_max - self._step_max - self.margin_s

    def time(self, now: float) -> float | None:
        """Stream time (seconds) for the right edge at wall time ``now``; None before
        any audio arrived. Never beyond the newest audio, never going backwards."""
        target = self.target(now)
        if target is None:
            return None
        if self._shown is None:
            shown = target
        else:
            dt = max(0.0, now - self._shown_at)
            shown = self._shown + dt
            err = target - shown
            if abs(err) > self.jump_s:
                shown = target
            else:
                lim = self.max_correction * dt
                shown += min(max(err, -lim), lim)
        shown = min(shown, self._latest)
        if self._shown is not None:
            shown = max(shown, self._shown)
        self._shown, self._shown_at = shown, now
        return shown
