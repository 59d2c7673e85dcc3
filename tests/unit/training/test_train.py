"""The training engine end to end: refusals, a real training on generated recordings,
the model folder it saves (atomically), and the report's figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lungapp.dsp.spectrogram import SpectrogramConfig
from lungapp.errors import DatasetError, LungappError
from lungapp.inference.features import FeatureConfig
from lungapp.training.augment import DEFAULT_POLICY
from lungapp.training.dataset import check_dataset
from lungapp.training.oof import auc_or_nan, card_threshold, evaluate_oof
from lungapp.training.progress import Cancelled
from lungapp.training.recipes import PRESETS, TrainOptions
from lungapp.training.train import train

from train_helpers import binary_dataset, make_dataset  # noqa: E402

# Small features keep test trainings short: 2-s windows of 32 mel bands (61 x 32 inputs).
TINY_FC = FeatureConfig(SpectrogramConfig(rate=4000, win_length=256, hop_length=128, n_fft=256,
                                          scale="mel", n_mels=32, fmin=50.0, fmax=2000.0),
                        window_s=2.0, hop_s=1.0)


def tiny_options(**kw) -> TrainOptions:
    """The recommended recipe on TINY_FC, 2 folds, 8 one-pass epochs with a validation split
    (so the validation curves are exercised), no augmentation unless given."""
    augment = kw.pop("augment", None)
    base = dict(folds=2, epochs=8, batch_size=8, lr=3e-3, features=TINY_FC, early_stopping=0,
                monitor="val_loss", steps_per_epoch=0, val_fraction=0.15)
    base.update(kw)
    opts = TrainOptions.from_preset("recommended", **base)
    opts.augment = augment
    return opts


# ------------------------------------------------------------------------------ refusals


def test_refuses_an_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty"):
        train(tmp_path / "empty", tmp_path / "out", tiny_options())
    assert not (tmp_path / "out").exists()


def test_refuses_one_class_only(tmp_path):
    data = make_dataset(tmp_path / "d", {f"P{i}": ["Normal", "Normal"] for i in range(4)}, seconds=2.0)
    with pytest.raises(DatasetError, match="only one class present \\(Normal: 8"):
        train(data, tmp_path / "out", tiny_options())
    assert not (tmp_path / "out").exists()


def test_refuses_a_class_with_fewer_examples_than_folds(tmp_path):
    data = make_dataset(tmp_path / "d", {"P1": ["Normal", "CAS"], "P2": ["Normal"], "P3": ["Normal"],
                                         "P4": ["Normal"]}, seconds=2.0)
    with pytest.raises(DatasetError, match=r"fewer examples than the 4 folds: Abnormal \(1\)"):
        train(data, tmp_path / "out", tiny_options(folds=4))


def test_refuses_a_class_with_fewer_patients_than_folds(tmp_path):
    # 6 abnormal recordings, but from 2 children only: 3 patient-grouped folds impossible
    data = make_dataset(tmp_path / "d", {"P1": ["Normal", "CAS", "CAS", "CAS"],
                                         "P2": ["Normal", "CAS", "CAS", "CAS"],
                                         "P3": ["Normal"], "P4": ["Normal"]}, seconds=2.0)
    with pytest.raises(DatasetError, match=r"fewer patients than the 3 folds: Abnormal \(2 patients\)"):
        train(data, tmp_path / "out", tiny_options(folds=3))


def test_fewer_folds_is_advised_only_above_the_fewest():
    from lungapp.training.dataset import check_dataset

    labels = ["Normal", "Abnormal", "Abnormal", "Abnormal", "Normal", "Normal"]
    patients = ["P1", "P1", "P1", "P1", "P2", "P3"]  # the abnormal recordings: one child
    for k, advice in ((2, "(add patients)"), (3, "(add patients or use fewer folds)")):
        with pytest.raises(DatasetError, match=f"fewer patients than the {k} folds") as err:
            check_dataset(labels, patients, k, ["Normal", "Abnormal"], "here")
        assert str(err.value).endswith(advice)
    with pytest.raises(DatasetError) as err:
        check_dataset(["Normal", "Normal", "Abnormal"], None, 2, ["Normal", "Abnormal"], "here")
    assert str(err.value).endswith("add recordings")


def test_4class_needs_every_class(tmp_path):
    data = make_dataset(tmp_path / "d", {f"P{i}": ["Normal", "CAS", "DAS"] for i in range(4)},
                        seconds=2.0)
    with pytest.raises(DatasetError, match="CAS & DAS have no examples"):
        train(data, tmp_path / "out", tiny_options(task="4class"))


def test_poor_quality_only_abnormal_is_refused_for_binary(tmp_path):
    data = make_dataset(tmp_path / "d", {f"P{i}": ["Normal", "Poor Quality"] for i in range(4)},
                        seconds=2.0)
    with pytest.raises(DatasetError, match="only one class"):
        train(data, tmp_path / "out", tiny_options())


def test_unreadable_files_over_the_share_abort_and_are_listed(tmp_path):
    data = binary_dataset(tmp_path / "d", n_patients=4, per_class=1, seconds=2.0)
    wavs = sorted(data.glob("*.wav"))
    for w in wavs[:3]:
        w.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(DatasetError) as err:
        train(data, tmp_path / "out", tiny_options(max_bad_share=0.2))
    msg = str(err.value)
    assert "3 of 8 files unreadable" in msg and "more than 20%" in msg
    assert wavs[0].name in msg
    assert not (tmp_path / "out").exists()


def test_check_dataset_messages_name_the_folder():
    with pytest.raises(DatasetError) as err:
        check_dataset([], None, 4, ["Normal", "Abnormal"], "/data/x")
    assert str(err.value).startswith("/data/x: ") and "nothing to train on" in str(err.value)


def test_existing_output_is_not_replaced_without_overwrite(tmp_path):
    data = binary_dataset(tmp_path / "d", n_patients=4, per_class=1, seconds=2.0)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(LungappError, match="already exists"):
        train(data, out, tiny_options())
    assert (out / "keep.txt").read_text() == "mine"


def test_presets_are_valid_and_explicit_options_override_them():
    for name in PRESETS:  # every recipe is a valid run
        opts = TrainOptions.from_preset(name)
        assert opts.preset == name and opts.to_dict()["features"] == PRESETS[name]["features"].to_dict()
    rec = TrainOptions.from_preset("recommended", epochs=3, arch=None)
    assert rec.epochs == 3 and rec.arch == PRESETS["recommended"]["arch"]  # None: the preset's
    rec.augment["gain_db"] = 99.0  # a run's policy is its own copy
    assert TrainOptions.from_preset("recommended").augment["gain_db"] != 99.0
    with pytest.raises(ValueError, match="validation split"):
        TrainOptions.from_preset("recommended", early_stopping=3, val_fraction=0.0)
    with pytest.raises(ValueError, match="unknown preset"):
        TrainOptions.from_preset("best")
    with pytest.raises(ValueError, match="arch must be one of"):
        TrainOptions.from_preset("recommended", arch="vgg")


def test_bundled_preset_is_recommended_at_finer_time_resolution_retrained():
    rec, bun = TrainOptions.from_preset("recommended"), TrainOptions.from_preset("bundled")
    assert bun.artifact == "retrain" and rec.artifact == "ensemble"
    r, b = rec.features.spectrogram, bun.features.spectrogram
    assert (b.hop_length, b.win_length) == (r.hop_length // 2, r.win_length // 2)
    assert (b.rate, b.n_mels, b.fmin, b.fmax) == (r.rate, r.n_mels, r.fmin, r.fmax)
    # everything else is the recommended recipe
    differ = {k for k in PRESETS["recommended"] if PRESETS["recommended"][k] != PRESETS["bundled"][k]}
    assert differ == {"features", "artifact"}
    assert TrainOptions.from_preset("bundled", artifact="ensemble").artifact == "ensemble"


# ---------------------------------------------------------------------------- the report


def test_evaluate_oof_four_class_report():
    classes = ["Normal", "CAS", "DAS", "CAS & DAS"]
    labels = ["Normal"] * 6 + ["CAS"] * 2 + ["DAS"] * 2 + ["CAS & DAS"] * 2
    y = np.array([0 if l == "Normal" else 1 for l in labels])
    probs = np.array([[0.9, 0.05, 0.03, 0.02]] * 6 + [[0.1, 0.8, 0.05, 0.05]] * 2
                     + [[0.2, 0.1, 0.6, 0.1]] * 2 + [[0.3, 0.1, 0.5, 0.1]] * 2)
    fold_of = np.array([0, 1] * 6)
    rep = evaluate_oof(y, labels, probs, fold_of, classes, "4class")
    assert rep["overall"]["auc"] == 1.0 and rep["overall"]["confusion"] == [[6, 0], [0, 6]]
    fc = rep["four_class"]
    assert fc["confusion"][3] == [0, 0, 2, 0]  # CAS & DAS called DAS
    assert fc["sensitivity"] == pytest.approx(4 / 6) and fc["specificity"] == 1.0
    assert len(rep["per_fold"]) == 2 and len(fc["per_fold_score"]) == 2
    assert set(rep["mean_sd"]) == {"auc", "sensitivity", "specificity", "score", "accuracy"}
    assert "other folds" in rep["nested_threshold"]["rule"]


# ------------------------------------------------------------------ a real training run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One real 2-fold training on generated normal / wheeze recordings, one of them an
    unreadable file, saved over an existing model folder (overwrite)."""
    root = tmp_path_factory.mktemp("train_e2e")
    data = binary_dataset(root / "data", n_patients=10, per_class=2, seconds=6.0)
    bad = data / "999_6.0_0_p1_01.wav"
    bad.write_bytes(b"not audio at all")
    (data / "999_6.0_0_p1_01.json").write_text(json.dumps({"record_annotation": "Normal"}))
    out = root / "model"
    out.mkdir()
    (out / "card.json").write_text('{"name": "previous model"}')
    events = []
    opts = tiny_options()
    oof = root / "oof.npz"
    summary = train(data, out, opts, progress=events.append, overwrite=True, oof_path=oof)
    return {"data": data, "out": out, "events": events, "summary": summary, "bad": bad, "oof": oof}


