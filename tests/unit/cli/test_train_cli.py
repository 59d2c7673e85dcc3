"""`lungapp train` as the GUI drives it: a real subprocess, JSON lines on stdout, exit
statuses, and cancellation by SIGTERM / SIGINT mid-epoch leaving --out untouched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lungapp.cli.train import EXIT_CANCELLED, EXIT_DATASET  # noqa: E402
from lungapp.training import progress as P  # noqa: E402

from train_helpers import binary_dataset  # noqa: E402

# Each test trains or runs real Keras models: out of the fast inner loop.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
TINY_FEATURES = json.dumps({
    "spectrogram": {"rate": 4000, "win_length": 256, "hop_length": 128, "n_fft": 256,
                    "scale": "mel", "n_mels": 32, "fmin": 50.0, "fmax": 2000.0},
    "window_s": 2.0, "hop_s": 1.0, "resize": None})


def _cmd(data, out, *extra):
    return [sys.executable, "-m", "lungapp", "train", str(data), "--out", str(out),
            "--features", TINY_FEATURES, "--folds", "2", "--no-device-shift", "--progress", "json",
            *extra]


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}


def test_help_does_not_import_keras():
    """`lungapp train --help` (and every command's parser) reads the recipe and
    architecture names without importing Keras / TensorFlow."""
    code = ("import sys, lungapp.cli as c; c.build_parser().parse_args(['train', 'x', '--out', 'y']); "
            "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_json_protocol_lines_only_and_in_order(tmp_path):
    data = binary_dataset(tmp_path / "d", n_patients=6, per_class=1, seconds=3.0)
    out = tmp_path / "model"
    oof = tmp_path / "oof.npz"
    proc = subprocess.run(_cmd(data, out, "--epochs", "2", "--batch-size", "8", "--oof", str(oof)),
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    events = [json.loads(line) for line in lines]  # every stdout line is one JSON object
    kinds = [e["event"] for e in events]
    assert [P.parse(line).event for line in lines] == kinds  # each one a protocol event
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert set(kinds) <= {"start", "extract", "log", "epoch_end", "fold_end", "done"}
    assert kinds.count("epoch_end") == 4 and kinds.count("fold_end") == 2
    first_epoch = kinds.index("epoch_end")
    assert kinds.index("fold_end") > first_epoch and kinds.index("extract") < first_epoch
    ep = events[first_epoch]
    assert (ep["fold"], ep["epoch"], ep["epochs"]) == (1, 1, 2)
    assert {"loss", "accuracy", "lr"} <= set(ep["metrics"])
    done = events[-1]
    assert done["out"] == str(out) and {"auc", "sensitivity", "specificity", "score",
                                        "confusion"} <= set(done["metrics"])
    assert (out / "card.json").is_file()
    assert not any(p.suffix == ".npz" for p in out.iterdir())  # kept out of the model folder

    # The out-of-fold file: every recording once, scored by the fold that held it out; its
    # pooled probabilities give the reported AUC and come from its window outputs.
    import numpy as np

    from lungapp.inference.card import load_card
    from lungapp.inference.predictor import pool_recording
    from lungapp.training.oof import auc_or_nan as _auc

    z = np.load(oof)
    n = len(z["path"])
    assert n == 12 and len(set(z["path"].tolist())) == n and sorted(set(z["fold"].tolist())) == [1, 2]
    assert z["offsets"][-1] == len(z["window_out"]) == len(z["starts"])
    y = np.array([lab != z["classes"][0] for lab in z["label"]])
    assert abs(_auc(y, 1 - z["probs"][:, 0]) - done["metrics"]["auc"]) < 1e-9
    card = load_card(out)
    for i in range(n):
        w = z["window_out"][z["offsets"][i]: z["offsets"][i + 1]]
        assert np.allclose(pool_recording(w.astype(np.float64), card), z["probs"][i], atol=1e-6)
    for p in set(z["patient"].tolist()):  # patient-grouped: a patient's recordings share a fold
        assert len(set(z["fold"][z["patient"] == p].tolist())) == 1


def test_bad_dataset_is_one_error_line_and_status_3(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = subprocess.run(_cmd(tmp_path / "empty", tmp_path / "model", "--epochs", "1"), cwd=ROOT,
                          env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == EXIT_DATASET
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["event"] for e in events] == ["error"]     # refused before the run starts
    assert events[-1]["kind"] == "dataset" and "empty" in events[-1]["message"]
    assert not (tmp_path / "model").exists()
    # ... and before TensorFlow loads (2-3 s and 500 MB for a folder it cannot train on)
    code = ("import sys; from lungapp.cli import main; "
            f"rc = main(['train', {str(tmp_path / 'empty')!r}, '--out', {str(tmp_path / 'model')!r}]); "
            "print(rc, sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.stdout.strip() == f"{EXIT_DATASET} []", proc.stderr[-2000:]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_epoch_cancels_and_leaves_out_untouched(tmp_path, sig):
    data = binary_dataset(tmp_path / "d", n_patients=6, per_class=2, seconds=6.0)
    out = tmp_path / "model"
    out.mkdir()
    (out / "card.json").write_text("the previous model")
    # batch size 1: an epoch is well over 100 steps, so the signal lands inside an epoch
    proc = subprocess.Popen(_cmd(data, out, "--epochs", "200", "--batch-size", "1", "--overwrite"),
                            cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    seen = []
    try:
        for line in proc.stdout:
            seen.append(json.loads(line))
            if seen[-1]["event"] == "epoch_end":
                break
        assert seen and seen[-1]["event"] == "epoch_end", seen
        time.sleep(0.3)
        t0 = time.monotonic()
        proc.send_signal(sig)
        rest = proc.stdout.read()
        rc = proc.wait(timeout=60)
        stopped_in = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == EXIT_CANCELLED
    tail = [json.loads(line) for line in rest.splitlines()]
    assert tail and tail[-1]["event"] == "error" and tail[-1]["kind"] == "cancelled"
    # Lines already in the pipe before the signal are counted too, so on a fast machine an
    # epoch or two may have ended during the 0.3 s wait: the run must stop long before 200.
    assert sum(e["event"] == "epoch_end" for e in tail) <= 3
    assert stopped_in < 30
    assert [p.name for p in out.iterdir()] == ["card.json"]
    assert (out / "card.json").read_text() == "the previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "model"]  # no staging folder left


def test_in_process_json_run_restores_stdout(tmp_path, capfd):
    from lungapp.cli.train import main

    (tmp_path / "empty").mkdir()
    rc = main([str(tmp_path / "empty"), "--out", str(tmp_path / "m"), "--progress", "json"])
    assert rc == EXIT_DATASET
    print("after")
    out = capfd.readouterr().out.splitlines()
    assert [json.loads(line)["event"] for line in out[:-1]] == ["error"]
    assert out[-1] == "after"
