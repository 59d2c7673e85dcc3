"""Recording and the guided exam on careless input (a QA pass): the site the exam asks for
cannot be changed under it and a recording is filed where it was made; a recording too
short to analyse, or one the store cannot take, does not tick a site off; ending an exam
with sites left asks; a stalled device does not hang the save; a recovered recording
belongs to the day it was made; a dropped analysis is said."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def _recording(site: str, seconds: float, patient: str = "EX-1", start=None):
    """A real recording the app's recorder made (WAV + sidecar naming patient and site)."""
    from lungapp.audio.recorder import Recording, RecordingSettings
    from lungapp.audio.ringbuffer import RingBuffer

    ring = RingBuffer(int(8000 * (seconds + 1)))
    rec = Recording(ring, 8000, RecordingSettings(site=site, patient_id=patient))
    ring.write((np.random.default_rng(0).standard_normal(int(8000 * seconds)) * 0.1).astype(np.float32))
    result = rec.stop()
    if start is not None:  # made then (a recording recovered a day later)
        side = result.path.with_suffix(".json")
        meta = json.loads(side.read_text())
        meta["start_time"] = start.isoformat(timespec="seconds").replace("+00:00", "Z")
        side.write_text(json.dumps(meta))
    return result


@pytest.fixture
def exam_view(qtbot):
    from lungapp.gui.context import AppContext
    from lungapp.gui.guided_exam import ExamPanel
    from lungapp.gui.record_view import RecordView
    from lungapp.gui.store_hook import StoreHook

    ctx = AppContext()
    hook = StoreHook(ctx)
    view = RecordView(ctx)
    panel = ExamPanel(view, hook)
    view.layout().insertWidget(1, panel)
    qtbot.addWidget(view)
    view.patient_edit.setText("EX-1")
    panel.protocol_combo.setCurrentIndex(panel.protocol_combo.findData(4))
    yield ctx, hook, view, panel
    view.shutdown()


def _finish(ctx, view, result) -> str:
    """What the Record view does when a recording ends: remember it, emit recordingFinished."""
    path = str(result.path)
    view.last_result, view.last_path = result, path
    ctx.recordingFinished.emit(path)
    return path


def test_the_exam_locks_the_site_and_files_a_recording_where_it_was_made(exam_view):
    ctx, hook, view, panel = exam_view
    exam = panel.start()
    assert view.site_combo.currentText() == "Anterior right" and not view.site_combo.isEnabled()
    view.setup_panel.set_editable(True, False)  # the Record view's own refresh keeps it locked
    assert not view.site_combo.isEnabled()
    path = _finish(ctx, view, _recording("Lateral left", 2.0))  # made at another site anyway
    (row,) = hook.store.recordings(exam.visit_id)
    assert row["path"] == path and row["site"] == "Lateral left"
    assert exam.current == "Anterior right" and "made at Lateral left" in panel.next_label.text()
    _finish(ctx, view, _recording("Anterior right", 2.0))
    assert exam.current == "Anterior left"
    panel.stop()
    assert view.site_combo.isEnabled()


def test_a_recording_too_short_to_analyse_does_not_tick_the_site(exam_view):
    ctx, hook, view, panel = exam_view
    exam = panel.start()
    _finish(ctx, view, _recording("Anterior right", 0.3))
    assert exam.current == "Anterior right" and not exam.recorded
    assert "too short to analyse" in panel.next_label.text()


def test_a_store_that_cannot_file_the_recording_is_said_and_the_site_not_ticked(exam_view, monkeypatch):
    from lungapp.store.db import StoreFileError

    ctx, hook, view, panel = exam_view
    exam = panel.start()

    def disk_full(*a, **k):
        raise StoreFileError("cannot use the database (database or disk is full)", "lungapp.sqlite3")

    monkeypatch.setattr(hook.store, "file_under", disk_full)
    path = _finish(ctx, view, _recording("Anterior right", 2.0))
    assert exam.current == "Anterior right" and not exam.recorded
    assert f"saved in {path}" in panel.next_label.text() and "disk is full" in panel.next_label.text()


def test_ending_an_exam_with_sites_left_asks_and_a_second_exam_today_keeps_the_visit(exam_view, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    ctx, hook, view, panel = exam_view
    answers = []

    def ask(*a, **k):
        answers.append(a[2])
        return QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "question", ask)
    panel.toggle()
    first = panel.exam
    panel.toggle()  # a quick second click on the same button
    assert panel.exam is first and "4 of the exam's 4 sites are not recorded" in answers[0]
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    panel.toggle()
    assert panel.exam is None
    panel.toggle()
    assert panel.exam.visit_id == first.visit_id  # today's visit, not a second one
    assert len(hook.store.visits(hook.store.patient("EX-1")["id"])) == 1


def test_a_recovered_recording_is_filed_under_the_day_it_was_made():
    from lungapp.store import Store
    from lungapp.store.recorded import file_recording

    yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    result = _recording("Trachea", 2.0, patient="REC-1", start=yesterday)
    with Store() as store:
        uid = file_recording(store, result.path)
        (visit,) = store.visits(store.patient("REC-1")["id"])
        assert visit["date"] == yesterday.astimezone().date().isoformat()
        assert store.recordings(visit["id"])[0]["uid"] == uid


def test_a_dropped_analysis_of_the_recording_shown_is_said(exam_view):
    ctx, hook, view, panel = exam_view
    result = _recording("Trachea", 2.0)
    view.last_path = str(result.path)
    view.result_panel.show_message("Analysing…", busy=True)
    ctx.analysisCancelled.emit(str(result.path))
    assert "the analysis was cancelled" in " ".join(lab.text() for lab in view.result_panel.findChildren(
        type(view.status)))


def test_a_stream_that_no_longer_answers_does_not_hang_stop(monkeypatch):
    from lungapp.audio import capture as cap_mod

    class Hung:
        released = threading.Event()

        def stop(self):
            self.released.wait(30)  # a hung driver

        def close(self):
            pass

    monkeypatch.setattr(cap_mod, "STOP_TIMEOUT_S", 0.3)
    cap = cap_mod.Capture.__new__(cap_mod.Capture)
    cap._stopping, cap._stream = False, Hung()
    t0 = time.monotonic()
    hung = cap._stream
    cap.stop()
    assert time.monotonic() - t0 < 3 and cap._stream is None
    from lungapp.audio import devices

    assert devices.abandoned() == 1 and not devices.rescan()  # PortAudio is not re-initialised under it
    Hung.released.set()                                       # it answers after all
    deadline = time.monotonic() + 5
    while devices.abandoned() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert devices.abandoned() == 0 and hung is not None


def test_a_recordings_folder_that_cannot_be_made_is_one_line(monkeypatch, tmp_path):
    from lungapp import paths
    from lungapp.audio import recorder

    def read_only(_):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(paths, "ensure", read_only)
    with pytest.raises(recorder.RecorderError, match="cannot create the recordings folder: Read-only"):
        recorder._reserve(None, "abc", "Trachea")
    with pytest.raises(recorder.RecorderError, match="cannot create the folder: Read-only"):
        monkeypatch.setattr(type(tmp_path), "mkdir", lambda *a, **k: read_only(None))
        recorder._reserve(tmp_path / "usb" / "r.wav", "abc", "Trachea")


def test_record_seconds_inf_is_a_usage_error(capsys):
    from lungapp.cli import main

    assert main(["record", "--seconds", "inf", "--out", "x.wav"]) == 2
    assert "--seconds must be a number of seconds" in capsys.readouterr().err
