"""Training with independent sigmoid flags [CAS, DAS] and event-level window labels (the
recommended recipe), end to end on generated recordings with timed events."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_train import TINY_FC  # noqa: E402

from lungapp.training.dataset import output_spec
from lungapp.training.fit import flag_weights
from lungapp.training.recipes import TrainOptions
from lungapp.training.train import train
from lungapp.vocabulary import FOUR_CLASSES

from train_helpers import make_dataset  # noqa: E402


def test_output_spec_targets():
    kind, names, T = output_spec("4class", ["Normal", "CAS", "DAS", "CAS & DAS"], "flags")
    assert kind == "sigmoid" and names == ["CAS", "DAS"]
    assert T.tolist() == [[0, 0], [1, 0], [0, 1], [1, 1]]
    kind, names, T = output_spec("binary", ["Normal", "Abnormal"], "flags")
    assert names == ["abnormal"] and T.tolist() == [[0], [1]]
    kind, names, T = output_spec("4class", ["Normal", "CAS", "DAS", "CAS & DAS"], "softmax")
    assert kind == "softmax" and np.array_equal(T, np.eye(4))


def test_flag_weights_balance_rare_positives():
    T = np.zeros((100, 2), np.float32)
    T[:5, 0] = 1   # 5 CAS windows
    T[5:25, 1] = 1  # 20 DAS windows
    w = flag_weights(T)
    assert w.mean() == pytest.approx(1.0)
    assert w[:5].sum() / w.sum() == pytest.approx(0.25 + 0.5 * 5 / 100)
    assert w[5:25].sum() / w.sum() == pytest.approx(0.25 + 0.5 * 20 / 100)


@pytest.mark.slow
def test_four_class_flags_training_end_to_end(tmp_path):
    labels = ["Normal", "CAS", "DAS", "CAS & DAS"]
    data = make_dataset(tmp_path / "d", {f"{200 + i}": labels for i in range(8)}, seconds=6.0)
    out = tmp_path / "m"
    opts = TrainOptions.from_preset("recommended", task="4class", folds=2, epochs=6, batch_size=16,
                                    lr=3e-3, features=TINY_FC, early_stopping=0, monitor="val_loss")
    opts.augment = None
    assert opts.outputs == "flags" and opts.window_labels == "events"
    summary = train(data, out, opts, progress=lambda e: None)
    card = json.loads((out / "card.json").read_text())
    assert card["output_kind"] == "sigmoid" and card["outputs"] == ["CAS", "DAS"]
    assert card["classes"] == labels
    m = card["metrics"]
    assert sum(map(sum, m["four_class"]["confusion"])) == 32
    assert "nested_score" in m["four_class"]
    chk = m["four_class"]["flag_rule_check"]  # per-flag thresholds tried, adopted only on evidence
    assert (card.get("flag_thresholds") or {}) == (m.get("flag_thresholds") or {})
    assert bool(card.get("flag_thresholds")) == chk["adopted"] and chk["resampled"] == "patients"
    assert summary["metrics"]["auc"] >= 0.7, summary  # generated wheeze/crackles are learnable

    from lungapp.inference.predictor import Predictor

    pred = Predictor.load(out)
    wav = next(p.with_suffix(".wav") for p in sorted(data.glob("*.json"))
               if json.loads(p.read_text())["record_annotation"] == "CAS & DAS")
    r = pred.predict_file(wav)
    assert sum(r.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert r.windows and set(r.windows[0].probabilities) == set(labels)


def test_balanced_batches_draw_half_from_adventitious_windows():
    from lungapp.training.fit import epoch_order as _epoch_order
    from lungapp.training.fit import positive_sets as _positive_sets

    rng = np.random.default_rng(0)
    T = np.zeros((1000, 2), np.float32)
    T[:10, 0] = 1    # 1 % CAS windows
    T[10:40, 1] = 1  # 3 % DAS windows
    sets = _positive_sets(T, np.zeros(1000, int), flags=True)
    order = _epoch_order(rng, 1000, 50, 64, sets).reshape(50, 64)
    assert order.shape == (50, 64) and order.min() >= 0 and order.max() < 1000
    cas = (order < 10).sum(1)
    das = ((order >= 10) & (order < 40)).sum(1)
    assert (cas >= 16).all() and (das >= 16).all()  # a quarter of every batch each, at least
    assert 0.25 < cas.mean() / 64 < 0.27 and 0.25 < das.mean() / 64 < 0.30
    # shuffled epochs: every window once per pass, full batches
    order = _epoch_order(rng, 100, 4, 32, None)
    assert len(order) == 128 and set(order[:100].tolist()) == set(range(100))
    # softmax outputs: one set per abnormal class present
    yw = np.array([0] * 90 + [1] * 6 + [3] * 4)
    sets = _positive_sets(np.eye(4)[yw], yw, flags=False)
    assert [s.tolist() for s in sets] == [list(range(90, 96)), list(range(96, 100))]


@pytest.mark.slow
def test_recommended_recipe_without_validation_split(tmp_path):
    """The recommended recipe's own path: balanced batches, a fixed number of steps per
    epoch, SpecAugment, no validation split (no validation curves, last weights kept)."""
    labels = ["Normal", "CAS", "DAS", "CAS & DAS"]
    data = make_dataset(tmp_path / "d", {f"{300 + i}": labels for i in range(6)}, seconds=6.0)
    out = tmp_path / "m"
    opts = TrainOptions.from_preset("recommended", task="4class", folds=2, epochs=3,
                                    steps_per_epoch=7, batch_size=16, features=TINY_FC)
    assert opts.val_fraction == 0 and opts.sampling == "balanced" and opts.augment
    events = []
    train(data, out, opts, progress=events.append)
    ep = [e for e in events if e.event == "epoch_end"]
    assert len(ep) == 6 and not {"val_loss", "val_auc"} & set(ep[0].metrics)
    card = json.loads((out / "card.json").read_text())
    folds = card["training"]["cv"]["folds"]
    assert [f["n_val"] for f in folds] == [0, 0] and all(f["best_epoch"] is None for f in folds)
    assert card["training"]["cv"]["validation"].startswith("none")
    assert card["training"]["options"]["sampling"] == "balanced"


def test_decide_class_by_flag_thresholds():
    from lungapp.inference.card import decide_class

    C = ["Normal", "CAS", "DAS", "CAS & DAS"]

    def probs(c, d):  # class probabilities from flags, as the card derives them
        return [(1 - c) * (1 - d), c * (1 - d), (1 - c) * d, c * d]

    ft = {"CAS": 0.2, "DAS": 0.3}
    assert decide_class(probs(0.05, 0.05), C, 0.1, 0.3, ft) == "Normal"  # below the threshold
    assert decide_class(probs(0.4, 0.35), C, 0.6, 0.3, ft) == "CAS & DAS"  # both flags reach theirs
    assert decide_class(probs(0.4, 0.35), C, 0.6, 0.3, None) == "CAS"  # argmax: c(1-d) is largest
    assert decide_class(probs(0.25, 0.1), C, 0.5, 0.3, ft) == "CAS"
    assert decide_class(probs(0.1, 0.32), C, 0.5, 0.3, ft) == "DAS"
    # abnormal overall but neither flag at its threshold: the one nearer (0.19/0.2 > 0.2/0.3)
    assert decide_class(probs(0.19, 0.2), C, 0.35, 0.3, ft) == "CAS"


def test_flag_thresholds_chosen_on_out_of_fold_predictions_raise_the_four_class_score():
    from lungapp.training.oof import choose_flag_thresholds, evaluate_oof

    rng = np.random.default_rng(0)
    labels, rows = [], []
    for lab, (mc, md) in {"Normal": (0.05, 0.05), "CAS": (0.45, 0.1), "DAS": (0.1, 0.45),
                          "CAS & DAS": (0.35, 0.35)}.items():
        for _ in range(40):  # both flags of CAS & DAS recordings are moderate, as in SPRSound
            c, d = np.clip([mc + 0.08 * rng.standard_normal(), md + 0.08 * rng.standard_normal()], 0.01, 0.99)
            labels.append(lab)
            rows.append([(1 - c) * (1 - d), c * (1 - d), (1 - c) * d, c * d])
    P = np.array(rows)
    y = np.array([0 if l == "Normal" else 1 for l in labels])
    fold_of = np.arange(len(labels)) % 4
    ft = choose_flag_thresholds(labels, P, 0.2, FOUR_CLASSES)
    assert 0.1 < ft["CAS"] < 0.45 and 0.1 < ft["DAS"] < 0.45
    plain = evaluate_oof(y, labels, P, fold_of, FOUR_CLASSES, "4class")
    rule = evaluate_oof(y, labels, P, fold_of, FOUR_CLASSES, "4class", flag_rule=True)
    assert "flag_thresholds" not in plain and set(rule["flag_thresholds"]) == {"CAS", "DAS"}
    assert rule["four_class"]["argmax_score"] == pytest.approx(plain["four_class"]["score"])
    assert rule["four_class"]["score"] > plain["four_class"]["score"] + 0.05
    assert rule["four_class"]["nested_score"] > plain["four_class"]["nested_score"] + 0.05
    assert rule["four_class"]["confusion"][3][3] > plain["four_class"]["confusion"][3][3]
    assert rule["overall"] == plain["overall"]  # normal-vs-abnormal decisions unchanged
    chk = rule["four_class"]["flag_rule_check"]
    assert chk["adopted"] and chk["ci95"][0] > 0 and chk["thresholds"] == ft
    assert chk["nested_score"] == pytest.approx(rule["four_class"]["nested_score"])
    assert chk["nested_argmax_score"] == pytest.approx(plain["four_class"]["nested_score"])


def _flag_probs(spec: dict, n: int, noise: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels, rows = [], []
    for lab, (mc, md) in spec.items():
        for _ in range(n):
            c, d = np.clip([mc + noise * rng.standard_normal(), md + noise * rng.standard_normal()],
                           0.01, 0.99)
            labels.append(lab)
            rows.append([(1 - c) * (1 - d), c * (1 - d), (1 - c) * d, c * d])
    return labels, np.array(rows)


def test_flag_rule_is_not_adopted_without_a_clear_gain():
    from lungapp.training.oof import evaluate_oof

    # flags far apart: the most probable class is already right, so the rule can only tie
    labels, P = _flag_probs({"Normal": (0.05, 0.05), "CAS": (0.85, 0.1), "DAS": (0.1, 0.85),
                             "CAS & DAS": (0.85, 0.85)}, 30, 0.04)
    y = np.array([0 if l == "Normal" else 1 for l in labels])
    fold_of = np.arange(len(labels)) % 3
    rep = evaluate_oof(y, labels, P, fold_of, FOUR_CLASSES, "4class", flag_rule=True,
                       groups=[f"p{i // 2}" for i in range(len(labels))])
    chk = rep["four_class"]["flag_rule_check"]
    assert not chk["adopted"] and chk["gain"] <= 0 and chk["resampled"] == "patients"
    assert "flag_thresholds" not in rep and "argmax_score" not in rep["four_class"]
    assert rep["four_class"]["rule"].startswith("an abnormal recording gets its most probable")
    assert rep["four_class"]["score"] == pytest.approx(1.0)


def test_paired_gain_interval_resamples_patients_whole():
    from lungapp.training.oof import paired_score_gain

    rng = np.random.default_rng(1)
    labels = list(rng.choice(FOUR_CLASSES, 120))
    a = [l if rng.random() < 0.8 else "Normal" for l in labels]
    b = [l if rng.random() < 0.7 else "Normal" for l in labels]
    once = paired_score_gain(labels, a, b, FOUR_CLASSES)
    # the same recordings four times each, as four recordings of one patient
    rep4 = lambda xs: [x for x in xs for _ in range(4)]  # noqa: E731
    groups = [i for i in range(120) for _ in range(4)]
    by_patient = paired_score_gain(rep4(labels), rep4(a), rep4(b), FOUR_CLASSES, groups)
    by_recording = paired_score_gain(rep4(labels), rep4(a), rep4(b), FOUR_CLASSES)
    width = lambda r: r["ci95"][1] - r["ci95"][0]  # noqa: E731
    assert by_patient["gain"] == pytest.approx(once["gain"]) == pytest.approx(by_recording["gain"])
    assert width(by_patient) == pytest.approx(width(once), rel=0.25)
    assert width(by_recording) < 0.7 * width(by_patient)  # recordings alone: falsely sure
    assert paired_score_gain(labels, a, b, FOUR_CLASSES) == once  # deterministic


def test_window_batches_are_a_pure_function_of_their_index():
    """Keras may make batches ahead of training, or twice (its output-signature probe):
    each batch depends on the seed and its index only, so a run is reproducible."""
    from lungapp.training.dataset import Recording
    from lungapp.training.fit import TrainingWindows, WindowBatches

    rng = np.random.default_rng(0)
    shape = TINY_FC.input_shape
    recs = [Recording(f"r{i}.wav", lab, f"P{i}", rng.random((6, *shape)).astype(np.float16),
                      np.arange(6.0), np.full(6, FOUR_CLASSES.index(lab)), 6.0)
            for i, lab in enumerate(FOUR_CLASSES)]
    opts = TrainOptions.from_preset("recommended", task="4class", features=TINY_FC, batch_size=8,
                                    epochs=2, steps_per_epoch=5)
    assert opts.augment and opts.sampling == "balanced"
    data = TrainingWindows.of(recs, opts, list(FOUR_CLASSES))
    batches = WindowBatches(data, opts, steps=5, seed=3)
    assert len(batches) == 10  # every batch of the run: 2 epochs of 5
    x, y, w = batches[7]
    assert x.shape == (8, *shape) and y.shape == (8, 2) and w.shape == (8,)
    batches[0], batches[9]  # fetched in between, in any order
    for again in (batches[7], WindowBatches(data, opts, steps=5, seed=3)[7]):
        assert all(np.array_equal(a, b) for a, b in zip((x, y, w), again))
    assert not np.array_equal(x, WindowBatches(data, opts, steps=5, seed=4)[7][0])
