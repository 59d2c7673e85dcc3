"""Model inputs from audio: fixed-length windows of the app's one spectrogram.

A :class:`FeatureConfig` is stored in every model card, so a model file carries the
features it needs; the GUI draws the same :func:`lungapp.dsp.spectrogram` columns.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from lungapp.dsp.scratch import scratch
from lungapp.dsp.spectrogram import SpectrogramConfig, normalise, spectrogram


@dataclass(frozen=True)
class FeatureConfig:
    """How a recording becomes model inputs.

    spectrogram: the engine's config (its ``rate`` is the rate the model expects).
    window_s: length of one model input window, in seconds.
    hop_s: step between window starts, in seconds (``hop_s == window_s``: no overlap).
    resize: optional (frames, bins) each window's spectrogram is resized to (bilinear),
        e.g. (64, 64) for the seed project's image CNN; None keeps the native size.
    """

    spectrogram: SpectrogramConfig
    window_s: float = 4.0
    hop_s: float = 1.0
    resize: tuple[int, int] | None = None

    def __post_init__(self):
        if not isinstance(self.spectrogram, SpectrogramConfig):
            raise ValueError("spectrogram must be a SpectrogramConfig")
        if not (self.window_s > 0 and self.hop_s > 0):
            raise ValueError(f"window_s and hop_s must be positive (got {self.window_s}, {self.hop_s})")
        if not all(math.isfinite(v * self.spectrogram.rate) for v in (self.window_s, self.hop_s)):
            # (before any arithmetic on them; the card checks their range after this)
            raise ValueError(f"window_s and hop_s must be finite numbers of seconds "
                             f"(got {self.window_s}, {self.hop_s})")
        if self.window_frames < 1:
            raise ValueError(f"window_s={self.window_s} s is shorter than one spectrogram frame")
        if self.resize is not None:
            r = tuple(self.resize)
            if len(r) != 2 or not all(isinstance(v, int) and v >= 4 for v in r):
                raise ValueError(f"resize must be two integers >= 4, not {self.resize!r}")
            object.__setattr__(self, "resize", r)

    @property
    def rate(self) -> int:
        return self.spectrogram.rate

    @property
    def window_samples(self) -> int:
        return int(round(self.window_s * self.rate))

    @property
    def hop_samples(self) -> int:
        return max(1, int(round(self.hop_s * self.rate)))

    @property
    def window_frames(self) -> int:
        return self.spectrogram.n_frames(int(round(self.window_s * self.spectrogram.rate)))

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(frames, bins, 1): the shape of one model input."""
        if self.resize is not None:
            return (self.resize[0], self.resize[1], 1)
        return (self.window_frames, self.spectrogram.n_bins, 1)

    def to_dict(self) -> dict:
        return {"spectrogram": self.spectrogram.to_dict(), "window_s": self.window_s,
                "hop_s": self.hop_s, "resize": list(self.resize) if self.resize else None}

    @classmethod
    def from_dict(cls, d: dict) -> FeatureConfig:
        if not isinstance(d, dict):
            raise ValueError("features must be an object")
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown feature config keys: {sorted(unknown)}")
        if "spectrogram" not in d:
            raise ValueError("features.spectrogram is missing")
        resize = d.get("resize")
        return cls(spectrogram=SpectrogramConfig.from_dict(d["spectrogram"]),
                   window_s=float(d.get("window_s", 4.0)), hop_s=float(d.get("hop_s", 1.0)),
                   resize=tuple(resize) if resize else None)


def window_starts(n_samples: int, fc: FeatureConfig) -> np.ndarray:
    """Start sample of each window for a signal of ``n_samples`` samples.

    Windows step by ``hop_samples``; a final window is aligned to the end so the tail is
    covered; a signal shorter than one window gives a single window at 0 (padded).
    """
    w, h = fc.window_samples, fc.hop_samples
    if n_samples <= w:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, n_samples - w + 1, h, dtype=np.int64)
    if starts[-1] + w < n_samples:
        starts = np.append(starts, n_samples - w)
    return starts


