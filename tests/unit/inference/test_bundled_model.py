"""The model shipped in resources/model: loads with no configuration, has a valid card
whose numbers are the committed model's, and predicts every bundled example."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from lungapp import paths
from lungapp.inference import registry
from lungapp.inference.card import load_card
from lungapp.inference.predictor import Predictor

EXAMPLES = paths.resources_dir() / "examples"


@pytest.fixture(scope="module")
def bundled():
    d = registry.bundled_model_dir()
    assert d is not None, "resources/model/card.json is missing: the app would ship without a model"
    return Predictor.load(d)


def test_bundled_model_is_the_default_and_its_card_is_valid(bundled, monkeypatch):
    monkeypatch.delenv("LUNGAPP_MODEL", raising=False)
    assert registry.active_model_dir() == registry.bundled_model_dir()
    card = load_card(registry.bundled_model_dir())
    assert card.task == "4class" and card.classes == ["Normal", "CAS", "DAS", "CAS & DAS"]
    m = card.metrics
    assert m.patient_grouped is True
    ov = m.overall
    for key in ("auc", "sensitivity", "specificity", "score", "confusion"):
        assert getattr(ov, key) is not None
    assert ov.score == pytest.approx((ov.sensitivity + ov.specificity) / 2)
    assert sum(map(sum, ov.confusion)) == card.training.data.n_recordings
    # the threshold chosen out of fold, carried onto the calibrated scale the app shows
    assert card.calibration is not None and card.calibration.raw_threshold == pytest.approx(m.threshold)
    assert card.threshold == pytest.approx(card.calibrate(m.threshold))
    # and the card says where the model was checked beyond its training collection
    assert {"SPRSound intra_test", "ICBHI Meditron"} <= {x.name for x in card.external_checks}
    # with how far each figure can be trusted: a 95 % interval over that data's patients
    for x in card.external_checks:
        if x.n_abnormal and x.n_normal:
            assert x.resampled == "patients" and x.n_groups >= 2
            assert x.auc_ci95[0] <= x.auc <= x.auc_ci95[1] and x.score_ci95[0] <= x.score <= x.score_ci95[1]
    # four classes: per-flag thresholds and class pooling were tried on the out-of-fold
    # predictions; each is adopted only where its gain held up with everything chosen on
    # the other folds, and when both are, the one with the better nested score is used
    chk, cp = m.four_class.flag_rule_check, m.four_class.class_pooling_check
    for check in (chk, cp):
        assert check["adopted"] == (check["ci95"][0] > 0) and check["resampled"] == "patients"
    # (a class pooling fixed by the recipe is used whatever its check says)
    used_flags = chk["adopted"] and not chk.get("superseded_by")
    used_pooling = bool(cp.get("fixed")) or (cp["adopted"] and not cp.get("superseded_by"))
    assert not (used_flags and used_pooling)
    assert card.flag_thresholds == ((m.flag_thresholds or {}) if used_flags else {})
    assert card.class_pooling == (cp["chosen"] if used_pooling else "")
    assert cp.get("fixed") in (None, card.class_pooling)
    if chk["adopted"] and cp["adopted"] and not cp.get("fixed"):
        loser = chk if used_pooling else cp
        assert loser["nested_score"] <= (cp if used_pooling else chk)["nested_score"]
    assert m.four_class.nested_score <= m.four_class.score + 0.05
    assert "not a diagnostic device" in card.intended_use.lower()
    assert any("children" in x for x in card.limitations)
    assert "Zhang" in card.training.credits
    # Small: the budget is 10 MB of model files in all.
    size = sum((registry.bundled_model_dir() / f).stat().st_size for f in card.model_files)
    assert size <= 10 * 1024 * 1024


def test_model_card_markdown_matches_card(bundled):
    from lungapp.training.card_text import card_markdown

    text = (registry.bundled_model_dir() / "MODEL_CARD.md").read_text()
    assert text == card_markdown(bundled.card)
    # each way of naming the class that training tried is explained: used, beaten by the
    # other (both passed), not adopted, fixed by the recipe or set aside for it
    fc = bundled.card.metrics.four_class
    rules = {"flag_rule_check": "Per-flag thresholds (CAS, DAS, and CAS & DAS when both flags "
                                "reach theirs)",
             "class_pooling_check": "Naming the class from the flags pooled by"}
    for key, start in rules.items():
        chk = getattr(fc, key)
        if chk.get("fixed"):
            verdict = "is the recipe's rule, used whatever this check says"
        elif chk.get("superseded_by") == "class pooling fixed by the recipe":
            verdict = "tried and not used (the recipe fixes the class pooling"
        elif chk["adopted"] and chk.get("superseded_by"):
            verdict = "passed the same check but scored lower strictly"
        else:
            verdict = "adopted because" if chk["adopted"] else "tried and not adopted"
        sentence = next(x for x in text.split(". ") if x.startswith(start))
        assert verdict in sentence


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.wav")))
def test_bundled_model_predicts_every_example(bundled, name):
    pred = bundled.predict_file(EXAMPLES / name)
    assert pred.duration_s == pytest.approx(15.0, abs=0.01)
    assert sum(pred.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert 0.0 <= pred.abnormal_probability <= 1.0
    assert pred.windows and all(0 <= w.start_s < w.end_s <= 15.0 + 1e-6 for w in pred.windows)
    assert pred.decision in ("normal", "abnormal", "poor quality")
    # every member group's windows are counted: a window every hop_s that fits in 15 s
    read = [{"window_s": g.features.window_s,
             "windows": int(round((15.0 - g.features.window_s) / g.features.hop_s)) + 1}
            for g in bundled.groups]
    assert pred.model["windows_read"] == read and read[0]["windows"] == len(pred.windows)
    if pred.decision == "abnormal":  # the class comes from the card's decision rule
        card = bundled.card
        assert pred.label == card.decide_class([pred.probabilities[c] for c in card.classes],
                                               pred.abnormal_probability)


def test_bundled_model_on_real_recordings(bundled, sprsound_dir):
    """On intra_test (more recordings of the training children: not an independent test,
    an extra check), abnormal recordings get higher abnormal probabilities than normal."""
    import random

    from lungapp.data import binary_label, read_folder

    ds = read_folder(sprsound_dir / "intra_test")
    rng = random.Random(0)
    normal = rng.sample([e for e in ds.examples if binary_label(e.label) == "normal"], 15)
    abnormal = rng.sample([e for e in ds.examples if binary_label(e.label) == "abnormal"], 15)
    pn = [bundled.predict_file(e.path).abnormal_probability for e in normal]
    pa = [bundled.predict_file(e.path).abnormal_probability for e in abnormal]
    assert np.mean(pa) > np.mean(pn)


def test_examples_are_marked_synthetic():
    for js in EXAMPLES.glob("*.json"):
        assert json.loads(js.read_text()).get("synthetic") is True


from lungapp.training.recipes import PRESETS  # noqa: E402
from lungapp.vocabulary import CLASS_POOLINGS  # noqa: E402

MEMBERS = paths.resources_dir().parent / "research" / "bundled_members"


def _kept_members():
    if not MEMBERS.is_dir():
        pytest.skip(f"no kept members in {MEMBERS} (an installed copy has no research/)")
    kept = [(d, d / "oof.npz") for d in sorted(MEMBERS.glob("w*s_seed*"))]
    assert kept, f"{MEMBERS} holds no kept run"
    return kept


def test_kept_members_are_whole_runs_without_the_datasets_labels():
    """research/bundled_members: runs of the bundled recipe kept for recombining, each a
    card, its one model and an out-of-fold file stripped of labels and patient ids."""
    from lungapp.training.combine import check_members

    kept = _kept_members()
    cards = [load_card(d) for d, _ in kept]
    check_members(cards, [d for d, _ in kept])  # one recipe, one file list, one model each
    for (d, oof), card in zip(kept, cards):
        assert d.name == f"w{card.features.window_s:g}s_seed{card.training.cv.seed}"
        assert card.training.cv.grouped_by_patient is True
        # the bundled recipe (2-s windows) or its 4-s twin (the same options but features)
        assert card.training.options["preset"] in ("bundled", "bundled-4s")
        assert card.features in (PRESETS["bundled"]["features"], PRESETS["bundled-4s"]["features"])
        assert (d / card.model_files[0]).is_file()
        with np.load(oof, allow_pickle=False) as z:
            assert not {"label", "patient"} & set(z.files)
            assert len(z["path"]) == card.training.data.n_recordings
            assert z["offsets"][-1] == len(z["window_out"])


@pytest.mark.slow
def test_kept_members_recombine_with_the_labels_they_were_trained_on(sprsound_dir):
    """With the data folder, each kept member's out-of-fold file gives back its own card's
    figures (labels restored from SPRSound train and checked against the member's file list)."""
    from lungapp.training.combine import ensemble_report

    for d, oof in _kept_members():
        report, _ = ensemble_report([(d, oof)], data_root=sprsound_dir / "train")
        want = load_card(d).metrics.overall
        assert report["overall"]["auc"] == pytest.approx(want.auc, abs=1e-12)
        assert report["overall"]["confusion"] == want.confusion


def test_regeneration_runs_both_window_lengths_of_the_bundled_recipe(repo_script, tmp_path):
    """make_bundled_model's runs: the bundled preset and its 4-s twin, which differs from it
    in the window length only (so their runs combine into one mixed ensemble)."""
    import dataclasses

    mod = repo_script("research/make_bundled_model.py")
    out = str(tmp_path / "model")
    for bad in ("bundled", "bundled:x", ":1"):
        with pytest.raises(SystemExit, match="expected PRESET:SEED"):
            mod.main(["--members", "--runs", bad, "--out", out])
    a, b = PRESETS["bundled"], PRESETS["bundled-4s"]
    assert {k for k in a if a[k] != b[k]} == {"features"}
    assert b["features"] == dataclasses.replace(a["features"], window_s=4.0, hop_s=1.0)
    # each member at its own step, or a step for each window length
    assert mod.HOP_S is None or set(mod.HOP_S) == {a["features"].window_s, b["features"].window_s}
    # the class pooling the recipe fixes is the one on the bundled card
    assert mod.CLASS_POOLING in CLASS_POOLINGS
    assert load_card(paths.resources_dir() / "model").class_pooling == mod.CLASS_POOLING
    # --members combines kept runs, named by window length and seed; one not kept is named
    with pytest.raises(SystemExit, match=r"bundled-4s seed 98 is not kept in .*\(no w4s_seed98/oof.npz\)"):
        mod.main(["--members", "--runs", "bundled-4s:98,99; bundled:97", "--out", out])
    assert not (tmp_path / "model").exists()


def test_kept_runs_were_trained_with_their_presets_options():
    """Each kept run's recorded options are its preset's, seed aside: the 4-s run, made as
    `--preset bundled --features <bundled-4s features>`, has exactly `--preset bundled-4s`'s
    options, so the documented command regenerates it."""
    from lungapp.training.recipes import TrainOptions

    for d, _ in _kept_members():
        card = load_card(d)
        got = dict(card.training.options)
        preset = "bundled-4s" if card.features.window_s == 4.0 else "bundled"
        want = TrainOptions.from_preset(preset, task="4class", seed=got["seed"]).to_dict()
        for opts in (got, want):
            opts.pop("preset")
            opts.pop("name")
        assert json.loads(json.dumps(got)) == json.loads(json.dumps(want)), d.name


def test_regeneration_reuses_only_a_finished_run_of_the_same_preset_seed_and_data(
        tmp_path, repo_script, monkeypatch, capsys):
    """make_bundled_model resumes: a run in --work is reused only when it is a finished run
    of the preset and seed asked for, on SPRSound train as it is now, with the out-of-fold
    file that run wrote; anything else is trained again, with the reason printed. The
    training command is recorded here instead of run (it fails, so nothing is combined)."""
    import shutil
    import subprocess
    from datetime import datetime

    mod = repo_script("research/make_bundled_model.py")
    if not mod.DATA.is_dir():
        pytest.skip(f"SPRSound train not found at {mod.DATA}")
    trained = []
    monkeypatch.setattr(subprocess, "call", lambda cmd: trained.append(cmd) or 1)
    src = next(d for d, _ in _kept_members() if load_card(d).training.options["seed"] == 0)
    card = load_card(src)
    preset = card.training.options["preset"]
    created = datetime.fromisoformat(card.created).timestamp()

    def regenerate(runs: str, work) -> tuple[str, tuple[str, int]]:
        """Run the regeneration of ``runs`` in ``work``: its output and the (out, seed) of
        the one training it started."""
        trained.clear()
        assert mod.main(["--runs", runs, "--work", str(work), "--out", str(tmp_path / "model")]) == 1
        (cmd,) = trained
        return capsys.readouterr().out, (cmd[cmd.index("--out") + 1], int(cmd[cmd.index("--seed") + 1]))

    work = tmp_path / "work"
    run, oof = work / f"{preset}_seed0", work / f"{preset}_seed0_oof.npz"
    out, started = regenerate(f"{preset}:0,1", work)
    assert started == (str(run), 0) and "again" not in out  # no finished run
    shutil.copytree(src, run)
    assert "no out-of-fold file" in regenerate(f"{preset}:0,1", work)[0]
    shutil.copy(src / "oof.npz", oof)
    os.utime(oof, (created - 60, created - 60))  # written before the card, as train does
    out, started = regenerate(f"{preset}:0,1", work)
    assert f"reusing {run}" in out and started == (str(work / f"{preset}_seed1"), 1)
    # the same run asked for as another seed or another preset is trained again
    for other, name in ((f"{preset}:5,6", f"{preset}_seed5"), ("other-preset:0,1", "other-preset_seed0")):
        shutil.copytree(src, work / name)
        shutil.copy(oof, work / f"{name}_oof.npz")
        out, started = regenerate(other, work)
        assert f"{preset} seed 0" in out and started[0] == str(work / name)
    os.utime(oof, (created + 600, created + 600))  # an interrupted later run rewrote it
    assert "newer than the run" in regenerate(f"{preset}:0,1", work)[0]
    os.utime(oof, (created - 60, created - 60))
    data = json.loads((run / "card.json").read_text())
    data["training"]["data"]["file_list_sha256"] = "0" * 64
    (run / "card.json").write_text(json.dumps(data))
    assert "other data" in regenerate(f"{preset}:0,1", work)[0]
    (run / "card.json").write_text("{ not json")
    assert "does not load" in regenerate(f"{preset}:0,1", work)[0]
    assert not (tmp_path / "model").exists()


def test_compare_cards_tables_the_committed_model_from_its_card(capsys, tmp_path, repo_script):
    """research/compare_cards.py (the regenerated-vs-committed table) prints the card's
    own figures, and names a folder that is not a model instead of a traceback."""
    mod = repo_script("research/compare_cards.py")
    d = registry.bundled_model_dir()
    card = load_card(d)
    assert mod.main([f"committed={d}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    cells = dict(zip(mod.HEADER, (c.strip() for c in lines[2].strip("|").split("|"))))
    ov = card.metrics.overall
    assert cells["model"] == "committed"
    assert float(cells["AUC"]) == pytest.approx(ov.auc, abs=5e-5)
    assert float(cells["score"]) == pytest.approx(ov.score, abs=5e-4)
    assert float(cells["threshold"]) == pytest.approx(card.threshold, abs=5e-4)
    assert json.loads(cells["confusion [[TN,FP],[FN,TP]]"]) == ov.confusion
    assert float(cells["four-class score"]) == pytest.approx(card.metrics.four_class.score, abs=5e-4)
    assert len(cells["fold AUCs"].split(" / ")) == len(card.metrics.per_fold)
    size = sum((d / f).stat().st_size for f in card.model_files) / 1e6
    assert cells["size"] == f"{len(card.model_files)} files, {size:.2f} MB"

    (tmp_path / "empty").mkdir()
    assert mod.main([str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "empty") in err and "Traceback" not in err
