"""Training-time augmentation, on the signal and on the spectrogram.

Two families:

* **Signal** functions (1-D float samples in [-1, 1]): :func:`gain`, :func:`time_shift`,
  :func:`add_noise`, :func:`eq_tilt` (band limits plus a spectral tilt, mimicking another
  stethoscope's frequency response) and :func:`device_shift`, the fixed "other device"
  transform the device-shift test applies to held-out recordings.
* **Spectrogram** functions on normalised windows ``(n, frames, bins, 1)`` in [0, 1] as
  :func:`lungapp.inference.features.windows_from_samples` makes them. Gain, EQ tilt and noise
  are exact in the dB domain (a gain is a dB offset, a linear filter a per-bin dB offset,
  added noise a power sum), so training can augment the cached features without
  recomputing spectrograms. Plus SpecAugment time/frequency masks, a circular time roll,
  mixup, and the seed project's image augmentation (rotation 5 deg, zoom 0.1, shifts 0.1).

:class:`Augmenter` applies a policy (a plain dict, stored in the model card's training
options) to each training batch.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from lungapp.dsp.spectrogram import SpectrogramConfig

# ------------------------------------------------------------------------------ signal


def gain(x: np.ndarray, db: float) -> np.ndarray:
    """``x`` scaled by ``db`` decibels (float32)."""
    return (np.asarray(x, dtype=np.float32) * np.float32(10 ** (db / 20))).astype(np.float32)


def time_shift(x: np.ndarray, shift: int) -> np.ndarray:
    """``x`` rolled circularly by ``shift`` samples (breathing is quasi-periodic)."""
    return np.roll(np.asarray(x, dtype=np.float32), int(shift))


def add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``x`` plus white Gaussian noise at signal-to-noise ratio ``snr_db`` (dB)."""
    x = np.asarray(x, dtype=np.float32)
    p = float(np.mean(x.astype(np.float64) ** 2)) or 1e-12
    noise = rng.standard_normal(len(x)) * np.sqrt(p / 10 ** (snr_db / 10))
    return (x + noise).astype(np.float32)