@pytest.mark.slow
def test_training_learns_and_reports_honestly(trained):
    s = trained["summary"]
    assert s["metrics"]["auc"] >= 0.75, s  # wheeze vs breath noise is learnable; chance is 0.5
    card = json.loads((trained["out"] / "card.json").read_text())
    m = card["metrics"]
    assert m["patient_grouped"] is True
    assert 0.0 < m["threshold"] < 1.0 and "out-of-fold" in m["threshold_rule"]
    # the card stores it on the calibrated scale the app shows (the same decisions)
    assert card["threshold"] == pytest.approx(card_threshold({**m, "calibration": card.get("calibration")}))
    o = m["overall"]
    assert o["n"] == 40 and sum(map(sum, o["confusion"])) == 40
    assert o["score"] == pytest.approx((o["sensitivity"] + o["specificity"]) / 2)
    assert len(m["per_fold"]) == 2 and sum(f["n"] for f in m["per_fold"]) == 40
    for key in ("auc", "sensitivity", "specificity", "score", "accuracy"):
        assert m["mean_sd"][key]["mean"] is not None
    assert set(m["pooling_auc"]) >= {"mean", "max"}
    assert m["device_shift"]["shifted"]["n"] == 40 and "auc" in m["device_shift"]["drop"]


def test_oof_file_holds_the_device_shift_check_too(trained):
    """With the device-shift check on, the --oof file also holds the shifted recordings'
    window outputs, which pool to the card's shifted AUC."""
    from lungapp.inference.card import load_card
    from lungapp.inference.predictor import pool_recording
    z = np.load(trained["oof"])
    card = load_card(trained["out"])
    assert z["window_out_shift"].shape == z["window_out"].shape
    assert not np.allclose(z["window_out_shift"], z["window_out"])
    off = z["offsets"]
    shifted = np.array([1 - pool_recording(z["window_out_shift"][off[i]: off[i + 1]].astype(np.float64),
                                           card)[0] for i in range(len(off) - 1)])
    y = z["label"] != z["classes"][0]
    assert auc_or_nan(y, shifted) == pytest.approx(card.metrics.device_shift.shifted.auc, abs=1e-6)


