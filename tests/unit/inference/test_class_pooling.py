"""Naming an abnormal recording's class from its [CAS, DAS] window flags pooled by an upper
quantile (the card's ``class_pooling``), while the abnormal probability keeps the card's
pooling; chosen and checked on out-of-fold predictions by ``evaluate_oof``."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lungapp.errors import ModelError
from lungapp.inference.card import FOUR_CLASSES, ModelCard, load_card, write_card
from lungapp.inference.features import windows_from_samples
from lungapp.inference.predictor import Predictor, pool_recording
from lungapp.training.card_text import card_markdown
from lungapp.training.oof import class_pooled_probs, evaluate_oof, pool_probs
from lungapp.vocabulary import CLASS_POOLINGS

ROOT = Path(__file__).resolve().parents[3]
SPEC = ("sigmoid", ["CAS", "DAS"])


def _flags_card(**kw) -> ModelCard:
    """The bundled card (sigmoid [CAS, DAS]) with one four-class rule: the most probable
    class unless ``kw`` says otherwise; no ONNX entries (their model files may change)."""
    card = load_card(ROOT / "resources" / "model")
    return dataclasses.replace(card, **{"flag_thresholds": {}, "class_pooling": "", "onnx": {}, **kw})


def _recording(kind: str, rng, n: int = 12) -> np.ndarray:
    """Window flags (n, 2) of a recording: sounds in a third of its windows, low elsewhere.
    In a CAS & DAS recording the wheeze and the crackles are in different windows, so the
    mean of each flag is as low as in a recording with one sound type."""
    w = np.clip(0.05 + 0.03 * rng.standard_normal((n, 2)), 0.01, 0.99)
    third = n // 3
    if kind in ("CAS", "CAS & DAS"):
        w[:third, 0] = np.clip(0.9 + 0.05 * rng.standard_normal(third), 0.01, 0.99)
    if kind == "DAS":
        w[:third, 1] = np.clip(0.9 + 0.05 * rng.standard_normal(third), 0.01, 0.99)
    if kind == "CAS & DAS":
        w[third:2 * third, 1] = np.clip(0.9 + 0.05 * rng.standard_normal(third), 0.01, 0.99)
    return w


def test_quantile_pooling_and_shares():
    card = _flags_card(class_pooling="quantile:0.75")
    rng = np.random.default_rng(0)
    w = _recording("CAS & DAS", rng)
    plain = pool_recording(w, _flags_card())
    rec = pool_recording(w, card)
    assert rec.sum() == pytest.approx(1.0)
    assert rec[0] == pytest.approx(plain[0])  # the abnormal probability keeps the mean
    assert FOUR_CLASSES[1 + int(np.argmax(plain[1:]))] != "CAS & DAS"  # the mean misses one type
    assert FOUR_CLASSES[1 + int(np.argmax(rec[1:]))] == "CAS & DAS"
    c, d = np.quantile(w, 0.75, axis=0)
    share = np.array([c * (1 - d), (1 - c) * d, c * d])
    np.testing.assert_allclose(rec[1:], (1 - plain[0]) * share / share.sum())
    # the same as training's pool_probs, so CV scores what the app decides
    np.testing.assert_allclose(pool_probs(w, "mean", SPEC, "quantile:0.75"), rec)


def test_class_pooling_in_the_card_is_validated_and_kept(tmp_path):
    card = _flags_card(class_pooling="quantile:0.9", model_files=["model.keras"], member_features=[])
    (tmp_path / "model.keras").write_bytes(b"x")
    write_card(tmp_path, card)
    assert load_card(tmp_path).class_pooling == "quantile:0.9"
    d = card.to_dict()
    del d["class_pooling"]  # cards written before the field: the card's pooling names classes
    (tmp_path / "card.json").write_text(json.dumps(d))
    assert load_card(tmp_path).class_pooling == ""
    for value, message in (("median", "class_pooling must be"), ("quantile:1.5", "class_pooling must be"),
                           ("quantile:0.75", "class_pooling goes with"), ("topk:3", "a card uses one")):
        bad = dict(d, class_pooling=value)
        if value == "quantile:0.75":
            bad.update(task="binary", classes=["Normal", "Abnormal"], output_kind="softmax",
                       outputs=["Normal", "Abnormal"], flag_thresholds={})
        elif value == "topk:3":
            bad.update(flag_thresholds={"CAS": 0.3, "DAS": 0.3})
        else:
            bad.update(flag_thresholds={})
        (tmp_path / "card.json").write_text(json.dumps(bad))
        with pytest.raises(ModelError, match=message):
            load_card(tmp_path)


def _oof_set(kinds_counts: dict, seed: int = 0, recording=_recording):
    rng = np.random.default_rng(seed)
    labels, windows = [], []
    for kind, n in kinds_counts.items():
        for _ in range(n):
            labels.append(kind)
            windows.append(recording(kind, rng))
    order = rng.permutation(len(labels))
    labels = [labels[i] for i in order]
    windows = [windows[i] for i in order]
    y = np.array([0 if lab == "Normal" else 1 for lab in labels])
    probs = np.stack([pool_probs(w, "mean", SPEC) for w in windows])
    groups = [f"p{i // 2}" for i in range(len(labels))]
    return y, labels, probs, windows, np.arange(len(labels)) % 4, groups


def test_an_upper_quantile_is_adopted_when_it_names_both_sound_types():
    y, labels, probs, windows, fold_of, groups = _oof_set(
        {"Normal": 60, "CAS": 30, "DAS": 30, "CAS & DAS": 30})
    cp = class_pooled_probs(windows, "mean", SPEC)
    assert list(cp) == list(CLASS_POOLINGS)
    plain = evaluate_oof(y, labels, probs, fold_of, FOUR_CLASSES, "4class", groups=groups)
    rep = evaluate_oof(y, labels, probs, fold_of, FOUR_CLASSES, "4class", groups=groups, class_probs=cp)
    chk = rep["four_class"]["class_pooling_check"]
    assert chk["adopted"] and chk["ci95"][0] > 0
    assert rep["class_pooling"] == chk["chosen"] in CLASS_POOLINGS
    assert rep["four_class"]["rule"].startswith("an abnormal recording gets its most probable "
                                                "abnormal class from its CAS and DAS flags")
    assert plain["four_class"]["confusion"][3][3] == 0  # the mean never names both
    assert rep["four_class"]["confusion"][3][3] == 30
    assert rep["four_class"]["score"] > plain["four_class"]["score"] + 0.1
    assert rep["four_class"]["nested_score"] == pytest.approx(chk["nested_score"])
    assert chk["nested_argmax_score"] == pytest.approx(plain["four_class"]["nested_score"])
    assert rep["four_class"]["argmax_score"] == pytest.approx(plain["four_class"]["score"])
    assert rep["overall"] == plain["overall"]  # normal-vs-abnormal unchanged

    card = _flags_card(metrics=rep, class_pooling=rep["class_pooling"])
    text = card_markdown(card)
    words = {"quantile:0.75": "their 75th percentile", "quantile:0.9": "their 90th percentile",
             "topk:3": "the mean of their top 3"}[rep["class_pooling"]]
    assert f"Naming the class from the flags pooled by {words} (the best of" in text
    assert "was adopted because" in text and "tried and not adopted" not in text


def _whole(kind, rng, n=12):
    """A recording whose sounds last throughout: the mean already names the class."""
    w = np.clip(0.05 + 0.03 * rng.standard_normal((n, 2)), 0.01, 0.99)
    if kind in ("CAS", "CAS & DAS"):
        w[:, 0] = 0.9
    if kind in ("DAS", "CAS & DAS"):
        w[:, 1] = 0.9
    return w


def test_no_class_pooling_without_a_clear_gain():
    y, labels, probs, windows, fold_of, groups = _oof_set(
        {"Normal": 40, "CAS": 20, "DAS": 20, "CAS & DAS": 20}, recording=_whole)
    rep = evaluate_oof(y, labels, probs, fold_of, FOUR_CLASSES, "4class", flag_rule=True,
                       groups=groups, class_probs=class_pooled_probs(windows, "mean", SPEC))
    chk = rep["four_class"]["class_pooling_check"]
    assert not chk["adopted"] and chk["gain"] <= 0
    assert "class_pooling" not in rep and "argmax_score" not in rep["four_class"]
    assert rep["four_class"]["score"] == pytest.approx(1.0)
    text = card_markdown(_flags_card(metrics=rep, class_pooling="", flag_thresholds={}))
    assert "was tried and not adopted" in text


def test_the_app_names_the_class_from_the_class_pooled_flags(tmp_path):
    """The bundled model with a class pooling written into its card: the app's result is the
    card's rule applied to the network's own window outputs."""
    src = ROOT / "resources" / "model"
    for f in src.iterdir():
        shutil.copy(f, tmp_path / f.name)
    card = load_card(src)
    write_card(tmp_path, dataclasses.replace(card, class_pooling="quantile:0.75", flag_thresholds={}))
    wav = ROOT / "resources" / "examples" / "synthetic_wheeze_and_crackles.wav"
    plain = Predictor.load(src).predict_file(wav)
    pred_cp = Predictor.load(tmp_path)
    got = pred_cp.predict_file(wav)
    assert got.abnormal_probability == pytest.approx(plain.abnormal_probability)
    import soundfile as sf

    x, rate = sf.read(wav, dtype="float32")
    assert rate == card.features.spectrogram.rate
    # each member group's windows (one group unless the card mixes window lengths),
    # pooled per group and averaged by the groups' numbers of models
    outs = [pred_cp.window_outputs(X, g) for g, (X, _) in enumerate(pred_cp.member_windows(x))]
    X, _ = windows_from_samples(x, card.features)
    assert np.array_equal(pred_cp.window_outputs(X), outs[0])
    w = np.array([g.members for g in pred_cp.groups], dtype=float) / len(card.model_files)
    assert card.pooling == "mean"
    mc, md = sum(wg * o.mean(axis=0) for wg, o in zip(w, outs))
    c, d = sum(wg * np.quantile(o, 0.75, axis=0) for wg, o in zip(w, outs))
    share = np.array([c * (1 - d), (1 - c) * d, c * d])
    p_abn = 1 - (1 - mc) * (1 - md)
    want = card.calibrate_probs(np.concatenate([[1 - p_abn], p_abn * share / share.sum()]))
    np.testing.assert_allclose([got.probabilities[c] for c in card.classes], want, atol=1e-6)
    if got.decision == "abnormal":
        assert got.label == FOUR_CLASSES[1 + int(np.argmax(want[1:]))]


def test_when_both_rules_pass_the_better_strict_score_is_used():
    y, labels, probs, windows, fold_of, groups = _oof_set(
        {"Normal": 60, "CAS": 30, "DAS": 30, "CAS & DAS": 30}, seed=1)
    rep = evaluate_oof(y, labels, probs, fold_of, FOUR_CLASSES, "4class", flag_rule=True,
                       groups=groups, class_probs=class_pooled_probs(windows, "mean", SPEC))
    fr = rep["four_class"]["flag_rule_check"]
    cp = rep["four_class"]["class_pooling_check"]
    assert fr["adopted"] and cp["adopted"]  # the mean of the flags can be thresholded too
    flags_used = "flag_thresholds" in rep
    assert flags_used != ("class_pooling" in rep)  # exactly one rule decides
    used, other = (fr, cp) if flags_used else (cp, fr)
    assert used["nested_score"] >= other["nested_score"] and "superseded_by" not in used
    assert other["superseded_by"] == ("flag rule" if flags_used else "class pooling")
    assert rep["four_class"]["nested_score"] == pytest.approx(used["nested_score"])
    card = _flags_card(metrics=rep, flag_thresholds=rep.get("flag_thresholds", {}),
                       class_pooling=rep.get("class_pooling", ""))
    assert "passed the same check but scored lower strictly" in card_markdown(card)


def test_a_class_pooling_fixed_by_the_recipe_is_used_whatever_the_checks_say():
    """evaluate_oof(class_pooling=...): the recipe's pooling names the classes in every
    fold, even where its check would not adopt it and where the flag rule passes; the
    checks are still reported, and the strict score is that of the fixed rule."""
    for recording, gate in ((_whole, False), (_recording, True)):
        y, labels, probs, windows, fold_of, groups = _oof_set(
            {"Normal": 40, "CAS": 20, "DAS": 20, "CAS & DAS": 20}, seed=2, recording=recording)
        cp = class_pooled_probs(windows, "mean", SPEC)
        free = evaluate_oof(y, labels, probs, fold_of, FOUR_CLASSES, "4class", flag_rule=True,
                            groups=groups, class_probs=cp)
        rep = evaluate_oof(y, labels, probs, fold_of, FOUR_CLASSES, "4class", flag_rule=True,
                           groups=groups, class_probs=cp, class_pooling="quantile:0.9")
        chk = rep["four_class"]["class_pooling_check"]
        assert chk["fixed"] == chk["chosen"] == rep["class_pooling"] == "quantile:0.9"
        assert chk["chosen_per_fold"] == ["quantile:0.9"] * 4
        assert chk["adopted"] == gate  # what the check alone would have said
        assert "flag_thresholds" not in rep
        if rep["four_class"].get("flag_rule_check", {}).get("adopted"):
            assert rep["four_class"]["flag_rule_check"]["superseded_by"] == \
                "class pooling fixed by the recipe"
        assert rep["overall"] == free["overall"]
        # the strict score: each fold at the threshold of the other folds, named by the rule
        p_abn = 1 - probs[:, 0]
        from lungapp.evaluation.metrics import choose_threshold, multiclass_metrics
        from lungapp.training.oof import _decide
        nested = [None] * len(labels)
        for i in range(4):
            m = fold_of == i
            t, _ = choose_threshold(y[~m], p_abn[~m])
            for j, lab in zip(np.flatnonzero(m), _decide(p_abn[m], cp["quantile:0.9"][m], t,
                                                         FOUR_CLASSES)):
                nested[j] = lab
        want = multiclass_metrics(labels, nested, FOUR_CLASSES)["score"]
        assert rep["four_class"]["nested_score"] == pytest.approx(want) == chk["nested_score"]
        assert "fixed by the recipe" in rep["four_class"]["rule"]
        text = card_markdown(_flags_card(metrics=rep, class_pooling="quantile:0.9"))
        assert "a pooling fixed by the recipe" in text
        assert "is the recipe's rule, used whatever this check says" in text
        assert ("would also have been adopted" if gate else "would not have been adopted") in text
    with pytest.raises(ValueError, match="one of"):
        evaluate_oof(y, labels, probs, fold_of, FOUR_CLASSES, "4class", class_probs=cp,
                     class_pooling="quantile:0.5")
