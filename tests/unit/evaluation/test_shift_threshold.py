"""research/shift_threshold.py: thresholds chosen on the device-shifted out-of-fold predictions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lungapp import paths

MODEL = paths.resources_dir() / "model"


def test_a_shift_that_lifts_the_normals_lifts_the_threshold(repo_script):
    mod = repo_script("research/shift_threshold.py")
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(300, int), np.ones(100, int)]
    clean = np.r_[rng.uniform(0.0, 0.5, 300), rng.uniform(0.4, 1.0, 100)]
    shifted = np.r_[clean[:300] + 0.2, clean[300:]]  # normal recordings score higher
    t = mod.rule_thresholds(y, clean, shifted)
    assert t["clean"] <= t["both"] <= t["shifted"] and t["clean"] < t["shifted"]
    same = mod.rule_thresholds(y, clean, clean)
    assert same["clean"] == same["shifted"] == same["both"]


def test_rows_are_decided_at_the_given_threshold(repo_script):
    mod = repo_script("research/shift_threshold.py")
    from lungapp.inference.card import load_card

    card = load_card(MODEL)

    def row(truth, cls, p):
        probs = {"Normal": 1 - p, "CAS": p, "DAS": 0.0, "CAS & DAS": 0.0}
        return {"truth": truth, "class": cls, "abnormal_probability": p, "probabilities": probs}

    rows = [row("abnormal", "CAS", 0.7), row("abnormal", "CAS", 0.45), row("abnormal", "CAS", 0.5),
            row("normal", "Normal", 0.5), row("normal", "Normal", 0.1)]
    low, high = mod.at_threshold(rows, card, 0.4), mod.at_threshold(rows, card, 0.6)
    assert (low["sensitivity"], low["specificity"]) == (1.0, 0.5)
    assert (high["sensitivity"], high["specificity"]) == (pytest.approx(1 / 3), 1.0)
    assert low["auc"] == high["auc"] == pytest.approx(0.75)
    assert 1.0 >= low["four_class"] > high["four_class"] >= 0.0  # two CAS recordings lost to Normal
    assert low["best_threshold"] == high["best_threshold"]


def test_the_clean_rule_is_the_cards_own_threshold(sprsound_dir, repo_script):
    """The clean rule reproduces what training chose: the card's threshold before
    calibration, and its out-of-fold confusion matrix."""
    mod = repo_script("research/shift_threshold.py")
    if not (mod.ROOT / "research" / "bundled_members").is_dir():
        pytest.skip("no kept members (an installed copy has no research/)")
    card = json.loads((MODEL / "card.json").read_text())
    ts, oof = mod.oof_rules(MODEL, sprsound_dir / "train")
    assert ts["clean"] == pytest.approx(card["metrics"]["threshold"], abs=1e-9)
    assert oof["clean"]["confusion"] == card["metrics"]["overall"]["confusion"]
    assert ts["shifted"] != ts["clean"]
