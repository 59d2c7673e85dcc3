"""The Patients tab under Xvfb: search, visits, body map, recordings with results and
missing files, relocation, notes, report, re-analysis with the active (bundled) model,
the comparison with an earlier visit, and recordings filed by the store hook."""

from __future__ import annotations

import numpy as np
import pytest

from lungapp.store import ModelId, Store

from store_helpers import prediction, write_recording

pytestmark = pytest.mark.gui

OLD_MODEL = ModelId("old-model", "1", "0ld")


@pytest.fixture
def stored(tmp_path):
    """Patient P-1 (Ann) with two visits: Trachea in both (abnormal, then normal), and a
    second site in visit 2; patient Q-2 with one unanalysed recording."""
    files = [write_recording(tmp_path / f"r{i}.wav", kind, seconds=4.0, seed=i)
             for i, kind in enumerate(("CAS", "Normal", "DAS", "Normal"))]
    with Store() as s:
        p = s.add_patient("P-1", name="Ann Lee")
        v1 = s.add_visit(p, "2025-01-05", "Dr A", "first visit")
        v2 = s.add_visit(p, "2025-02-05", "Dr A", "")
        u1 = s.add_recording(v1, files[0], site="Trachea", recorded_at="2025-01-05T10:00:00Z")
        u2 = s.add_recording(v2, files[1], site="Trachea", recorded_at="2025-02-05T10:00:00Z")
        u3 = s.add_recording(v2, files[2], site="Posterior left", recorded_at="2025-02-05T10:05:00Z")
        s.add_result(u1, prediction(0.9, "abnormal", "CAS", 4.0), OLD_MODEL)
        s.add_result(u2, prediction(0.2, "normal", "Normal", 4.0), OLD_MODEL)
        s.add_result(u3, prediction(0.8, "abnormal", "DAS", 4.0), OLD_MODEL)
        s.confirm_label(u1, "CAS", "Dr A")
        s.add_recording(s.add_visit(s.add_patient("Q-2")), files[3], site="Trachea")
    return {"files": files, "uids": (u1, u2, u3)}


def make_view(qtbot, predictor=None):
    from lungapp.gui.context import AppContext
    from lungapp.gui.patients_view import PatientsView
    from lungapp.gui.store_hook import StoreHook

    ctx = AppContext()
    if predictor is not None:
        ctx.set_predictor(predictor)
    hook = StoreHook(ctx)
    view = PatientsView(hook)
    qtbot.addWidget(view)
    view.resize(1300, 700)
    view.show()
    qtbot.waitExposed(view)
    return ctx, hook, view


@pytest.fixture(scope="module")
def bundled_predictor():
    from lungapp.inference.predictor import Predictor

    return Predictor.load(None)


def test_search_visits_body_map_and_recordings(qtbot, stored):
    _, _, view = make_view(qtbot)
    assert [view.patient_list.item(i).text() for i in range(view.patient_list.count())] == ["P-1  Ann Lee", "Q-2"]
    view.search_edit.setText("ann")
    assert view.patient_list.count() == 1 and view.current_patient() == "P-1"
    assert view.visit_list.count() == 2 and view.current_visit_number() == 2  # the latest visit
    assert view.body_map.states == {"Trachea": "normal", "Posterior left": "abnormal"}
    assert view.table.rowCount() == 2
    assert view.table.item(1, 2).text() == "abnormal (DAS)" and view.table.item(1, 0).text() == "Posterior left"
    view.visit_list.setCurrentRow(0)
    assert view.body_map.states == {"Trachea": "abnormal"} and view.notes_edit.toPlainText() == "first visit"
    assert view.table.item(0, 5).text() == "CAS"
    # a click on the body map's Trachea selects its recording
    view.table.clearSelection()
    from lungapp.report.body_map import FRONT_SITES

    ux, uy = FRONT_SITES["Trachea"]
    rect = view.body_map._map_rect()
    half = rect.width() / 2
    x = rect.x() + half * 0.08 + ux * half * 0.84
    y = rect.y() + rect.height() * 0.1 + uy * rect.height() * 0.9
    from PySide6.QtCore import QPoint, Qt

    qtbot.mouseClick(view.body_map, Qt.MouseButton.LeftButton, pos=QPoint(int(x), int(y)))
    assert [e.site for e in view.selected_entries()] == ["Trachea"]
    with qtbot.waitSignal(view.openRecording) as sig:
        view.open_selected()
    assert sig.args == [str(stored["files"][0])]


def test_notes_missing_file_relocation_and_report(qtbot, stored, tmp_path):
    moved = tmp_path / "moved.wav"
    stored["files"][2].rename(moved)
    _, hook, view = make_view(qtbot)
    view.notes_edit.setPlainText("wheeze gone")
    view.save_notes()
    assert hook.store.visit(hook.store.patient("P-1")["id"])["notes"] == "wheeze gone"
    assert "1 file(s) missing" in view.status.text()
    # the row says the file is missing; the body map keeps the stored result's colour
    assert view.table.item(1, 2).text() == "file missing" and view.body_map.states["Posterior left"] == "abnormal"
    view.relocate(stored["uids"][2], str(moved))
    assert view.table.item(1, 2).text() == "abnormal (DAS)" and "missing" not in view.status.text()
    out = view.write_report(str(tmp_path / "r.pdf"))
    assert out and (tmp_path / "r.pdf").read_bytes()[:5] == b"%PDF-"


