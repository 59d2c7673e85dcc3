"""Cross-validation splits: grouped by patient, stratified, deterministic."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lungapp.training.splits import BY_FILE_WARNING, check_grouping, make_folds, validation_split


def _dataset(n_patients=40, seed=0):
    rng = np.random.default_rng(seed)
    labels, groups = [], []
    for p in range(n_patients):
        sick = rng.random() < 0.35
        for _ in range(rng.integers(1, 9)):
            labels.append("Abnormal" if sick and rng.random() < 0.7 else "Normal")
            groups.append(f"P{p}")
    return labels, groups


@given(n_patients=st.integers(8, 60), k=st.integers(2, 6), seed=st.integers(0, 10_000),
       data_seed=st.integers(0, 10_000))
@settings(max_examples=40, deadline=None)
def test_no_patient_in_two_folds_and_every_example_held_out_once(n_patients, k, seed, data_seed):
    labels, groups = _dataset(n_patients, data_seed)
    folds = make_folds(labels, groups, k, seed)
    assert folds.grouped and folds.k == k
    held = np.concatenate(folds.test)
    assert sorted(held.tolist()) == list(range(len(labels)))
    assert check_grouping(folds, groups) == []
    for i in range(k):
        train_p = {groups[j] for j in folds.train(i)}
        test_p = {groups[j] for j in folds.test[i]}
        assert not train_p & test_p


def test_check_grouping_detects_a_patient_in_two_folds():
    labels, groups = _dataset()
    folds = make_folds(labels, None, 4, 0)  # by file: patients do get split
    assert check_grouping(folds, groups) != []


def test_same_seed_same_folds_other_seed_other_folds():
    labels, groups = _dataset(50)
    a = make_folds(labels, groups, 4, seed=7)
    b = make_folds(labels, groups, 4, seed=7)
    c = make_folds(labels, groups, 4, seed=8)
    assert all(np.array_equal(x, y) for x, y in zip(a.test, b.test))
    assert not all(np.array_equal(x, y) for x, y in zip(a.test, c.test))


def test_folds_are_stratified():
    labels, groups = _dataset(80, seed=3)
    folds = make_folds(labels, groups, 4, 0)
    whole = Counter(labels)["Abnormal"] / len(labels)
    for t in folds.test:
        share = Counter(np.asarray(labels)[t].tolist())["Abnormal"] / len(t)
        assert abs(share - whole) < 0.15


def test_without_patient_ids_split_by_file_with_warning():
    labels, _ = _dataset(30)
    folds = make_folds(labels, [None] * len(labels), 4, 0)
    assert not folds.grouped
    assert folds.warnings == [BY_FILE_WARNING]
    assert "optimistic" in BY_FILE_WARNING
    assert sorted(np.concatenate(folds.test).tolist()) == list(range(len(labels)))


def test_too_few_patients_or_examples():
    with pytest.raises(ValueError, match="3 patients cannot make 4"):
        make_folds(["Normal", "Abnormal", "Normal"], ["a", "b", "c"], 4, 0)
    with pytest.raises(ValueError, match="cannot make 4 folds"):
        make_folds(["Normal", "Abnormal", "Normal"], None, 4, 0)
    with pytest.raises(ValueError, match="at least 2 folds"):
        make_folds(["Normal", "Abnormal"], None, 1, 0)


def test_validation_split_is_patient_disjoint_and_deterministic():
    labels, groups = _dataset(40, seed=5)
    fit, val = validation_split(labels, groups, seed=1, fraction=0.2)
    assert len(val) and len(fit)
    assert not {groups[i] for i in fit} & {groups[i] for i in val}
    assert sorted(np.concatenate([fit, val]).tolist()) == list(range(len(labels)))
    fit2, val2 = validation_split(labels, groups, seed=1, fraction=0.2)
    assert np.array_equal(val, val2)
    assert {labels[i] for i in val} == {"Normal", "Abnormal"}