def _resize(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a 2-D float array (scipy.ndimage.zoom, order 1)."""
    from scipy.ndimage import zoom

    factors = (shape[0] / img.shape[0], shape[1] / img.shape[1])
    out = zoom(img, factors, order=1, mode="nearest", grid_mode=True)
    return out[: shape[0], : shape[1]]


def frame_starts(starts: np.ndarray, n_frames: int, fc: FeatureConfig) -> np.ndarray:
    """The first spectrogram frame of each window starting at sample ``starts`` of a
    spectrogram with ``n_frames`` frames (the nearest frame; the last windows are moved
    back to fit)."""
    return np.minimum(np.round(starts / fc.spectrogram.hop_length).astype(np.int64),
                      n_frames - fc.window_frames)


def cut_windows(spec01: np.ndarray, first_frames: np.ndarray, fc: FeatureConfig,
                scratch_key: str | None = None) -> np.ndarray:
    """Windows of ``fc.window_frames`` frames of a normalised spectrogram (n_frames,
    n_bins) starting at rows ``first_frames``, resized when ``fc.resize`` asks ->
    float32 (n, *fc.input_shape).

    ``scratch_key``: write them into this thread's scratch array of that name
    (:mod:`lungapp.dsp.scratch`), valid until the thread cuts windows under that key
    again, instead of a new array: a 15-s recording's windows are 3 MB, and fresh memory
    of that size cost the prediction about 800 page faults (2.5 ms here)."""
    wf = fc.window_frames
    if fc.resize is not None:
        wins = np.stack([_resize(spec01[f: f + wf], fc.resize) for f in first_frames])
        return wins[..., None].astype(np.float32)
    shape = (len(first_frames), *fc.input_shape)
    out = (np.empty(shape, dtype=np.float32) if scratch_key is None
           else scratch(scratch_key, shape[0], shape[1:], np.float32))
    for i, f in enumerate(first_frames):
        out[i, :, :, 0] = spec01[f: f + wf]
    return out


def spectrogram_windows(spec01: np.ndarray, n_samples: int, fc: FeatureConfig,
                        scratch_key: str | None = None):
    """Cut a normalised spectrogram (n_frames, n_bins) of a signal of ``n_samples``
    samples into model windows. Returns (X float32 (n, *input_shape), starts_s (n,));
    ``scratch_key``: as :func:`cut_windows`."""
    cfg = fc.spectrogram
    wf = fc.window_frames
    if spec01.shape[0] < wf:  # short recording: pad with silence (0 = min_db)
        spec01 = np.pad(spec01, ((0, wf - spec01.shape[0]), (0, 0)))
    first = frame_starts(window_starts(n_samples, fc), spec01.shape[0], fc)
    # Windows start on the spectrogram's frame grid; report those exact times.
    return cut_windows(spec01, first, fc, scratch_key), first * cfg.hop_length / float(cfg.rate)


def windows_from_samples(samples: np.ndarray, fc: FeatureConfig, scratch_key: str | None = None):
    """Model windows of a mono signal already at ``fc.rate``.

    Returns ``(X, starts_s)``: X float32 of shape (n_windows, *fc.input_shape), values in
    [0, 1]; starts_s float64 (n_windows,) window start times in seconds.
    ``scratch_key``: as :func:`cut_windows`.
    """
    x = np.asarray(samples, dtype=np.float32)
    n = len(x)
    if n < fc.window_samples:
        x = np.pad(x, (0, fc.window_samples - n))
    spec = normalise(spectrogram(x, fc.spectrogram), fc.spectrogram)
    return spectrogram_windows(spec, n, fc, scratch_key)


def member_windows(x: np.ndarray, fcs: list[FeatureConfig],
                   scratch_key: str | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(X, starts_s) for each of ``fcs`` (an ensemble's member groups, one spectrogram
    config) of a whole mono signal at their rate; one spectrogram serves every group when
    the signal is at least as long as each group's window. ``scratch_key``: group g's
    windows go to the scratch array ``f"{scratch_key}.{g}"`` (:func:`cut_windows`)."""
    keys = [None if scratch_key is None else f"{scratch_key}.{g}" for g in range(len(fcs))]
    if len(fcs) == 1 or len(x) < max(fc.window_samples for fc in fcs):
        return [windows_from_samples(x, fc, key) for fc, key in zip(fcs, keys)]
    cfg = fcs[0].spectrogram
    spec = normalise(spectrogram(np.asarray(x, dtype=np.float32), cfg), cfg)
    return [spectrogram_windows(spec, len(x), fc, key) for fc, key in zip(fcs, keys)]


class WindowStream:
    """Model windows of a signal that arrives in blocks, without holding the signal.

    ``push(block)`` takes mono float32 samples at the groups' rate and returns the windows
    completed so far as ``(group, X, starts_s)`` batches; ``finish()`` returns the rest.
    Together they are :func:`member_windows` of the whole signal, window for window (a
    signal shorter than ``chunk_s`` plus one window is cut by :func:`member_windows`
    itself). Only about ``chunk_s`` seconds of signal and its spectrogram are held:
    spectrogram frames depend only on their own samples, so a chunk starting on the frame
    grid gives the whole signal's frames.

    ``reuse=True``: the windows are written into this thread's scratch arrays
    (:func:`cut_windows`), each batch valid until the next ``push``/``finish`` call (for a
    caller that reads them at once, as the predictor does).
    """

    def __init__(self, fcs: list[FeatureConfig], chunk_s: float = 60.0, reuse: bool = False):
        self.fcs = list(fcs)
        self._key = "stream_windows" if reuse else None
        self.cfg = self.fcs[0].spectrogram
        hop = self.cfg.hop_length
        self._chunk = max(1, int(chunk_s * self.cfg.rate) // hop) * hop
        self._span = self._chunk + max(fc.window_samples for fc in self.fcs)
        self._pending: list[np.ndarray] = []
        self._n_pending = 0
        self._buf = np.zeros(0, dtype=np.float32)
        self._off = 0                      # sample index of _buf[0], on the frame grid
        self._next = [0] * len(self.fcs)   # next regular window of each group
        self.n_samples = 0

    def push(self, block) -> list[tuple[int, np.ndarray, np.ndarray]]:
        block = np.asarray(block, dtype=np.float32)
        self._pending.append(block)
        self._n_pending += len(block)
        self.n_samples += len(block)
        if len(self._buf) + self._n_pending < self._span:
            return []
        self._take_pending()
        return self._step()

    def _take_pending(self) -> None:
        self._buf = np.concatenate([self._buf, *self._pending])
        self._pending, self._n_pending = [], 0

    def _spec(self) -> np.ndarray:
        return normalise(spectrogram(self._buf, self.cfg), self.cfg)

    def _step(self) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """Cut every regular window (``window_starts``' steps) whose samples and frames
        have all arrived, then drop the samples no later window needs."""
        spec, f0, hop = self._spec(), self._off // self.cfg.hop_length, self.cfg.hop_length
        out = []
        for g, fc in enumerate(self.fcs):
            k_max = (self.n_samples - fc.window_samples) // fc.hop_samples + 1
            starts = np.arange(self._next[g], max(k_max, self._next[g]), dtype=np.int64) * fc.hop_samples
            first = np.round(starts / hop).astype(np.int64)
            first = first[first + fc.window_frames <= f0 + len(spec)]
            if len(first):
                out.append((g, cut_windows(spec, first - f0, fc, self._scratch(g)),
                            first * hop / float(self.cfg.rate)))
                self._next[g] += len(first)
        # Later windows start at or after each group's last cut one (the end-aligned one too).
        last = [np.round(max(k - 1, 0) * fc.hop_samples / hop) for k, fc in zip(self._next, self.fcs)]
        keep = int(min(last)) * hop
        self._buf = self._buf[keep - self._off:]
        self._off = keep
        return out

    def _scratch(self, group: int) -> str | None:
        return None if self._key is None else f"{self._key}.{group}"

    def finish(self) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """The windows not yet returned, the end-aligned ones included."""
        self._take_pending()
        if self._off == 0 and not any(self._next):
            return [(g, X, s) for g, (X, s) in enumerate(member_windows(self._buf, self.fcs, self._key))]
        spec, f0, hop = self._spec(), self._off // self.cfg.hop_length, self.cfg.hop_length
        n_frames = self.cfg.n_frames(self.n_samples)
        out = []
        for g, fc in enumerate(self.fcs):
            rest = window_starts(self.n_samples, fc)[self._next[g]:]
            if len(rest):
                first = frame_starts(rest, n_frames, fc)
                out.append((g, cut_windows(spec, first - f0, fc, self._scratch(g)),
                            first * hop / float(self.cfg.rate)))
        return out


def image_features(path, fc: FeatureConfig) -> np.ndarray:
    """A seed-layout spectrogram image as one model input (1, H, W, 1) in [0, 1].

    The image is read as greyscale and resized to ``fc.resize`` (required). Rows of the
    image are frequency (top = high) and columns time, as the seed project saved them;
    they are transposed to the app's (time, frequency) order.
    """
    from PIL import Image, UnidentifiedImageError

    from lungapp.errors import DatasetError

    if fc.resize is None:
        raise ValueError("image features need a FeatureConfig with resize set")
    try:
        with Image.open(path) as im:
            g = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DatasetError(f"cannot read image ({exc})", path) from None
    img = np.flipud(g).T  # (time, frequency) with low frequencies first
    return _resize(img, fc.resize)[None, ..., None].astype(np.float32)
