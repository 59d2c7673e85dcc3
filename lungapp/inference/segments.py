"""A long recording judged by its worst stretch, and borderline answers.

A model's recording rule (e.g. the mean of its windows) was fitted on recordings of the
training length; pooled over a recording many times longer, one abnormal stretch is
averaged away among normal ones (a 15-s "CAS & DAS, 84 %" clip inside 55 s of normal
breathing read "normal, 20 %"). So a recording longer than :data:`SINGLE_SEGMENT_FACTOR`
segments is pooled over overlapping segments of about the training length
(:func:`segment_bounds`), each judged as the model judges a training recording, and the
recording is as abnormal as its worst segment. Recordings up to that length are one
segment: their answer is exactly the whole-recording one.

A recording whose abnormal probability lies within a margin of the threshold
(:func:`borderline_margin`) is "borderline: listen again", with the timeline's peaks
(:func:`timeline_peaks`) as the places to listen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Segment length in seconds: SPRSound's recordings, on which the bundled model's pooling
#: and threshold were fitted, last up to 15.4 s (median 9.2 s).
SEGMENT_S = 15.0
#: Recordings up to this many segment lengths are pooled whole (one segment), so a
#: recording of the training length keeps exactly its whole-recording answer.
SINGLE_SEGMENT_FACTOR = 1.5
#: Margin used when a card has no per-fold thresholds to derive one from.
DEFAULT_MARGIN = 0.05
# A window belongs to a segment when it lies inside it; windows sit on the spectrogram's
# frame grid, a few ms off the hop's multiples.
_INSIDE_TOL_S = 0.05


@dataclass
class SegmentResult:
    """One segment's answer: its span (s), pooled class probabilities, abnormal
    probability, and whether it is abnormal (at or above the threshold)."""

    start_s: float
    end_s: float
    probabilities: dict[str, float]
    abnormal_probability: float
    flagged: bool

    def to_dict(self) -> dict:
        return {"start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3),
                "abnormal_probability": round(self.abnormal_probability, 6),
                "flagged": self.flagged,
                "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()}}


def segment_length(window_lengths: list[float], segment_s: float | None = SEGMENT_S) -> float:
    """The segment length for a model reading windows of ``window_lengths`` seconds:
    ``segment_s`` but at least two of the longest windows; 0 when ``segment_s`` is None or
    0 (pool the whole recording, the rule before segments)."""
    if not segment_s:
        return 0.0
    return max(float(segment_s), 2.0 * max(window_lengths))


def segment_bounds(duration_s: float, segment_s: float) -> np.ndarray:
    """(k, 2) start and end times (s) of the segments of a recording of ``duration_s``.

    One segment (the whole recording) when ``segment_s`` is 0 or the recording is at most
    :data:`SINGLE_SEGMENT_FACTOR` segments long; else segments of ``segment_s`` every half
    segment, the last one ending at the recording's end, so any stretch of half a segment
    lies wholly inside one of them."""
    if segment_s <= 0 or duration_s <= SINGLE_SEGMENT_FACTOR * segment_s:
        return np.array([[0.0, float(duration_s)]])
    starts = np.arange(0.0, duration_s - segment_s + 1e-9, segment_s / 2.0)
    if starts[-1] + segment_s < duration_s - 1e-9:
        starts = np.append(starts, duration_s - segment_s)
    return np.stack([starts, starts + segment_s], axis=1)


def windows_inside(starts: np.ndarray, length: float, a: float, b: float) -> np.ndarray:
    """Mask of the windows (start times ``starts``, ``length`` s long) inside [a, b];
    when none is, the windows whose centre is inside."""
    starts = np.asarray(starts, dtype=np.float64)
    inside = (starts >= a - _INSIDE_TOL_S) & (starts + length <= b + _INSIDE_TOL_S)
    if inside.any():
        return inside
    centre = starts + length / 2.0
    inside = (centre >= a) & (centre <= b)
    return inside if inside.any() else np.abs(centre - (a + b) / 2) == np.abs(centre - (a + b) / 2).min()


def flagged_ranges(segments: list[SegmentResult]) -> list[tuple[float, float]]:
    """The flagged segments joined where they overlap or touch: the abnormal stretches."""
    out: list[list[float]] = []
    for s in segments:
        if not s.flagged:
            continue
        if out and s.start_s <= out[-1][1] + 1e-9:
            out[-1][1] = max(out[-1][1], s.end_s)
        else:
            out.append([s.start_s, s.end_s])
    return [(a, b) for a, b in out]


def timeline_peaks(starts: np.ndarray, p_abnormal: np.ndarray, window_s: float,
                   k: int = 3) -> list[tuple[float, float]]:
    """Up to ``k`` (centre time s, abnormal probability) of the timeline's highest
    windows, highest first, no two closer than one window (so they name different
    places to listen)."""
    centres = np.asarray(starts, dtype=np.float64) + window_s / 2.0
    p = np.asarray(p_abnormal, dtype=np.float64)
    out: list[tuple[float, float]] = []
    for i in np.argsort(-p, kind="stable"):
        if all(abs(centres[i] - c) >= window_s for c, _ in out):
            out.append((float(centres[i]), float(p[i])))
            if len(out) == k:
                break
    return out


def borderline_margin(metrics, calibrate=None) -> float:
    """How close to the threshold an abnormal probability is "borderline", from a card's
    ``metrics`` (:class:`~lungapp.inference.card_schema.Metrics`): twice the standard
    deviation of the thresholds chosen on each fold's
    other folds (``nested_threshold.per_fold[].threshold``), i.e. about the range the
    threshold itself could have taken with other training patients; a probability inside
    it could fall on either side of a refitted threshold. :data:`DEFAULT_MARGIN` when the
    card has fewer than two such thresholds. ``calibrate`` (the card's
    :meth:`~lungapp.inference.card.ModelCard.calibrate`) carries those thresholds onto the
    scale the app's probabilities are shown on."""
    nested = getattr(metrics, "nested_threshold", None) or {}
    folds = nested.get("per_fold") if isinstance(nested, dict) else None
    ts = [f["threshold"] for f in folds or [] if isinstance(f, dict) and isinstance(f.get("threshold"), float)]
    if len(ts) < 2:
        return DEFAULT_MARGIN
    if calibrate is not None:
        ts = [calibrate(t) for t in ts]
    return float(2.0 * np.std(ts, ddof=1))
