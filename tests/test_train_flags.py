"""Training with independent sigmoid flags [CAS, DAS] and event-level window labels (the
recommended recipe), end to end on generated recordings with timed events."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from lungapp.model.train import TrainOptions, flag_weights, output_spec, train

sys.path.insert(0, str(Path(__file__).parent))
from test_train import TINY_FC  # noqa: E402
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
    assert summary["metrics"]["auc"] >= 0.7, summary  # generated wheeze/crackles are learnable

    from lungapp.model.inference import Predictor

    pred = Predictor.load(out)
    wav = next(p.with_suffix(".wav") for p in sorted(data.glob("*.json"))
               if json.loads(p.read_text())["record_annotation"] == "CAS & DAS")
    r = pred.predict_file(wav)
    assert sum(r.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert r.windows and set(r.windows[0].probabilities) == set(labels)


def test_balanced_batches_draw_half_from_adventitious_windows():
    from lungapp.model.train import _epoch_order, _positive_sets

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
    ep = [e for e in events if e["event"] == "epoch_end"]
    assert len(ep) == 6 and not {"val_loss", "val_auc"} & set(ep[0]["metrics"])
    card = json.loads((out / "card.json").read_text())
    folds = card["training"]["cv"]["folds"]
    assert [f["n_val"] for f in folds] == [0, 0] and all(f["best_epoch"] is None for f in folds)
    assert card["training"]["cv"]["validation"].startswith("none")
    assert card["training"]["options"]["sampling"] == "balanced"
