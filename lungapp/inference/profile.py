"""Is a recording like the ones the model was trained on? Its frequency balance, checked
against the training recordings' (the card's ``input_profile``).

The model was trained on one collection and one stethoscope. On recordings from other
devices it ranks less well and its threshold over-calls (docs/model.md), but nothing in its
answer said so. This check compares what a stethoscope changes most, the balance of power
across frequencies, with the training recordings':

* A recording's **band levels**: the mean power spectrum of its ~32-ms frames outside the
  noisy stretches (the quality check's, :func:`lungapp.inference.quality.mean_spectrum`)
  in :data:`BAND_EDGES_HZ`'s ten half-octave bands from 62.5 Hz to 2 kHz (what every
  stethoscope checked passes, 4-kHz ones included), in dB, minus their mean: the gain and
  the recording level drop out, the coloration stays.
* The **profile** (:func:`fit_profile`, at training time): the training recordings' mean
  band levels, the principal axes that hold :data:`VARIANCE` of their variation with their
  variances, the mean variance of the rest (a probabilistic PCA: a deviation along a
  direction the training recordings hardly vary in counts fully, not only along the main
  axes), and a distance threshold: the :data:`QUANTILE` quantile of the held-out
  recordings' distances when the profile is fitted on the other patients' (patient-grouped
  folds). So about 1 % of recordings like the training ones are called unfamiliar, by
  construction.
* A recording is **unfamiliar** when its Mahalanobis distance from the mean under that
  covariance exceeds the threshold (:meth:`InputProfile.check`). Its result then carries a
  note naming the bands that differ most. The answer is still given: this is a caution, not a
  refusal.

Numpy only, about 0.1 ms per recording once the quality check has its spectrum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Half-octave band edges (Hz): 62.5 Hz * 2 ** (i / 2), i = 0..10.
BAND_EDGES_HZ: tuple[float, ...] = tuple(62.5 * 2.0 ** (i / 2) for i in range(11))
#: Share of the training recordings' band-level variance the profile's axes keep.
VARIANCE = 0.9
#: Quantile of the held-out training recordings' distances used as the threshold.
QUANTILE = 0.99
#: Patient-grouped folds used to measure the held-out distances.
FOLDS = 4


def band_levels(spectrum, bin_hz: float, edges=BAND_EDGES_HZ) -> np.ndarray | None:
    """Level (dB) of each band of a mean power spectrum (bin ``i`` centred on
    ``i * bin_hz``), minus the mean over the bands; None when a band holds no bin (a
    sample rate too low for the bands) or the spectrum is silent."""
    p = np.asarray(spectrum, dtype=np.float64)
    if p.ndim != 1 or len(p) == 0 or not bin_hz > 0:
        return None
    f = np.arange(len(p)) * float(bin_hz)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (f >= lo) & (f < hi) if hi < edges[-1] else (f >= lo) & (f <= hi)
        if not inside.any():
            return None
        out.append(float(np.mean(p[inside])))
    v = np.asarray(out)
    if not np.all(np.isfinite(v)) or v.max() <= 0:
        return None
    db = 10.0 * np.log10(v + 1e-20)
    return db - db.mean()


@dataclass(frozen=True)
class Unfamiliar:
    """The check's answer for an unfamiliar recording: its distance, the profile's
    threshold, and the bands that differ most ((lo Hz, hi Hz), dB relative to the training
    recordings' mean, largest first)."""

    distance: float
    threshold: float
    differences: tuple[tuple[float, float, float], ...]

    def sentence(self) -> str:
        where = "; ".join(f"{_hz(lo)}-{_hz(hi)} Hz {abs(d):.0f} dB {'stronger' if d > 0 else 'weaker'}"
                          for lo, hi, d in self.differences)
        return ("Unlike the recordings the model was trained on: this recording's balance of "
                "frequencies is further from theirs than 99 % of them"
                + (f" ({where})" if where else "")
                + ". Another stethoscope or filter mode can do this, and the model is less reliable "
                "on such recordings: interpret with care.")

    def to_dict(self) -> dict:
        return {"distance": round(self.distance, 4), "threshold": round(self.threshold, 4),
                "differences": [{"band_hz": [round(lo, 1), round(hi, 1)], "difference_db": round(d, 2)}
                                for lo, hi, d in self.differences],
                "text": self.sentence()}

    @classmethod
    def from_dict(cls, d: dict) -> Unfamiliar:
        return cls(float(d["distance"]), float(d["threshold"]),
                   tuple((float(x["band_hz"][0]), float(x["band_hz"][1]), float(x["difference_db"]))
                         for x in d.get("differences") or ()))


def finite_numbers(values) -> bool:
    """A list of finite real numbers (booleans are not numbers here)."""
    return isinstance(values, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in values)


def _hz(v: float) -> str:
    return f"{v:.0f}"


@dataclass
class InputProfile:
    """The training recordings' band levels (module docstring); a card section.

    ``bands_hz``: the band edges; ``mean``, ``sd``: the recordings' mean and standard
    deviation per band (dB); ``axes``: (k, bands) principal axes; ``axis_var``: their
    variances; ``residual_var``: the mean variance off those axes; ``threshold``: the
    distance above which a recording is unfamiliar; ``recordings``, ``patients``: what it
    was fitted on; ``held_out_unfamiliar``: the share of held-out training recordings above
    the threshold; ``source``: the data, in words."""

    bands_hz: list[float]
    mean: list[float]
    sd: list[float]
    axes: list[list[float]]
    axis_var: list[float]
    residual_var: float
    threshold: float
    recordings: int = 0
    patients: int = 0
    held_out_unfamiliar: float = 0.0
    source: str = ""
    quantile: float = QUANTILE
    variance: float = VARIANCE

    def problems(self) -> list[str]:
        lists = {"bands_hz": self.bands_hz, "mean": self.mean, "sd": self.sd, "axis_var": self.axis_var}
        p = [f"input_profile.{k} must be a list of finite numbers" for k, v in lists.items() if not finite_numbers(v)]
        if not (isinstance(self.axes, list) and self.axes and all(finite_numbers(a) for a in self.axes)):
            p.append("input_profile.axes must be a non-empty list of lists of finite numbers")
        for name in ("threshold", "residual_var"):
            if not (finite_numbers([getattr(self, name)]) and getattr(self, name) > 0):
                p.append(f"input_profile.{name} must be a positive number")
        if p:
            return p
        nb = len(self.bands_hz) - 1
        if nb < 2 or any(not b < c for b, c in zip(self.bands_hz[:-1], self.bands_hz[1:])):
            p.append("input_profile.bands_hz must be at least 3 increasing band edges")
        for name in ("mean", "sd"):
            if len(getattr(self, name)) != nb:
                p.append(f"input_profile.{name} must hold one value per band ({nb})")
        if any(len(a) != nb for a in self.axes) or len(self.axis_var) != len(self.axes):
            p.append("input_profile.axes must be k rows of one value per band, with k axis_var")
        elif any(v <= 0 for v in self.axis_var):
            p.append("input_profile.axis_var must be positive")
        return p

    def to_dict(self) -> dict:
        return {"bands_hz": [round(float(v), 4) for v in self.bands_hz],
                "mean": [round(float(v), 6) for v in self.mean], "sd": [round(float(v), 6) for v in self.sd],
                "axes": [[round(float(v), 8) for v in a] for a in self.axes],
                "axis_var": [round(float(v), 8) for v in self.axis_var],
                "residual_var": round(float(self.residual_var), 8),
                "threshold": round(float(self.threshold), 6), "recordings": int(self.recordings),
                "patients": int(self.patients), "held_out_unfamiliar": round(float(self.held_out_unfamiliar), 6),
                "source": self.source, "quantile": self.quantile, "variance": self.variance}

    @classmethod
    def from_dict(cls, d: dict) -> InputProfile:
        if not isinstance(d, dict):
            raise ValueError(f"input_profile must be an object, not {type(d).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown input_profile keys: {sorted(unknown)}")
        missing = {"bands_hz", "mean", "sd", "axes", "axis_var", "residual_var", "threshold"} - set(d)
        if missing:
            raise ValueError(f"input_profile lacks {sorted(missing)}")
        return cls(**d)

    def distance(self, levels: np.ndarray) -> float:
        """Mahalanobis distance of band levels (as :func:`band_levels`) from the mean."""
        axes = _Axes(np.asarray(self.mean), np.asarray(self.axes), np.asarray(self.axis_var),
                     float(self.residual_var))
        return float(axes.distance(np.asarray(levels, dtype=np.float64)[None, :])[0])

    def check(self, spectrum, bin_hz: float, n_differences: int = 2) -> Unfamiliar | None:
        """An :class:`Unfamiliar` when the recording (its mean power spectrum, bins
        ``bin_hz`` apart) lies beyond the threshold; None when it is familiar or its
        spectrum cannot be placed in the bands."""
        levels = band_levels(spectrum, bin_hz, self.bands_hz)
        if levels is None:
            return None
        d = self.distance(levels)
        if d <= self.threshold:
            return None
        diff = levels - np.asarray(self.mean)
        z = diff / np.maximum(np.asarray(self.sd), 1e-6)
        order = np.argsort(-np.abs(z))[:n_differences]
        e = self.bands_hz
        return Unfamiliar(d, float(self.threshold),
                          tuple((float(e[i]), float(e[i + 1]), float(diff[i])) for i in order))


@dataclass
class _Axes:
    """A probabilistic PCA of band levels: mean, (k, bands) axes, their variances and the
    mean variance off them."""

    mean: np.ndarray
    axes: np.ndarray
    var: np.ndarray
    residual_var: float

    def distance(self, levels: np.ndarray) -> np.ndarray:
        d = levels - self.mean
        z = d @ self.axes.T
        r = d - z @ self.axes
        return np.sqrt(np.sum(z * z / self.var, axis=1) + np.sum(r * r, axis=1) / self.residual_var)


def _fit_axes(levels: np.ndarray, variance: float) -> _Axes:
    mean = levels.mean(axis=0)
    w, v = np.linalg.eigh(np.cov(levels - mean, rowvar=False))
    order = np.argsort(w)[::-1]
    w, v = np.clip(w[order], 0.0, None), v[:, order]
    # band levels sum to zero, so one direction never varies: it is left out of the rest
    rank = int(np.sum(w > 1e-9 * max(float(w[0]), 1e-12)))
    share = np.cumsum(w[:rank]) / max(float(w[:rank].sum()), 1e-12)
    k = int(min(max(rank - 1, 1), np.searchsorted(share, variance - 1e-12) + 1))
    rest = w[k:rank]
    residual = float(rest.mean()) if len(rest) else float(w[k - 1])
    return _Axes(mean, v[:, :k].T, w[:k], max(residual, 1e-6))


def fit_profile(levels, groups=None, *, edges=BAND_EDGES_HZ, variance: float = VARIANCE,
                quantile: float = QUANTILE, folds: int = FOLDS, seed: int = 0,
                source: str = "") -> InputProfile:
    """The :class:`InputProfile` of training recordings' band levels (n, bands).

    ``groups``: each recording's patient (None: every recording its own), so the held-out
    distances that set the threshold come from patients the fit never saw. Raises
    ValueError with fewer than 20 recordings or fewer than ``folds`` groups."""
    L = np.asarray(levels, dtype=np.float64)
    if L.ndim != 2 or L.shape[1] != len(edges) - 1:
        raise ValueError(f"levels must be (recordings, {len(edges) - 1}) band levels")
    if len(L) < 20:
        raise ValueError(f"a profile needs at least 20 recordings, not {len(L)}")
    g = np.arange(len(L)).astype(str) if groups is None else np.asarray([str(x) for x in groups])
    names = np.unique(g)
    if len(names) < folds:
        raise ValueError(f"a profile needs at least {folds} patients, not {len(names)}")
    rng = np.random.default_rng(seed)
    fold_of = dict(zip(rng.permutation(names), np.arange(len(names)) % folds))
    f = np.array([fold_of[x] for x in g])
    held = np.empty(len(L))
    for k in range(folds):
        test = f == k
        held[test] = _fit_axes(L[~test], variance).distance(L[test])
    threshold = float(np.quantile(held, quantile))
    axes = _fit_axes(L, variance)
    return InputProfile(bands_hz=[float(e) for e in edges], mean=axes.mean.tolist(),
                        sd=L.std(axis=0, ddof=1).tolist(), axes=axes.axes.tolist(),
                        axis_var=axes.var.tolist(), residual_var=axes.residual_var,
                        threshold=threshold, recordings=len(L),
                        patients=len(names) if groups is not None else 0,
                        held_out_unfamiliar=float(np.mean(held > threshold)), source=source,
                        quantile=quantile, variance=variance)
