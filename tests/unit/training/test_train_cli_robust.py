"""`lungapp train` on what users give it: a pooling rule the card would refuse, a damaged or
other-network starting model, a folder made at --out during the run, an --oof place that
cannot be written, and a folder where one recording lacks a patient id."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from lungapp.cli.train import EXIT_OUTPUT, EXIT_USAGE, main
from lungapp.training.splits import check_grouping, make_folds

from train_helpers import binary_dataset, make_dataset

QUICK = ["--folds", "2", "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "8",
         "--no-device-shift", "--progress", "json"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return binary_dataset(tmp_path_factory.mktemp("bin"), n_patients=4, per_class=1, seconds=2.0)


@pytest.fixture(scope="module")
def clinic(tmp_path_factory):
    """Four patients with a recording of each of the four classes (the tiny model's task)."""
    return make_dataset(tmp_path_factory.mktemp("clinic"),
                        {f"P{i}": ["Normal", "CAS", "DAS", "CAS & DAS"] for i in range(4)}, seconds=3.0)


def _error(capfd) -> dict:
    lines = [json.loads(x) for x in capfd.readouterr().out.splitlines() if x.strip()]
    return next(e for e in lines if e.get("event") == "error")


@pytest.mark.parametrize("rule", ["topk:x", "topk:0", "topk:-2", "topk:999999"])
def test_a_pooling_rule_the_card_would_refuse_is_refused_before_the_run(folder, tmp_path, capfd, rule):
    # It passed the option check: the run trained, then died with a traceback (exit 1).
    assert main([str(folder), "--out", str(tmp_path / "m"), "--pooling", rule, *QUICK]) == EXIT_USAGE
    e = _error(capfd)
    assert e["kind"] == "options" and "pooling must be one of" in e["message"] and rule in e["message"]
    assert not (tmp_path / "m").exists()


def test_a_starting_model_whose_file_is_damaged_is_a_bad_option(clinic, tiny_model_dir, tmp_path, capfd):
    # Exit 4, kind "output", and Keras's "File not found" about a file that exists.
    start = tmp_path / "start"
    shutil.copytree(tiny_model_dir, start)
    (start / "model.keras").write_bytes(b"not a keras file" * 100)
    assert main([str(clinic), "--out", str(tmp_path / "m"), "--init-from", str(start), *QUICK]) == EXIT_USAGE
    e = _error(capfd)
    assert e["kind"] == "options" and "cannot fine-tune this model: its model.keras cannot be loaded" in e["message"]
    assert not (tmp_path / "m").exists()


def test_another_network_than_the_starting_models_is_refused(clinic, tmp_path, capfd):
    # --arch cnn4 (or a preset's network) was ignored: the run trained the starting model's
    # network, and the card said cnn4.
    from lungapp.inference.card import FOUR_CLASSES, ModelCard, write_card
    from lungapp.inference.features import FeatureConfig, SpectrogramConfig

    start = tmp_path / "start"
    start.mkdir()
    (start / "model.keras").write_bytes(b"")
    fc = FeatureConfig(SpectrogramConfig(rate=4000, win_length=128, hop_length=64, n_fft=128,
                                         scale="mel", n_mels=24), window_s=2.0, hop_s=1.0)
    write_card(start, ModelCard(name="start", version="1", task="4class", classes=list(FOUR_CLASSES),
                                features=fc, model_files=["model.keras"], threshold=0.5,
                                training={"options": {"arch": "lungcnn"}}))
    assert main([str(clinic), "--out", str(tmp_path / "m"), "--init-from", str(start), "--arch", "cnn4",
                 *QUICK]) == EXIT_USAGE
    e = _error(capfd)
    assert "architecture differs: the starting model is lungcnn, the run cnn4" in e["message"]
    from lungapp.training.finetune import start_defaults

    assert start_defaults(str(start), None)["arch"] == "lungcnn"   # what a run without --arch trains


def test_a_folder_made_at_out_during_the_run_is_kept(tmp_path):
    # It was moved aside ("the previous model") and replaced, without --overwrite, though
    # it was not a model; two trainings to one --out replaced each other.
    from lungapp.training.train import _publish_target

    logs = []
    ctx = SimpleNamespace(log=lambda message, level="info": logs.append((level, message)))
    out = tmp_path / "m"
    assert _publish_target(out, False, ctx) == out                       # free: taken
    out.mkdir()
    assert _publish_target(out, False, ctx) == out and not out.exists()  # empty, as checked: taken
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    other = _publish_target(out, True, ctx)                               # not a model: kept
    assert other == tmp_path / "m-2" and (out / "notes.txt").read_text() == "mine"
    assert logs[-1][0] == "warning" and f"this model was written to {other}" in logs[-1][1]
    (out / "notes.txt").unlink()
    (out / "card.json").write_text("{}")                                 # another run's model
    assert _publish_target(out, False, ctx) == tmp_path / "m-2"          # without --overwrite: kept
    assert _publish_target(out, True, ctx) == out                        # with it: replaced (kept aside)


def test_an_oof_place_that_cannot_be_written_is_refused_before_the_run(folder, tmp_path, capfd):
    # The run trained in full, then warned that the file was not written, and exited 0.
    (tmp_path / "afile").write_text("x")
    oof = tmp_path / "afile" / "oof.npz"
    assert main([str(folder), "--out", str(tmp_path / "m"), "--oof", str(oof), *QUICK]) == EXIT_OUTPUT
    e = _error(capfd)
    assert e["kind"] == "output" and e["message"].startswith(f"{oof}: cannot write the file here")


def test_a_recording_without_a_patient_id_does_not_ungroup_the_others():
    # One missing id made every recording its own "patient": all six patients on both sides.
    labels = np.array(["Normal", "CAS"] * 12)
    groups = [f"P{i // 4}" for i in range(24)]
    groups[5] = None
    folds = make_folds(labels, groups, 2, seed=0)
    assert folds.grouped and check_grouping(folds, groups) == []
    assert folds.warnings == ["1 of 24 recordings have no patient id: each is a group of its own (if one "
                              "is another recording's patient, that patient can be on both sides)"]
    by_file = make_folds(labels, [None] * 24, 2, seed=0)
    assert not by_file.grouped and by_file.warnings[0].startswith("no patient ids")


def test_a_folder_where_one_recording_lacks_an_id_is_checked_and_split_by_patient(tmp_path):
    from lungapp.training.dataset import usable_examples
    from lungapp.training.recipes import TrainOptions

    from train_helpers import clinic_csv_folder

    ds = clinic_csv_folder(tmp_path / "ds", 6)
    rows = (ds / "labels.csv").read_text().splitlines()
    rows[3] = rows[3].rsplit(",", 1)[0] + ","                # one empty patient cell
    (ds / "labels.csv").write_text("\n".join(rows) + "\n")
    found = usable_examples(ds, TrainOptions.from_preset("recommended", task="binary", folds=2),
                            ["Normal", "Abnormal"])
    assert found.patients is not None and found.patients.count(None) == 1   # the others' ids kept
