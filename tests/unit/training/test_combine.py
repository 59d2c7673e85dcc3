"""Combining finished runs into an ensemble model (lungapp.training.combine): the window
subset of a coarser step, the card's cross-validation from the members' out-of-fold
files, what the app then computes, and members that do not fit together."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from lungapp.dsp.spectrogram import SpectrogramConfig
from lungapp.errors import LungappError
from lungapp.inference.features import FeatureConfig, windows_from_samples
from lungapp.training.combine import combine, ensemble_oof, ensemble_report, window_subset
from lungapp.training.oof import card_threshold, class_pooled_probs, evaluate_oof, pool_probs
from lungapp.training.recipes import TrainOptions
from lungapp.training.train import train
from lungapp.vocabulary import POOLINGS

from train_helpers import make_dataset  # noqa: E402

# Each test trains or runs real Keras models: out of the fast inner loop.
pytestmark = pytest.mark.slow

# 2-s windows every 0.5 s, so that a 1-s ensemble step is a real subset.
FC = FeatureConfig(SpectrogramConfig(rate=4000, win_length=256, hop_length=128, n_fft=256,
                                     scale="mel", n_mels=32, fmin=50.0, fmax=2000.0),
                   window_s=2.0, hop_s=0.5)


@pytest.mark.parametrize("seconds", [1.5, 2.0, 3.0, 3.3, 4.0, 5.75, 7.1])
@pytest.mark.parametrize("m", [2, 3])
def test_window_subset_is_the_coarser_steps_windows(seconds, m):
    x = np.random.default_rng(1).normal(0, 0.1, int(seconds * 4000)).astype(np.float32)
    X, starts = windows_from_samples(x, FC)
    coarse = FeatureConfig(FC.spectrogram, window_s=2.0, hop_s=FC.hop_s * m)
    Xc, starts_c = windows_from_samples(x, coarse)
    sel = window_subset(len(X), m)
    assert np.array_equal(starts[sel], starts_c)
    assert np.array_equal(X[sel], Xc)


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    """Two tiny 4-class runs of one recipe (seeds 0 and 1), each one retrained model with
    its out-of-fold file and the device-shift check."""
    root = tmp_path_factory.mktemp("combine")
    data = make_dataset(root / "d", {f"P{i}": ["Normal", "CAS", "DAS", "CAS & DAS"] for i in range(4)},
                        seconds=3.0)
    out = []
    for seed in (0, 1):
        opts = TrainOptions.from_preset("recommended", task="4class", folds=2, epochs=2, batch_size=8,
                                        lr=3e-3, features=FC, steps_per_epoch=0, seed=seed,
                                        artifact="retrain")
        opts.augment = None
        run = root / f"run{seed}"
        train(data, run, opts, oof_path=root / f"oof{seed}.npz")
        out.append((run, root / f"oof{seed}.npz"))
    return root, data, out


def _oof_mean_probs(pairs, m, key="window_out"):
    zs = [np.load(f) for _, f in pairs]
    order = [str(p) for p in zs[0]["path"]]
    probs, kept = [], []
    for p in order:
        ws = []
        for z in zs:
            i = [str(q) for q in z["path"]].index(p)
            ws.append(z[key][z["offsets"][i]: z["offsets"][i + 1]].astype(np.float64))
        w = np.mean(ws, axis=0)
        kept.append(w[window_subset(len(w), m)])
        probs.append(pool_probs(kept[-1], "mean", ("sigmoid", ["CAS", "DAS"])))
    return zs[0], np.array(probs), kept


@pytest.mark.parametrize("hop_s", [None, 1.0])
def test_card_reports_the_ensembles_own_cross_validation(members, tmp_path, hop_s):
    root, _, pairs = members
    out = tmp_path / "ens"
    report = combine(pairs, out, hop_s=hop_s)
    card = json.loads((out / "card.json").read_text())
    assert card["model_files"] == ["model_1.keras", "model_2.keras"]
    assert card["features"]["hop_s"] == (hop_s or 0.5)
    z0, probs, kept = _oof_mean_probs(pairs, 2 if hop_s else 1)
    classes = [str(c) for c in z0["classes"]]
    y = np.array([lab != classes[0] for lab in z0["label"]]).astype(int)
    expected = evaluate_oof(y, [str(s) for s in z0["label"]], probs, z0["fold"] - 1, classes, "4class",
                            flag_rule=True, groups=[str(p) for p in z0["patient"]],
                            class_probs=class_pooled_probs(kept, "mean", ("sigmoid", ["CAS", "DAS"])))
    # the card stores the chosen threshold on the calibrated scale the app shows
    assert card["threshold"] == pytest.approx(card_threshold(expected))
    assert card.get("calibration") == expected.get("calibration")
    for k in ("auc", "score", "sensitivity", "specificity"):
        assert card["metrics"]["overall"][k] == pytest.approx(expected["overall"][k], abs=1e-9)
    assert card["metrics"]["four_class"]["score"] == pytest.approx(expected["four_class"]["score"])
    got_cp, want_cp = (r["four_class"]["class_pooling_check"] for r in (card["metrics"], expected))
    assert got_cp["chosen"] == want_cp["chosen"] and got_cp["adopted"] == want_cp["adopted"]
    assert got_cp["nested_score"] == pytest.approx(want_cp["nested_score"])
    assert card.get("class_pooling", "") == expected.get("class_pooling", "")
    # each member's training curves are kept beside it, and the card names files that exist
    assert [m["curves_file"] for m in card["training"]["members"]] == ["curves_1.json", "curves_2.json"]
    assert all((out / m["curves_file"]).is_file() for m in card["training"]["members"])
    assert "curves_file" not in card["training"]
    assert report["overall"]["auc"] == card["metrics"]["overall"]["auc"]
    assert "device_shift" in card["metrics"]
    assert [m["seed"] for m in card["training"]["members"]] == [0, 1]
    assert "ensemble of 2 models" in card["training"]["artifact"]


def test_a_class_pooling_fixed_for_the_ensemble_is_on_its_card(members, tmp_path):
    """combine(class_pooling=RULE) / --class-pooling: the card names the classes from the
    flags pooled by RULE whatever the checks say, scored as evaluate_oof scores it; an
    unknown rule is refused before anything is written."""
    from lungapp.training.combine import main as combine_main

    root, _, pairs = members
    out = tmp_path / "fixed"
    assert combine_main([str(out), *(f"{d}:{f}" for d, f in pairs), "--class-pooling",
                         "topk:3"]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["class_pooling"] == "topk:3" and not card.get("flag_thresholds")
    z0, probs, kept = _oof_mean_probs(pairs, 1)
    classes = [str(c) for c in z0["classes"]]
    y = np.array([lab != classes[0] for lab in z0["label"]]).astype(int)
    expected = evaluate_oof(y, [str(s) for s in z0["label"]], probs, z0["fold"] - 1, classes, "4class",
                            flag_rule=True, groups=[str(p) for p in z0["patient"]],
                            class_probs=class_pooled_probs(kept, "mean", ("sigmoid", ["CAS", "DAS"])),
                            class_pooling="topk:3")
    fc = card["metrics"]["four_class"]
    assert fc["class_pooling_check"]["fixed"] == "topk:3"
    assert fc["score"] == pytest.approx(expected["four_class"]["score"])
    assert fc["nested_score"] == pytest.approx(expected["four_class"]["nested_score"])
    assert "fixed by the recipe" in fc["rule"]
    with pytest.raises(LungappError, match="class pooling 'quantile:0.5'"):
        combine(pairs, tmp_path / "bad", class_pooling="quantile:0.5")
    assert not (tmp_path / "bad").exists()


def _keras_outputs(path):
    """The Keras file at ``path`` as a function windows -> outputs (the reference)."""
    from lungapp.inference.predictor import load_keras_model

    model = load_keras_model(path)
    return lambda X: np.asarray(model.predict_on_batch(X))


@pytest.mark.parametrize("runtime", ["onnx", "keras"])
def test_the_app_runs_the_ensemble_as_the_card_describes(members, tmp_path, runtime):
    """The app's prediction with the combined folder equals the members' window outputs
    averaged over the coarser step's windows, then pooled, with either runtime (the
    members' models share one name, as runs of one recipe do)."""
    from lungapp.inference.card import load_card
    from lungapp.inference.predictor import Predictor
    from lungapp.training.card_text import card_markdown

    root, data, pairs = members
    out = tmp_path / "ens"
    combine(pairs, out, hop_s=1.0)
    card = load_card(out)
    assert sorted(o.file for o in card.onnx.values()) == ["model_1.onnx", "model_2.onnx"]
    pred = Predictor.load(out, runtime=runtime)
    assert pred.runtime == runtime
    wav = sorted(data.glob("*.wav"))[1]
    got = pred.predict_file(wav)
    import soundfile as sf

    x, rate = sf.read(wav, dtype="float32")
    X, _ = windows_from_samples(x, FC)
    sel = window_subset(len(X), 2)
    w = np.mean([_keras_outputs(run / "model.keras")(X[sel]) for run, _ in pairs], axis=0)
    expect = pool_probs(w.astype(np.float64), "mean", ("sigmoid", ["CAS", "DAS"]))
    # the app shows the calibrated probabilities: compare on the members' raw scale
    raw = card.uncalibrate_probs(np.array(list(got.probabilities.values())))
    assert list(raw) == pytest.approx(list(expect), abs=1e-5)
    assert len(got.windows) == int(sel.sum())
    text = card_markdown(load_card(out))
    assert "An ensemble of 2 models" in text and "seeds 0, 1" in text


