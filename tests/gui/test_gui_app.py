"""The app shell: start without a display, window before TensorFlow, model states in the
status bar (ready, or no model at all), About, settings that persist."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytestmark = pytest.mark.gui


def make_window(qtbot, load=False):
    from lungapp.gui.app import create_window

    win = create_window([], load_model=load)
    qtbot.addWidget(win)
    qtbot.waitExposed(win)
    return win


def close(win):
    from lungapp.gui import workers

    win.close()
    workers.wait_all(5000)


def tone(path: Path, seconds=2.0, rate=8000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.2 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), rate)
    return path


def test_main_without_display_says_so_and_returns_2(monkeypatch, capsys):
    from lungapp.gui import app

    for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert app.main([]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "lungapp: no display found (set DISPLAY, or QT_QPA_PLATFORM=offscreen)"


CHILD = r"""
import json, sys
from PySide6.QtCore import QTimer
from lungapp.gui.app import create_application, create_window
app = create_application([])
win = create_window([sys.argv[1]])
before = []
win.firstPainted.connect(lambda: before.append(sorted(m for m in ("tensorflow", "keras") if m in sys.modules)))
states = []
def on_state(s, m):
    states.append(s)
def on_result(p, pred):
    states.append("result:" + pred.label)
    app.quit()
