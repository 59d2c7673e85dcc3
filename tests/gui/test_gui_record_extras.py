"""The Record tab's additions from issue #29 (items 9, 14): after Stop the whole recording
with its timeline, Space starts and stops, a chosen recordings folder (and a menu item
opening it), the interrupted-recordings notice on whichever tab the app opens, in local
time."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import Qt

pytestmark = pytest.mark.gui

from test_record_view import make_view  # noqa: E402

RATE = 8000


@pytest.fixture
def no_devices(monkeypatch):
    from lungapp.audio import devices

    monkeypatch.setattr(devices, "list_input_devices", lambda: [])


def test_after_stop_the_whole_recording_and_its_timeline(qtbot, no_devices, tiny_predictor):
    from lungapp import paths

    from tiny_model import make_signal

    ctx, view = make_view(qtbot, tiny_predictor)
    path = paths.ensure(paths.recordings_dir()) / "20261205-101010_Tc.wav"
    sf.write(path, make_signal("CAS", 25.0, np.random.default_rng(1), RATE), RATE)
    # what the recorder hands over when a 25-s recording is published
    result = SimpleNamespace(path=path, error="", duration_s=25.0, frames=25 * RATE, overflows=0)
    with qtbot.waitSignal(ctx.analysisFinished, timeout=60000):
        view._finished(result)
    qtbot.waitUntil(lambda: view.stack.currentWidget() is view.recorded, timeout=10000)
    assert view.recorded.duration == pytest.approx(25.0, abs=0.01)   # all of it, not the last 10 s
    qtbot.waitUntil(lambda: view.recorded.timeline_curves() > 0, timeout=5000)


def test_space_starts_and_stops_recording(qtbot, no_devices, monkeypatch):
    ctx, view = make_view(qtbot)
    calls = []
    monkeypatch.setattr(view, "toggle", lambda: calls.append(1))
    view.activateWindow()
    qtbot.waitUntil(view.isActiveWindow, timeout=3000)
    view.site_combo.setFocus()
    qtbot.keyClick(view.site_combo, Qt.Key.Key_Space)
    assert calls == [1]
    qtbot.keyClick(view.patient_edit, Qt.Key.Key_Space)   # typing a patient ID: a space
    assert calls == [1] and view.patient_edit.text() == " "


def test_recordings_folder_can_be_chosen_and_opened(qtbot, no_devices, tmp_path, monkeypatch):
    from PySide6.QtGui import QDesktopServices

    from lungapp import paths
    from lungapp.gui.app import create_window

    ctx, view = make_view(qtbot)
    panel = view.setup_panel
    assert panel.set_folder(str(tmp_path / "clinic")) == ""
    assert paths.recordings_dir() == tmp_path / "clinic"
    assert panel.folder_label.full_text() == str(tmp_path / "clinic")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert "cannot create" in panel.set_folder(str(blocker / "sub"))
    assert paths.recordings_dir() == tmp_path / "clinic"           # unchanged
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or True)
    win = create_window([], load_model=False)
    qtbot.addWidget(win)
    win.act_recordings.trigger()
    assert opened == [str(tmp_path / "clinic")]
    win.close()


def test_interrupted_notice_on_the_review_tab_in_local_time(qtbot, no_devices):
    from lungapp import paths
    from lungapp.audio.recorder import make_sidecar
    from lungapp.gui.app import create_window

    folder = paths.ensure(paths.recordings_dir())
    partial = folder / "20260101-101010_K9_Tc.wav.partial"
    sf.write(partial, np.zeros(RATE, dtype=np.float32), RATE, format="WAV", subtype="PCM_24")
    start = dt.datetime(2026, 1, 1, 10, 10, 10, tzinfo=dt.UTC)
    (folder / "20260101-101010_K9_Tc.json").write_text(json.dumps(make_sidecar(
        device="steth", sample_rate=RATE, site="Trachea", patient_id="K9", start_time=start)))
    win = create_window([], load_model=False)
    qtbot.addWidget(win)
    win.tabs.setCurrentWidget(win.review)
    win.show()
    qtbot.waitUntil(win.notice.isVisible, timeout=5000)
    text = win.notice_text.text()
    assert "1 recording(s) were interrupted" in text
    assert start.astimezone().strftime("%Y-%m-%d %H:%M") in text and "T10:10:10Z" not in text
    win.notice_show.click()
    assert win.tabs.currentWidget() is win.record and not win.notice.isVisible()
    win.close()