def eq_tilt(x: np.ndarray, rate: int, *, tilt_db_per_octave: float = 0.0, low_hz: float = 0.0,
            high_hz: float | None = None, ref_hz: float = 400.0) -> np.ndarray:
    """Another stethoscope's response: keep ``low_hz..high_hz`` (4th-order-like soft
    edges) and tilt the spectrum by ``tilt_db_per_octave`` around ``ref_hz``. Done in the
    frequency domain (one FFT) so the response is exactly the one described."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n == 0:
        return x.astype(np.float32)
    f = np.fft.rfftfreq(n, 1.0 / rate)
    fsafe = np.maximum(f, 1.0)
    resp = 10 ** (tilt_db_per_octave * np.log2(fsafe / ref_hz) / 20)
    if low_hz > 0:
        resp = resp / np.sqrt(1 + (low_hz / fsafe) ** 8)
    if high_hz is not None and high_hz < rate / 2:
        resp = resp / np.sqrt(1 + (f / high_hz) ** 8)
    return np.fft.irfft(np.fft.rfft(x) * resp, n=n).astype(np.float32)


def device_shift(x: np.ndarray, rate: int, rng: np.random.Generator | None = None, *,
                 snr_db: float = 20.0, tilt_db_per_octave: float = -3.0, low_hz: float = 100.0,
                 high_hz: float = 1500.0) -> np.ndarray:
    """The fixed "different stethoscope" transform of the device-shift test: resample to
    4 kHz and back (nothing above 2 kHz survives), band-limit to ``low_hz..high_hz``,
    tilt by ``tilt_db_per_octave``, add white noise at ``snr_db``. Returns float32 at
    ``rate``."""
    from scipy.signal import resample_poly

    rng = rng if rng is not None else np.random.default_rng(0)
    y = np.asarray(x, dtype=np.float64)
    if rate > 4000:
        g = np.gcd(rate, 4000)
        y = resample_poly(resample_poly(y, 4000 // g, rate // g), rate // g, 4000 // g)[: len(x)]
    y = eq_tilt(y, rate, tilt_db_per_octave=tilt_db_per_octave, low_hz=low_hz, high_hz=high_hz)
    return add_noise(y, snr_db, rng)


# ------------------------------------------------------------------------- spectrogram


def _bin_freqs(cfg: SpectrogramConfig, n_bins: int) -> np.ndarray:
    """Centre frequency of each of ``n_bins`` bins (the config's bins, or resized ones)."""
    f = cfg.frequencies()
    if n_bins == len(f):
        return f
    return np.interp(np.linspace(0, len(f) - 1, n_bins), np.arange(len(f)), f)


def spec_offset_db(X: np.ndarray, offset_db, cfg: SpectrogramConfig) -> np.ndarray:
    """Add ``offset_db`` (a scalar, or per-example ``(n,)``, or per-bin ``(n, bins)``) to
    normalised windows X (n, frames, bins, 1): a gain or a linear filter. Clipped to [0, 1]."""
    off = np.asarray(offset_db, dtype=np.float32) / np.float32(cfg.max_db - cfg.min_db)
    if off.ndim == 1:
        off = off[:, None, None, None]
    elif off.ndim == 2:
        off = off[:, None, :, None]
    return np.clip(X + off, 0.0, 1.0).astype(np.float32)


def tilt_offsets_db(n: int, n_bins: int, cfg: SpectrogramConfig, slopes_db_per_octave,
                    ref_hz: float = 400.0) -> np.ndarray:
    """Per-example, per-bin dB offsets (n, n_bins) of spectral tilts ``slopes`` (n,)."""
    f = np.maximum(_bin_freqs(cfg, n_bins), 20.0)
    return np.asarray(slopes_db_per_octave, dtype=np.float32)[:, None] * np.log2(f / ref_hz)[None, :]


def spec_add_noise(X: np.ndarray, noise_db, cfg: SpectrogramConfig) -> np.ndarray:
    """Add noise of level ``noise_db`` (dB, scalar or per-example (n,)) to every bin, as
    a power sum: exact for noise uncorrelated with the signal."""
    rng_db = cfg.max_db - cfg.min_db
    db = cfg.min_db + X.astype(np.float32) * rng_db
    nd = np.asarray(noise_db, dtype=np.float32)
    if nd.ndim == 1:
        nd = nd[:, None, None, None]
    out = 10 * np.log10(10 ** (db / 10) + 10 ** (nd / 10))
    return np.clip((out - cfg.min_db) / rng_db, 0.0, 1.0).astype(np.float32)


def white_noise_spectrogram(cfg: SpectrogramConfig, seconds: float = 30.0, seed: int = 1234) -> np.ndarray:
    """Linear power spectrogram (frames, bins) of unit-power white noise through the
    engine's own spectrogram: the exact band powers and frame-to-frame fluctuation that
    white noise has in this config's features (mel bands included)."""
    from lungapp.dsp.spectrogram import spectrogram

    x = np.random.default_rng(seed).standard_normal(int(seconds * cfg.rate)) * 0.01
    return (10 ** (spectrogram(x, cfg).astype(np.float64) / 10) / 1e-4).astype(np.float32)


def spec_noise_snr(X: np.ndarray, snr_db, cfg: SpectrogramConfig, noise_power: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """Add white noise at ``snr_db`` (scalar or per example) to normalised windows, with
    real noise texture: a random stretch of ``noise_power`` (from
    :func:`white_noise_spectrogram`) scaled so that the band-summed noise power is
    ``snr_db`` below the window's band-summed power, power-added to every cell. Unlike a
    constant floor (:func:`spec_add_noise`), this leaves the fluctuating noise that
    per-band normalisation turns into texture, as on a noisier stethoscope."""
    n, T, F = X.shape[:3]
    if noise_power.shape[1] != F or len(noise_power) < T:
        raise ValueError(f"windows of {T} x {F} do not match the noise spectrogram {noise_power.shape}")
    rng_db = cfg.max_db - cfg.min_db
    power = 10 ** ((cfg.min_db + X[..., 0].astype(np.float64) * rng_db) / 10)
    sig = power.sum(axis=2).mean(axis=1)  # (n,)
    noise_ref = float(noise_power.sum(axis=1).mean())
    snr = np.broadcast_to(np.asarray(snr_db, dtype=np.float64), (n,))
    starts = rng.integers(0, len(noise_power) - T + 1, size=n)
    out = np.empty_like(X, dtype=np.float32)
    for i in range(n):
        scale = sig[i] / noise_ref / 10 ** (snr[i] / 10)
        db = 10 * np.log10(power[i] + scale * noise_power[starts[i]:starts[i] + T])
        out[i, ..., 0] = np.clip((db - cfg.min_db) / rng_db, 0.0, 1.0)
    return out


def spec_band_limit(X: np.ndarray, high_hz, cfg: SpectrogramConfig) -> np.ndarray:
    """Floor every bin above ``high_hz`` (scalar or per example): what a stethoscope with
    a lower bandwidth (e.g. 4 kHz sampling: nothing above 2 kHz) records there."""
    f = _bin_freqs(cfg, X.shape[2])
    hi = np.broadcast_to(np.asarray(high_hz, dtype=np.float64), (len(X),))
    above = (f[None, :] > hi[:, None])[:, None, :, None]  # (n, 1, bins, 1)
    return np.where(above, np.float32(0.0), X).astype(np.float32)


def time_freq_masks(X: np.ndarray, rng: np.random.Generator, *, time_masks: int = 2,
                    freq_masks: int = 2, max_time_frac: float = 0.1,
                    max_freq_frac: float = 0.12) -> np.ndarray:
    """SpecAugment: per example, ``time_masks`` bands of up to ``max_time_frac`` of the
    frames and ``freq_masks`` bands of up to ``max_freq_frac`` of the bins are set to
    the example's mean value."""
    X = X.copy()
    n, T, F = X.shape[:3]
    means = X.reshape(n, -1).mean(axis=1)
    for i in range(n):
        for _ in range(time_masks):
            w = int(rng.integers(0, max(1, int(T * max_time_frac)) + 1))
            if w:
                t0 = int(rng.integers(0, T - w + 1))
                X[i, t0:t0 + w] = means[i]
        for _ in range(freq_masks):
            w = int(rng.integers(0, max(1, int(F * max_freq_frac)) + 1))
            if w:
                f0 = int(rng.integers(0, F - w + 1))
                X[i, :, f0:f0 + w] = means[i]
    return X


def time_roll(X: np.ndarray, rng: np.random.Generator, max_frac: float = 0.5) -> np.ndarray:
    """Roll each window circularly along time by up to ``max_frac`` of its length."""
    X = X.copy()
    T = X.shape[1]
    for i in range(len(X)):
        X[i] = np.roll(X[i], int(rng.integers(-int(T * max_frac), int(T * max_frac) + 1)), axis=0)
    return X


def mixup(X: np.ndarray, Y: np.ndarray, rng: np.random.Generator, alpha: float = 0.2):
    """mixup (Zhang et al. 2018): convex mixes of pairs of examples and of their one-hot
    (or soft) targets, with weights drawn from Beta(alpha, alpha)."""
    n = len(X)
    lam = rng.beta(alpha, alpha, size=n).astype(np.float32)
    lam = np.maximum(lam, 1 - lam)  # the first example dominates
    perm = rng.permutation(n)
    Xm = lam[:, None, None, None] * X + (1 - lam[:, None, None, None]) * X[perm]
    Ym = lam[:, None] * Y + (1 - lam[:, None]) * Y[perm]
    return Xm.astype(np.float32), Ym.astype(np.float32)


def seed_image_augment(X: np.ndarray, rng: np.random.Generator, *, rotation_deg: float = 5.0,
                       zoom: float = 0.1, shift: float = 0.1) -> np.ndarray:
    """The seed project's image augmentation (Keras ImageDataGenerator with
    rotation_range=5, zoom_range=0.1, width/height_shift_range=0.1, fill 'nearest'),
    one random affine transform per image about its centre."""
    out = np.empty_like(X)
    n, H, W = X.shape[:3]
    c = np.array([(H - 1) / 2, (W - 1) / 2])
    for i in range(n):
        a = np.deg2rad(rng.uniform(-rotation_deg, rotation_deg))
        zh, zw = rng.uniform(1 - zoom, 1 + zoom, size=2)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        mat = rot @ np.diag([zh, zw])
        off = np.array([rng.uniform(-shift, shift) * H, rng.uniform(-shift, shift) * W])
        offset = c - mat @ c + off
        out[i, :, :, 0] = ndimage.affine_transform(X[i, :, :, 0], mat, offset=offset, order=1,
                                                   mode="nearest")
    return out


# ------------------------------------------------------------------------------ policy

# The policy keys and their defaults are recipe data (lungapp.training.recipes).
from lungapp.training.recipes import DEFAULT_POLICY  # noqa: E402


class Augmenter:
    """Apply an augmentation ``policy`` (see :data:`DEFAULT_POLICY`) to training batches.

    ``augmenter(X, Y)`` returns new arrays; the inputs are not modified. With
    ``policy=None`` it is the identity. Randomness comes from ``seed`` only.
    """

    def __init__(self, cfg: SpectrogramConfig, policy: dict | None, seed: int = 0,
                 noise_power: np.ndarray | None = None):
        self.cfg = cfg
        self.policy = None if policy is None else {**DEFAULT_POLICY, **policy}
        unknown = set(policy or {}) - set(DEFAULT_POLICY)
        if unknown:
            raise ValueError(f"unknown augmentation keys: {sorted(unknown)}")
        self.rng = np.random.default_rng(seed)
        # The added noise's texture (linear power, frames x bins): real recordings' when
        # given (lungapp.training.dataset.poor_quality_noise), else white noise's.
        self._noise_power = noise_power

    @staticmethod
    def _on_share(X: np.ndarray, prob: float, value_range, fn, rng: np.random.Generator) -> np.ndarray:
        """``fn(examples, values)`` applied to a random ``prob`` share of the examples, each
        with a value drawn uniformly from ``value_range``."""
        pick = rng.random(len(X)) < prob
        if not pick.any():
            return X
        lo, hi = value_range
        X = X.copy()
        X[pick] = fn(X[pick], rng.uniform(lo, hi, size=int(pick.sum())))
        return X

    def __call__(self, X: np.ndarray, Y: np.ndarray, rng: np.random.Generator | None = None):
        """Augmented copies of the batch ``X`` (n, frames, bins, 1) and its targets ``Y``.
        ``rng``: this batch's random stream (default: the augmenter's own, seeded by
        ``seed``); batches made in parallel each pass their own so the result does not
        depend on which thread runs first."""
        p = self.policy
        if p is None:
            return X, Y
        rng = rng if rng is not None else self.rng
        cfg, n = self.cfg, len(X)
        if p["image"]:
            X = seed_image_augment(X, rng)
        if p["gain_db"] or p["tilt_db_per_octave"]:
            off = np.zeros((n, X.shape[2]), dtype=np.float32)
            if p["gain_db"]:
                off += rng.uniform(-p["gain_db"], p["gain_db"], size=n).astype(np.float32)[:, None]
            if p["tilt_db_per_octave"]:
                s = rng.uniform(-p["tilt_db_per_octave"], p["tilt_db_per_octave"], size=n)
                off += tilt_offsets_db(n, X.shape[2], cfg, s)
            X = spec_offset_db(X, off, cfg)
        if p["noise_prob"]:
            X = self._on_share(X, p["noise_prob"], p["noise_db"],
                               lambda Z, v: spec_add_noise(Z, v, cfg), rng)
        if p["band_limit_prob"]:
            X = self._on_share(X, p["band_limit_prob"], p["band_limit_hz"],
                               lambda Z, v: spec_band_limit(Z, v, cfg), rng)
        if p["snr_prob"]:
            if self._noise_power is None:
                self._noise_power = white_noise_spectrogram(cfg)
            X = self._on_share(X, p["snr_prob"], p["snr_db"],
                               lambda Z, v: spec_noise_snr(Z, v, cfg, self._noise_power, rng), rng)
        if p["roll"]:
            X = time_roll(X, rng, p["roll"])
        if p["time_masks"] or p["freq_masks"]:
            X = time_freq_masks(X, rng, time_masks=int(p["time_masks"]), freq_masks=int(p["freq_masks"]))
        if p["mixup_alpha"]:
            X, Y = mixup(X, Y, rng, float(p["mixup_alpha"]))
        return X.astype(np.float32, copy=False), Y
