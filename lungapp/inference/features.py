"""Model inputs from audio: fixed-length windows of the app's one spectrogram.

A :class:`FeatureConfig` is stored in every model card, so a model file carries the
features it needs; the GUI draws the same :func:`lungapp.dsp.spectrogram` columns.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

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


def spectrogram_windows(spec01: np.ndarray, n_samples: int, fc: FeatureConfig):
    """Cut a normalised spectrogram (n_frames, n_bins) of a signal of ``n_samples``
    samples into model windows. Returns (X float32 (n, *input_shape), starts_s (n,))."""
    cfg = fc.spectrogram
    wf = fc.window_frames
    if spec01.shape[0] < wf:  # short recording: pad with silence (0 = min_db)
        spec01 = np.pad(spec01, ((0, wf - spec01.shape[0]), (0, 0)))
    starts = window_starts(n_samples, fc)
    frame_starts = np.minimum(np.round(starts / cfg.hop_length).astype(np.int64), spec01.shape[0] - wf)
    wins = np.stack([spec01[f: f + wf] for f in frame_starts])
    if fc.resize is not None:
        wins = np.stack([_resize(wn, fc.resize) for wn in wins])
    # Windows start on the spectrogram's frame grid; report those exact times.
    return wins[..., None].astype(np.float32), frame_starts * cfg.hop_length / float(cfg.rate)


def windows_from_samples(samples: np.ndarray, fc: FeatureConfig):
    """Model windows of a mono signal already at ``fc.rate``.

    Returns ``(X, starts_s)``: X float32 of shape (n_windows, *fc.input_shape), values in
    [0, 1]; starts_s float64 (n_windows,) window start times in seconds.
    """
    x = np.asarray(samples, dtype=np.float32)
    n = len(x)
    if n < fc.window_samples:
        x = np.pad(x, (0, fc.window_samples - n))
    spec = normalise(spectrogram(x, fc.spectrogram), fc.spectrogram)
    return spectrogram_windows(spec, n, fc)


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