@pytest.mark.slow
def test_a_bad_oof_path_is_refused_first_or_costs_only_the_file(tmp_path, monkeypatch):
    """An --oof file inside the model folder, or where no file can be written, is refused
    before any training; one that cannot be written when the folds are done (the disk
    filled meanwhile) is a warning, and the model is still saved."""
    from lungapp.training import train as train_module

    data = binary_dataset(tmp_path / "d", n_patients=4, per_class=1, seconds=3.0)
    events = []
    with pytest.raises(LungappError, match="outside the model folder"):
        train(data, tmp_path / "m", tiny_options(epochs=1), progress=events.append,
              oof_path=tmp_path / "m" / "oof.npz")
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where a folder would be")
    with pytest.raises(LungappError, match="cannot write the file here"):
        train(data, tmp_path / "m", tiny_options(epochs=1), progress=events.append, oof_path=blocker / "oof.npz")
    assert events == [] and not (tmp_path / "m").exists()
    assert blocker.read_text() == "a file where a folder would be"

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(train_module, "save_oof", full)
    s = train(data, tmp_path / "m", tiny_options(epochs=1, device_shift=False), progress=events.append,
              oof_path=tmp_path / "oof.npz")
    assert (tmp_path / "m" / "card.json").is_file() and s["event"] == "done"
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    assert any("out-of-fold predictions not written" in w for w in card["training"]["warnings"])


