"""95 % intervals of AUC and score from a bootstrap over patients (lungapp.evaluation.metrics)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from lungapp.evaluation.metrics import binary_metrics, bootstrap_intervals, weighted_figures


def _data(n=300, n_patients=60, seed=1):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.round(rng.random(n) * 0.6 + 0.3 * y, 2)  # rounded: ties between classes
    return y, p, rng.integers(0, n_patients, n)


def test_weighted_figures_equal_the_figures_of_the_repeated_recordings():
    y, p, _ = _data()
    w = np.random.default_rng(2).integers(0, 4, (3, len(y))).astype(float)
    auc, score = weighted_figures(w, y, p, 0.45)
    for k in range(3):
        rep = np.repeat(np.arange(len(y)), w[k].astype(int))
        assert auc[k] == pytest.approx(roc_auc_score(y[rep], p[rep]), abs=1e-12)
        assert score[k] == pytest.approx(binary_metrics(y[rep], p[rep], 0.45)["score"], abs=1e-12)
    # a row with no normal recording has no AUC and no specificity
    auc, score = weighted_figures(y[None, :].astype(float), y, p, 0.45)
    assert np.isnan(auc[0]) and np.isnan(score[0])


def test_intervals_hold_the_estimate_and_repeat_with_the_seed():
    y, p, g = _data()
    r = bootstrap_intervals(y, p, 0.45, list(g))
    m = binary_metrics(y, p, 0.45)
    assert r["resampled"] == "patients" and r["n_groups"] == 60 and r["n_boot"] == 2000
    assert r["auc_ci95"][0] < m["auc"] < r["auc_ci95"][1] < 1
    assert r["score_ci95"][0] < m["score"] < r["score_ci95"][1]
    assert bootstrap_intervals(y, p, 0.45, list(g)) == r
    assert bootstrap_intervals(y, p, 0.45, list(g), seed=1) != r


def test_patients_are_resampled_whole():
    """Each patient's recordings copied five times: resampling recordings treats the copies
    as independent evidence and gives a narrower interval than resampling patients, which
    matches resampling the recordings of the uncopied data."""
    y, p, _ = _data(n=80, n_patients=80)
    y5, p5 = np.repeat(y, 5), np.repeat(p, 5)
    g5 = np.repeat(np.arange(80), 5)
    by_patient = bootstrap_intervals(y5, p5, 0.45, list(g5))
    by_recording = bootstrap_intervals(y5, p5, 0.45)
    one_copy = bootstrap_intervals(y, p, 0.45)
    assert by_recording["resampled"] == "recordings" and by_recording["n_groups"] == 400
    width = lambda r: r["auc_ci95"][1] - r["auc_ci95"][0]  # noqa: E731
    assert width(by_recording) < 0.6 * width(by_patient)
    assert width(by_patient) == pytest.approx(width(one_copy), rel=0.25)


def test_recordings_without_a_patient_count_as_their_own():
    y, p, g = _data(n=40, n_patients=10)
    groups = [None if i % 2 else f"P{v}" for i, v in enumerate(g)]
    r = bootstrap_intervals(y, p, 0.45, groups)
    assert r["resampled"] == "patients" and r["n_groups"] == 20 + len(set(g[::2]))


def test_one_class_or_one_patient_gives_no_interval():
    y, p, g = _data(n=30)
    for yy, gg in ((np.zeros(30, dtype=int), list(g)), (y, ["P"] * 30)):
        r = bootstrap_intervals(yy, p, 0.45, gg)
        assert r["auc_ci95"] is None and r["score_ci95"] is None
