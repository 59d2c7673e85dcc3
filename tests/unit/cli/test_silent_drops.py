"""Nothing is dropped without a word: evaluate and train list every file they skip (with
the reason) and count them; predict says a WAV is truncated; results and sidecars lungapp
wrote into a data folder do not make it "mixed layouts", and --layout chooses."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lungapp.cli import main
from lungapp.data import read_folder

from tiny_model import RATE, make_signal  # noqa: E402
from train_helpers import binary_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]


def _csv_folder(folder: Path) -> Path:
    rng = np.random.default_rng(4)
    folder.mkdir()
    rows = []
    for i, label in enumerate(["Normal", "CAS", "Normal", "DAS", "Normal", "CAS"]):
        sf.write(folder / f"r{i}.wav", make_signal(label, 3, rng), RATE)
        rows.append([f"r{i}.wav", label])
    rows += [["r0.wav", "Normal"], ["gone.wav", "CAS"]]  # a duplicate row, a missing file
    with open(folder / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([["file", "label"], *rows])
    return folder


def test_evaluate_lists_missing_files_and_duplicate_rows(tiny_model_dir, tmp_path, capsys):
    ds = _csv_folder(tmp_path / "ds")
    assert main(["evaluate", str(ds), "--model", str(tiny_model_dir), "--json"]) == 2  # two rows unusable
    res = json.loads(capsys.readouterr().out)
    why = {Path(u["file"]).name: u["reason"] for u in res["unusable"]}
    assert res["n_unusable"] == 2 and set(why) == {"r0.wav", "gone.wav"}
    assert "listed twice" in why["r0.wav"] and "not found" in why["gone.wav"]
    assert res["n"] == 6


def test_evaluate_lists_an_unreadable_subfolder(tiny_model_dir, tmp_path):
    """Root reads every folder: the command runs in a user namespace (``unshare -U``), where
    the permission bits count."""
    if os.geteuid() == 0 and subprocess.run(["unshare", "-U", "true"], capture_output=True).returncode:
        pytest.skip("running as root and `unshare -U` is not available: permissions cannot be tested")
    ds = binary_dataset(tmp_path / "ds", n_patients=3, per_class=1, seconds=2.0)
    locked = ds / "more"
    locked.mkdir()
    (ds / next(iter(sorted(os.listdir(ds))))).rename(locked / "x.json")
    locked.chmod(0)
    try:
        cmd = [sys.executable, "-m", "lungapp", "evaluate", str(ds), "--model", str(tiny_model_dir)]
        runs = [subprocess.run((["unshare", "-U"] if os.geteuid() == 0 else []) + cmd + extra,
                               cwd=ROOT, capture_output=True, text=True, timeout=300,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
                for extra in ([], ["--json"])]
    finally:
        locked.chmod(0o755)
    assert [r.returncode for r in runs] == [2, 2], runs[0].stderr
    assert f"unusable: {locked}: cannot read this folder (Permission denied)" in runs[0].stdout
    assert "unusable entries 2" in runs[0].stdout  # the folder and the .wav left without its .json
    res = json.loads(runs[1].stdout)
    assert {"file": str(locked), "reason": "cannot read this folder (Permission denied): its files "
            "were skipped"} in res["unusable"]


def test_train_lists_every_skipped_file_and_counts_them(tmp_path):
    from lungapp.training import progress as P
    from lungapp.training.recipes import TrainOptions
    from lungapp.training.train import RunContext, read_training_data

    ds = binary_dataset(tmp_path / "ds", n_patients=4, per_class=1, seconds=2.0)
    jsons = sorted(ds.glob("*.json"))
    jsons[0].write_text("{broken")
    jsons[1].write_text(json.dumps({"record_annotation": "gurgle"}))
    (ds / "lonely.wav").write_bytes((ds / jsons[2].with_suffix(".wav").name).read_bytes())
    events = []
    opts = TrainOptions.from_preset("recommended", folds=2, max_bad_share=0.9)
    data = read_training_data(ds, RunContext(opts, events.append, lambda: False),
                              ["Normal", "Abnormal"])
    lines = [e.message for e in events if isinstance(e, P.Log) and e.message.startswith("skipped ")]
    assert len(data.bad) == 3 and len(lines) == 3
    assert any(str(jsons[0]) in m and "not valid JSON" in m for m in lines)
    assert any(str(jsons[1]) in m and "gurgle" in m for m in lines)
    assert any(str(ds / "lonely.wav") in m and "no annotation" in m for m in lines)
    done = P.Done(out="x", wall_s=1, threshold=0.5, metrics={"auc": 1, "sensitivity": 1,
                  "specificity": 1, "score": 1}, skipped=[{"file": f, "reason": r} for f, r in data.bad])
    assert P.parse(done.to_json()).skipped == done.skipped


def _truncated_wav(path: Path, seconds: float, keep_s: float) -> Path:
    sf.write(path, make_signal("Normal", seconds, np.random.default_rng(1)), RATE, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: 44 + int(keep_s * RATE) * 2])
    return path


def test_predict_reports_a_truncated_wav(tiny_model_dir, tmp_path, capsys):
    cut = _truncated_wav(tmp_path / "cut.wav", 15.0, 5.0)
    whole = tmp_path / "whole.wav"
    sf.write(whole, make_signal("Normal", 5, np.random.default_rng(2)), RATE)
    assert main(["predict", str(cut), str(whole), "--model", str(tiny_model_dir), "--format", "json"]) == 0
    res = {Path(r["file"]).name: r for r in json.loads(capsys.readouterr().out)}
    assert res["cut.wav"]["truncated"] == {"declared_s": 15.0, "present_s": 5.0}
    assert any("header says 15.0 s, the file holds 5.0 s" in n for n in res["cut.wav"]["notes"])
    assert res["whole.wav"]["truncated"] is None
    assert not any("header says" in n for n in res["whole.wav"]["notes"])
    assert main(["predict", str(cut), "--model", str(tiny_model_dir)]) == 0
    assert "Truncated file: the header says 15.0 s" in capsys.readouterr().out
    assert main(["predict", str(cut), "--model", str(tiny_model_dir), "--format", "csv"]) == 0
    (row,) = csv.DictReader(capsys.readouterr().out.splitlines())
    assert row["truncated"] == "15.0/5.0"


def test_files_lungapp_wrote_do_not_make_a_folder_mixed(tiny_model_dir, tmp_path, capsys):
    ds = binary_dataset(tmp_path / "ds", n_patients=3, per_class=1, seconds=2.0)
    # the results of `predict --format csv` saved into the data folder (as Export CSV does)
    assert main(["predict", str(ds), "--model", str(tiny_model_dir), "--format", "csv"]) == 0
    (ds / "results.csv").write_text(capsys.readouterr().out)
    got = read_folder(ds)
    assert got.layout == "sprsound" and len(got.examples) == 6
    assert any("results.csv" in w and "exported by lungapp" in w for w in got.warnings)
    # recordings made by lungapp (with their unlabelled sidecars) inside class folders
    cls = tmp_path / "cls"
    for label in ("Normal", "CAS"):
        (cls / label).mkdir(parents=True)
        for i in range(2):
            wav = cls / label / f"rec{i}.wav"
            sf.write(wav, make_signal(label, 2, np.random.default_rng(i)), RATE)
            wav.with_suffix(".json").write_text(json.dumps({
                "record_annotation": "", "event_annotation": [], "device": "mic",
                "sample_rate": 4000, "app_version": "1"}))
    assert read_folder(cls).layout == "class-folders"


def test_layout_option_chooses_between_layouts(tiny_model_dir, tmp_path, capsys):
    ds = binary_dataset(tmp_path / "ds", n_patients=3, per_class=1, seconds=2.0)
    with open(ds / "manifest.csv", "w", newline="") as f:
        csv.writer(f).writerows([["file", "label"]] + [[p.name, "Normal"] for p in sorted(ds.glob("*.wav"))])
    assert main(["evaluate", str(ds), "--model", str(tiny_model_dir)]) == 2
    assert "mixes dataset layouts" in capsys.readouterr().err
    assert main(["evaluate", str(ds), "--model", str(tiny_model_dir), "--layout", "sprsound", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["layout"] == "sprsound"
    from lungapp.cli import build_parser

    assert build_parser().parse_args(["train", str(ds), "--out", "m", "--layout", "csv"]).layout == "csv"
    from lungapp.errors import DatasetError
    from lungapp.training.recipes import TrainOptions
    from lungapp.training.train import RunContext, read_training_data

    ctx = RunContext(TrainOptions.from_preset("recommended", folds=2), lambda e: None, lambda: False)
    with pytest.raises(DatasetError, match="mixes dataset layouts"):
        read_training_data(ds, ctx, ["Normal", "Abnormal"])
    assert read_training_data(ds, ctx, ["Normal", "Abnormal"], "sprsound").dataset.layout == "sprsound"


def test_train_summary_line_counts_the_skipped_files(capsys):
    from lungapp.cli.train import _Emitter
    from lungapp.training import progress as P

    emit = _Emitter("none", None)
    emit(P.Log(message="skipped /d/a.json: not valid JSON", level="warning"))
    emit(P.Done(out="m", wall_s=3, threshold=0.5, metrics={"auc": 0.9, "sensitivity": 0.8,
                "specificity": 0.7, "score": 0.75}, skipped=[{"file": "/d/a.json", "reason": "x"}]))
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "warning: skipped /d/a.json: not valid JSON"
    assert err[1].startswith("done: m ") and err[1].endswith("; 1 files skipped (listed above)")