def test_card_records_data_options_and_artifact(trained):
    card = json.loads((trained["out"] / "card.json").read_text())
    data = card["training"]["data"]
    assert data["counts"] == {"Normal": 20, "Abnormal": 20} and data["n_patients"] == 10
    assert data["unreadable"] == 1 and data["unreadable_files"] == [trained["bad"].name]
    assert len(data["file_list_sha256"]) == 64 and data["total_duration_s"] == pytest.approx(240, abs=1)
    assert card["training"]["options"]["folds"] == 2 and card["training"]["options"]["epochs"] == 8
    assert card["training"]["cv"]["grouped_by_patient"] is True
    assert card["model_files"] == ["fold1.keras", "fold2.keras"]
    assert "ensemble" in card["training"]["artifact"]
    assert {"keras", "tensorflow", "numpy"} <= set(card["versions"])
    assert any("unreadable" in w for w in card["training"]["warnings"])
    # the balance of frequencies of the 40 recordings it trained on (lungapp.inference.profile)
    prof = card["input_profile"]
    assert prof["recordings"] == 40 and prof["patients"] == 10 and prof["threshold"] > 0
    assert "data" in prof["source"] and len(prof["mean"]) == 10


def test_saved_folder_is_complete_and_replaced_the_old_one(trained):
    out = trained["out"]
    assert sorted(p.name for p in out.iterdir()) == ["card.json", "curves.json", "fold1.keras",
                                                     "fold1.onnx", "fold2.keras", "fold2.onnx"]
    assert not [p for p in out.parent.iterdir() if ".staging-" in p.name or p.name.startswith(".model")]
    # what --overwrite replaced is kept beside it, and the run says where
    backup, = out.parent.glob("model.replaced-*")
    assert (backup / "card.json").read_text() == '{"name": "previous model"}'
    assert any(e.event == "log" and str(backup) in e.message for e in trained["events"])
    curves = json.loads((out / "curves.json").read_text())
    assert len(curves["folds"]) == 2 and len(curves["folds"][0]["curves"]) == 8
    assert {"loss", "val_loss", "val_auc", "lr"} <= set(curves["folds"][0]["curves"][0])


def test_saved_model_predicts_through_the_app(trained):
    from lungapp.inference.predictor import Predictor

    pred = Predictor.load(trained["out"])
    wheeze = next(p for p in sorted(trained["data"].glob("*.json"))
                  if json.loads(p.read_text())["record_annotation"] == "CAS")
    r = pred.predict_file(wheeze.with_suffix(".wav"))
    assert 0.0 <= r.abnormal_probability <= 1.0 and r.windows


def test_progress_events_in_order(trained):
    kinds = [e.event for e in trained["events"]]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert kinds.count("epoch_end") == 16 and kinds.count("fold_end") == 2
    assert kinds.index("extract") < kinds.index("epoch_end")
    ep = next(e for e in trained["events"] if e.event == "epoch_end")
    assert {"loss", "val_loss", "val_auc", "lr"} <= set(ep.metrics) and ep.fold == 1
    assert trained["events"][-1].to_dict() == trained["summary"]  # train() returns the done event


