"""Recording-quality gate: is a recording fit to be judged by the model?

A recording that is too short, too quiet, clipped or too noisy is reported as
"poor quality, please record again" instead of being given a diagnosis.
:func:`assess` measures a few cheap signal features (two FFT passes over 32-ms frames, a
few ms for a 15-s recording at 8 kHz) and applies the rules below in order; the first rule
that fires gives the reason a doctor reads.

1. ``too short``  : duration below ``min_duration_s``.
2. ``too quiet``  : RMS level below ``min_rms_dbfs`` (silence, stethoscope off the chest,
   muted input).
3. ``clipped``    : more than ``max_clip_fraction`` of the samples at (or within 0.1 % of)
   full scale, or the waveform held flat at its extreme (peak >= 0.5) for
   ``min_clip_run_ms`` or longer.
4. ``too noisy``  : the mean spectral flatness exceeds ``max_flatness`` (broadband noise:
   a stethoscope on the chest never gives a flat spectrum), or the noise score, a
   logistic model of the noise features (see ``NOISE_FEATURES``), reaches
   ``noise_threshold``.

How the defaults were chosen (measured on SPRSound train, 1949 recordings of 251 children;
``Poor Quality`` (177 recordings) against the rest; script ``benchmarks/quality_gate.py``):

* ``min_duration_s = 3.0``: the model reads 2-s windows and needs at least one full
  breath cycle (a child breathes 20-40 times a minute).
* ``min_rms_dbfs = -75``: far below the quietest usable recording in train (the quietest
  non-poor recording has an RMS of -67.6 dBFS); it catches silence and a muted or
  unplugged device, and nothing in train.
* ``max_clip_fraction = 0.001`` / ``min_clip_run_ms = 2``: clipping is rare in train; these
  flag a recording more than 0.1 % of which sits at full scale, or whose waveform was held
  flat at its extreme for 2 ms (a 10-Hz sine stays within 0.1 % of its peak for only 1.4 ms).
* ``max_flatness = 0.05``: the flattest recording in train (Poor Quality included) has a
  mean flatness of 0.005; white noise has about 0.56. The logistic model alone cannot be
  trusted that far outside the range it was fitted on, so this rule covers it.
* Noise model and ``noise_threshold``: logistic regression (scikit-learn, C=1, balanced
  class weights) on the standardised features in ``NOISE_FEATURES``, fitted on all of
  train after patient-grouped 4-fold cross-validation (StratifiedGroupKFold, seed 0)
  measured its out-of-fold separation. Standardised features are clipped to +-4 (in fitting
  and in use) so one extreme feature cannot dominate the score. The threshold is the out-of-fold score at which
  90 % of the acceptable recordings pass (specificity 0.90): rejecting a good recording
  costs the doctor a repeat, so the gate errs towards letting recordings through.
  Measured out-of-fold (``GATE_CV`` below): noise-score AUC 0.84; the whole gate flags
  53 % of the Poor Quality recordings and passes 90 % of the others (Normal 88.6 %,
  CAS 91.3 %, DAS 94.4 %, CAS & DAS 94.7 % passed). Poor Quality in SPRSound is often
  subtle (crying, talking, rubbing in part of the recording), so many such recordings
  look like ordinary ones to signal statistics.

The noise features describe what poor quality looks like in SPRSound: crying, talking
and friction add energy above 1 kHz (where breath sounds at the chest wall have little),
broadband noise raises the spectral flatness, and knocks and movement give bursts of
frame energy far above the recording's median.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

NOISE_FEATURES = (
    "hf_ratio_db",        # energy 1-4 kHz relative to the total, dB
    "hf_ratio_p90_db",    # 90th percentile over frames of the same ratio, dB
    "flatness",           # mean spectral flatness of frames (0 tonal .. 1 white noise)
    "flatness_p90",       # 90th percentile over frames
    "energy_range_db",    # 95th - 5th percentile of frame energy, dB
    "energy_floor_db",    # median - 5th percentile of frame energy, dB
    "burst_fraction",     # frames more than 20 dB above the median frame energy
    "lf_ratio_db",        # energy below 100 Hz relative to the total, dB
    "jump_p99_db",        # 99th percentile of frame-to-frame energy change, dB
    "rms_dbfs",           # overall level, dB re full scale
    "centroid_median_hz", # median spectral centroid of frames
    "centroid_p90_hz",    # 90th percentile of the spectral centroid
    "mid_ratio_p90_db",   # 90th percentile over frames of the 300-1000 Hz energy share, dB
    "harmonicity_p90",    # 90th percentile of the cepstral peak at 150-700 Hz pitch (voice, crying)
    "breath_regularity",  # peak autocorrelation of the frame energy at 1.2-6 s lags (breathing rhythm)
)

Z_CLIP = 4.0
"""Standardised noise features are clipped to +-Z_CLIP before the logistic model."""

DEFAULT_PARAMS: dict = {
    "min_duration_s": 3.0,
    "min_rms_dbfs": -75.0,
    "max_clip_fraction": 0.001,
    "min_clip_run_ms": 2.0,
    "max_flatness": 0.05,
    # Logistic noise model: score = sigmoid(bias + sum(coef * clip((feature - mean) / scale))).
    # Fitted by benchmarks/quality_gate.py on SPRSound train (see the module docstring).
    "noise_mean": {
        "hf_ratio_db": -53.752079,
        "hf_ratio_p90_db": -38.552805,
        "flatness": 0.000267,
        "flatness_p90": 0.000606,
        "energy_range_db": 21.280385,
        "energy_floor_db": 8.1272,
        "burst_fraction": 0.018665,
        "lf_ratio_db": -8.1948,
        "jump_p99_db": 17.143366,
        "rms_dbfs": -43.609643,
        "centroid_median_hz": 145.895509,
        "centroid_p90_hz": 208.577439,
        "mid_ratio_p90_db": -8.054731,
        "harmonicity_p90": 0.268423,
        "breath_regularity": 0.174188,
    },
    "noise_scale": {
        "hf_ratio_db": 5.550477,
        "hf_ratio_p90_db": 3.316358,
        "flatness": 0.000337,
        "flatness_p90": 0.000754,
        "energy_range_db": 5.270975,
        "energy_floor_db": 2.043067,
        "burst_fraction": 0.023942,
        "lf_ratio_db": 2.725262,
        "jump_p99_db": 3.197359,
        "rms_dbfs": 5.312843,
        "centroid_median_hz": 20.696061,
        "centroid_p90_hz": 35.599234,
        "mid_ratio_p90_db": 2.703185,
        "harmonicity_p90": 0.014477,
        "breath_regularity": 0.080822,
    },
    "noise_coef": {
        "hf_ratio_db": 1.054628,
        "hf_ratio_p90_db": 0.037551,
        "flatness": -0.429931,
        "flatness_p90": 1.082043,
        "energy_range_db": 1.136563,
        "energy_floor_db": -0.639189,
        "burst_fraction": 0.037062,
        "lf_ratio_db": 0.231815,
        "jump_p99_db": 0.036992,
        "rms_dbfs": 0.14353,
        "centroid_median_hz": 0.528376,
        "centroid_p90_hz": -0.798645,
        "mid_ratio_p90_db": -0.296709,
        "harmonicity_p90": 0.390478,
        "breath_regularity": -0.886084,
    },
    "noise_bias": -0.897581,
    "noise_threshold": 0.67,
}

GATE_CV: dict = {"auc": 0.84, "sensitivity": 0.531, "specificity": 0.9, "n_poor": 177, "n_other": 1772,
                 "full_fit_auc_on_train": 0.861}
"""Out-of-fold separation of the default gate on SPRSound train, as printed by
``python benchmarks/quality_gate.py`` (Poor Quality = positive; sensitivity = share of Poor
Quality recordings flagged, specificity = share of the others passed)."""


@dataclass(frozen=True)
class QualityVerdict:
    """The gate's answer: ``ok`` or not, the reason in plain words, and what it measured."""

    ok: bool
    reason: str
    metrics: dict = field(default_factory=dict)