def test_members_that_do_not_fit_together_are_refused(members, tmp_path):
    root, _, pairs = members
    with pytest.raises(LungappError, match="at least two"):
        combine(pairs[:1], tmp_path / "one")
    with pytest.raises(LungappError, match="whole multiple"):
        combine(pairs, tmp_path / "h", hop_s=0.75)
    other = tmp_path / "other"
    shutil.copytree(pairs[1][0], other)
    card = json.loads((other / "card.json").read_text())
    card["training"]["data"]["file_list_sha256"] = "0" * 64
    (other / "card.json").write_text(json.dumps(card))
    with pytest.raises(LungappError, match="other recordings"):
        combine([pairs[0], (other, pairs[1][1])], tmp_path / "x")
    card["training"]["data"]["file_list_sha256"] = json.loads(
        (pairs[0][0] / "card.json").read_text())["training"]["data"]["file_list_sha256"]
    card["features"]["spectrogram"]["n_mels"] = 24
    (other / "card.json").write_text(json.dumps(card))
    with pytest.raises(LungappError, match="spectrogram differs"):
        combine([pairs[0], (other, pairs[1][1])], tmp_path / "y")
    existing = tmp_path / "exists"
    existing.mkdir()
    (existing / "keep.txt").write_text("user data")
    with pytest.raises(LungappError, match="already exists"):
        combine(pairs, existing)
    assert (existing / "keep.txt").read_text() == "user data"


