"""The status bar says when the active model's folder is gone and the bundled model
stands in (a fallback is never silent)."""

from __future__ import annotations

import shutil

import pytest

from lungapp.inference import registry

pytestmark = pytest.mark.gui


def test_status_bar_warns_when_the_active_model_is_missing(qtbot, tiny_model_dir, tmp_path, monkeypatch):
    from lungapp.gui.context import READY, AppContext
    from lungapp.gui.main_window import MainWindow

    monkeypatch.delenv("LUNGAPP_MODEL", raising=False)
    gone = shutil.copytree(tiny_model_dir, tmp_path / "mine")
    registry.set_active_model(gone)
    shutil.rmtree(gone)
    ctx = AppContext()
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    ctx.load_model()
    qtbot.waitUntil(lambda: ctx.model_state() == READY, timeout=30000)
    text = win.model_label.text()
    assert "WARNING" in text and str(gone) in text and "bundled model" in text
    ctx.shutdown()