def _frames(x: np.ndarray, rate: int):
    """Hann-windowed power spectra of ~32-ms frames with 50 % overlap."""
    n_fft = 1 << max(5, int(math.ceil(math.log2(max(1.0, 0.032 * rate)))))
    hop = n_fft // 2
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    n_frames = 1 + (len(x) - n_fft) // hop
    strided = np.lib.stride_tricks.as_strided(
        x, shape=(n_frames, n_fft), strides=(x.strides[0] * hop, x.strides[0]), writeable=False)
    spec = np.abs(np.fft.rfft(strided * np.hanning(n_fft), axis=1)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)
    return spec, freqs, hop


@functools.lru_cache(maxsize=8)
def _cepstrum_basis(n_bins: int, rate: int, q_lo: float, q_hi: float) -> np.ndarray:
    n = 2 * (n_bins - 1)
    q = np.arange(n)
    q = q[(q / rate >= q_lo) & (q / rate <= q_hi)]
    k = np.arange(n_bins)[:, None]
    basis = 2.0 * np.cos(2.0 * np.pi * k * q[None, :] / n)
    basis[0] = 1.0
    basis[-1] = np.cos(np.pi * q)  # the Nyquist bin: (-1) ** q
    return basis / n


def cepstrum_band(log_spec: np.ndarray, rate: int, q_lo: float, q_hi: float) -> np.ndarray:
    """The real cepstrum ``np.fft.irfft(log_spec, axis=1)`` at the quefrencies in
    [q_lo, q_hi] seconds only, as one matrix product. Equal to the FFT's values; much
    faster here, where the spectra have 128 bins (an irfft of length 254 = 2 x 127)."""
    n_bins = log_spec.shape[1]
    if n_bins < 2:
        return np.zeros((len(log_spec), 0))
    return log_spec @ _cepstrum_basis(n_bins, int(rate), float(q_lo), float(q_hi))


