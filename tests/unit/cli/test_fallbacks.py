"""A fallback is never silent: when the active model's folder is gone, predict says so in
one line on stderr and still answers with the bundled model (exit 0)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from lungapp import settings
from lungapp.inference import registry

from tiny_model import RATE, make_signal  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]


def test_predict_warns_when_the_active_model_folder_is_missing(tiny_model_dir, tmp_path, monkeypatch):
    env = {k: v for k, v in os.environ.items() if k != "LUNGAPP_MODEL"}
    env["PYTHONPATH"] = str(ROOT)
    gone = shutil.copytree(tiny_model_dir, tmp_path / "mine")
    monkeypatch.delenv("LUNGAPP_MODEL", raising=False)
    registry.set_active_model(gone)
    shutil.rmtree(gone)
    wav = tmp_path / "x.wav"
    sf.write(wav, make_signal("Normal", 4, np.random.default_rng(0)), RATE)
    proc = subprocess.run([sys.executable, "-m", "lungapp", "predict", str(wav), "--format", "json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(gone) in lines[0] and "using the bundled model" in lines[0]
    bundled = json.loads((registry.bundled_model_dir() / "card.json").read_text())["name"]
    assert json.loads(proc.stdout)[0]["model"]["name"] == bundled
    assert settings.get("active_model") == str(gone.resolve())  # the choice is kept, not erased
