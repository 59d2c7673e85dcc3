"""`lungapp --smoke-test FILE` (packaging/smoke.sh's window check): the real window opens
the file, shows its result and quits, printing one JSON line; a failure exits 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.gui
ROOT = Path(__file__).resolve().parents[2]
WHEEZE = ROOT / "resources" / "examples" / "synthetic_wheeze.wav"


def smoke(*args, timeout=180):
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}  # the real X server
    return subprocess.run([sys.executable, "-m", "lungapp", "--smoke-test", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_smoke_mode_shows_the_examples_result_in_the_window():
    want = subprocess.run([sys.executable, "-m", "lungapp", "predict", "--format", "json", str(WHEEZE)],
                          capture_output=True, text=True, timeout=180)
    label = json.loads(want.stdout)[0]["label"]
    proc = smoke(WHEEZE)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["label"] == label
    assert label in out["headline"]  # the result panel shows it
    assert out["window_title"].startswith("lungapp")
    assert out["window_shown"] <= out["result"]


def test_smoke_mode_fails_on_a_file_it_cannot_analyse(tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really a wave file")
    proc = smoke(bad)
    assert proc.returncode == 1
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "label" not in out and out["error"]


def test_smoke_mode_usage_errors():
    assert smoke().returncode == 2
    missing = smoke("/nonexistent/x.wav")
    assert missing.returncode == 2 and "/nonexistent/x.wav" in missing.stderr


def test_train_tab_says_what_a_build_without_tensorflow_lacks(qtbot, monkeypatch):
    import lungapp.training
    from lungapp.gui.app import create_window

    monkeypatch.setattr(lungapp.training, "_tensorflow_present", lambda: False)
    win = create_window([], load_model=False)
    qtbot.addWidget(win)
    from PySide6.QtWidgets import QLabel

    texts = [w.text() for w in win.train.findChildren(QLabel)]
    assert any("Training is unavailable" in t and "TensorFlow" in t for t in texts), texts
    assert [win.tabs.tabText(i) for i in range(win.tabs.count())] == ["Record", "Review", "Patients", "Train"]
    win.close()
