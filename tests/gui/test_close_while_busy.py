"""Closing the main window while something runs (under Xvfb, the real window, store and
PulseAudio null sink): a recording in progress is asked about, then stopped, kept and
filed under its patient exactly as Stop files it (a guided exam's site too) before the
store is closed; a training run is asked about before it is stopped; nothing is asked when
nothing runs. The questions are answered through ``MainWindow.ask_close``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import soundfile as sf

pytestmark = pytest.mark.gui


@pytest.fixture
def window(bare_window):
    return bare_window  # tests/gui/conftest.py


def answering(win, *answers):
    """Answer the window's close questions with ``answers`` in turn; the questions asked."""
    asked, it = [], iter(answers)

    def ask(parent, what):
        asked.append(what)
        return next(it)

    win.ask_close = ask
    return asked


def start_recording_from_the_null_sink(qtbot, view, patient: str, site: str) -> Path:
    """Record from PulseAudio's ALSA "pulse" device (the null sink's monitor) for over a
    second; the final path of the recording in progress."""
    from capture_helpers import use_the_null_sink

    use_the_null_sink(qtbot, view, patient, site)
    view.start()
    qtbot.waitUntil(lambda: view.state == "recording", timeout=20000)
    assert view.capture.wait_first_callback(5.0)
    qtbot.waitUntil(lambda: view.recording.frames_written > view.capture.rate * 1.2, timeout=15000)
    return Path(view.recording.final_path)


def filed(patient: str) -> list[dict]:
    """The patient's recordings in the store (opened anew, as the next start would)."""
    from lungapp.store import Store

    with Store() as s:
        p = s.patient(patient, missing_ok=True)
        if p is None:
            return []
        return [dict(r) for v in s.visits(p["id"]) for r in s.recordings(v["id"])]


@pytest.mark.audio
def test_closing_while_recording_asks_then_keeps_and_files_the_recording(qtbot, window, pulse_sink):
    from lungapp.audio.recorder import find_interrupted

    view = window.record
    path = start_recording_from_the_null_sink(qtbot, view, "CLOSE-1", "Posterior left")
    asked = answering(window, False, True)
    assert not window.close()                      # Cancel: nothing changes
    assert asked == ["recording"] and window.isVisible() and view.state == "recording"
    assert window.close()                          # Stop and keep the recording
    assert asked == ["recording", "recording"] and view.state == "idle"
    assert path.is_file() and not Path(str(path) + ".partial").exists()
    assert sf.info(path).duration > 1.0
    assert json.loads(path.with_suffix(".json").read_text())["status"] == "complete"
    rows = filed("CLOSE-1")
    assert [(r["path"], r["site"]) for r in rows] == [(str(path), "Posterior left")]
    assert find_interrupted() == []                # nothing left for the next start to offer


@pytest.mark.audio
def test_closing_during_a_guided_exam_recording_files_it_under_the_exams_site(qtbot, window, pulse_sink):
    view, panel = window.record, window.exam_panel
    view.patient_edit.setText("EXAM-C")
    panel.sites_edit.setText("Trachea, Anterior left")
    exam = panel.start()
    assert exam is not None and view.site_combo.currentText() == "Trachea"
    path = start_recording_from_the_null_sink(qtbot, view, "EXAM-C", "Trachea")
    asked = answering(window, True)
    assert window.close()
    assert asked == ["recording"]
    rows = filed("EXAM-C")
    assert [(r["path"], r["site"], r["visit_id"]) for r in rows] == [(str(path), "Trachea", exam.visit_id)]


