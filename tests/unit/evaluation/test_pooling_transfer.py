"""research/pooling_transfer.py: other pooling rules for the abnormal probability, each at
its own out-of-fold threshold."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lungapp import paths
from lungapp.errors import LungappError
from lungapp.inference.predictor import Predictor

MODEL = paths.resources_dir() / "model"
EXAMPLE = paths.resources_dir() / "examples" / "synthetic_wheeze.wav"


def test_a_rule_replaces_the_pooling_and_threshold_and_drops_the_calibration(repo_script):
    mod = repo_script("research/pooling_transfer.py")
    pred = Predictor.load(MODEL)
    as_shipped = pred.predict_file(EXAMPLE).abnormal_probability
    mean = mod.with_rule(pred, "mean", 0.4)
    assert mean.card.threshold == 0.4 and mean.card.calibration is None
    assert pred.card.pooling == "mean" and pred.card.calibration is not None  # the original is kept
    p_mean = mean.predict_file(EXAMPLE).abnormal_probability
    # the shipped result is the same pooled value, Platt-calibrated
    calibrated = 1 - pred.card.calibrate_probs(np.array([[1 - p_mean, p_mean, 0.0, 0.0]]))[0, 0]
    assert as_shipped == pytest.approx(calibrated, abs=1e-6)
    p_max = mod.with_rule(pred, "max", 0.4).predict_file(EXAMPLE).abnormal_probability
    p_low = mod.with_rule(pred, "quantile:0.25", 0.4).predict_file(EXAMPLE).abnormal_probability
    assert p_low < p_mean < p_max


def test_models_not_made_of_kept_runs_are_refused(repo_script, tmp_path):
    mod = repo_script("research/pooling_transfer.py")
    card = json.loads((MODEL / "card.json").read_text())
    card["training"].pop("members", None)
    (tmp_path / "card.json").write_text(json.dumps(card))
    with pytest.raises(LungappError, match="kept"):
        mod.kept_members(tmp_path)


def test_a_rule_no_card_can_name_is_refused(repo_script, capsys):
    mod = repo_script("research/pooling_transfer.py")
    with pytest.raises(SystemExit) as exc:
        mod.main(["--rules", "mean,median"])
    assert exc.value.code == 2 and "not a pooling rule: median" in capsys.readouterr().err


def test_the_mean_rules_threshold_is_the_one_training_chose(sprsound_dir, repo_script):
    """At the model's own rule the out-of-fold figures are the card's (its threshold before
    calibration, and its confusion matrix)."""
    mod = repo_script("research/pooling_transfer.py")
    if not (mod.ROOT / "research" / "bundled_members").is_dir():
        pytest.skip("no kept members (an installed copy has no research/)")
    card = json.loads((MODEL / "card.json").read_text())
    got = mod.oof_thresholds(MODEL, sprsound_dir / "train", ["mean", "quantile:0.5"])
    assert got["mean"]["confusion"] == card["metrics"]["overall"]["confusion"]
    assert got["mean"]["auc"] == pytest.approx(card["metrics"]["overall"]["auc"], abs=1e-9)
    assert got["quantile:0.5"]["threshold"] < got["mean"]["threshold"]
