"""The inner validation split on small folders: it adapts to what the classes allow (the
stratified splitters refuse more folds than the largest class has recordings), is skipped
with a logged note when nothing can be held out, and is unchanged where it always worked;
a folder whose folds cannot be made at all is one dataset error, not a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_train import tiny_options  # noqa: E402

from lungapp.training.splits import make_folds, validation_folds, validation_split

from train_helpers import make_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]


def _check_split(labels, groups, fit, val):
    assert len(val) and sorted([*fit, *val]) == list(range(len(labels)))
    assert not {groups[i] for i in fit} & {groups[i] for i in val}  # grouped by patient


def test_a_training_fold_of_seven_patients_with_five_and_two_recordings_is_split():
    """The seed preset's case that crashed (`n_splits=7 cannot be greater than the number of
    members in each class`): 7 patients, one recording each, 5 Normal and 2 abnormal."""
    labels = ["Normal"] * 5 + ["Abnormal"] * 2
    groups = [f"P{i}" for i in range(7)]
    assert validation_folds(labels, groups, 0.15) == 5
    for seed in range(5):
        fit, val = validation_split(labels, groups, seed, 0.15)
        _check_split(labels, groups, fit, val)


def test_two_patients_of_two_classes_hold_nothing_out():
    fit, val = validation_split(["Normal", "Abnormal"], ["P1", "P2"], 0, 0.15)
    assert list(fit) == [0, 1] and len(val) == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unchanged_where_the_largest_class_allowed_the_folds(seed):
    """Where the largest class has at least round(1 / fraction) recordings (every folder the
    split worked on before), the split is the one it always was."""
    rng = np.random.default_rng(seed)
    groups = [f"P{i // 2}" for i in range(40)]
    labels = [("Normal", "Abnormal")[int(rng.random() < 0.3)] for _ in groups]
    assert validation_folds(labels, groups, 0.15) == 7
    folds = make_folds(labels, groups, 7, seed)
    y = np.asarray(labels)

    def distance(t):
        return sum(abs(np.mean(y[t] == c) - np.mean(y == c)) for c in set(labels))

    best = min(range(7), key=lambda i: distance(folds.test[i]))
    fit, val = validation_split(labels, groups, seed, 0.15)
    assert list(val) == sorted(folds.test[best]) and list(fit) == list(folds.train(best))


def test_folds_that_cannot_be_made_are_a_dataset_error(tmp_path, monkeypatch):
    """Whatever the folder checks let through, an impossible split is the folder's problem
    (a DatasetError, one line from `lungapp train`), not an internal error."""
    from lungapp.errors import DatasetError
    from lungapp.training import train as T

    data = make_dataset(tmp_path / "d", {f"P{i}": ["Normal", "CAS"] for i in range(4)}, seconds=2.0)

    def refuse(*a, **k):
        raise ValueError("n_splits=2 cannot be greater than the number of members in each class.")

    monkeypatch.setattr(T, "make_folds", refuse)
    with pytest.raises(DatasetError, match="cannot be split into 2 folds"):
        T.train(data, tmp_path / "out", tiny_options(epochs=1))
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_two_patients_per_class_train_without_a_validation_split_and_say_so(tmp_path):
    """Each training fold holds one Normal and one CAS patient: nothing to hold out. The run
    trains (before: the same ValueError) and logs why there is no validation split."""
    from lungapp.training.progress import Log
    from lungapp.training.train import train

    data = make_dataset(tmp_path / "d", {"P1": ["Normal"], "P2": ["Normal"], "P3": ["CAS"],
                                         "P4": ["CAS"]}, seconds=2.0)
    events = []
    s = train(data, tmp_path / "m", tiny_options(epochs=1, device_shift=False), progress=events.append)
    assert s["event"] == "done" and (tmp_path / "m" / "card.json").is_file()
    notes = [e.message for e in events if isinstance(e, Log) and "validation split" in e.message]
    assert len(notes) == 2 and all("too few recordings (2)" in n for n in notes), notes


@pytest.mark.slow
def test_seed_preset_on_fourteen_patients_ten_normal_four_abnormal(tmp_path):
    """The QA run: `lungapp train --preset seed --folds 2 --epochs 1` on 14 recordings of 14
    patients (10 Normal, 4 abnormal) ended in a traceback; it now trains."""
    data = make_dataset(tmp_path / "d", {f"{40000000 + i}": ["Normal" if i < 10 else "CAS"]
                                         for i in range(14)}, seconds=3.0)
    out = tmp_path / "model"
    proc = subprocess.run([sys.executable, "-m", "lungapp", "train", str(data), "--out", str(out),
                           "--preset", "seed", "--folds", "2", "--epochs", "1", "--no-device-shift",
                           "--progress", "json"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 0, (events[-1:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and events[-1]["event"] == "done"
    assert (out / "card.json").is_file()
