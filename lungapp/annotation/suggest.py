"""Model-assisted labelling: the model's windows above threshold become draft regions.

Each stretch of overlapping windows whose abnormal probability reaches the threshold becomes
one suggested region, typed from the class the model favours there (continuous sounds ->
Wheeze, discontinuous -> Fine Crackle, both -> Wheeze+Crackle). The annotator accepts,
edits or rejects each; until accepted a suggestion is not a label (see the sidecar).
"""

from __future__ import annotations

from lungapp.annotation.model import Region, now_iso
from lungapp.vocabulary import BOTH, CAS, DAS

SUGGESTION_AUTHOR = "model"
_TYPE_OF_CLASS = {CAS: "Wheeze", DAS: "Fine Crackle", BOTH: "Wheeze+Crackle"}


def merge_intervals(intervals) -> list[tuple[float, float]]:
    """Union of (start, end) intervals, sorted, overlapping or touching ones merged."""
    out: list[list[float]] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def _type_of(windows) -> str:
    """The event type the model favours over these windows (summed class probabilities)."""
    totals = {cls: sum(w.probabilities.get(cls, 0.0) or 0.0 for w in windows)
              for cls in _TYPE_OF_CLASS}
    best = max(totals, key=totals.get)
    # A binary model names no kind of sound: the draft says "both" until the annotator chooses.
    return _TYPE_OF_CLASS[best] if totals[best] > 0 else "Wheeze+Crackle"


#: The note of a draft region lying mostly in a stretch the quality check found noisy.
NOISY_NOTE = "mostly in a noisy stretch: the model may have heard the noise"


def _overlap(start: float, end: float, ranges) -> float:
    """Seconds of (start, end) inside the union of ``ranges``."""
    return sum(max(0.0, min(end, b) - max(start, a)) for a, b in merge_intervals(ranges))


def suggest_regions(windows, threshold: float, model_name: str = SUGGESTION_AUTHOR,
                    noisy_ranges=()) -> list[Region]:
    """Draft regions from a prediction's windows (objects with ``start_s``, ``end_s``,
    ``abnormal_probability`` and ``probabilities``). A draft more than half inside the
    quality check's ``noisy_ranges`` says so in its note (:data:`NOISY_NOTE`)."""
    hits = [w for w in windows if w.abnormal_probability is not None
            and w.abnormal_probability >= threshold]
    stamp = now_iso()
    regions = []
    for start, end in merge_intervals((w.start_s, w.end_s) for w in hits):
        inside = [w for w in hits if w.start_s >= start and w.end_s <= end]
        noisy = end > start and _overlap(start, end, noisy_ranges) > 0.5 * (end - start)
        regions.append(Region(start, end, _type_of(inside), note=NOISY_NOTE if noisy else "",
                              author=model_name, time=stamp, suggested=True))
    return regions