def test_kept_members_recombine_to_the_same_card_without_the_datasets_labels(members, tmp_path):
    """keep_runs (what make_bundled_model keeps) stores each member with its out-of-fold
    file stripped of labels and patient ids; combining the kept members reads them again
    from the data folder and gives the same card as the runs themselves."""
    from lungapp.training.combine import keep_runs, kept_runs

    root, data, pairs = members
    want = combine(pairs, tmp_path / "direct", hop_s=1.0)
    kept = tmp_path / "kept"
    keep_runs(pairs, kept)
    again = kept_runs(kept)
    assert [d.name for d, _ in again] == ["w2s_seed0", "w2s_seed1"]
    for (d, oof), (run, _) in zip(again, pairs):
        with np.load(oof) as z:
            assert "label" not in z.files and "patient" not in z.files
            assert len(z["window_out"]) > 0
        assert (d / "model.keras").read_bytes() == (run / "model.keras").read_bytes()
        assert (d / "card.json").is_file() and (d / "curves.json").is_file()
    got = combine(again, tmp_path / "kept_ens", hop_s=1.0, data_root=data)
    for k in ("auc", "score", "sensitivity", "specificity", "threshold"):
        assert got["overall"][k] == pytest.approx(want["overall"][k], abs=1e-12)
    assert got["overall"]["confusion"] == want["overall"]["confusion"]
    assert got["four_class"]["score"] == pytest.approx(want["four_class"]["score"], abs=1e-12)
    # keeping again replaces the folder as a whole (one member now)
    keep_runs(pairs[1:], kept)
    assert [d.name for d, _ in kept_runs(kept)] == ["w2s_seed1"]