def test_reanalyse_in_one_action_replaces_other_models_results(qtbot, stored, bundled_predictor):
    _, hook, view = make_view(qtbot, bundled_predictor)
    assert "2 result(s) made by another model" in view.status.text()
    assert "(other model)" in view.table.item(0, 4).text()
    queued = view.reanalyse_stale()
    assert sorted(queued) == sorted(str(f) for f in stored["files"][:3])
    qtbot.waitUntil(lambda: "another model" not in view.status.text(), timeout=60000)
    active = hook.active_model()
    for uid in stored["uids"]:
        latest = hook.store.latest_result(uid, active)
        assert latest["model_name"] == "lungapp-sprsound" and latest["stale"] is False
    assert "lungapp-sprsound" in view.table.item(0, 4).text()


def test_compare_with_an_earlier_visit_on_the_same_scales_with_a_trend(qtbot, stored, tmp_path):
    _, hook, view = make_view(qtbot)
    view.search_edit.setText("P-1")
    view.select_site("Trachea")
    dlg = view.compare_selected()
    qtbot.addWidget(dlg)
    qtbot.waitUntil(lambda: all(p.has_image() for p in dlg.plots), timeout=20000)
    assert [h["uid"] for h in dlg.earlier] == [stored["uids"][0]]
    assert "Visit 1 (2025-01-05): abnormal (CAS)" in dlg.labels[0].text() and "Dr A" in dlg.labels[0].text()
    assert "Visit 2 (2025-02-05): normal (Normal)" in dlg.labels[1].text()
    ranges = [p.wave.getViewBox().viewRange()[0] for p in dlg.plots]
    assert np.allclose(ranges[0], ranges[1])
    assert dlg.plots[0].levels == dlg.plots[1].levels
    # no active model: every result is shown; the trend holds both visits
    assert dlg.trend_points() == [(1, 0.9), (2, 0.2)]
    png = tmp_path / "compare.png"
    assert dlg.save_png(str(png))
    from PIL import Image

    assert Image.open(png).size == (dlg.width(), dlg.height())
    dlg.close()


def test_compare_says_in_full_why_an_earlier_recording_cannot_be_read(qtbot, stored):
    """The reason (file and problem) goes under the column, not into the plot's short line,
    where it was cut off at both ends."""
    stored["files"][0].write_bytes(b"RIFF, but not audio " * 40)
    _, hook, view = make_view(qtbot)
    view.search_edit.setText("P-1")
    view.select_site("Trachea")
    dlg = view.compare_selected()
    qtbot.addWidget(dlg)
    qtbot.waitUntil(lambda: stored["files"][0].name in dlg.labels[0].text(), timeout=20000)
    text = dlg.labels[0].text()
    assert text.startswith("Visit 1 (2025-01-05)") and str(stored["files"][0]) in text
    assert dlg.plots[0].empty_text.toPlainText() == "Could not be read: see below"
    qtbot.waitUntil(lambda: dlg.plots[1].has_image(), timeout=20000)
    dlg.close()


def test_a_recording_made_in_the_app_is_filed_with_its_result(qtbot, bundled_predictor):
    from lungapp.audio.recorder import Recording, RecordingSettings
    from lungapp.audio.ringbuffer import RingBuffer

    ring = RingBuffer(8000 * 5)
    rec = Recording(ring, 8000, RecordingSettings(site="Anterior left", patient_id="NEW-9"))
    rng = np.random.default_rng(0)
    ring.write((rng.standard_normal(8000 * 4) * 0.1).astype(np.float32))
    result = rec.stop()
    ctx, hook, view = make_view(qtbot, bundled_predictor)
    with qtbot.waitSignal(ctx.analysisFinished, timeout=30000):
        ctx.recordingFinished.emit(str(result.path))  # what the Record view emits after Stop
        ctx.request_analysis(str(result.path))
    assert view.current_patient() == "NEW-9"
    assert view.body_map.states["Anterior left"] in ("normal", "abnormal", "poor quality")
    latest = hook.store.latest_result(rec.recording_id, hook.active_model())
    assert latest is not None and latest["model_name"] == "lungapp-sprsound"


def _record_once(qtbot, ctx, view, wav, pulse_sink) -> str:
    """Record ~1.5 s from the null sink's monitor while ``wav`` plays into it; the path."""
    import subprocess

    from PySide6.QtCore import Qt

    qtbot.waitUntil(lambda: view.state == "idle" and view.record_button.isEnabled(), timeout=20000)
    qtbot.mouseClick(view.record_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.state == "recording", timeout=20000)
    assert view.capture.wait_first_callback(5.0)
    player = subprocess.Popen(["paplay", f"--device={pulse_sink}", str(wav)])
    try:
        qtbot.waitUntil(lambda: view.monitor.samples_total > view.capture.rate * 1.5, timeout=15000)
    finally:
        player.wait(30)
    with qtbot.waitSignal(ctx.recordingFinished, timeout=20000) as sig:
        qtbot.mouseClick(view.record_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.state == "idle", timeout=20000)
    return sig.args[0]