win.ctx.modelStateChanged.connect(on_state)
win.ctx.analysisFinished.connect(on_result)
win.ctx.analysisFailed.connect(lambda p, m: (states.append("failed:" + m), app.quit()))
QTimer.singleShot(120000, app.quit)
app.exec()
print(json.dumps({"before": before, "states": states, "after": "keras" in sys.modules}))
"""


@pytest.mark.parametrize("runtime", ["auto", "keras"])
def test_window_appears_before_tensorflow_then_model_loads_and_analyses(tmp_path, tiny_model_dir, runtime):
    """The window paints before any TensorFlow import; with ONNX Runtime (auto, for a
    model folder with ONNX exports) TensorFlow is never imported, with Keras it is, later."""
    wav = tone(tmp_path / "a.wav", seconds=3.0)
    env = dict(os.environ, LUNGAPP_MODEL=str(tiny_model_dir), TF_CPP_MIN_LOG_LEVEL="3",
               LUNGAPP_RUNTIME=runtime)
    out = subprocess.run([sys.executable, "-c", CHILD, str(wav)], env=env, capture_output=True,
                         text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["before"] == [[]]          # painted once, without TensorFlow/Keras imported
    assert res["states"][:2] == ["loading", "ready"]
    assert res["states"][-1].startswith("result:")
    assert res["after"] is (runtime == "keras")


def test_no_model_keeps_app_usable(qtbot, tmp_path, monkeypatch):
    empty = tmp_path / "no_model"
    empty.mkdir()
    monkeypatch.setenv("LUNGAPP_MODEL", str(empty))
    win = make_window(qtbot, load=True)
    ctx, view = win.ctx, win.review
    qtbot.waitUntil(lambda: ctx.model_state() == "error", timeout=15000)
    assert "No model" in win.model_label.text()
    assert "card" in ctx.model_message()        # the reason, from the card loader
    view.auto_analyse.setChecked(True)
    wav = tone(tmp_path / "b.wav")
    win.open_paths([str(wav)])
    qtbot.waitUntil(view.plots.has_image, timeout=10000)
    qtbot.waitUntil(lambda: view.model.entries[0].status == "error", timeout=5000)
    assert "No model" in view.model.entries[0].error
    assert not view.analyse_btn.isEnabled()
    assert "No model available" in view.analyse_btn.toolTip()
    with qtbot.waitSignal(ctx.analysisFailed, timeout=5000) as sig:
        ctx.request_analysis(str(wav))
    assert "No model" in sig.args[1]
    assert win.isVisible()
    close(win)


def test_model_loads_in_worker_and_about_shows_card_and_credits(qtbot, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("LUNGAPP_MODEL", str(tiny_model_dir))
    win = make_window(qtbot, load=True)
    qtbot.waitUntil(lambda: win.ctx.model_state() == "ready", timeout=60000)
    assert "tiny-test-model" in win.model_label.text()
    card = win.ctx.predictor().card
    card.description = "made by <b>a script</b>"  # card text is shown as text, never as markup
    dlg = win.show_about()
    text = dlg.text.toPlainText()
    import lungapp

    assert f"lungapp {lungapp.__version__}" in text
    assert "tiny-test-model" in text and "Decision threshold" in text
    # the card a clinician reads: the same sections as the model's MODEL_CARD.md
    for section in ("Intended use", "What it reports", "Training data", "Limitations"):
        assert section in text
    assert "made by <b>a script</b>" in text
    assert dlg.text.verticalScrollBar().value() == 0  # opens at the top
    assert "SPRSound" in text and "BioCAS 2022" in text and "IEEE" in text
    assert "not a diagnostic device" in text
    dlg.close()
    close(win)


def test_geometry_options_and_recent_persist(qtbot, tmp_path):
    wav = tone(tmp_path / "c.wav")
    win = make_window(qtbot)
    win.resize(700, 500)
    size = win.size()
    win.review.cmap.setCurrentText("cividis")
    win.review.auto_levels.setChecked(False)   # a range set by hand
    win.review.min_db.setValue(-70)
    win.review.auto_analyse.setChecked(False)
    win.open_paths([str(wav)])
    close(win)
    ini = Path(os.environ["LUNGAPP_HOME"]) / "config" / "lungapp.ini"
    assert ini.is_file()

    win2 = make_window(qtbot)
    assert win2.size() == size
    assert win2.review.cmap.currentText() == "cividis"
    assert win2.review.min_db.value() == -70 and not win2.review.auto_levels.isChecked()
    assert not win2.review.auto_analyse.isChecked()
    assert win2.recent()[0] == str(wav)
    win2._fill_recent()
    assert str(wav) in [a.text() for a in win2.recent_menu.actions()]
    close(win2)


def test_record_tab_present(qtbot):
    win = make_window(qtbot)
    assert [win.tabs.tabText(i) for i in range(win.tabs.count())][:2] == ["Record", "Review"]
    close(win)


def test_application_has_the_app_icon(qapp):
    from lungapp.gui.app import create_application

    app = create_application([])
    icon = app.windowIcon()
    assert not icon.isNull()
    assert not icon.pixmap(64, 64).toImage().isNull()  # the SVG renders (Qt's svg plugin)


def test_wait_until_runs_the_event_loop_until_the_condition_or_the_timeout(qapp):
    """The helper the screenshot and record benchmarks drive the app with."""
    import time

    from PySide6.QtCore import QTimer

    from lungapp.gui.workers import wait_until

    fired = []
    QTimer.singleShot(100, lambda: fired.append(1))  # only an event loop delivers this
    t0 = time.monotonic()
    assert wait_until(lambda: bool(fired), timeout_s=10.0)
    assert time.monotonic() - t0 < 5.0
    t0 = time.monotonic()
    assert not wait_until(lambda: False, timeout_s=0.3)
    assert time.monotonic() - t0 >= 0.25



@pytest.mark.parametrize("delete_first", [False, True])
def test_a_task_that_ends_after_its_widget_was_deleted_does_not_call_into_it(qapp, delete_first):
    """CI once failed in an unrelated test: a Train view's folder summary finished after the
    view was closed, and its lambda read a deleted QLineEdit. With ``owner`` the callback is
    skipped once the owner is gone; while it lives, the callback runs."""
    import threading

    import shiboken6
    from PySide6.QtWidgets import QLineEdit

    from lungapp.gui.workers import run_task, wait_until

    def slow(task, gate):
        gate.wait(10)
        return "done"

    edit, gate, seen = QLineEdit(), threading.Event(), []
    task = run_task(slow, gate, name="slow", owner=edit,
                    on_finished=lambda r: seen.append((r, edit.text())),
                    on_done=lambda: seen.append("done"))
    if delete_first:
        edit.deleteLater()
        assert wait_until(lambda: not shiboken6.isValid(edit), 5)
    gate.set()
    assert wait_until(lambda: task.is_done, 10)
    wait_until(lambda: len(seen) == 2, 1)  # the queued signals are delivered
    assert seen == ([] if delete_first else [("done", ""), "done"])
