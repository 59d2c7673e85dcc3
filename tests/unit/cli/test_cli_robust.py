"""predict, evaluate, info and recalibrate on what users' folders hold: the active model's
fallback said by info too, "." as a model or output folder, a full disk under recalibrate,
files left out said and counted with an honest exit status, linked sub-folders, names
that are not UTF-8, two recordings beside one label file, label files that are FIFOs or
nested past Python's recursion limit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from lungapp.cli import main

from mount_helpers import tmpfs
from tiny_model import RATE, make_signal
from train_helpers import binary_dataset
from train_helpers import clinic_csv_folder as _csv_folder

ROOT = Path(__file__).resolve().parents[3]


def _sprsound_folder(root: Path, n: int = 4) -> Path:
    """``n`` SPRSound-named recordings with their labels (two patients, both classes)."""
    rng = np.random.default_rng(2)
    root.mkdir(parents=True)
    for i in range(n):
        label = "Normal" if i % 2 == 0 else "CAS"
        stem = f"4000000{i % 2}_9.7_1_p1_{100 + i}"
        sf.write(root / f"{stem}.wav", make_signal(label, 3, rng), RATE)
        (root / f"{stem}.json").write_text(json.dumps({"record_annotation": label, "event_annotation": []}))
    return root


def test_info_says_the_bundled_model_stands_in_for_a_missing_active_model(lungapp_home, capsys):
    (lungapp_home / "config").mkdir(parents=True, exist_ok=True)
    (lungapp_home / "config" / "settings.json").write_text(json.dumps({"active_model": "/no/such/model"}))
    assert main(["info"]) == 0
    assert "/no/such/model: the active model's folder is missing; using the bundled model" in capsys.readouterr().err
    assert main(["info", "--json"]) == 0
    out = capsys.readouterr()
    assert "the active model's folder is missing" in json.loads(out.out)["model_note"]


def test_the_current_folder_as_model_or_output(tiny_model_dir, tmp_path, monkeypatch, capsys):
    # "." has no name: a ValueError out of the swap journal's name ("unexpected error").
    wav = tmp_path / "a.wav"
    sf.write(wav, make_signal("Normal", 3, np.random.default_rng(0)), RATE)
    monkeypatch.chdir(tiny_model_dir)
    assert main(["predict", str(wav), "--model", "."]) == 0
    folder = _csv_folder(tmp_path / "clinic", 10, shift=0.08)
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path / "empty")
    capsys.readouterr()
    assert main(["recalibrate", str(folder), "--model", str(tiny_model_dir), "--out", "."]) == 2
    assert capsys.readouterr().err.startswith("lungapp: .: is (or holds) the current folder")
    assert (tmp_path / "empty").is_dir() and not any((tmp_path / "empty").iterdir())


def test_recalibrate_on_a_full_disk_names_the_output(tiny_model_dir, tmp_path, capsys):
    folder = _csv_folder(tmp_path / "clinic", 10, shift=0.08)
    with tmpfs(tmp_path / "small", size="64k") as small:
        assert main(["recalibrate", str(folder), "--model", str(tiny_model_dir), "--out", str(small / "m")]) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err == (f"lungapp: {small / 'm'}: the model folder cannot be written (No space left on device); "
                       "nothing was written there")
        assert os.listdir(small) == []


def test_recalibrate_lists_and_counts_what_it_left_out(tiny_model_dir, tmp_path, capsys):
    folder = _csv_folder(tmp_path / "clinic", 10, shift=0.08)
    (folder / "p0_0.wav").write_bytes(b"not audio at all" * 10)    # unreadable
    with open(folder / "labels.csv", "a") as fh:
        fh.write("gone.wav,CAS,P9\n")                               # listed, not there
    assert main(["recalibrate", str(folder), "--model", str(tiny_model_dir), "--out", str(tmp_path / "m")]) == 2
    out, err = capsys.readouterr()
    assert "left out: 2 recording(s) or label file(s):" in out
    assert f"  {folder / 'p0_0.wav'}: " in out and "gone.wav" in out
    assert "2 file(s) of" in err and "the recalibration was made without them" in err
    assert (tmp_path / "m" / "card.json").is_file()                # made, from the others
    # a folder as mkdir makes it (it was mkdtemp's 0700: unreadable to the clinic's other users)
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "m").stat().st_mode & 0o777 == 0o777 & ~mask


def test_recalibrate_leaves_out_what_the_quality_check_refuses(tmp_path, capsys):
    # The model's probability on a refused recording is noise (the app shows no result for
    # it): the threshold was fitted on it too. The bundled model, synthetic recordings.
    ds = binary_dataset(tmp_path / "ds", n_patients=8, per_class=2, seconds=4.0, rate=8000)
    silent = sorted(ds.glob("*.wav"))[0]
    sf.write(silent, np.zeros(4 * 8000, np.float32), 8000)
    assert main(["recalibrate", str(ds), "--out", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("31 recordings (16 abnormal, 15 normal)")
    assert f"  {silent}: refused by the quality check (the app shows no result for it)" in out


def test_recalibrate_without_patient_ids_prints_no_library_warning(tiny_model_dir, tmp_path):
    folder = _csv_folder(tmp_path / "clinic", 10, shift=0.08)
    text = (folder / "labels.csv").read_text().splitlines()
    (folder / "labels.csv").write_text("\n".join(",".join(r.split(",")[:2]) for r in text) + "\n")
    proc = subprocess.run([sys.executable, "-m", "lungapp", "recalibrate", str(folder), "--model",
                           str(tiny_model_dir), "--out", str(tmp_path / "m")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "UserWarning" not in proc.stderr and "warnings.warn" not in proc.stderr


def test_evaluate_exits_2_when_recordings_could_not_be_scored(tiny_model_dir, tmp_path, capsys):
    folder = _sprsound_folder(tmp_path / "spr")
    next(folder.glob("*.wav")).write_bytes(b"garbage" * 50)
    for extra in ([], ["--json"]):
        assert main(["evaluate", str(folder), "--model", str(tiny_model_dir), *extra]) == 2
        assert "1 file(s) of" in capsys.readouterr().err


def test_predict_follows_a_linked_sub_folder_once(tiny_model_dir, tmp_path, capsys):
    real = tmp_path / "real"
    real.mkdir()
    sf.write(real / "a.wav", make_signal("Normal", 3, np.random.default_rng(0)), RATE)
    visits = tmp_path / "visits"
    visits.mkdir()
    (visits / "linked").symlink_to(real)
    (visits / "again").symlink_to(real)        # a second link to one folder: its files once
    (real / "up").symlink_to(visits)           # a link back up: ends there
    assert main(["predict", str(visits), "--model", str(tiny_model_dir), "--format", "csv"]) == 0
    rows = [r.split(",")[0] for r in capsys.readouterr().out.splitlines()[1:]]
    assert len(rows) == 1 and rows[0].endswith("a.wav")


def test_a_name_that_is_not_utf8_is_printed_under_a_utf8_locale(tiny_model_dir, tmp_path):
    # Under a UTF-8 locale stdout is strict: the name's lone surrogate stopped the table
    # half printed (the CSV printed nothing at all).
    good = tmp_path / "ok.wav"
    sf.write(good, make_signal("Normal", 3, np.random.default_rng(0)), RATE)
    bad = os.path.join(os.fsencode(tmp_path), b"caf\xe9.wav")
    os.link(good, bad)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict", "PYTHONUTF8": "0"}
    for fmt in ("table", "csv"):
        proc = subprocess.run([sys.executable, "-m", "lungapp", "predict", str(good), bad, "--format", fmt,
                               "--model", str(tiny_model_dir)], capture_output=True, env=env)
        assert proc.returncode == 0, proc.stderr
        assert b"caf\xe9.wav" in proc.stdout and b"ok.wav" in proc.stdout


def test_two_recordings_beside_one_label_file_are_said_not_guessed(tiny_model_dir, tmp_path, capsys):
    folder = _sprsound_folder(tmp_path / "spr")
    stem = sorted(folder.glob("*.wav"))[0].stem
    sf.write(folder / f"{stem}.flac", np.zeros(3 * RATE, np.float32), RATE)
    assert main(["evaluate", str(folder), "--model", str(tiny_model_dir), "--json"]) == 2
    res = json.loads(capsys.readouterr().out)
    assert res["n"] == 3
    (why,) = [u["reason"] for u in res["unusable"]]
    assert why.startswith(f"labels of which recording? {stem}.wav and {stem}.flac both sit beside it")


def test_a_label_file_that_is_a_fifo_is_refused_not_waited_on(tiny_model_dir, tmp_path, capsys):
    folder = _sprsound_folder(tmp_path / "spr")
    label = sorted(folder.glob("*.json"))[0]
    label.unlink()
    os.mkfifo(label)
    proc = subprocess.run([sys.executable, "-m", "lungapp", "evaluate", str(folder), "--model", str(tiny_model_dir),
                           "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    (u,) = json.loads(proc.stdout)["unusable"]
    assert u == {"file": str(label), "reason": "cannot read it (not a regular file)"}


def test_a_label_file_nested_past_the_recursion_limit_is_unusable(tiny_model_dir, tmp_path, capsys):
    folder = _sprsound_folder(tmp_path / "spr")
    label = sorted(folder.glob("*.json"))[0]
    label.write_text('{"record_annotation": "Normal", "event_annotation": ' + "[" * 100000 + "]" * 100000 + "}")
    assert main(["evaluate", str(folder), "--model", str(tiny_model_dir), "--json"]) == 2
    res = json.loads(capsys.readouterr().out)
    assert res["unusable"] == [{"file": str(label), "reason": "not valid JSON (nested too deeply)"}]
    assert res["n"] == 3