@pytest.mark.audio
def test_closing_while_the_device_is_being_opened_leaves_nothing_recording(qtbot, window, pulse_sink):
    from lungapp import paths
    from lungapp.audio import devices
    from lungapp.audio.recorder import find_interrupted

    from capture_helpers import use_the_null_sink

    view = window.record
    use_the_null_sink(qtbot, view, "START-1")
    view.start()                                   # the device opens in a worker...
    assert view.state == "starting"
    asked = answering(window, True)
    assert window.close()                          # ... and the window closes meanwhile
    assert asked == ["recording"] and view.state == "idle"
    qtbot.wait(300)                                # the worker's own callback comes later
    assert view.state == "idle" and view.recording is None and devices.open_streams() == 0
    assert find_interrupted() == []
    made = sorted(paths.recordings_dir().glob("*.wav"))
    assert len(made) == 1 and json.loads(made[0].with_suffix(".json").read_text())["status"] == "complete"
    if view.last_result.frames:                    # what was captured is filed, as Stop files it
        assert [r["path"] for r in filed("START-1")] == [str(made[0])]


def test_closing_during_training_asks_before_stopping_it(qtbot, window, tmp_path, monkeypatch):
    from lungapp.gui import train_view

    tv = window.train
    if not hasattr(tv, "running"):
        pytest.skip("training is unavailable in this installation")
    # A stand-in for the training process (TensorFlow is not started on this shared machine):
    # a real child process the Train tab runs, watches and stops as it does `lungapp train`.
    monkeypatch.setattr(train_view.TrainSettings, "command",
                        lambda self, active_dir=None: (sys.executable, ["-c", "import time; time.sleep(120)"]))
    tv.folder.setText(str(tmp_path))
    tv.out.setText(str(tmp_path / "model"))
    assert tv.start()
    assert tv.proc.waitForStarted(10000)
    pid = tv.proc.processId()
    asked = answering(window, False, True)
    assert not window.close()                      # Cancel: the run goes on
    assert asked == ["training"] and window.isVisible() and tv.running
    assert os.path.exists(f"/proc/{pid}")
    assert window.close()                          # Stop training and close
    assert asked == ["training", "training"] and not tv.running
    assert not os.path.exists(f"/proc/{pid}")


def test_nothing_running_closes_without_a_question(qtbot, window):
    asked = answering(window)                      # any question would fail (no answer)
    assert window.record.state == "idle" and not getattr(window.train, "running", False)
    assert window.close()
    assert asked == [] and not window.isVisible()


def test_closing_with_unsaved_patient_notes_asks_to_save_them(qtbot, window):
    """Typed visit notes were lost when the window closed."""
    from lungapp.store import Store

    with Store() as s:
        s.add_visit(s.add_patient("P-5", name="Ann"), notes="first")
    view = window.patients
    view.refresh()
    view.search_edit.setText("P-5")
    qtbot.waitUntil(lambda: view.notes_edit.isEnabled() and view.notes_edit.toPlainText() == "first",
                    timeout=5000)
    view.notes_edit.setPlainText("first; wheeze heard on the left")
    asked = []
    view.ask = lambda text, can_save: asked.append(text) or "cancel"
    assert not window.close() and window.isVisible() and len(asked) == 1
    view.ask = lambda text, can_save: asked.append(text) or "save"
    assert window.close() and "notes" in asked[-1]
    with Store() as s:
        visit = s.visits(s.patient("P-5")["id"])[0]
        assert visit["notes"] == "first; wheeze heard on the left"


def test_the_question_offers_to_stop_or_cancel(qtbot):
    """The window's own question (the tests above answer through ``ask_close``)."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from lungapp.gui.main_window import ask_close

    seen = []

    def click(text: str | None) -> None:
        def later():
            box = QApplication.activeModalWidget()
            if not isinstance(box, QMessageBox):
                QTimer.singleShot(50, later)
                return
            seen.append((box.windowTitle(), sorted(b.text() for b in box.buttons())))
            cancel = box.button(QMessageBox.StandardButton.Cancel)
            next(b for b in box.buttons() if b.text() == text).click() if text else cancel.click()
        QTimer.singleShot(50, later)

    click("Stop and keep the recording")
    assert ask_close(None, "recording") is True
    click(None)
    assert ask_close(None, "training") is False
    assert seen[0][0] == "A recording is in progress" and "Stop and keep the recording" in seen[0][1]
    assert seen[1][0] == "Training is running" and "Stop training and close" in seen[1][1]
    assert all(len(buttons) == 2 for _, buttons in seen)   # the action, and Cancel