@pytest.mark.audio
def test_guided_exam_in_the_record_view_through_the_null_sink(qtbot, pulse_sink, bundled_predictor, tmp_path):
    import soundfile as sf

    from lungapp.gui.context import AppContext
    from lungapp.gui.guided_exam import ExamPanel
    from lungapp.gui.record_view import RecordView
    from lungapp.gui.store_hook import StoreHook
    from lungapp.report.content import gather

    from tiny_model import make_signal

    wav = tmp_path / "breath.wav"
    sf.write(wav, make_signal("CAS", 1.5, np.random.default_rng(1), 48000) * 0.5, 48000)
    ctx = AppContext()
    ctx.set_predictor(bundled_predictor)
    hook = StoreHook(ctx)
    view = RecordView(ctx)
    panel = ExamPanel(view, hook)
    view.layout().insertWidget(1, panel)
    qtbot.addWidget(view)
    view.resize(1100, 760)
    view.show()
    qtbot.waitExposed(view)
    view.duration_combo.setCurrentText("Until stopped")
    assert panel.start() is None and "patient identifier" in panel.next_label.text()
    view.patient_edit.setText("EXAM-1")
    panel.protocol_combo.setCurrentIndex(panel.protocol_combo.findData(4))
    exam = panel.start()
    assert view.site_combo.currentText() == "Anterior right" and "Next: Anterior right (site 1 of 4)" in \
        panel.next_label.text()
    paths = [_record_once(qtbot, ctx, view, wav, pulse_sink)]
    assert view.site_combo.currentText() == "Anterior left"
    panel.skip()
    assert view.site_combo.currentText() == "Posterior right"
    paths.append(_record_once(qtbot, ctx, view, wav, pulse_sink))
    panel.repeat()  # the last site again
    assert view.site_combo.currentText() == "Posterior right"
    paths.append(_record_once(qtbot, ctx, view, wav, pulse_sink))
    paths.append(_record_once(qtbot, ctx, view, wav, pulse_sink))
    assert exam.finished and panel.next_label.text().startswith("Exam complete")
    assert not panel.skip_button.isEnabled()
    store = hook.store
    (visit,) = store.visits(store.patient("EXAM-1")["id"])
    recs = store.recordings(visit["id"])
    assert [r["site"] for r in recs] == ["Anterior right", "Posterior right", "Posterior right", "Posterior left"]
    assert [r["path"] for r in recs] == paths and all(r["owned"] for r in recs)
    assert not any("EXAM-1" in p for p in paths)  # file names carry the recording id
    qtbot.waitUntil(lambda: ctx.pending() == 0, timeout=60000)
    data = gather(store, "EXAM-1", None, hook.active_model())
    assert set(data.site_states()) == {"Anterior right", "Posterior right", "Posterior left"}  # AL: to record
    assert all(e.result is not None for e in data.entries)
    panel.stop()
    assert not view.patient_edit.isReadOnly()


def test_add_a_patient_and_edit_their_details(qtbot, stored):
    _, hook, view = make_view(qtbot)
    view.search_edit.setText("NEW-5")
    assert view.patient_list.count() == 0
    view.add_patient()
    assert view.current_patient() == "NEW-5" and view.birth_spin.text() == "unknown"
    view.name_edit.setText("Bo Chen")
    view.birth_spin.setValue(2018)
    view.sex_combo.setCurrentText("male")
    view.save_patient()
    row = hook.store.patient("NEW-5")
    assert (row["name"], row["birth_year"], row["sex"]) == ("Bo Chen", 2018, "male")
    view.search_edit.setText("bo ch")
    assert view.current_patient() == "NEW-5" and view.name_edit.text() == "Bo Chen"
    view.search_edit.setText("P-1")
    view.add_patient()  # already there: one line, nothing added
    assert "already exists" in view.status.text()


def test_the_recordings_folder_opens_from_the_patients_tab(qtbot, monkeypatch):
    from PySide6.QtGui import QDesktopServices

    from lungapp import paths

    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or True)
    _, _, view = make_view(qtbot)
    view.folder_button.click()
    assert opened == [str(paths.recordings_dir())] and paths.recordings_dir().is_dir()


def test_the_visit_table_says_when_a_result_carries_the_caution():
    from types import SimpleNamespace

    from lungapp.gui.patients_view import result_words

    result = {"decision": "normal", "label": "Normal", "details": {"unfamiliar": {"distance": 9.0}}}
    entry = SimpleNamespace(missing=False, result=result)
    assert result_words(entry) == "normal (Normal) - unlike the training recordings"
    entry.result = {"decision": "normal", "label": "Normal", "details": {}}
    assert result_words(entry) == "normal (Normal)"
    entry.result = {"decision": "abnormal", "label": "CAS", "details": {},
                    "quality": {"ok": True, "level": "warn", "reason": "noisy recording: interpret with care"}}
    assert result_words(entry) == "abnormal (CAS) - noisy"
