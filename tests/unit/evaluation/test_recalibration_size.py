"""research/recalibration_size.py: how many labelled recordings `recalibrate` needs, and
how the rules for offering its threshold do on the patients they did not see."""

from __future__ import annotations

import numpy as np


def _folder(shift: float, n_patients: int = 40, seed: int = 0):
    """(truth, probability, patient): 3 recordings a patient, half the patients abnormal;
    the abnormal ones score higher, and ``shift`` lifts everyone (another stethoscope)."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_patients) % 2, 3)
    logit = np.where(y == 1, 1.0, -1.0) + rng.normal(0, 0.8, len(y)) + shift
    return y, 1 / (1 + np.exp(-logit)), np.repeat([f"P{i}" for i in range(n_patients)], 3)


def test_both_rules_offer_a_new_threshold_where_the_models_own_fails(repo_script):
    mod = repo_script("research/recalibration_size.py")
    y, p, g = _folder(shift=3.0)          # the own threshold (0.5) calls nearly all abnormal
    assert mod._score(y, p, 0.5) < 0.65
    assert mod.offers(y, p, g, 0.5) == (True, True)
    y, p, g = _folder(shift=0.0)          # the own threshold is already the right one
    assert mod.offers(y, p, g, 0.5)[1] is False
    # too few patients of a class to hold any out: refused, so the own threshold stays
    assert mod.offers(np.array([0, 0, 0, 0, 1, 1, 1, 1]), np.linspace(0.1, 0.9, 8),
                      np.array(["a"] * 4 + ["b"] * 4), 0.5) == (False, False)


def test_curve_scores_the_rest_at_each_rule(repo_script):
    mod = repo_script("research/recalibration_size.py")
    y, p, g = _folder(shift=3.0)
    (r,) = mod.curve(y, p, g, 0.5, [30], draws=20)
    assert r["draws"] == 20 and r["new"] > r["own"] + 0.1
    for rule in mod.RULES:
        v = r["rules"][rule]
        assert v["offered"] > 0.5 and v["score"] > r["own"]
        # a rule picks one of the two thresholds each time: its mean lies between theirs
        assert min(r["own"], r["new"]) - 1e-9 <= v["score"] <= max(r["own"], r["new"]) + 1e-9
    y, p, g = _folder(shift=0.0)
    (r,) = mod.curve(y, p, g, 0.5, [30], draws=20)
    any_gain, confirmed = r["rules"]["any gain"], r["rules"]["confirmed gain"]
    assert confirmed["offered"] < any_gain["offered"]   # the stricter rule offers less
