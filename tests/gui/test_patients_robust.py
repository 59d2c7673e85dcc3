"""The Patients tab when things happen under it: typing kept through refreshes and asked
about when leaving, details written only where changed (a birth year before 1900 kept), a
patient deleted by another process, a damaged or unopenable store, a read-only data
folder, and the files an import skipped named. Real SQLite, a real X server."""

from __future__ import annotations

import sqlite3

import pytest
import test_patients
from PySide6.QtCore import Qt
from test_patients import OLD_MODEL, make_view

from lungapp import paths
from lungapp.gui.patients_view import CANCEL, DISCARD, SAVE
from lungapp.store import Store

from mount_helpers import tmpfs
from store_helpers import prediction, write_recording

pytestmark = pytest.mark.gui

# test_patients.py's fixtures: its patients P-1 (two visits) and Q-2, the bundled model
stored = test_patients.stored
bundled_predictor = test_patients.bundled_predictor


def _asker(view, answers: list[str]) -> list[tuple[str, bool]]:
    """Answer the view's questions from ``answers``, in order; the questions asked."""
    asked: list[tuple[str, bool]] = []

    def ask(text: str, can_save: bool) -> str:
        asked.append((text, can_save))
        assert answers, f"not expected to be asked: {text}"
        return answers.pop(0)

    view.ask = ask
    return asked


def _row_of(view, ident: str) -> int:
    return next(i for i in range(view.patient_list.count())
                if view.patient_list.item(i).data(Qt.ItemDataRole.UserRole) == ident)


def _delete_elsewhere(ident: str) -> None:
    """What `lungapp delete-patient ID --yes` does, on its own connection."""
    from lungapp.store.manage import delete_patient, plan_deletion

    with Store() as s:
        delete_patient(s, plan_deletion(s, ident))


def _patient(ident: str):
    with Store() as s:
        return s.patient(ident)


def _notes_of_visit(ident: str, number: int) -> str:
    with Store() as s:
        return s.visit(s.patient(ident)["id"], number)["notes"]


# --- 1: typing survives refreshes --------------------------------------------------------

def test_typing_survives_the_reanalysis_finishing_and_a_return_to_the_tab(qtbot, stored, bundled_predictor):
    ctx, hook, view = make_view(qtbot, bundled_predictor)
    _asker(view, [])  # nothing here may ask
    view.select_patient("P-1")
    queued = view.reanalyse_stale()
    assert queued
    view.notes_edit.setFocus()
    qtbot.keyClicks(view.notes_edit, "Crackles at the right base")
    view.name_edit.setText("Jane Doe")       # typed, not saved
    view.birth_spin.setValue(2016)
    qtbot.waitUntil(lambda: ctx.pending() == 0 and "another model" not in view.status.text(), timeout=60000)
    assert view.notes_edit.toPlainText() == "Crackles at the right base"
    assert view.name_edit.text() == "Jane Doe" and view.birth_spin.value() == 2016
    # a change made elsewhere to a field the user did not touch is shown
    with Store() as s:
        s.update_patient("P-1", sex="female")
    view.hide()
    view.show()   # back to the tab: read again
    qtbot.waitExposed(view)
    assert view.sex_combo.currentText() == "female"
    assert view.notes_edit.toPlainText() == "Crackles at the right base" and view.name_edit.text() == "Jane Doe"
    assert _notes_of_visit("P-1", 2) == "" and _patient("P-1")["name"] == "Ann Lee"  # nothing saved by itself
    view.save_notes()
    view.save_patient()
    row = _patient("P-1")
    assert _notes_of_visit("P-1", 2) == "Crackles at the right base"
    assert (row["name"], row["birth_year"], row["sex"]) == ("Jane Doe", 2016, "female")


