"""Recording-quality check: can a recording be judged by the model, and where is it noisy?

The check stands between a doctor and a result only when a recording cannot be judged.
:func:`assess` measures a few cheap signal features (FFTs of 32-ms frames; a few ms for a
15-s recording at 8 kHz) and gives one of three verdicts:

* **refuse** ("poor quality, please record again"; ``ok`` is False), in this order:
  1. ``too short``: duration below ``min_duration_s``;
  2. ``no signal``: the level, DC removed, below ``min_rms_dbfs`` (silence, a muted or
     unplugged input);
  3. ``heavily clipped``: more than ``refuse_clip_fraction`` of the samples at the clip level
     (full scale, or a loud recording's own flattened peak);
  4. ``no breathing found``: the frame energy varies by less than ``min_energy_range_db``
     between its 5th and 95th percentiles: a steady sound (hum, hiss, an unplugged cable,
     the stethoscope in the air) with no breath cycles in it.
* **warn** (the model's result is given, with "noisy recording: interpret with care"):
  clipping in places (more than ``warn_clip_fraction`` of the samples, or the waveform held
  flat at its extreme for ``min_clip_run_ms``), broadband noise (mean spectral flatness
  above ``max_flatness``), or noisy stretches. The verdict names the noisy time ranges:
  runs of frames that are noise-like (flatness above ``frame_flatness``) or clipped.
* **good** otherwise.

The refusal rules are deliberately blunt: they were checked to refuse almost no recording
that experts labelled (SPRSound intra_test, the ICBHI devices, noisy, band-limited and
device-shifted copies; ``benchmarks/quality_transfer.py``), while every unusable kind made
for real in the tests is refused.

Why these numbers:

* ``min_duration_s = 3``: the model reads 2-s windows and needs a breath cycle (a child
  breathes 20-40 times a minute).
* ``min_rms_dbfs = -75``: below the quietest recording of any collection checked (SPRSound
  -68 dBFS, ICBHI -46 dBFS); it catches silence and a muted or unplugged input.
* ``refuse_clip_fraction = 0.3``: real recordings clip: up to 19 % of the samples of ICBHI's
  Meditron recordings sit at full scale, and experts still labelled them. Clipping warns;
  only a recording a third of which is flattened is refused.
* ``min_energy_range_db = 3``: breathing modulates the frame energy by 7-55 dB in every
  labelled recording checked, and still by 2-21 dB under white noise at 10 dB SNR; a steady
  hum or hiss varies by less than 1 dB.
* ``max_flatness = 0.05`` warns: the flattest SPRSound recording (Poor Quality included) has
  a mean flatness of 0.005; white noise has about 0.56.
* A logistic "noise score" of the features in ``NOISE_FEATURES``, fitted on SPRSound's Poor
  Quality recordings, used to refuse recordings (out of fold on SPRSound train it flagged
  53 % of Poor Quality and passed 90 % of the others). It did not transfer: it refused 15 %
  of SPRSound intra_test's usable recordings and 69-100 % of ICBHI's, per device, so it was
  dropped. SPRSound's Poor Quality is mostly subtle (crying, talking, rubbing in part of a
  recording) and is now seldom refused or warned about; the features stay in the metrics.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from lungapp.dsp.scratch import scratch

DEFAULT_PARAMS: dict = {
    # refuse
    "min_duration_s": 3.0,
    "min_rms_dbfs": -75.0,
    "refuse_clip_fraction": 0.3,
    "min_energy_range_db": 3.0,
    # warn
    "warn_clip_fraction": 0.001,
    "min_clip_run_ms": 2.0,
    "max_flatness": 0.05,
    # noisy time ranges: noise-like or clipped frames, joined across short gaps
    "frame_flatness": 0.3,
    "join_gap_s": 0.25,
    "min_range_s": 0.1,
}

GOOD, WARN, REFUSE = "good", "warn", "refuse"
NOISY_WARNING = "noisy recording: interpret with care"


@dataclass(frozen=True)
class QualityVerdict:
    """The check's answer.

    ``level``: "good", "warn" (the result is given, with a warning) or "refuse" (the
    recording cannot be judged). ``ok`` is False only for "refuse". ``reason``: what a
    doctor reads. ``noisy_ranges``: (start_s, end_s) of the noisy or clipped stretches.
    ``metrics``: what was measured. ``spectrum``: the mean power spectrum of the frames
    outside the noisy ranges (bin ``i`` at ``i * spectrum_bin_hz`` Hz, DC zeroed), which
    the input-profile check (:mod:`lungapp.inference.profile`) reads; it is not part of
    :meth:`to_dict`."""

    ok: bool
    reason: str
    metrics: dict = field(default_factory=dict)
    level: str = GOOD
    noisy_ranges: tuple[tuple[float, float], ...] = ()
    spectrum: tuple[float, ...] = field(default=(), repr=False, compare=False)
    spectrum_bin_hz: float = 0.0

    def to_dict(self) -> dict:
        return {"ok": self.ok, "level": self.level, "reason": self.reason,
                "noisy_ranges": [[round(a, 3), round(b, 3)] for a, b in self.noisy_ranges],
                "metrics": {k: (round(float(v), 6) if isinstance(v, float) else v)
                            for k, v in self.metrics.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> QualityVerdict:
        """The verdict again from :meth:`to_dict` (a stored result's; no spectrum)."""
        return cls(ok=bool(d.get("ok", True)), reason=str(d.get("reason", "")),
                   metrics=dict(d.get("metrics") or {}), level=str(d.get("level", GOOD)),
                   noisy_ranges=tuple((float(a), float(b)) for a, b in d.get("noisy_ranges") or ()))


#: Frames analysed at a time, in per-thread scratch arrays (lungapp.dsp.scratch): a whole
#: recording's frame spectra would take about 60 times the signal's memory, allocated afresh
#: (and page-faulted in) on every call.
_CHUNK_FRAMES = 256


@dataclass(frozen=True)
class _FrameStats:
    """What the check needs of the Hann-windowed power spectra of ~32-ms frames with 50 %
    overlap, DC dropped: each frame's total power and mean log power, the hop, and the
    frames' mean power spectrum (DC zeroed) with its bin spacing."""

    power: np.ndarray     # (n_frames,) sum of the frame's power over its bins
    log_mean: np.ndarray  # (n_frames,) mean over its bins of log(power + 1e-20)
    n_bins: int
    hop: int
    mean_spectrum: np.ndarray  # (n_fft // 2 + 1,)
    bin_hz: float

    @property
    def energy_db(self) -> np.ndarray:
        return 10.0 * np.log10(self.power + 1e-20)

    def flatness(self) -> np.ndarray:
        """Spectral flatness of each frame: 0 for a pure tone, about 0.56 for white noise."""
        return np.exp(self.log_mean) / (self.power / self.n_bins + 1e-20)


def _frame_stats(x: np.ndarray, rate: int) -> _FrameStats:
    """:class:`_FrameStats` of a mono signal (float64), computed a chunk of frames at a
    time (each frame's figures are those of the whole signal's spectra)."""
    n_fft = 1 << max(5, int(math.ceil(math.log2(max(1.0, 0.032 * rate)))))
    hop = n_fft // 2
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    n_frames = 1 + (len(x) - n_fft) // hop
    strided = np.lib.stride_tricks.as_strided(
        x, shape=(n_frames, n_fft), strides=(x.strides[0] * hop, x.strides[0]), writeable=False)
    win = np.hanning(n_fft)
    power, log_mean = np.empty(n_frames), np.empty(n_frames)
    rows = min(n_frames, _CHUNK_FRAMES)
    frames = scratch("quality.frames", rows, (n_fft,), np.float64)
    spec = scratch("quality.spectra", rows, (n_fft // 2 + 1,), np.complex128)
    pw = scratch("quality.power", rows, (n_fft // 2 + 1,), np.float64)
    logs = scratch("quality.log", rows, (n_fft // 2,), np.float64)
    total = np.zeros(n_fft // 2 + 1)
    for a in range(0, n_frames, rows):
        b = min(n_frames, a + rows)
        k = b - a
        np.fft.rfft(np.multiply(strided[a:b], win, out=frames[:k]), axis=1, out=spec[:k])
        p = np.square(np.abs(spec[:k], out=pw[:k]), out=pw[:k])[:, 1:]  # DC dropped
        np.sum(p, axis=1, out=power[a:b])
        total[1:] += p.sum(axis=0)
        np.mean(np.log(np.add(p, 1e-20, out=logs[:k]), out=logs[:k]), axis=1, out=log_mean[a:b])
    return _FrameStats(power, log_mean, n_fft // 2, hop, total / n_frames, rate / n_fft)


def _db(v) -> float:
    return float(10.0 * np.log10(max(float(v), 1e-12)))


def measure(samples: np.ndarray, rate: int) -> dict:
    """The check's signal features of a mono recording (floats, NaN-free)."""
    return _analyse(samples, rate, DEFAULT_PARAMS)[0]


def mean_spectrum(samples: np.ndarray, rate: int) -> tuple[np.ndarray, float]:
    """(mean power spectrum of the check's frames outside its noisy stretches, bin spacing
    in Hz) of a mono recording: what :attr:`QualityVerdict.spectrum` holds (training
    measures its recordings' with it, with the default parameters)."""
    _, _, stats = _analyse(samples, int(rate), DEFAULT_PARAMS)
    return stats.mean_spectrum, stats.bin_hz


#: The noisy stretches are left out of the mean spectrum only when they leave at least this
#: much of the recording (seconds); otherwise every frame counts.
CLEAN_SPECTRUM_MIN_S = 1.0


def _power_sum(x: np.ndarray, n_fft: int, hop: int, frames: np.ndarray) -> np.ndarray:
    """The sum of the Hann-windowed power spectra (DC zeroed) of the frames numbered
    ``frames`` of ``x``, as :func:`_frame_stats` computes them, a chunk at a time."""
    total = np.zeros(n_fft // 2 + 1)
    win = np.hanning(n_fft)
    offsets = np.arange(n_fft)
    for a in range(0, len(frames), _CHUNK_FRAMES):
        seg = x[frames[a:a + _CHUNK_FRAMES, None] * hop + offsets] * win
        p = np.square(np.abs(np.fft.rfft(seg, axis=1)))
        total[1:] += p[:, 1:].sum(axis=0)
    return total


def _without_noisy(x: np.ndarray, rate: int, stats: _FrameStats, ranges) -> _FrameStats:
    """``stats`` with its mean spectrum taken over the frames outside the noisy ``ranges``,
    so a burst of handling noise or clipping does not read as another stethoscope's
    balance of frequencies (unchanged without ranges, or when they leave less than
    :data:`CLEAN_SPECTRUM_MIN_S`). The sum of whichever frames are fewer is computed again."""
    n_frames, hop, n_fft = len(stats.power), stats.hop, 2 * stats.hop
    if not ranges or len(x) < n_fft:
        return stats
    start = np.arange(n_frames) * hop / rate
    inside = np.zeros(n_frames, dtype=bool)
    for a, b in ranges:
        inside |= (start >= a - 1e-9) & (start + n_fft / rate <= b + 1e-9)
    n_in = int(inside.sum())
    n_out = n_frames - n_in
    if n_in == 0 or n_out * hop / rate < CLEAN_SPECTRUM_MIN_S:
        return stats
    if n_out <= n_in:
        clean = _power_sum(x, n_fft, hop, np.flatnonzero(~inside))
    else:
        noisy = _power_sum(x, n_fft, hop, np.flatnonzero(inside))
        clean = np.maximum(stats.mean_spectrum * n_frames - noisy, 0.0)
    return dataclasses.replace(stats, mean_spectrum=clean / n_out)


def _analyse(samples, rate: int, p: dict) -> tuple[dict, list[tuple[float, float]], _FrameStats]:
    """(features, noisy time ranges in s, frame statistics) of a mono recording; the
    statistics' mean spectrum leaves the noisy ranges out (:func:`_without_noisy`)."""
    x = np.asarray(samples, dtype=np.float64).ravel()
    if not np.all(np.isfinite(x)):
        x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
    m: dict = {"duration_s": len(x) / float(rate)}
    if len(x) == 0:
        x = np.zeros(1)
    magnitude = np.abs(x)
    clipped = _clipped(magnitude)
    m.update(_level_features(x, magnitude, clipped, rate))
    xc = x - x.mean()
    stats = _frame_stats(xc, rate)
    e_db = stats.energy_db
    m.update(_spectral_features(stats, e_db))
    for k, v in m.items():
        if isinstance(v, float) and not math.isfinite(v):
            m[k] = 0.0
    hop = stats.hop
    ranges = _ranges(_noisy_frames(clipped, stats, e_db, p), hop, 2 * hop, rate, p)
    m["noisy_s"] = float(sum(b - a for a, b in ranges))
    return m, ranges, _without_noisy(xc, rate, stats, ranges)


def _noisy_frames(clipped: np.ndarray, stats: _FrameStats, e_db: np.ndarray, p: dict) -> np.ndarray:
    """One flag per frame: noise-like (spectral flatness above ``frame_flatness``) or
    holding clipped samples (``clipped``: one flag per sample). (Bursts of energy are not
    flagged: heart sounds and crackles are bursts too.)"""
    flat = stats.flatness()
    audible = e_db > np.percentile(e_db, 5) + 3.0  # near-silent frames are not "noise"
    flags = (flat > p["frame_flatness"]) & audible
    if clipped.any():
        hop, n = stats.hop, len(clipped)
        starts = np.arange(len(flags)) * hop
        csum = np.concatenate(([0], np.cumsum(clipped)))
        ends = np.minimum(starts + 2 * hop, n)
        flags |= (csum[ends] - csum[np.minimum(starts, n)]) > 0
    return flags


def _ranges(flags: np.ndarray, hop: int, n_fft: int, rate: int, p: dict) -> list[tuple[float, float]]:
    """Runs of flagged frames as (start_s, end_s), joined across gaps shorter than
    ``join_gap_s`` and kept when at least ``min_range_s`` long."""
    if not flags.any():
        return []
    d = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    runs = [[int(a) * hop / rate, (int(b) - 1) * hop / rate + n_fft / rate]
            for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1))]
    joined = [runs[0]]
    for start, end in runs[1:]:
        if start - joined[-1][1] < p["join_gap_s"]:
            joined[-1][1] = end
        else:
            joined.append([start, end])
    return [(a, b) for a, b in joined if b - a >= p["min_range_s"]]


def _clipped(magnitude: np.ndarray) -> np.ndarray:
    """Samples (``magnitude``: their absolute values) at the clip level: full scale, or, for
    a loud recording (peak >= 0.5), within 0.1 % of its own peak (a device's limiter
    flattens the waveform below full scale)."""
    peak = float(np.max(magnitude))
    level = min(0.999, 0.999 * peak) if peak >= 0.5 else 0.999
    return magnitude >= level


def _level_features(x: np.ndarray, magnitude: np.ndarray, at: np.ndarray, rate: int) -> dict:
    """Level and clipping: RMS and RMS without DC (dBFS), peak, the share of clipped
    samples ``at`` (:func:`_clipped`) and the longest run of them (a flattened top), in ms."""
    run = 0
    if at.any():
        d = np.diff(np.concatenate(([0], at.astype(np.int8), [0])))
        run = int((np.flatnonzero(d == -1) - np.flatnonzero(d == 1)).max())
    return {"rms_dbfs": _db(float(np.mean(x * x))), "ac_rms_dbfs": _db(float(np.var(x))),
            "peak": float(np.max(magnitude)), "clip_fraction": float(np.mean(at)),
            "clip_run_ms": 1000.0 * run / rate}


def _spectral_features(stats: _FrameStats, e_db: np.ndarray) -> dict:
    """Mean and 90th-percentile spectral flatness, and the spread of frame energy (dB
    between its 5th and 95th percentiles), of the frames (power spectra, DC dropped)."""
    flat = stats.flatness()
    flat[stats.power < 1e-12] = 0.0  # silent frames are not noise
    p5, p95 = np.percentile(e_db, [5, 95])
    return {"flatness": float(np.mean(flat)), "flatness_p90": float(np.percentile(flat, 90)),
            "energy_range_db": float(p95 - p5)}


def assess(samples: np.ndarray, rate: int, params: dict | None = None) -> QualityVerdict:
    """Judge whether a recording can be judged, and where it is noisy (module docstring).

    samples: mono audio (any float or integer dtype; floats are read as full scale +-1).
    rate: its sample rate in Hz. params: overrides of :data:`DEFAULT_PARAMS` (keys it does
    not know are ignored, so a card written for another version still loads).
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
    m, ranges, stats = _analyse(x, rate, p)
    spectrum = {"spectrum": tuple(map(float, stats.mean_spectrum)), "spectrum_bin_hz": stats.bin_hz}
    refusal = _refusal(m, p)
    if refusal:
        return QualityVerdict(False, refusal, m, REFUSE, tuple(ranges), **spectrum)
    warnings = _warnings(m, p, ranges)
    if not warnings:
        return QualityVerdict(True, "good quality", m, GOOD, tuple(ranges), **spectrum)
    where = (", ".join(f"{a:.1f}-{b:.1f} s" for a, b in ranges) if ranges else "throughout")
    return QualityVerdict(True, f"{NOISY_WARNING} ({'; '.join(warnings)}; noisy: {where})", m, WARN,
                          tuple(ranges), **spectrum)


def _refusal(m: dict, p: dict) -> str:
    """Why the recording cannot be judged, or "" when it can."""
    dur = m["duration_s"]
    if dur < p["min_duration_s"]:
        return f"too short ({dur:.1f} s; at least {p['min_duration_s']:g} s needed)"
    if m["ac_rms_dbfs"] < p["min_rms_dbfs"]:
        return "no signal (silent, muted or unplugged input)"
    if m["clip_fraction"] > p["refuse_clip_fraction"]:
        return f"heavily clipped ({100 * m['clip_fraction']:.0f} % of the recording at full scale)"
    if m["energy_range_db"] < p["min_energy_range_db"]:
        return "no breathing found (a steady sound: is the stethoscope on the chest?)"
    return ""


def _warnings(m: dict, p: dict, ranges: list) -> list[str]:
    """What makes a judgeable recording noisy, in words (empty when nothing does)."""
    out = []
    if m["clip_fraction"] > p["warn_clip_fraction"] or m["clip_run_ms"] >= p["min_clip_run_ms"]:
        out.append("clipped in places")
    if m["flatness"] > p["max_flatness"]:
        out.append("broadband noise")
    elif ranges:
        out.append("noise in parts")
    return out