def test_kept_runs_are_ordered_by_window_length_then_seed(tmp_path):
    """The first kept run sets an ensemble's timeline: order by number, not by text (a
    10-s run after the 2-s ones, seed 10 after seed 2); other folders are not runs."""
    from lungapp.training.combine import kept_runs

    for name in ("w10s_seed0", "w2s_seed10", "w4s_seed1", "w2s_seed2", "w2.5s_seed0",
                 "w2s_seedX", "w2s_seed3"):
        (tmp_path / name).mkdir()
        if name != "w2s_seed3":  # no out-of-fold file: not a kept run
            (tmp_path / name / "oof.npz").write_bytes(b"")
    assert [d.name for d, _ in kept_runs(tmp_path)] == [
        "w2s_seed2", "w2s_seed10", "w2.5s_seed0", "w4s_seed1", "w10s_seed0"]


def test_stripped_out_of_fold_files_need_the_members_own_labels(members, tmp_path):
    from lungapp.training.combine import strip_oof

    root, data, pairs = members
    stripped = []
    for i, (run, oof) in enumerate(pairs):
        strip_oof(oof, tmp_path / f"s{i}.npz")
        stripped.append((run, tmp_path / f"s{i}.npz"))
    with pytest.raises(LungappError, match="holds no labels"):
        combine(stripped, tmp_path / "a")
    # a data folder whose labels changed since training is refused, naming the file
    changed = tmp_path / "changed"
    shutil.copytree(data, changed)
    js = sorted(changed.glob("*.json"))[0]
    ann = json.loads(js.read_text())
    ann["record_annotation"] = "Normal" if ann["record_annotation"] != "Normal" else "CAS"
    js.write_text(json.dumps(ann))
    with pytest.raises(LungappError, match="not those the member was trained on") as err:
        combine(stripped, tmp_path / "b", data_root=changed)
    assert "s0.npz" in str(err.value)
    # a folder missing recordings
    fewer = tmp_path / "fewer"
    shutil.copytree(data, fewer)
    for f in sorted(fewer.glob(sorted(fewer.glob("*.wav"))[0].stem + ".*")):
        f.unlink()
    with pytest.raises(LungappError, match="1 of the out-of-fold file's recordings are not in"):
        combine(stripped, tmp_path / "c", data_root=fewer)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_one_members_report_is_its_own_cards(members):
    """ensemble_report of a single run at its own step repeats the run's card (the same
    out-of-fold predictions, evaluated the same way)."""
    root, _, pairs = members
    run, oof = pairs[0]
    card = json.loads((run / "card.json").read_text())
    report, fcs = ensemble_report([(run, oof)])
    assert len(fcs) == 1 and fcs[0].hop_s == 0.5
    for k in ("auc", "score", "sensitivity", "specificity"):
        assert report["overall"][k] == pytest.approx(card["metrics"]["overall"][k], abs=1e-12)
    assert report["overall"]["confusion"] == card["metrics"]["overall"]["confusion"]
    assert report["four_class"]["score"] == pytest.approx(card["metrics"]["four_class"]["score"])