@pytest.mark.slow
def test_failure_while_saving_leaves_out_untouched(tmp_path, monkeypatch):
    import lungapp.inference.card as card_mod

    data = binary_dataset(tmp_path / "d", n_patients=4, per_class=1, seconds=3.0)
    out = tmp_path / "model"
    out.mkdir()
    (out / "card.json").write_text("previous model")

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(card_mod, "write_card", broken)
    with pytest.raises(OSError, match="disk full"):
        train(data, out, tiny_options(epochs=1, device_shift=False), overwrite=True)
    assert [p.name for p in out.iterdir()] == ["card.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "model"]  # no staging folder left


@pytest.mark.slow
def test_cancel_between_batches_leaves_nothing(tmp_path):
    data = binary_dataset(tmp_path / "d", n_patients=4, per_class=1, seconds=3.0)
    seen = []

    def stop():
        return any(e.event == "epoch_end" for e in seen)

    with pytest.raises(Cancelled):
        train(data, tmp_path / "model",
              tiny_options(epochs=50, device_shift=False, augment=dict(DEFAULT_POLICY)),
              progress=seen.append, should_stop=stop)
    assert sum(e.event == "epoch_end" for e in seen) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


def test_distribution_scope_matches_the_visible_gpus():
    """One device (CPU or one GPU): a plain scope; several GPUs: data parallel over all."""
    import tensorflow as tf

    from lungapp.training.fit import distribution_scope

    scope, text = distribution_scope()
    n_gpus = len(tf.config.list_logical_devices("GPU"))
    if n_gpus > 1:
        assert f"over {n_gpus} GPUs" in text
    else:
        assert text == f"single device ({'GPU' if n_gpus else 'CPU'})"
    with scope:
        pass


def test_learning_rate_schedules():
    from lungapp.training.fit import learning_rate

    cosine = learning_rate(tiny_options(lr=0.01, schedule="cosine"), 1000)
    lrs = [float(cosine(s)) for s in range(0, 1001, 5)]
    peak = int(np.argmax(lrs))
    assert max(lrs) == pytest.approx(0.01, rel=1e-5) and 0 < peak * 5 <= 25  # a short warm-up
    assert all(b <= a + 1e-9 for a, b in zip(lrs[peak:], lrs[peak + 1:]))  # then decays
    assert lrs[-1] == pytest.approx(0.0002, rel=1e-3)  # to 2 % of the peak
    assert learning_rate(tiny_options(lr=0.01, schedule="plateau"), 1000) == 0.01
    assert learning_rate(tiny_options(lr=0.01, schedule="constant"), 1000) == 0.01
    with pytest.raises(ValueError, match="validation split"):
        tiny_options(schedule="plateau", val_fraction=0.0)


@pytest.mark.slow
def test_four_class_training_with_event_window_labels(tmp_path):
    data = make_dataset(tmp_path / "d", {f"P{i}": ["Normal", "CAS", "DAS", "CAS & DAS"] for i in range(4)},
                        seconds=3.0)
    s = train(data, tmp_path / "m", tiny_options(task="4class", epochs=1, window_labels="events",
                                                 device_shift=False))
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    assert card["task"] == "4class" and card["classes"] == ["Normal", "CAS", "DAS", "CAS & DAS"]
    four = card["metrics"]["four_class"]
    assert np.array(four["confusion"]).sum() == 16 and set(four["per_class"]) == set(card["classes"])
    assert s["four_class_score"] == four["score"]
    assert card["training"]["options"]["window_labels"] == "events"


@pytest.mark.slow
def test_retrain_artifact_is_one_model_on_all_data(tmp_path):
    """--artifact retrain (the bundled preset's): the CV report as usual, then one model
    trained on every recording is what the folder holds and the app runs."""
    from lungapp.inference.predictor import Predictor

    data = binary_dataset(tmp_path / "d", n_patients=6, per_class=2, seconds=4.0)
    events = []
    s = train(data, tmp_path / "m", tiny_options(epochs=2, artifact="retrain", device_shift=False),
              progress=events.append)
    out = tmp_path / "m"
    card = json.loads((out / "card.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == ["card.json", "curves.json", "model.keras",
                                                     "model.onnx"]
    assert card["model_files"] == ["model.keras"] and s["artifact"] == ["model.keras"]
    assert "retrained on all data" in card["training"]["artifact"]
    assert card["metrics"]["overall"]["n"] == 24  # the CV figures still cover every recording
    finals = [i for i, e in enumerate(events) if e.event == "epoch_end" and e.fold == "final"]
    folds_done = [i for i, e in enumerate(events) if e.event == "fold_end"]
    assert len(finals) == 2 and len(folds_done) == 2  # the final model trains after the folds
    assert max(folds_done) < min(finals)
    pred = Predictor.load(out)
    r = pred.predict_file(sorted(data.glob("*.wav"))[0])
    assert 0.0 <= r.abnormal_probability <= 1.0


def test_window_labels_from_events():
    from lungapp.data.readers import Event
    from lungapp.training.dataset import _window_classes

    events = (Event(0.0, 1.0, "Normal"), Event(1.0, 2.5, "Wheeze"), Event(4.0, 5.0, "Fine Crackle"))
    starts = np.array([0.0, 1.0, 2.3, 3.0])
    fc = TINY_FC  # 2-s windows
    got = _window_classes("CAS & DAS", events, starts, fc, "4class",
                          ["Normal", "CAS", "DAS", "CAS & DAS"], "events")
    # An event counts when it overlaps the window by min(0.25 s, half its length):
    # [0,2]: wheeze 1 s; [1,3]: wheeze 1.5 s; [2.3,4.3]: wheeze 0.2 s (< 0.25 s, not counted)
    # + crackle 0.3 s; [3,5]: crackle
    assert got.tolist() == [1, 1, 2, 2]
    # a 40-ms crackle counts with 30 ms of it inside the window (over half), not with 10 ms
    short = (Event(1.99, 2.03, "Fine Crackle"),)
    got = _window_classes("DAS", short, np.array([0.0, 0.02]), fc, "4class",
                          ["Normal", "CAS", "DAS", "CAS & DAS"], "events")
    assert got.tolist() == [0, 2]
    same = _window_classes("CAS", events, starts, fc, "4class", ["Normal", "CAS", "DAS", "CAS & DAS"],
                           "record")
    assert same.tolist() == [1, 1, 1, 1]


@pytest.mark.slow
def test_mixed_bfloat16_training_saves_float32_models(tmp_path):
    """Training arithmetic in bfloat16 (emulated where the CPU lacks it: slower, same
    result kind): the saved fold models are the plain float32 architecture, the card says
    which arithmetic trained them, and the app loads and runs them."""
    import keras

    from lungapp.inference.predictor import Predictor

    data = binary_dataset(tmp_path / "d", n_patients=10, per_class=2, seconds=6.0)
    s = train(data, tmp_path / "m", tiny_options(precision="mixed_bfloat16", device_shift=False))
    assert s["metrics"]["auc"] >= 0.75, s
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    assert card["training"]["precision"] == "mixed_bfloat16"
    assert card["training"]["options"]["precision"] == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after building
    m = keras.saving.load_model(tmp_path / "m" / "fold1.keras", compile=False)
    assert {layer.dtype_policy.name for layer in m.layers} == {"float32"}
    assert "to_float32" not in [layer.name for layer in m.layers]
    wav = sorted(data.glob("*.wav"))[0]
    r = Predictor.load(tmp_path / "m").predict_file(wav)
    assert sum(r.probabilities.values()) == pytest.approx(1.0, abs=1e-5)


def test_precision_option_and_auto_resolution(monkeypatch):
    from lungapp.training import fit as train_mod

    assert TrainOptions.from_preset("seed").precision == "auto"
    assert TrainOptions.from_preset("recommended").precision == "float32"
    with pytest.raises(ValueError, match="precision"):
        tiny_options(precision="float16")
    assert train_mod.resolve_precision("float32") == "float32"
    for native, expected in ((True, "mixed_bfloat16"), (False, "float32")):
        monkeypatch.setattr(train_mod, "cpu_has_bf16", lambda native=native: native)
        assert train_mod.resolve_precision("auto") == expected  # no GPU on this machine