def test_typing_survives_the_hook_saying_the_store_changed(qtbot, stored):
    _, hook, view = make_view(qtbot)
    _asker(view, [])
    view.select_patient("P-1")
    view.notes_edit.setPlainText("wheeze gone")
    view.name_edit.setText("Ann B")
    with Store() as s:  # a result saved and a visit's notes changed elsewhere, then the hook's signal
        s.add_result(stored["uids"][1], prediction(0.7, "abnormal", "CAS", 4.0), OLD_MODEL)
        s.set_visit_notes(s.visit(s.patient("P-1")["id"], 1)["id"], "first visit, edited")
        s.update_patient("P-1", sex="male")
    hook.changed.emit()
    assert view.notes_edit.toPlainText() == "wheeze gone" and view.name_edit.text() == "Ann B"
    assert view.table.item(0, 2).text() == "abnormal (CAS)"   # the rest is read again
    assert view.sex_combo.currentText() == "male"   # a field the user did not change follows the store


def test_leaving_a_patient_with_unsaved_changes_asks_to_save_them(qtbot, stored):
    _, hook, view = make_view(qtbot)
    view.select_patient("P-1")
    view.notes_edit.setPlainText("typed notes")
    view.name_edit.setText("Ann B")
    answers: list[str] = [CANCEL]
    asked = _asker(view, answers)
    # a real click on Q-2, answered Cancel: P-1 stays, with what was typed
    rect = view.patient_list.visualItemRect(view.patient_list.item(_row_of(view, "Q-2")))
    qtbot.mouseClick(view.patient_list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.wait(50)
    assert asked == [("Save the changes to the name and the notes of visit 2 of patient P-1?", True)]
    assert view.current_patient() == "P-1" and view.patient_list.currentItem().isSelected()
    assert view.name_edit.text() == "Ann B" and view.notes_edit.toPlainText() == "typed notes"
    # Save: written, then Q-2 is shown
    answers.append(SAVE)
    view.patient_list.setCurrentRow(_row_of(view, "Q-2"))
    assert view.current_patient() == "Q-2" and view.name_edit.text() == ""
    assert _patient("P-1")["name"] == "Ann B" and _notes_of_visit("P-1", 2) == "typed notes"
    qtbot.waitUntil(lambda: view.patient_list.item(_row_of(view, "P-1")).text() == "P-1  Ann B")
    # Discard: nothing written
    view.select_patient("P-1")
    assert view.name_edit.text() == "Ann B"
    view.name_edit.setText("Zed")
    answers.append(DISCARD)
    view.select_patient("Q-2")
    assert view.current_patient() == "Q-2" and _patient("P-1")["name"] == "Ann B"
    assert len(asked) == 3
    # nothing changed: nothing asked
    view.select_patient("P-1")
    assert len(asked) == 3


def test_leaving_a_visit_with_unsaved_notes_asks_about_the_notes(qtbot, stored):
    _, hook, view = make_view(qtbot)
    view.select_patient("P-1")
    view.notes_edit.setPlainText("visit 2 notes")
    view.name_edit.setText("Ann C")
    answers = [CANCEL, SAVE]
    asked = _asker(view, answers)
    view.visit_list.setCurrentRow(0)
    assert view.current_visit_number() == 2 and view.notes_edit.toPlainText() == "visit 2 notes"
    view.visit_list.setCurrentRow(0)
    assert [a[0] for a in asked] == ["Save the changes to the notes of visit 2 of patient P-1?"] * 2
    assert view.current_visit_number() == 1 and view.notes_edit.toPlainText() == "first visit"
    assert _notes_of_visit("P-1", 2) == "visit 2 notes"
    assert view.name_edit.text() == "Ann C" and _patient("P-1")["name"] == "Ann Lee"  # still unsaved


def test_a_patient_with_unsaved_changes_stays_listed_whatever_the_search(qtbot, stored):
    _, hook, view = make_view(qtbot)
    answers: list[str] = []
    asked = _asker(view, answers)
    view.select_patient("P-1")
    view.name_edit.setText("Ann D")
    view.search_edit.setText("Q-2")
    items = [view.patient_list.item(i).text() for i in range(view.patient_list.count())]
    assert items == ["Q-2", "P-1  Ann Lee  (unsaved changes)"] and not asked
    assert view.current_patient() == "P-1" and view.name_edit.text() == "Ann D"
    answers.append(DISCARD)   # choosing Q-2: asked; discarded, the search rules again
    view.patient_list.setCurrentRow(0)
    assert len(asked) == 1 and view.current_patient() == "Q-2"
    qtbot.waitUntil(lambda: view.patient_list.count() == 1)
    assert view.patient_list.item(0).text() == "Q-2" and view.current_patient() == "Q-2"
    assert _patient("P-1")["name"] == "Ann Lee"
    view.search_edit.setText("")
    view.select_patient("P-1")
    view.name_edit.setText("Ann D")
    view.search_edit.setText("Q-2")
    view.save_patient()   # saved: the search rules again
    assert _patient("P-1")["name"] == "Ann D"
    assert view.current_patient() == "Q-2" and view.patient_list.count() == 1


# --- 2: details written only where changed ------------------------------------------------

def test_a_birth_year_before_1900_is_kept_when_only_the_name_is_saved(qtbot, stored):
    with Store() as s:
        s.update_patient("P-1", birth_year=1890)
    _, hook, view = make_view(qtbot)
    view.select_patient("P-1")
    assert view.birth_spin.text() == "1890"
    view.name_edit.setText("Old Person Jr")
    view.save_patient()
    row = _patient("P-1")
    assert (row["name"], row["birth_year"]) == ("Old Person Jr", 1890)
    view.birth_spin.setValue(1880)  # the CLI's earliest year
    assert view.birth_spin.text() == "1880"
    view.save_patient()
    assert _patient("P-1")["birth_year"] == 1880
    view.birth_spin.setValue(view.birth_spin.minimum())  # "unknown"
    assert view.birth_spin.text() == "unknown"
    view.save_patient()
    assert _patient("P-1")["birth_year"] is None


def test_saving_writes_only_the_fields_the_user_changed(qtbot, stored):
    _, hook, view = make_view(qtbot)
    view.select_patient("P-1")
    with Store() as s:   # written elsewhere while the tab shows the old values
        s.update_patient("P-1", sex="female", birth_year=1850)
    view.name_edit.setText("Ann E")
    view.save_patient()
    row = _patient("P-1")
    assert (row["name"], row["birth_year"], row["sex"]) == ("Ann E", 1850, "female")
    # a year outside the usual range, written elsewhere, is shown as it is and kept
    assert view.birth_spin.text() == "1850" and view.sex_combo.currentText() == "female"
    view.sex_combo.setCurrentText("other")
    view.save_patient()
    row = _patient("P-1")
    assert (row["birth_year"], row["sex"]) == (1850, "other")


# --- 3: the store changed underneath ------------------------------------------------------

def test_a_patient_deleted_elsewhere_is_said_and_what_was_typed_stays(qtbot, stored):
    _, hook, view = make_view(qtbot)
    said = []
    view.statusMessage.connect(said.append)
    view.select_patient("P-1")
    view.notes_edit.setPlainText("Important clinical notes")
    view.name_edit.setText("Ann F")
    _delete_elsewhere("P-1")
    view.select_site("Trachea")
    assert view.compare_selected() is None
    assert "P-1 is no longer in the store" in view.status.text()
    view.save_notes()
    assert "Notes saved." not in said
    assert "The notes were not saved: patient P-1 is no longer in the store" in view.status.text()
    assert view.notes_edit.toPlainText() == "Important clinical notes"
    view.save_patient()
    assert "Patient P-1 is no longer in the store" in view.status.text() and "saved." not in " ".join(said)
    assert view.name_edit.text() == "Ann F" and view.notes_edit.toPlainText() == "Important clinical notes"
    assert view.patient_list.count() == 1 and view.current_patient() is None   # Q-2 listed, not shown


def test_reanalyse_and_compare_of_a_patient_deleted_elsewhere_say_so(qtbot, stored, bundled_predictor):
    _, hook, view = make_view(qtbot, bundled_predictor)
    view.select_patient("P-1")
    _delete_elsewhere("P-1")
    assert view.reanalyse_stale() == []
    assert "Nothing was re-analysed: patient P-1 is no longer in the store" in view.status.text()
    assert [view.patient_list.item(i).text() for i in range(view.patient_list.count())] == ["Q-2"]


def test_saving_notes_of_a_patient_deleted_elsewhere_writes_nothing_and_says_so(qtbot, stored):
    _, hook, view = make_view(qtbot)
    said = []
    view.statusMessage.connect(said.append)
    view.select_patient("P-1")
    view.notes_edit.setPlainText("Important clinical notes")
    _delete_elsewhere("P-1")
    view.save_notes()
    assert said == [] and "no longer in the store" in view.status.text()
    assert view.notes_edit.toPlainText() == "Important clinical notes"
    assert view.patient_list.count() == 1   # the list is read again: Q-2 only
    # choosing another patient asks before the typed notes go (they cannot be saved)
    asked = _asker(view, [DISCARD])
    view.patient_list.setCurrentRow(0)
    assert asked and asked[0][1] is False and "cannot be saved" in asked[0][0]
    assert view.current_patient() == "Q-2" and view.notes_edit.toPlainText() == ""


# --- 4: a damaged store -------------------------------------------------------------------

def test_a_visit_filed_elsewhere_on_an_earlier_day_does_not_swap_the_visit_shown(qtbot, stored):
    # The tab looked a visit up by its number: a visit filed since on an earlier day (a
    # recovered recording, another window) moved the numbers, and clicking "Visit 2:
    # 2025-02-05" showed, and saved notes into, the new 2025-01-20 visit.
    _, _, view = make_view(qtbot)
    view.patient_list.setCurrentRow(_row_of(view, "P-1"))
    view.visit_list.setCurrentRow(0)
    with Store() as s:
        s.add_visit(s.patient("P-1")["id"], "2025-01-20", "Dr B", "")
    view.visit_list.setCurrentRow(1)             # listed as "Visit 2: 2025-02-05"
    assert view.data.visit["date"] == "2025-02-05"
    assert view.visit_list.currentItem().text() == "Visit 3: 2025-02-05, Dr A"  # listed again
    assert view.visit_list.count() == 3
    view.notes_edit.setPlainText("follow-up: wheeze gone")
    view.save_notes()
    assert _notes_of_visit("P-1", 3) == "follow-up: wheeze gone" and _notes_of_visit("P-1", 2) == ""


def test_a_damaged_result_is_said_and_the_window_starts(qtbot, stored):
    # One result's JSON damaged (quick_check still "ok") was a JSONDecodeError out of
    # the Patients tab's constructor: the window never opened.
    from test_gui_review import make_window

    with Store() as s, s.transaction() as c:
        c.execute("UPDATE results SET probabilities = '{#Normal\": 0.8' WHERE recording_id = "
                  "(SELECT id FROM recordings WHERE uid = ?)", (stored["uids"][1],))
    win = make_window(qtbot)
    win.patients.patient_list.setCurrentRow(_row_of(win.patients, "P-1"))
    text = win.patients.status.text()
    assert str(paths.database_path()) in text and "cannot be read" in text and "damaged" in text
    win.close()


def test_a_search_that_matches_nobody_says_so(qtbot, stored):
    _, _, view = make_view(qtbot)
    view.search_edit.setText("Smith")
    assert view.patient_list.count() == 0
    assert view.status.text() == "No patient matches \u201cSmith\u201d."


def test_the_suggested_report_name_of_an_identifier_with_a_slash_is_one_name(qtbot, stored, monkeypatch):
    from lungapp.gui import patients_view

    with Store() as s:
        s.add_visit(s.add_patient("2024/0017"))
    _, _, view = make_view(qtbot)
    view.patient_list.setCurrentRow(_row_of(view, "2024/0017"))
    offered = []
    monkeypatch.setattr(patients_view.QFileDialog, "getSaveFileName",
                        staticmethod(lambda parent, title, name, filt: offered.append(name) or ("", "")))
    view.report_dialog()
    assert offered == ["report-2024-0017.pdf"]
    with Store() as s:
        s.add_patient("NEW-1")
    view.refresh()
    view.patient_list.setCurrentRow(_row_of(view, "NEW-1"))   # once "0 recording(s) in this visit"
    assert view.status.text() == ("Patient NEW-1 has no visits yet: record with their identifier, "
                                  "or import a folder.")


def _damage_store() -> None:
    with Store() as s:
        for i in range(40):
            s.add_patient(f"PAT{i:03d}", name="x" * 300)
    db = paths.database_path()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(db.read_bytes())
    data[4096 * 2:4096 * 4] = b"\xff" * 8192   # pages 3 and 4; the header (page 1) intact
    db.write_bytes(bytes(data))


def _recording_of(patient: str):
    import numpy as np

    from lungapp.audio.recorder import Recording, RecordingSettings
    from lungapp.audio.ringbuffer import RingBuffer

    ring = RingBuffer(8000 * 3)
    rec = Recording(ring, 8000, RecordingSettings(site="Trachea", patient_id=patient))
    ring.write((np.random.default_rng(0).standard_normal(8000 * 2) * 0.1).astype(np.float32))
    return str(rec.stop().path)


def test_a_damaged_store_is_said_in_the_tab_naming_the_file(qtbot):
    _damage_store()
    _, hook, view = make_view(qtbot)   # constructed without an exception
    text = view.status.text()
    assert str(paths.database_path()) in text and "backup" in text
    msgs = []
    hook.message.connect(msgs.append)
    path = _recording_of("NEW-1")
    hook.file_recording(path)
    assert msgs and msgs[-1].startswith(f"could not file {path} in the store")
    assert "backup" in msgs[-1]
    hook.save_result(path, object())
    assert msgs[-1].startswith(f"{path} is not filed in the patient store, and neither is its result")
    view.search_edit.setText("PAT")   # every action says the problem instead of raising
    view.add_patient()
    assert str(paths.database_path()) in view.status.text()


def test_the_window_starts_on_a_damaged_store(qtbot):
    from test_gui_review import make_window

    _damage_store()
    win = make_window(qtbot)
    assert str(paths.database_path()) in win.patients.status.text()
    assert [win.tabs.tabText(i) for i in range(win.tabs.count())][:3] == ["Record", "Review", "Patients"]
    win.close()


# --- 5: a store that cannot be opened -------------------------------------------------------

def test_a_store_that_cannot_be_opened_is_said_once_and_each_recording_not_filed(qtbot):
    db = paths.database_path()
    db.parent.mkdir(parents=True, exist_ok=True)
    db.write_bytes(b"garbage" * 500)
    ctx, hook, view = make_view(qtbot)
    msgs = []
    hook.message.connect(msgs.append)   # as the window does, after making the views
    qtbot.waitUntil(lambda: bool(msgs))
    assert len(msgs) == 1 and "cannot be opened" in msgs[0] and str(db) in msgs[0]
    view.search_edit.setText("NEW-1")
    view.add_patient()     # was: AttributeError on None
    assert view.status.text().startswith("Patient NEW-1 was not added: the patient store cannot be opened")
    view.save_notes()
    view.save_patient()
    view.refresh()
    qtbot.wait(20)
    assert len(msgs) == 1  # said once
    path = _recording_of("NEW-1")
    ctx.recordingFinished.emit(path)
    assert len(msgs) == 2 and msgs[1].startswith(f"{path} was saved but not filed in the patient store")
    assert "not a usable lungapp store" in msgs[1]
    # its analysis's result, shown in the status bar, would hide that: said again after it
    ctx.analysisFinished.emit(path, object())
    assert len(msgs) == 3 and msgs[2].startswith(f"{path} is not filed in the patient store, and neither is "
                                                 "its result")
    ctx.analysisFinished.emit(path, object())   # once
    assert len(msgs) == 3


def test_a_read_only_data_folder_is_named_as_such(qtbot, tmp_path, monkeypatch):
    from lungapp.gui.context import AppContext
    from lungapp.gui.patients_view import PatientsView
    from lungapp.gui.store_hook import StoreHook

    with tmpfs(tmp_path / "ro", read_only=True) as ro:
        monkeypatch.setenv("LUNGAPP_HOME", str(ro))
        ctx = AppContext()   # was: OSError, read-only file system
        assert "cannot be saved" in ctx.settings_problem and "read-only file system" in ctx.settings_problem
        hook = StoreHook(ctx)
        view = PatientsView(hook)
        qtbot.addWidget(view)
        msgs = []
        hook.message.connect(msgs.append)
        qtbot.waitUntil(lambda: bool(msgs))
        assert hook.store is None and f"the folder {ro} is on a read-only file system" in hook.error
        assert "read-only file system" in view.status.text()
        assert len(msgs) == 1 and "Settings" in msgs[0] and "patient store cannot be opened" in msgs[0]
        ctx.settings.setValue("x", 1)   # kept for the session, never raising
        ctx.shutdown()


def test_the_window_starts_when_the_data_folder_is_read_only(qtbot, tmp_path, monkeypatch):
    from test_gui_review import make_window

    with tmpfs(tmp_path / "ro", read_only=True) as ro:
        monkeypatch.setenv("LUNGAPP_HOME", str(ro))
        win = make_window(qtbot)
        qtbot.waitUntil(lambda: "Settings" in win.statusBar().currentMessage(), timeout=5000)
        assert "read-only file system" in win.statusBar().currentMessage()
        assert "read-only file system" in win.patients.status.text()
        win.close()


# --- 7: the files an import skipped are named ------------------------------------------------

def test_import_names_the_skipped_files_and_why(qtbot, tmp_path):
    folder = tmp_path / "imp"
    write_recording(folder / "40638274_9.7_1_p1_1753.wav", "Normal", seconds=3.0)
    (folder / "40877908_4.0_0_p3_3435.wav").write_bytes(b"not audio at all " * 20)
    for i in range(300):
        (folder / f"nopatient{i:03d}.wav").write_bytes(b"RIFF")
    _, hook, view = make_view(qtbot)
    said = []
    view.statusMessage.connect(said.append)
    assert not view.skipped_button.isVisible()
    view.import_folder(str(folder))
    qtbot.waitUntil(lambda: view.import_button.isEnabled(), timeout=60000)
    assert len(view.skipped) == 301
    first, why = view.skipped[0]
    line = said[-1]
    assert line.startswith("Imported 1 recording(s) of 1 patient(s); 301 skipped: ")
    assert first.rsplit("/", 1)[-1] in line and why in line and "and 300 more" in line
    assert len(line) < 400 and view.status.text() == line
    assert view.skipped_button.isVisible() and view.skipped_button.text() == "Skipped files (301)…"
    assert "… and 281 more" in view.skipped_button.toolTip()
    dlg = view.show_skipped()
    qtbot.addWidget(dlg)
    text = dlg.text.toPlainText()
    assert all(f"{p} — {w}" in text for p, w in view.skipped)
    assert text.startswith("300 file(s): no patient id in the file name")
    dlg.close()


def test_the_question_about_unsaved_changes_is_a_dialog(qtbot):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from lungapp.gui.patients_view import ask_save

    seen = []

    def answer(button):
        box = QApplication.activeModalWidget()
        seen.append((box.text(), sorted(b.text().replace("&", "") for b in box.buttons())))
        box.button(button).click()

    QTimer.singleShot(100, lambda: answer(QMessageBox.StandardButton.Discard))
    assert ask_save(None, "Save the changes to the name of patient P-1?", True) == DISCARD
    QTimer.singleShot(100, lambda: answer(QMessageBox.StandardButton.Save))
    assert ask_save(None, "Save?", True) == SAVE
    QTimer.singleShot(100, lambda: answer(QMessageBox.StandardButton.Cancel))
    assert ask_save(None, "Patient P-1 is no longer in the store. Discard them?", False) == CANCEL
    assert seen[0] == ("Save the changes to the name of patient P-1?", ["Cancel", "Discard", "Save"])
    assert seen[2][1] == ["Cancel", "Discard"]