def test_ensemble_oof_pools_the_abnormal_probability_by_the_rules_asked_for(members):
    """``pool_rules`` replaces the default rules of ``alt``; each is the windows pooled so."""
    _, _, pairs = members
    z0, mean_probs, kept = _oof_mean_probs(pairs, 1)
    e = ensemble_oof(pairs, pool_rules=("mean", "quantile:0.5", "quantile:0.25"))
    assert list(e.alt) == ["mean", "quantile:0.5", "quantile:0.25"]
    assert np.allclose(e.alt["mean"], 1 - mean_probs[:, 0])
    spec = ("sigmoid", ["CAS", "DAS"])
    for rule in ("quantile:0.5", "quantile:0.25"):
        want = [1 - pool_probs(w, rule, spec)[0] for w in kept]
        assert np.allclose(e.alt[rule], want)
    assert not np.allclose(e.alt["quantile:0.25"], e.alt["mean"])
    assert tuple(ensemble_oof(pairs).alt) == POOLINGS


def test_ensemble_steps_benchmark_tables_every_subset(members, capsys, repo_script):
    root, data, pairs = members
    mod = repo_script("research/ensemble_steps.py")
    assert mod.main([f"{r}:{o}" for r, o in pairs] + ["--seconds", "3"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")][1:]
    # 1 and 2 members, at 0.5 s and 1 s; model calls for 3 s: 3 windows at 0.5 s, 2 at 1 s
    got = [tuple(c.strip() for c in row.strip("|").split("|"))[:4] for row in rows]
    assert got == [("1 x 2 s", "1", "2", "2"), ("1 x 2 s", "0.5", "3", "2"), ("2 x 2 s", "1", "4", "1"),
                   ("2 x 2 s", "0.5", "6", "1")]


def test_ensemble_steps_each_subset_of_a_make_up_with_fixed_class_pooling(members, capsys, repo_script):
    """--make-up / --including / --class-pooling / --each: one row per subset of that
    make-up holding a named run, each row equal to ensemble_report's figures, then the
    count of subsets reaching each target."""
    root, data, pairs = members
    mod = repo_script("research/ensemble_steps.py")
    runs = [f"{r}:{o}" for r, o in pairs]
    assert mod.main(runs + ["--make-up", "2=1", "--including", "run1", "--class-pooling",
                            "quantile:0.75", "--own-steps", "--each"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == 1  # of the two one-run subsets, only run1 holds run1
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    report, _ = ensemble_report([pairs[1]], class_pooling="quantile:0.75")
    assert cells[:2] == ["run1", "0.5"]
    assert float(cells[2]) == pytest.approx(report["overall"]["auc"], abs=5e-5)
    assert float(cells[5]) == pytest.approx(report["four_class"]["nested_score"], abs=5e-5)
    ok = int(report["four_class"]["nested_score"] >= 0.75)
    assert f"four-class nested >= 0.75: {ok} of 1 subsets" in out
    assert "named by quantile:0.75, fixed" in out

    assert mod.main(runs + ["--make-up", "2=2", "--each", "--own-steps"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")][1:]
    assert [r.split("|")[1].strip() for r in rows] == ["run0 + run1"]


def test_ensemble_steps_refuses_bad_filters(members, capsys, repo_script):
    root, data, pairs = members
    mod = repo_script("research/ensemble_steps.py")
    runs = [f"{r}:{o}" for r, o in pairs]
    with pytest.raises(SystemExit) as exc:
        mod.main(runs + ["--make-up", "2:2"])
    assert exc.value.code == 2 and "--make-up '2:2'" in capsys.readouterr().err
    assert mod.main(runs + ["--including", "run9"]) == 2
    assert "--including run9: not among the members (run0, run1)" in capsys.readouterr().err
    assert mod.main(runs + ["--make-up", "4=1"]) == 2
    assert "no subset of the members has that make-up" in capsys.readouterr().err


def test_flag_separation_benchmark_ranks_each_flag(members, capsys, repo_script):
    """research/flag_separation.py: per run, the q75-pooled flags' AUCs among abnormal
    recordings and against Normal ones, as computed directly from the out-of-fold file."""
    from sklearn.metrics import roc_auc_score

    root, data, pairs = members
    mod = repo_script("research/flag_separation.py")
    assert mod.main([f"{r}:{o}" for r, o in pairs]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert rows[0].split("|")[3:7] == [" CAS in abnormal ", " DAS in abnormal ", " CAS vs Normal ",
                                       " DAS vs Normal "]
    assert [r.split("|")[1].strip() for r in rows[1:]] == ["run0", "run1"]
    z = np.load(pairs[1][1])
    off, labels = z["offsets"], np.array([str(v) for v in z["label"]])
    q = np.stack([np.quantile(z["window_out"][off[i]: off[i + 1]].astype(np.float64), 0.75, axis=0)
                  for i in range(len(labels))])
    abn, das = labels != "Normal", np.isin(labels, ["DAS", "CAS & DAS"])
    cells = [c.strip() for c in rows[2].strip("|").split("|")]
    assert float(cells[3]) == pytest.approx(roc_auc_score(das[abn], q[abn, 1]), abs=5e-5)
    vs = das | ~abn
    assert float(cells[5]) == pytest.approx(roc_auc_score(das[vs], q[vs, 1]), abs=5e-5)


def test_flag_separation_refuses_runs_without_flags(members, capsys, repo_script):
    mod = repo_script("research/flag_separation.py")
    with pytest.raises(SystemExit) as exc:
        mod.main(["run0"])
    assert exc.value.code == 2 and "'run0': expected RUN:OOF" in capsys.readouterr().err
    z = dict(np.load(members[2][0][1]))
    z["outputs"] = np.array(["abnormal"])
    with pytest.raises(LungappError, match=r"oof0.npz: the run's outputs are \['abnormal'\]"):
        mod.separation(z, "quantile:0.75", members[2][0][1])
    # a class absent from the recordings: its AUCs are n/a, not an error
    z = dict(np.load(members[2][0][1]))
    z["label"] = np.where(z["label"] == "CAS", "Normal", z["label"])
    z["label"] = np.where(z["label"] == "CAS & DAS", "DAS", z["label"])
    r = mod.separation(z, "quantile:0.75")
    assert r["CAS in abnormal"] is None and r["CAS vs Normal"] is None and r["DAS vs Normal"] is not None


# ---------------------------------------------------------------- mixed window lengths
SHORT = FeatureConfig(FC.spectrogram, window_s=1.0, hop_s=0.5)


@pytest.fixture(scope="module")
def short_member(members):
    """A third run of the recipe on 1-s windows of the same spectrogram (seed 0)."""
    root, data, _ = members
    opts = TrainOptions.from_preset("recommended", task="4class", folds=2, epochs=2, batch_size=8,
                                    lr=3e-3, features=SHORT, steps_per_epoch=0, seed=0,
                                    artifact="retrain")
    opts.augment = None
    run = root / "run_short"
    train(data, run, opts, oof_path=root / "oof_short.npz")
    return run, root / "oof_short.npz"


def _windows_of(z, path, key="window_out"):
    i = [str(q) for q in z["path"]].index(path)
    return z[key][z["offsets"][i]: z["offsets"][i + 1]].astype(np.float64)


def test_a_mixed_ensembles_card_pools_each_window_length_then_averages(members, short_member, tmp_path):
    """Members on 2-s and 1-s windows: the 2-s members are averaged window by window (at
    the 1-s step), the 1-s member pooled on its own windows, and the pooled flags averaged
    over the three members; the card lists each member's features."""
    from lungapp.inference.card import load_card
    from lungapp.training.oof import auc_or_nan as _auc

    root, _, pairs = members
    out = tmp_path / "mixed"
    report = combine(pairs + [short_member], out, hop_s={2.0: 1.0})
    card = load_card(out)
    assert card.features == FeatureConfig(FC.spectrogram, window_s=2.0, hop_s=1.0)
    assert card.member_features == [card.features, card.features, SHORT]
    assert [len(f) for _, f in card.member_groups()] == [2, 1]
    assert "member 3: 1-s windows every 0.5 s" in card.training.artifact
    from lungapp.training.card_text import card_markdown

    text = card_markdown(card)
    assert "seeds 0, 1 on 2-s windows and seed 0 on 1-s windows" in text
    assert "2 models on 2-s windows every 1 s; 1 model on 1-s windows every 0.5 s" in text
    zs = [np.load(f) for _, f in pairs + [short_member]]
    order = [str(p) for p in zs[0]["path"]]
    y, p_abn = [], []
    for path in order:
        a = np.mean([_windows_of(z, path) for z in zs[:2]], axis=0)
        a = a[window_subset(len(a), 2)]
        b = _windows_of(zs[2], path)
        flags = (2 * a.mean(axis=0) + b.mean(axis=0)) / 3
        p_abn.append(1 - (1 - flags[0]) * (1 - flags[1]))
        y.append(int(str(zs[0]["label"][order.index(path)]) != "Normal"))
    assert report["overall"]["auc"] == pytest.approx(_auc(np.array(y), np.array(p_abn)), abs=1e-12)
    # a member group pooled apart is not the same as one averaged window by window
    homog = combine(pairs, tmp_path / "two", hop_s=1.0)
    assert report["overall"]["auc"] != homog["overall"]["auc"]


@pytest.mark.parametrize("runtime", ["onnx", "keras"])
@pytest.mark.parametrize("seconds", [3.0, 1.5])
def test_the_app_runs_a_mixed_ensemble_as_the_card_describes(members, short_member, tmp_path,
                                                               runtime, seconds):
    """Predictions of the mixed folder equal each group's members run on their own windows,
    pooled per group and averaged by members; the timeline is the 2-s windows with the 1-s
    member's windows that cover each centre averaged in. A recording shorter than the
    longest window (1.5 s) takes the padded path."""
    from lungapp.inference.predictor import Predictor, outputs_to_classes

    root, data, pairs = members
    out = tmp_path / "mixed"
    combine(pairs + [short_member], out, hop_s={2.0: 1.0})
    pred = Predictor.load(out, runtime=runtime)
    assert pred.runtime == runtime and [g.members for g in pred.groups] == [2, 1]
    x = np.random.default_rng(3).normal(0, 0.05, int(seconds * 4000)).astype(np.float32)
    x[1000:1400] += 0.5 * np.sin(np.arange(400) * 2 * np.pi * 400 / 4000).astype(np.float32)
    got = pred.predict_audio(x, 4000)
    long_fc = FeatureConfig(FC.spectrogram, window_s=2.0, hop_s=1.0)
    Xa, sa = windows_from_samples(x, long_fc)
    Xb, sb = windows_from_samples(x, SHORT)
    a = np.mean([_keras_outputs(run / "model.keras")(Xa) for run, _ in pairs], axis=0).astype(np.float64)
    b = _keras_outputs(short_member[0] / "model.keras")(Xb).astype(np.float64)
    flags = (2 * a.mean(axis=0) + b.mean(axis=0)) / 3
    # the app shows calibrated probabilities: compare on the members' raw scale
    raw = pred.card.uncalibrate
    assert raw(got.abnormal_probability) == pytest.approx(1 - (1 - flags[0]) * (1 - flags[1]), abs=1e-5)
    assert [w.start_s for w in got.windows] == pytest.approx(list(sa))
    for w, row, s in zip(got.windows, a, sa):
        c = s + 1.0
        inside = (sb <= c) & (c < sb + 1.0)
        want = outputs_to_classes(((2 * row + b[inside].mean(axis=0)) / 3)[None], pred.card)[0]
        assert raw(w.abnormal_probability) == pytest.approx(1 - want[0], abs=1e-5)


def test_timeline_outputs_average_the_windows_covering_each_centre():
    from lungapp.inference.predictor import timeline_outputs

    a = np.array([[0.2], [0.4]])  # 2-s windows at 0 and 1 s: centres 1 and 2 s
    b = np.array([[1.0], [0.0], [0.5]])  # 1-s windows at 0.5, 1.5 and 5 s
    got = timeline_outputs([a, b], [np.array([0.0, 1.0]), np.array([0.5, 1.5, 5.0])], [2.0, 1.0], [3, 1])
    # centre 1 s lies in [0.5, 1.5); centre 2 s in [1.5, 2.5)
    assert got[:, 0] == pytest.approx([0.75 * 0.2 + 0.25 * 1.0, 0.75 * 0.4 + 0.25 * 0.0])
    # no window covers the centre: the nearest one counts
    far = timeline_outputs([a[:1], b[2:]], [np.array([0.0]), np.array([5.0])], [2.0, 1.0], [1, 1])
    assert far[0, 0] == pytest.approx(0.35)
    assert np.array_equal(timeline_outputs([a], [np.array([0.0, 1.0])], [2.0], [4]), a)


def test_member_features_are_validated_and_round_trip():
    from lungapp.inference.card import ModelCard

    fc2 = FeatureConfig(FC.spectrogram, window_s=2.0, hop_s=1.0)
    base = dict(name="m", version="1", task="4class", classes=["Normal", "CAS", "DAS", "CAS & DAS"],
                features=fc2, model_files=["a.keras", "b.keras"], output_kind="sigmoid",
                outputs=["CAS", "DAS"])
    card = ModelCard(**base, member_features=[fc2, SHORT])
    again = ModelCard.from_dict(json.loads(json.dumps(card.to_dict())))
    assert again.member_features == [fc2, SHORT] and again.member_groups() == [(fc2, ["a.keras"]),
                                                                                 (SHORT, ["b.keras"])]
    assert ModelCard(**base).member_groups() == [(fc2, ["a.keras", "b.keras"])]
    with pytest.raises(ValueError, match="one feature config per model file"):
        ModelCard(**base, member_features=[fc2])
    with pytest.raises(ValueError, match="start with the card's features"):
        ModelCard(**base, member_features=[SHORT, fc2])
    other = FeatureConfig(SpectrogramConfig(rate=4000, win_length=256, hop_length=64, n_fft=256,
                                            scale="mel", n_mels=32, fmin=50.0, fmax=2000.0), window_s=1.0)
    with pytest.raises(ValueError, match="same spectrogram"):
        ModelCard(**base, member_features=[fc2, other])


def test_hop_steps_parse_per_window_length():
    from lungapp.training.combine import main, parse_hops

    assert parse_hops(None) is None and parse_hops(["1"]) == 1.0
    assert parse_hops(["2=1", "4=2"]) == {2.0: 1.0, 4.0: 2.0}
    for bad in (["x"], ["2=0"], ["1", "2"], ["2=a"]):
        with pytest.raises(ValueError):
            parse_hops(bad)
    with pytest.raises(SystemExit):
        main(["out", "a:b", "--hop-s", "2=-1"])


def test_kept_members_of_an_ensemble_card_are_its_kept_runs(tmp_path):
    from lungapp import paths
    from lungapp.inference.card import load_card
    from lungapp.training.combine import kept_members_of, kept_name

    card = load_card(paths.resources_dir() / "model")
    names = [kept_name(m["window_s"], m["seed"]) for m in card.training.to_dict()["members"]]
    with pytest.raises(LungappError, match=f"member {names[0]} is not kept"):
        kept_members_of(card, tmp_path)
    for n in names:
        (tmp_path / n).mkdir()
        (tmp_path / n / "oof.npz").write_bytes(b"")
    assert kept_members_of(card, tmp_path) == [(tmp_path / n, tmp_path / n / "oof.npz") for n in names]
