"""Faults that once gave a traceback, each through a real `python -m lungapp` process: a
disk that fills while the model is saved, a file in a folder the user may not read."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mount_helpers import tmpfs  # noqa: E402
from train_helpers import binary_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
TINY_FEATURES = json.dumps({
    "spectrogram": {"rate": 4000, "win_length": 256, "hop_length": 128, "n_fft": 256,
                    "scale": "mel", "n_mels": 32, "fmin": 50.0, "fmax": 2000.0},
    "window_s": 2.0, "hop_s": 1.0, "resize": None})


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.mark.slow
def test_disk_full_while_saving_is_one_line_and_leaves_no_half_model(tmp_path):
    data = binary_dataset(tmp_path / "d", n_patients=4, per_class=1, seconds=2.0)
    with tmpfs(tmp_path / "small", size="64k") as disk:
        out = disk / "model"
        proc = subprocess.run(
            [sys.executable, "-m", "lungapp", "train", str(data), "--out", str(out),
             "--features", TINY_FEATURES, "--folds", "2", "--no-device-shift", "--epochs", "1",
             "--batch-size", "8", "--progress", "json"],
            cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
        left = sorted(p.name for p in disk.iterdir())
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 4, proc.stderr[-2000:]
    assert events[-1]["event"] == "error" and "No space left on device" in events[-1]["message"]
    assert str(out) in events[-1]["message"]
    assert "Traceback" not in proc.stderr
    assert left == []  # no model, no staging folder: nothing half written


def _can_drop_privileges() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-U", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_predict_in_an_unreadable_folder_and_a_too_long_name(tiny_model_dir, tmp_path):
    """Root reads everything, so the test runs predict in a user namespace (``unshare -U``),
    where the permission bits count; an ordinary user runs it directly."""
    if os.geteuid() == 0 and not _can_drop_privileges():
        pytest.skip("running as root and `unshare -U` is not available: permissions cannot be tested")
    x = (0.1 * np.random.default_rng(0).standard_normal(4000 * 6)).astype(np.float32)
    sf.write(tmp_path / "good.wav", x, 4000)
    locked = tmp_path / "locked"
    locked.mkdir()
    sf.write(locked / "inside.wav", x, 4000)
    locked.chmod(0)
    too_long = str(tmp_path / ("a" * 300 + ".wav"))
    cmd = [sys.executable, "-m", "lungapp", "predict", str(tmp_path / "good.wav"),
           str(locked / "inside.wav"), str(locked), too_long, "--model", str(tiny_model_dir),
           "--format", "json"]
    try:
        proc = subprocess.run((["unshare", "-U"] if os.geteuid() == 0 else []) + cmd, cwd=ROOT,
                              env=_env(), capture_output=True, text=True, timeout=300)
    finally:
        locked.chmod(0o755)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    res = {r["file"]: r for r in json.loads(proc.stdout)}
    assert "label" in res[str(tmp_path / "good.wav")]
    assert "no permission to read" in res[str(locked / "inside.wav")]["error"]
    assert res[str(locked)]["error"] == "cannot read this folder (Permission denied)"
    assert "File name too long" in res[too_long]["error"]
