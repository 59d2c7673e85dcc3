"""Add confirmed recordings to a training folder, then train on it for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lungapp.annotation.collect import collect
from lungapp.data import read_folder

from train_helpers import binary_dataset

ROOT = Path(__file__).resolve().parents[3]
TINY_FEATURES = json.dumps({
    "spectrogram": {"rate": 4000, "win_length": 256, "hop_length": 128, "n_fft": 256,
                    "scale": "mel", "n_mels": 32, "fmin": 50.0, "fmax": 2000.0},
    "window_s": 2.0, "hop_s": 1.0, "resize": None})


def _source(tmp_path):
    src = binary_dataset(tmp_path / "src", n_patients=6, per_class=1, seconds=3.0)
    jsons = sorted(src.glob("*.json"))
    unlabelled, pending = jsons[0], jsons[1]
    unlabelled.write_text(json.dumps({"record_annotation": "", "event_annotation": []}))
    data = json.loads(pending.read_text())
    data["suggested_events"] = [{"start": 0, "end": 500, "type": "Wheeze"}]
    pending.write_text(json.dumps(data))
    return src, unlabelled, pending


def test_only_confirmed_recordings_are_added_and_nothing_is_overwritten(tmp_path):
    src, unlabelled, pending = _source(tmp_path)
    out = tmp_path / "train"
    res = collect([src], out, link=True)
    assert len(res["added"]) == 10
    reasons = {Path(s["file"]).stem: s["reason"] for s in res["skipped"]}
    assert reasons == {unlabelled.stem: "not labelled",
                       pending.stem: "has suggestions not yet accepted or rejected"}
    assert all(os.path.islink(p) for p in res["added"])
    ds = read_folder(out)
    assert len(ds.examples) == 10 and not ds.problems and not ds.warnings
    # A different recording of the same name is never overwritten.
    victim = Path(res["added"][0])
    victim.unlink()
    victim.write_bytes(b"RIFF other")
    again = collect([src], out)
    assert any(s["reason"].startswith("a different") for s in again["skipped"])
    assert victim.read_bytes() == b"RIFF other"


@pytest.mark.parametrize("link", [False, True])
def test_a_training_folder_inside_the_source_is_not_collected_again(tmp_path, link):
    """The GUI's folder dialog starts in the recordings' folder: a training folder made there
    must not gather its own copies on the next run (training/training/...)."""
    src, _, _ = _source(tmp_path)
    out = src / "training"
    for _ in range(3):
        res = collect([src], out, link=link)
        assert len(res["added"]) == 10
        assert not [s for s in res["skipped"] if Path(s["file"]).is_relative_to(out)]
    assert not (out / "training").exists()
    assert len(read_folder(out).examples) == 10


def test_a_source_inside_the_training_folder_is_still_collected(tmp_path):
    """Only a training folder inside a source is left out of the scan, not a source that
    lies inside the training folder (train/incoming)."""
    train = tmp_path / "train"
    src, _, _ = _source(train / "incoming")
    res = collect([src], train)
    assert len(res["added"]) == 10


@pytest.mark.slow  # a real (tiny) training run
def test_collected_folder_trains(tmp_path):
    src, _, _ = _source(tmp_path)
    out = tmp_path / "train"
    proc = subprocess.run([sys.executable, "-m", "lungapp", "labels", "collect", str(src),
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "added 10 recordings" in proc.stdout
    model = tmp_path / "model"
    proc = subprocess.run([sys.executable, "-m", "lungapp", "train", str(out), "--out", str(model),
                           "--features", TINY_FEATURES, "--folds", "2", "--no-device-shift",
                           "--epochs", "1", "--batch-size", "8"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (model / "card.json").is_file()
