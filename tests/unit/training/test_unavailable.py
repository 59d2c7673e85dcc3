"""Without TensorFlow (the lungapp-viewer bundle) training says so in one line, before
any import fails; with it, nothing changes."""

from __future__ import annotations

import sys

import lungapp.training
from lungapp.cli import main


def test_training_is_available_where_tensorflow_is_installed():
    assert lungapp.training.unavailable_reason() is None


def test_train_without_tensorflow_refuses_in_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(lungapp.training, "_tensorflow_present", lambda: False)
    before = set(sys.modules)
    rc = main(["train", str(tmp_path), "--out", str(tmp_path / "model"), "--progress", "none"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1
    assert len(err) == 1 and "TensorFlow" in err[0] and "full lungapp package" in err[0]
    assert not (tmp_path / "model").exists()
    assert "lungapp.training.train" not in set(sys.modules) - before  # refused before importing it
