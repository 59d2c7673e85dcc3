"""research/errors_by_age.py: a model's false positives and sensitivity per age band."""

from __future__ import annotations

import json

import pytest

from lungapp import paths


def test_age_is_read_from_sprsound_names_only(repo_script):
    mod = repo_script("research/errors_by_age.py")
    assert mod.age_of("40069321_15.3_0_p1_981.flac") == 15.3
    assert mod.age_of("sub/40069321_0.5_1_p4_2.wav") == 0.5
    assert mod.age_of("101_1b1_Al_sc_Meditron.wav") is None  # ICBHI: no age in the name
    assert mod.age_of("a_b_c_d_e.wav") is None
    assert mod.age_of("recording.wav") is None


def test_table_counts_false_positives_and_their_patients_per_band(repo_script):
    mod = repo_script("research/errors_by_age.py")
    ages = [1, 2, 2.5, 4, 7, 12, 12, 10]
    truth = [0, 0, 0, 1, 0, 0, 1, 1]
    called = [1, 1, 0, 1, 1, 0, 0, 1]
    patients = ["a", "a", "b", "c", "d", "e", "e", "f"]
    assert mod.table(ages, truth, called, patients, [3, 6, 10]) == [
        ("under 3", 3, 2, "1 of 2", 0, 0),
        ("3-6", 0, 0, "0 of 0", 1, 1),
        ("6-10", 1, 1, "1 of 1", 0, 0),
        ("10 and over", 1, 0, "0 of 1", 2, 1),  # 10 itself is in the last band
    ]


def test_train_rows_add_up_to_the_bundled_models_cross_validated_confusion(sprsound_dir, repo_script):
    """The train rows decide the kept members' out-of-fold predictions as the app would; over
    all ages they are the card's cross-validated confusion matrix, recording for recording."""
    mod = repo_script("research/errors_by_age.py")
    model = paths.resources_dir() / "model"
    if not (mod.ROOT / "research" / "bundled_members").is_dir():
        pytest.skip("no kept members (an installed copy has no research/)")
    rows = mod.train_rows(model, sprsound_dir / "train", [3, 6, 10])
    (tn, fp), (fn, tp) = json.loads((model / "card.json").read_text())["metrics"]["overall"]["confusion"]
    assert sum(r[1] for r in rows) == tn + fp and sum(r[2] for r in rows) == fp
    assert sum(r[4] for r in rows) == fn + tp and sum(r[5] for r in rows) == tp


def test_history_table_groups_normal_recordings_by_the_childs_other_abnormal_ones(repo_script):
    mod = repo_script("research/errors_by_age.py")
    truth = [0, 0, 0, 0, 0, 1, 0]
    called = [1, 0, 1, 1, 0, 1, 0]
    prob = [0.9, 0.1, 0.6, 0.7, 0.2, 0.8, 0.3]
    others = [0, 0, 1, 2, 3, 5, 7]
    rows = mod.history_table(truth, called, prob, others)
    assert [r[:3] for r in rows] == [("none", 2, 1), ("1-2", 2, 2), ("3 or more", 2, 0)]
    assert [r[3] for r in rows] == pytest.approx([0.5, 0.65, 0.25])  # the abnormal one is left out


def test_train_history_leaves_each_recording_out_of_its_childs_count(sprsound_dir, repo_script):
    """Over the groups the history table holds every normal recording of train once, and its
    false positives are the age table's."""
    mod = repo_script("research/errors_by_age.py")
    model = paths.resources_dir() / "model"
    if not (mod.ROOT / "research" / "bundled_members").is_dir():
        pytest.skip("no kept members (an installed copy has no research/)")
    ages, history = mod.train_rows(model, sprsound_dir / "train", [3, 6, 10], history=True)
    assert sum(r[1] for r in history) == sum(r[1] for r in ages)
    assert sum(r[2] for r in history) == sum(r[2] for r in ages)
    counts = mod.abnormal_counts(sprsound_dir / "train")
    assert sum(counts.values()) == sum(r[4] for r in ages)  # every abnormal recording counted once
