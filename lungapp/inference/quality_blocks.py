"""The quality check of a recording too long to hold in memory, block by block.

:func:`lungapp.inference.quality.assess` reads a whole signal (its frame spectra take
about 60 times the signal's memory). :class:`QualityStream` assesses consecutive blocks of
:data:`BLOCK_S` to twice that long instead, and joins their verdicts
(:func:`join_verdicts`); a recording shorter than two blocks is assessed whole, exactly as
before.
"""

from __future__ import annotations

import numpy as np

from lungapp.inference import quality
from lungapp.inference.quality import GOOD, REFUSE, WARN, QualityVerdict

#: Seconds of signal per quality block (the last block holds up to twice this).
BLOCK_S = 60.0


class QualityStream:
    """``push`` mono blocks at ``rate`` Hz, then ``finish()`` -> one QualityVerdict."""

    def __init__(self, rate: int, params: dict | None = None, block_s: float = BLOCK_S):
        self.rate, self.params = int(rate), params
        self._block = max(1, int(block_s * rate))
        self._parts: list[np.ndarray] = []
        self._n = 0
        self._verdicts: list[tuple[float, QualityVerdict]] = []
        self._offset = 0

    def push(self, block) -> None:
        self._parts.append(np.asarray(block, dtype=np.float32))
        self._n += len(block)
        if self._n >= 2 * self._block:
            buf = np.concatenate(self._parts)
            self._assess(buf[: self._block])
            self._parts, self._n = [buf[self._block:]], len(buf) - self._block

    def _assess(self, x: np.ndarray) -> None:
        self._verdicts.append((self._offset / self.rate, quality.assess(x, self.rate, self.params)))
        self._offset += len(x)

    def finish(self) -> QualityVerdict:
        if self._n or not self._verdicts:
            self._assess(np.concatenate(self._parts) if self._parts else np.zeros(0, np.float32))
        durations = [v.metrics.get("duration_s", 0.0) for _, v in self._verdicts]
        return join_verdicts(self._verdicts, durations)


def join_verdicts(parts: list[tuple[float, QualityVerdict]], durations: list[float]) -> QualityVerdict:
    """One verdict from the verdicts of consecutive blocks ((start s, verdict), each block
    ``durations[i]`` s long). Refused only when every block is (nothing can be judged);
    a refused or noisy block makes a warning naming its time range, since the rest can be
    judged. Metrics: duration-weighted means (``duration_s`` the total, ``blocks`` their
    number)."""
    if len(parts) == 1:
        return parts[0][1]
    ranges, notes = [], []
    for (t0, v), d in zip(parts, durations):
        ranges += [(t0 + a, t0 + b) for a, b in v.noisy_ranges]
        if v.level == REFUSE:
            ranges.append((t0, t0 + d))
        if v.level != GOOD:
            notes.append(f"{t0:.0f}-{t0 + d:.0f} s: {v.reason}")
    metrics = _mean_metrics([v.metrics for _, v in parts], durations)
    spectrum = _mean_spectrum([v for _, v in parts], durations)
    if all(v.level == REFUSE for _, v in parts):
        return QualityVerdict(False, parts[0][1].reason, metrics, REFUSE, tuple(sorted(ranges)), **spectrum)
    if not notes:
        return QualityVerdict(True, "good quality", metrics, GOOD, tuple(sorted(ranges)), **spectrum)
    return QualityVerdict(True, "parts of the recording: " + "; ".join(notes), metrics, WARN,
                          tuple(sorted(ranges)), **spectrum)


def _mean_spectrum(verdicts: list[QualityVerdict], durations: list[float]) -> dict:
    """The blocks' mean power spectra averaged by duration (the whole recording's, to the
    frames the block edges split), as QualityVerdict fields; none when they differ. Refused
    blocks count only when every block is refused: like a noisy stretch within a block, a
    silent or clipped block says nothing of the stethoscope's balance of frequencies."""
    spectra = [v.spectrum for v in verdicts]
    if not spectra[0] or any(len(s) != len(spectra[0]) for s in spectra):
        return {}
    judged = [v.level != REFUSE for v in verdicts]
    if any(judged):
        durations = [d if j else 0.0 for d, j in zip(durations, judged)]
    w = np.asarray(durations, dtype=np.float64)
    w = w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w))
    mean = np.average(np.asarray(spectra, dtype=np.float64), axis=0, weights=w)
    return {"spectrum": tuple(map(float, mean)), "spectrum_bin_hz": verdicts[0].spectrum_bin_hz}


def _mean_metrics(metrics: list[dict], durations: list[float]) -> dict:
    w = np.asarray(durations, dtype=np.float64)
    w = w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w))
    out: dict = {}
    for k, v in metrics[0].items():
        if k == "noisy_s":
            out[k] = float(sum(float(m.get(k, 0.0)) for m in metrics))
        elif isinstance(v, float):
            out[k] = float(sum(wi * float(m.get(k, 0.0)) for wi, m in zip(w, metrics)))
    out["duration_s"] = float(sum(durations))
    out["blocks"] = len(metrics)
    return out