def _db(v) -> float:
    return float(10.0 * np.log10(max(float(v), 1e-12)))


def measure(samples: np.ndarray, rate: int) -> dict:
    """The gate's signal features of a mono recording (floats, NaN-free)."""
    x = np.asarray(samples, dtype=np.float64).ravel()
    if not np.all(np.isfinite(x)):
        x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
    m: dict = {"duration_s": len(x) / float(rate)}
    if len(x) == 0:
        x = np.zeros(1)
    m.update(_level_features(x, rate))
    spec, freqs, hop = _frames(x - x.mean(), rate)
    m.update(_spectral_features(spec[:, 1:], freqs[1:], rate))  # DC dropped
    m["breath_regularity"] = _breath_regularity(_frame_energy_db(spec[:, 1:]), hop / rate)
    for k, v in m.items():
        if isinstance(v, float) and not math.isfinite(v):
            m[k] = 0.0
    return m


def _level_features(x: np.ndarray, rate: int) -> dict:
    """Level and clipping: RMS (dBFS), peak, the share of clipped samples and the longest
    run of samples at the recording's extreme (a flattened top), in ms."""
    peak = float(np.max(np.abs(x)))
    run = 0
    if peak >= 0.5:
        at = np.abs(x) >= peak * 0.999
        if at.any():
            d = np.diff(np.concatenate(([0], at.astype(np.int8), [0])))
            run = int((np.flatnonzero(d == -1) - np.flatnonzero(d == 1)).max())
    return {"rms_dbfs": _db(float(np.mean(x * x))), "peak": peak,
            "clip_fraction": float(np.mean(np.abs(x) >= 0.999)),
            "clip_run_ms": 1000.0 * run / rate}


def _frame_energy_db(spec: np.ndarray) -> np.ndarray:
    return 10.0 * np.log10(spec.sum(axis=1) + 1e-20)


