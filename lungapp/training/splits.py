"""Cross-validation folds: stratified and grouped by patient (scikit-learn's
``StratifiedGroupKFold``), deterministic for a given seed.

Recordings of one child are strongly correlated, so a patient's recordings all go to
the same fold; otherwise the estimate is optimistic. Where a dataset has no patient
ids the split is by file (``StratifiedKFold``) and a warning says so.
"""

from __future__ import annotations

import warnings as _warnings
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

BY_FILE_WARNING = ("no patient ids: folds are split by file, so recordings of one patient can "
                   "be in both training and test folds and the estimate is optimistic")


@dataclass
class Folds:
    """k folds over n examples. ``test[i]`` holds the indices held out in fold i;
    every index is held out exactly once. ``grouped`` says whether patients decided."""

    test: list[np.ndarray]
    grouped: bool
    warnings: list[str] = field(default_factory=list)

    @property
    def k(self) -> int:
        return len(self.test)

    def train(self, i: int) -> np.ndarray:
        n = sum(len(t) for t in self.test)
        mask = np.ones(n, dtype=bool)
        mask[self.test[i]] = False
        return np.flatnonzero(mask)

    def fold_of(self) -> np.ndarray:
        """(n,) fold number of each example."""
        n = sum(len(t) for t in self.test)
        out = np.empty(n, dtype=np.int64)
        for i, t in enumerate(self.test):
            out[t] = i
        return out


def with_unknown(groups) -> tuple[list | None, int]:
    """``groups`` with each None (a recording whose patient is not known) made a group of
    its own, and how many there were; None when no recording has an id."""
    if groups is None or all(g is None for g in groups):
        return None, 0 if groups is None else len(groups)
    unknown = sum(g is None for g in groups)
    return [f"\0unknown-{i}" if g is None else str(g) for i, g in enumerate(groups)], unknown


def make_folds(labels, groups, k: int, seed: int) -> Folds:
    """Split n examples into ``k`` folds, stratified by ``labels``.

    labels: (n,) class labels (any hashable). groups: (n,) patient ids, or None (or all
    None) to split by file; a recording without an id among others with one is a group of
    its own (said in the warnings). Same inputs and seed -> same folds.

    Raises:
        ValueError: k < 2, or fewer examples / patients than folds.
    """
    labels = np.asarray(labels)
    n = len(labels)
    if k < 2:
        raise ValueError(f"need at least 2 folds, not {k}")
    groups, unknown = with_unknown(groups)
    if groups is None:
        if n < k:
            raise ValueError(f"{n} examples cannot make {k} folds")
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore", UserWarning)  # "least populated class" notices
            splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
            test = [t for _, t in splitter.split(np.zeros(n), labels)]
        return Folds(test=test, grouped=False, warnings=[BY_FILE_WARNING])
    groups = np.asarray(groups)
    n_groups = len(set(groups.tolist()))
    if n_groups < k:
        raise ValueError(f"{n_groups} patients cannot make {k} patient-grouped folds")
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore", UserWarning)
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        test = [t for _, t in splitter.split(np.zeros(n), labels, groups)]
    notes = [f"{unknown} of {n} recordings have no patient id: each is a group of its own (if one "
             "is another recording's patient, that patient can be on both sides)"] if unknown else []
    return Folds(test=test, grouped=True, warnings=notes)


def validation_folds(labels, groups, fraction: float) -> int:
    """How many folds :func:`validation_split` makes (one of them is held out): about
    ``1 / fraction``, but no more than the patients (grouped) or than the rarest class's
    recordings (by file), nor than the largest class's recordings (the stratified splitters
    need one class with a member in every fold). Below 2: no validation split."""
    counts = Counter(np.asarray(labels).tolist())
    if not counts:
        return 0
    k = max(2, int(round(1 / fraction)))
    groups, _ = with_unknown(groups)
    if groups is not None:
        k = min(k, len(set(groups)), max(counts.values()))
    else:
        k = min(k, min(counts.values()))
    return k


def validation_split(labels, groups, seed: int, fraction: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """Split a training set into (fit, validation) indices, grouped by patient where
    ``groups`` has ids, stratified by label: used for early stopping and learning-rate
    decisions, so the held-out fold is never looked at during training."""
    labels = np.asarray(labels)
    n = len(labels)
    k = validation_folds(labels, groups, fraction)
    if k < 2:  # too small to hold anything out: train without a validation split
        return np.arange(n), np.arange(0)
    folds = make_folds(labels, groups, k, seed)
    # The fold whose label mix is closest to the whole set's.
    whole = Counter(labels.tolist())

    def distance(t):
        c = Counter(labels[t].tolist())
        return sum(abs(c[l] / max(1, len(t)) - whole[l] / n) for l in whole)

    best = min(range(folds.k), key=lambda i: distance(folds.test[i]))
    return folds.train(best), np.sort(folds.test[best])


def check_grouping(folds: Folds, groups) -> list[str]:
    """Patients found in more than one fold (empty when the folds are grouped correctly)."""
    if groups is None:
        return []
    seen: dict[str, int] = {}
    bad = set()
    for i, t in enumerate(folds.test):
        for g in np.asarray(groups, dtype=object)[t]:
            if g is None:
                continue
            if seen.setdefault(str(g), i) != i:
                bad.add(str(g))
    return sorted(bad)