def _spectral_features(spec: np.ndarray, freqs: np.ndarray, rate: int) -> dict:
    """Band ratios, flatness, energy spread, centroid and harmonicity of the frames
    ``spec`` (frames x bins, power, DC dropped) at bin frequencies ``freqs`` (Hz)."""
    eps = 1e-20
    tot_f = spec.sum(axis=1) + eps
    e_db = 10.0 * np.log10(tot_f)
    tot = float(tot_f.sum())
    m: dict = {}

    def band_db_p90(band):
        return float(np.percentile(10 * np.log10(spec[:, band].sum(axis=1) / tot_f + 1e-10), 90))

    hf = (freqs >= 1000) & (freqs < 4000)
    lf = freqs < 100
    m["hf_ratio_db"] = _db(spec[:, hf].sum() / tot) if hf.any() else -100.0
    m["hf_ratio_p90_db"] = band_db_p90(hf) if hf.any() else -100.0
    m["lf_ratio_db"] = _db(spec[:, lf].sum() / tot) if lf.any() else -100.0
    flat = np.exp(np.mean(np.log(spec + eps), axis=1)) / (np.mean(spec, axis=1) + eps)
    flat[tot_f < 1e-12] = 0.0
    m["flatness"] = float(np.mean(flat))
    m["flatness_p90"] = float(np.percentile(flat, 90))
    p5, p50, p95 = np.percentile(e_db, [5, 50, 95])
    m["energy_range_db"] = float(p95 - p5)
    m["energy_floor_db"] = float(p50 - p5)
    m["burst_fraction"] = float(np.mean(e_db > p50 + 20.0))
    m["jump_p99_db"] = float(np.percentile(np.abs(np.diff(e_db)), 99)) if len(e_db) > 1 else 0.0
    centroid = (spec * freqs).sum(axis=1) / tot_f
    m["centroid_median_hz"] = float(np.median(centroid))
    m["centroid_p90_hz"] = float(np.percentile(centroid, 90))
    m["mid_ratio_p90_db"] = band_db_p90((freqs >= 300) & (freqs < 1000))
    ceps = cepstrum_band(np.log(spec + 1e-12), rate, 1 / 700, 1 / 150)
    m["harmonicity_p90"] = float(np.percentile(ceps.max(axis=1), 90)) if ceps.shape[1] else 0.0
    return m


def _breath_regularity(e_db: np.ndarray, frame_s: float) -> float:
    """Peak autocorrelation of the frame energy envelope at breathing periods (1.2-6 s),
    relative to lag 0: near 1 for regular breathing, near 0 for none."""
    env = e_db - e_db.mean()
    lo, hi = int(1.2 / frame_s), min(int(6.0 / frame_s), len(env) - 1)
    if hi <= lo or float(env @ env) <= 0:
        return 0.0
    spec_env = np.fft.rfft(env, 2 * len(env))
    ac = np.fft.irfft(spec_env * np.conj(spec_env))[: len(env)]
    return float(ac[lo:hi].max() / ac[0])


def noise_score(metrics: dict, params: dict | None = None) -> float:
    """Probability-like score in [0, 1] that the recording is too noisy to judge."""
    p = DEFAULT_PARAMS if params is None else {**DEFAULT_PARAMS, **params}
    coef = p["noise_coef"]
    if not coef:
        return 0.0
    z = float(p["noise_bias"])
    for name, c in coef.items():
        scale = p["noise_scale"].get(name, 1.0) or 1.0
        z += c * min(Z_CLIP, max(-Z_CLIP, (metrics[name] - p["noise_mean"].get(name, 0.0)) / scale))
    return float(1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z)))))


def assess(samples: np.ndarray, rate: int, params: dict | None = None) -> QualityVerdict:
    """Judge whether a recording is fit for the model.

    samples: mono audio (any float or integer dtype; floats are read as full scale +-1).
    rate: its sample rate in Hz. params: overrides of :data:`DEFAULT_PARAMS`.
    """
    p = DEFAULT_PARAMS if params is None else {**DEFAULT_PARAMS, **params}
    x = np.asarray(samples)
    if np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float64) / float(np.iinfo(x.dtype).max)
    if x.ndim > 1:
        x = x.mean(axis=tuple(range(1, x.ndim))) if x.shape[0] >= x.shape[-1] else x.mean(axis=0)
    rate = int(rate)
    if rate <= 0:
        raise ValueError(f"rate must be positive, not {rate}")
    m = measure(x, rate)
    m["noise_score"] = noise_score(m, p)
    dur = m["duration_s"]
    if dur < p["min_duration_s"]:
        return QualityVerdict(False, f"too short ({dur:.1f} s; at least {p['min_duration_s']:g} s needed)", m)
    if m["rms_dbfs"] < p["min_rms_dbfs"]:
        return QualityVerdict(False, "too quiet", m)
    if m["clip_fraction"] > p["max_clip_fraction"] or m["clip_run_ms"] >= p["min_clip_run_ms"]:
        return QualityVerdict(False, "clipped", m)
    if m["flatness"] > p["max_flatness"] or m["noise_score"] >= p["noise_threshold"]:
        return QualityVerdict(False, "too noisy", m)
    return QualityVerdict(True, "good quality", m)
