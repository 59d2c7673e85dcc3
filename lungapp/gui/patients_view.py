"""The Patients tab: find a patient, see their visits, each visit's body map of chest
sites coloured by result (and the sites still to record), its recordings with results,
confirmed labels and missing files, and the visit's notes. From here a recording opens in
Review, is compared with an earlier one, results made by another model are re-analysed
in one action, a moved file is relocated, and a visit's report is written as a PDF.

Thin: every read and write goes through :class:`lungapp.store.Store` (via the
:class:`~lungapp.gui.store_hook.StoreHook`).

What the user types is never lost to a refresh (a recording filed, a result saved, a
return to the tab): the name, birth year, sex and notes are compared with what was loaded
for the patient and visit shown, and a field changed and not saved is kept. Leaving the
patient (or the visit) with unsaved changes asks whether to save them (:attr:`PatientsView.ask`,
replaceable in tests); a patient with unsaved changes stays listed whatever the search.
When the patient or visit was deleted elsewhere (another window, ``lungapp
delete-patient``), saving says so, and what was typed stays shown, to copy. Every store
access is guarded: a store that cannot be opened, or a damaged one, is said in the tab
(naming the file) and the rest of the app goes on."""

from __future__ import annotations

import datetime as _dt
import os
import re
from collections import Counter
from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lungapp import paths
from lungapp.errors import LungappError
from lungapp.gui.body_map import BodyMapWidget
from lungapp.gui.scrolling import scrolling
from lungapp.gui.store_hook import STORE_ERRORS, store_problem, unwritable
from lungapp.gui.workers import run_task
from lungapp.report.content import gather, judged

#: The earliest birth year taken, as ``lungapp edit-patient`` takes it; the spin box's
#: minimum, one below, stands for "unknown".
BIRTH_MIN = 1880
VISIT_ID = Qt.ItemDataRole.UserRole + 1   # a visit item's store id (UserRole: its number)
SAVE, DISCARD, CANCEL = "save", "discard", "cancel"
UNSAVED = "  (unsaved changes)"   # after a patient listed for them whatever the search


def _import(task, folder: str) -> tuple[int, int, list[tuple[str, str]]]:
    from lungapp.store import Store
    from lungapp.store.importer import import_folder

    with Store() as store:
        report = import_folder(store, folder)
    return len(report.added), len(report.patients), list(report.skipped)


def ask_save(parent: QWidget | None, text: str, can_save: bool) -> str:
    """Ask what to do with unsaved changes: SAVE, DISCARD or CANCEL (stay). Without
    ``can_save`` (the patient is gone) only DISCARD or CANCEL."""
    box = QMessageBox(QMessageBox.Icon.Question, "Unsaved changes", text, parent=parent)
    buttons = QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel
    if can_save:
        buttons |= QMessageBox.StandardButton.Save
    box.setStandardButtons(buttons)
    box.setDefaultButton(QMessageBox.StandardButton.Save if can_save else QMessageBox.StandardButton.Cancel)
    box.setEscapeButton(QMessageBox.StandardButton.Cancel)
    answer = box.exec()
    return {QMessageBox.StandardButton.Save: SAVE,
            QMessageBox.StandardButton.Discard: DISCARD}.get(QMessageBox.StandardButton(answer), CANCEL)


def skipped_text(skipped: list[tuple[str, str]]) -> str:
    """The files an import skipped, one per line with the reason, after a count by reason."""
    counts = Counter(why for _, why in skipped)
    head = [f"{n} file(s): {why}" for why, n in counts.most_common()]
    return "\n".join([*head, "", *(f"{path} — {why}" for path, why in skipped)])


COLUMNS = ("Site", "Recorded", "Result", "p(abnormal)", "Model", "Confirmed labels", "File")


def result_words(entry) -> str:
    if entry.missing:
        return "file missing"
    if entry.result is None:
        return "not analysed"
    noisy = " - noisy" if (entry.result.get("quality") or {}).get("level") == "warn" else ""
    caution = " - unlike the training recordings" if (entry.result.get("details") or {}).get("unfamiliar") else ""
    return f"{entry.result['decision']} ({entry.result['label']}){noisy}{caution}"


class PatientsView(QWidget):
    openRecording = Signal(str)     # a path to show in Review
    statusMessage = Signal(str)

    def __init__(self, hook, parent: QWidget | None = None,
                 ask: Callable[[str, bool], str] | None = None):
        super().__init__(parent)
        self.hook = hook
        #: ask(text, can_save) -> SAVE, DISCARD or CANCEL: what to do with unsaved changes
        #: when leaving a patient or visit (a dialog; tests put a function in its place).
        self.ask = ask or (lambda text, can_save: ask_save(self, text, can_save))
        self.data = None              # ReportData of the visit shown
        self._patient: str | None = None   # whose details the fields hold
        self._base: dict = {}              # ... as they were loaded (store terms)
        self._visit_id: int | None = None  # whose notes the notes field holds
        self._notes_base = ""              # ... as they were loaded
        self._asking = False               # a question is open: refreshes wait for it
        self._refresh_again = False
        self.skipped: list[tuple[str, str]] = []   # the last import's skipped files, with why
        self._build()
        self._connect()
        self._load_details(None, None)  # nothing to edit until a patient (and visit) is shown
        self._load_notes(None, "")
        hook.changed.connect(self.refresh)
        self.refresh()

    # --- construction -------------------------------------------------------------------
    def _build(self) -> None:
        split = QSplitter(Qt.Orientation.Horizontal)
        for pane in (self._build_patients(), self._build_visit(), self._build_recordings()):
            split.addWidget(scrolling(pane))  # a small screen scrolls, never widens the window
        split.setStretchFactor(2, 2)
        lay = QVBoxLayout(self)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        lay.addWidget(split, 1)

    def _build_patients(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        self.search_edit = QLineEdit(placeholderText="Search by identifier or name")
        self.patient_list = QListWidget()
        self.add_button = QPushButton("Add patient")
        self.add_button.setToolTip("Add the identifier typed in the search field as a new patient")
        self.import_button = QPushButton("Import folder…")
        self.skipped_button = QPushButton("Skipped files…")
        self.skipped_button.setToolTip("The files the last import skipped, and why")
        self.skipped_button.hide()
        self.folder_button = QPushButton("Open recordings folder")
        self.folder_button.setToolTip(str(paths.recordings_dir()))
        lay.addWidget(QLabel("Patients"))
        lay.addWidget(self.search_edit)
        lay.addWidget(self.patient_list, 1)
        lay.addWidget(self._build_details())
        row = QHBoxLayout()
        row.addWidget(self.add_button)
        row.addWidget(self.import_button)
        lay.addLayout(row)
        lay.addWidget(self.skipped_button)
        lay.addWidget(self.folder_button)
        return w

    def _build_details(self) -> QWidget:
        """Name, birth year and sex of the selected patient, editable."""
        box = QWidget()
        form = QFormLayout(box)
        form.setContentsMargins(0, 0, 0, 0)
        self.name_edit = QLineEdit()
        self.birth_spin = QSpinBox()
        self.birth_spin.setRange(BIRTH_MIN - 1, _dt.date.today().year)
        self.birth_spin.setSpecialValueText("unknown")  # the minimum stands for "not given"
        self.sex_combo = QComboBox()
        self.sex_combo.addItems(["", "female", "male", "other"])
        self.save_patient_button = QPushButton("Save patient details")
        form.addRow("Name", self.name_edit)
        form.addRow("Born", self.birth_spin)
        form.addRow("Sex", self.sex_combo)
        form.addRow(self.save_patient_button)
        return box

    def _build_visit(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        self.visit_list = QListWidget()
        self.visit_list.setMaximumHeight(120)
        self.body_map = BodyMapWidget()
        self.notes_edit = QPlainTextEdit(placeholderText="Notes on this visit")
        self.notes_edit.setMaximumHeight(110)
        self.save_notes_button = QPushButton("Save notes")
        self.report_button = QPushButton("Report (PDF)…")
        lay.addWidget(QLabel("Visits"))
        lay.addWidget(self.visit_list)
        lay.addWidget(self.body_map, 1)
        lay.addWidget(self.notes_edit)
        row = QHBoxLayout()
        row.addWidget(self.save_notes_button)
        row.addWidget(self.report_button)
        lay.addLayout(row)
        return w

    def _build_recordings(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.open_button = QPushButton("Open in Review")
        self.compare_button = QPushButton("Compare with earlier…")
        self.reanalyse_button = QPushButton("Re-analyse with the active model")
        self.relocate_button = QPushButton("Relocate missing file…")
        lay.addWidget(QLabel("Recordings of the visit"))
        lay.addWidget(self.table, 1)
        row = QHBoxLayout()
        for b in (self.open_button, self.compare_button, self.reanalyse_button, self.relocate_button):
            row.addWidget(b)
        lay.addLayout(row)
        return w

    def _connect(self) -> None:
        self.search_edit.textChanged.connect(lambda _: self.refresh())
        self.patient_list.currentItemChanged.connect(lambda *_: self._patient_chosen())
        self.visit_list.currentItemChanged.connect(lambda *_: self._visit_chosen())
        self.body_map.siteClicked.connect(self.select_site)
        self.table.doubleClicked.connect(lambda _: self.open_selected())
        self.open_button.clicked.connect(self.open_selected)
        self.compare_button.clicked.connect(self.compare_selected)
        self.reanalyse_button.clicked.connect(self.reanalyse_stale)
        self.relocate_button.clicked.connect(self.relocate_dialog)
        self.save_notes_button.clicked.connect(self.save_notes)
        self.report_button.clicked.connect(self.report_dialog)
        self.import_button.clicked.connect(self.import_dialog)
        self.skipped_button.clicked.connect(self.show_skipped)
        self.add_button.clicked.connect(self.add_patient)
        self.folder_button.clicked.connect(self.open_recordings_folder)
        self.save_patient_button.clicked.connect(self.save_patient)

    # --- what is shown ------------------------------------------------------------------
    def current_patient(self) -> str | None:
        item = self.patient_list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def current_visit_number(self) -> int | None:
        item = self.visit_list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def _current_visit_id(self) -> int | None:
        item = self.visit_list.currentItem()
        return item.data(VISIT_ID) if item else None

    def _store(self, doing: str | None = None):
        """The open store (tried again if it could not be opened before), or None after
        saying why in the tab (``doing``: what could not be done)."""
        store = self.hook.reopen()
        if store is None:
            self.status.setText(f"{doing}: the patient store cannot be opened ({self.hook.error})." if doing
                                else f"The patient store cannot be opened: {self.hook.error}")
        return store

    def _failed(self, exc: BaseException, doing: str) -> None:
        """Say in the tab that a store operation failed (the file named, and the way back
        from a damaged one)."""
        self.status.setText(f"{doing}: {store_problem(exc, paths.database_path())}")

    def refresh(self) -> None:
        """Re-read the patient list (keeping the selection) and the
        visit shown; fields changed and not saved are kept."""
        if self._asking:  # a question about unsaved changes is open: after it
            self._refresh_again = True
            return
        store = self._store()
        if store is None:
            return
        try:
            self._refresh(store)
        except STORE_ERRORS as exc:
            self._failed(exc, "The patients cannot be shown")

    def _refresh(self, store) -> None:
        keep = self._patient
        rows = list(store.find_patients(self.search_edit.text()))
        idents = [p["identifier"] for p in rows]
        gone = kept = False
        if keep is not None and keep not in idents and self._unsaved():
            row = store.patient(keep, missing_ok=True)
            if row is None:
                gone = True       # deleted elsewhere: what was typed stays shown
            else:
                rows.append(row)  # not found by the search, but with unsaved changes: listed
                idents.append(keep)
                kept = True
        self.patient_list.blockSignals(True)
        self.patient_list.clear()
        for p in rows:
            text = p["identifier"] + (f"  {p['name']}" if p["name"] else "")
            item = QListWidgetItem(text + (UNSAVED if kept and p["identifier"] == keep else ""))
            item.setData(Qt.ItemDataRole.UserRole, p["identifier"])
            self.patient_list.addItem(item)
        if keep in idents:
            self.patient_list.setCurrentRow(idents.index(keep))
        elif rows and not gone:
            self.patient_list.setCurrentRow(0)
        self.patient_list.blockSignals(False)
        if gone:
            self._show_gone(keep)
        else:
            self._show_visits()

    def _show_gone(self, ident: str) -> None:
        """The patient shown was deleted elsewhere while the user had changes unsaved:
        they stay in the fields, to copy; nothing else of the patient is shown."""
        self.visit_list.blockSignals(True)
        self.visit_list.clear()
        self.visit_list.blockSignals(False)
        self.data = None
        self.body_map.set_states({})
        self._fill_table([], [])
        self.status.setText(f"Patient {ident} is no longer in the store (deleted elsewhere?). What you typed "
                            "for them is still shown, to copy; choose another patient to discard it.")

    # --- the fields: loaded, compared with what was loaded, kept when changed -----------
    @staticmethod
    def _stored_details(row) -> dict:
        return {"name": (row["name"] or "") if row else "",
                "birth_year": (row["birth_year"] or None) if row else None,
                "sex": (row["sex"] or "") if row else ""}

    def _birth_year(self) -> int | None:
        value = self.birth_spin.value()
        return None if value == self.birth_spin.minimum() else value

    def _set_birth_year(self, year: int | None) -> None:
        """Show ``year`` (None: "unknown"); the range reaches a stored year outside the
        usual one, so it is shown as it is, not as "unknown"."""
        this_year = _dt.date.today().year
        low = min(BIRTH_MIN, year) if year else BIRTH_MIN
        self.birth_spin.setRange(low - 1, max(this_year, year or this_year))
        self.birth_spin.setValue(year if year else low - 1)

    def _set_sex(self, sex: str) -> None:
        if self.sex_combo.findText(sex) < 0:  # a value written elsewhere: shown as it is
            self.sex_combo.addItem(sex)
        self.sex_combo.setCurrentText(sex)

    def _details_shown(self) -> dict:
        return {"name": self.name_edit.text(), "birth_year": self._birth_year(),
                "sex": self.sex_combo.currentText()}

    def _details_changes(self) -> dict:
        """The details changed by the user and not saved, in store terms."""
        if self._patient is None:
            return {}
        shown = self._details_shown()
        out = {k: v for k, v in shown.items() if v != self._base.get(k)}
        if "name" in out:
            out["name"] = out["name"].strip()
        return out

    def _notes_changed(self) -> bool:
        return self._visit_id is not None and self.notes_edit.toPlainText() != self._notes_base

    def _unsaved(self) -> bool:
        return bool(self._details_changes()) or self._notes_changed()

    def confirm_close(self) -> bool:
        """Before the window closes: True to close (nothing unsaved, or saved or discarded
        as the user answered), False to keep it open (Cancel)."""
        return self._confirm_leave()

    def _load_details(self, ident: str | None, row) -> None:
        """Show ``row``'s details; of the same patient, a field the user changed and has
        not saved is kept."""
        stored = self._stored_details(row)
        same = ident is not None and ident == self._patient
        changed = self._details_changes() if same else {}
        if "name" not in changed and self.name_edit.text() != stored["name"]:
            self.name_edit.setText(stored["name"])
        if "birth_year" not in changed and self._birth_year() != stored["birth_year"]:
            self._set_birth_year(stored["birth_year"])
        if "sex" not in changed and self.sex_combo.currentText() != stored["sex"]:
            self._set_sex(stored["sex"])
        self._patient, self._base = ident, stored
        for w in (self.name_edit, self.birth_spin, self.sex_combo, self.save_patient_button):
            w.setEnabled(ident is not None)

    def _load_notes(self, visit_id: int | None, notes: str) -> None:
        """Show a visit's notes; of the same visit, notes changed and not saved are kept."""
        keep = visit_id is not None and visit_id == self._visit_id and self._notes_changed()
        if not keep and self.notes_edit.toPlainText() != notes:
            self.notes_edit.setPlainText(notes)
        self._visit_id, self._notes_base = visit_id, notes
        self.notes_edit.setReadOnly(visit_id is None)
        self.save_notes_button.setEnabled(visit_id is not None)

    def _forget_changes(self, notes_only: bool = False) -> None:
        """The user chose to discard their changes: nothing is unsaved any more."""
        if not notes_only:
            self._base = self._details_shown()
        self._notes_base = self.notes_edit.toPlainText()

    # --- leaving a patient or visit with unsaved changes --------------------------------
    def _patient_chosen(self) -> None:
        ident = self.current_patient()
        changed = ident != self._patient and self._unsaved()
        if changed and not self._confirm_leave():
            self._select_shown()
            QTimer.singleShot(0, self, self._select_shown)  # after the click that chose another one
            return
        self._guarded("The patient cannot be shown", self._show_visits)
        if changed:  # the list again (not while the click is handled): a name saved, the search
            QTimer.singleShot(0, self, self.refresh)  # rules again for a patient listed for their changes

    def _visit_chosen(self) -> None:
        if self._current_visit_id() != self._visit_id and not self._confirm_leave(notes_only=True):
            self._select_shown()
            QTimer.singleShot(0, self, self._select_shown)
            return
        self._guarded("The visit cannot be shown", self._show_visit)

    def _select_shown(self) -> None:
        """Select again, without a signal, the patient and visit the fields belong to."""
        for widget, role, key in ((self.patient_list, Qt.ItemDataRole.UserRole, self._patient),
                                  (self.visit_list, VISIT_ID, self._visit_id)):
            rows = [i for i in range(widget.count()) if widget.item(i).data(role) == key]
            widget.blockSignals(True)
            widget.setCurrentRow(rows[0] if rows and key is not None else -1)
            widget.blockSignals(False)

    def _guarded(self, doing: str, fn) -> None:
        try:
            fn()
        except STORE_ERRORS as exc:
            self._failed(exc, doing)

    def _changes_words(self, changes: dict, notes: bool) -> str:
        words = [{"name": "the name", "birth_year": "the birth year", "sex": "the sex"}[k] for k in changes]
        if notes:
            number = next((self.visit_list.item(i).data(Qt.ItemDataRole.UserRole)
                           for i in range(self.visit_list.count())
                           if self.visit_list.item(i).data(VISIT_ID) == self._visit_id), None)
            words.append(f"the notes of visit {number}" if number else "the visit's notes")
        return ", ".join(words[:-1]) + (" and " if len(words) > 1 else "") + words[-1]

    def _confirm_leave(self, notes_only: bool = False) -> bool:
        """Before another patient (or visit) replaces the fields: True to go on (nothing
        unsaved, or the user saved or discarded it), False to stay."""
        changes = {} if notes_only else self._details_changes()
        notes = self._notes_changed()
        if not changes and not notes:
            return True
        what, ident = self._changes_words(changes, notes), self._patient
        missing = self._missing(ident, self._visit_id if notes else None)
        if missing is None:
            text = f"Save the changes to {what} of patient {ident}?"
        else:
            text = f"{missing} Your changes to {what} cannot be saved there. Discard them?"
        self._asking = True
        try:
            answer = self.ask(text, missing is None)
        finally:
            self._asking = False
            if self._refresh_again:
                self._refresh_again = False
                QTimer.singleShot(0, self, self.refresh)
        if answer == SAVE and missing is None:
            return (not changes or self._write_details(changes)) and (not notes or self._write_notes())
        if answer == DISCARD:
            self._forget_changes(notes_only)
            return True
        return False

    def _missing(self, ident: str | None, visit_id: int | None) -> str | None:
        """None when the patient (and the visit) are in the store, else one line saying
        what is not (or why the store cannot tell)."""
        store = self.hook.reopen()
        if store is None:
            return f"The patient store cannot be opened ({self.hook.error})."
        try:
            row = store.patient(ident, missing_ok=True)
            if row is None:
                return f"Patient {ident} is no longer in the store (deleted elsewhere?)."
            if visit_id is not None and visit_id not in {v["id"] for v in store.visits(row["id"])}:
                return f"This visit of patient {ident} is no longer in the store (deleted elsewhere?)."
        except STORE_ERRORS as exc:
            return f"The store cannot be read: {store_problem(exc, paths.database_path())}."
        return None

    # --- a patient's visits, a visit's recordings ---------------------------------------
    def _show_visits(self) -> None:
        ident = self.current_patient()
        store = self.hook.store
        row = store.patient(ident, missing_ok=True) if ident and store is not None else None
        same = row is not None and ident == self._patient
        self._load_details(ident if row is not None else None, row)
        visits = store.visits(row["id"]) if row is not None else []
        ids = [v["id"] for v in visits]
        self.visit_list.blockSignals(True)
        self.visit_list.clear()
        for v in visits:
            item = QListWidgetItem(f"Visit {v['number']}: {v['date']}"
                                   + (f", {v['clinician']}" if v["clinician"] else ""))
            item.setData(Qt.ItemDataRole.UserRole, v["number"])
            item.setData(VISIT_ID, v["id"])
            self.visit_list.addItem(item)
        if same and self._visit_id in ids:
            self.visit_list.setCurrentRow(ids.index(self._visit_id))
        elif visits and not (same and self._notes_changed()):  # else: the visit is gone, its notes kept
            self.visit_list.setCurrentRow(len(visits) - 1)  # the latest visit
        self.visit_list.blockSignals(False)
        self._show_visit()

    def _show_visit(self) -> None:
        ident, number, store = self.current_patient(), self.current_visit_number(), self.hook.store
        self.data, times, problem = None, [], ""
        if ident and number and store is not None:
            try:  # by its id: the number it is listed under may have moved since
                self.data = gather(store, ident, None, self.hook.active_model(), visit_id=self._current_visit_id())
                times = [store.recording(e.uid)["recorded_at"] for e in self.data.entries]
            except STORE_ERRORS as exc:
                self.data, problem = None, store_problem(exc, paths.database_path())
        entries = self.data.entries if self.data else []
        self.body_map.set_states(self.data.site_states() if self.data else {})
        orphan = self.data is None and ident is not None and ident == self._patient and self._notes_changed()
        if self.data is not None:
            self._load_notes(self.data.visit["id"], self.data.visit["notes"] or "")
        elif not orphan:
            self._load_notes(None, "")
        self._fill_table(entries, times)
        if self.data is not None and self.data.visit["number"] != number:
            self._show_visits()  # visits were filed or deleted since the list was made: list them again
            return
        missing = sum(e.missing for e in entries)
        stale = sum(bool(e.result and e.result.get("stale")) for e in entries)
        if problem:
            self.status.setText(problem)
        elif orphan:
            self.status.setText("The visit these notes were typed for is no longer in the store (deleted "
                                "elsewhere?). They are still shown, to copy; choose a visit to discard them.")
        else:
            self.status.setText(self._summary(ident, len(entries), missing, stale, self.search_edit.text().strip(),
                                              self.patient_list.count(), self.visit_list.count()))

    @staticmethod
    def _summary(ident, n: int, missing: int, stale: int, search: str = "", listed: int = 0,
                 visits: int | None = None) -> str:
        if not ident and search and not listed:
            return f"No patient matches \u201c{search}\u201d."
        if not ident and listed:
            return "Choose a patient."
        if not ident:
            return "No patients yet: record with a patient identifier, or import a folder."
        if visits == 0:
            return f"Patient {ident} has no visits yet: record with their identifier, or import a folder."
        text = f"Patient {ident}: {n} recording(s) in this visit"
        if missing:
            text += f"; {missing} file(s) missing (moved or deleted outside lungapp: relocate them)"
        if stale:
            text += f"; {stale} result(s) made by another model than the active one (re-analyse)"
        return text + "."

    def _fill_table(self, entries, times) -> None:
        self.table.setRowCount(len(entries))
        for row, e in enumerate(entries):
            r = e.result or {}
            recorded = (times[row] or "").replace("T", " ")[:16] if row < len(times) else ""
            values = (e.site, recorded, result_words(e),
                      f"{r['abnormal_probability']:.2f}" if r and judged(r) else "",
                      (r["model"] + (" (other model)" if r.get("stale") else "")) if r else "",
                      ", ".join(lab["label"] for lab in e.labels), e.path)
            notes = "\n".join((r.get("details") or {}).get("notes") or [])
            for col, value in enumerate(values):
                item = QTableWidgetItem(value)
                if e.missing or r.get("stale"):
                    item.setForeground(QColor("#a03000"))
                if col == 2 and notes:
                    item.setToolTip(notes)
                self.table.setItem(row, col, item)
        self.table.resizeColumnsToContents()

    def selected_entries(self) -> list:
        if not self.data:
            return []
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [self.data.entries[r] for r in rows if r < len(self.data.entries)]

    def select_site(self, site: str) -> None:
        """Select the rows of ``site`` (a click on the body map)."""
        self.table.clearSelection()
        for row, e in enumerate(self.data.entries if self.data else []):
            if e.site == site:
                self.table.selectRow(row)

    # --- actions ------------------------------------------------------------------------
    def open_selected(self) -> None:
        for e in self.selected_entries():
            if e.missing or not os.path.exists(e.path):
                self.status.setText(f"{e.path}: the file is missing; relocate it first.")
                continue
            self.openRecording.emit(e.path)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh()  # another window or a CLI command may have written to the store

    def open_recordings_folder(self) -> bool:
        """Show the folder the Record view writes to in the desktop's file manager."""
        try:
            folder = paths.ensure(paths.recordings_dir())
        except OSError as exc:
            folder = paths.recordings_dir()
            self.status.setText(f"Could not make {folder} ({exc.strerror or exc}); it is where recordings "
                                "are saved.")
            return False
        ok = QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
        if not ok:
            self.status.setText(f"Could not open {folder}; it is where recordings are saved.")
        return ok

    def add_patient(self) -> None:
        """Add the identifier typed in the search field (a patient seen for the first time)."""
        ident = self.search_edit.text().strip()
        doing = f"Patient {ident} was not added" if ident else "No patient was added"
        store = self._store(doing)
        if store is None:
            return
        try:
            store.add_patient(ident)
        except STORE_ERRORS as exc:
            self._failed(exc, doing)
            return
        self.statusMessage.emit(f"Patient {ident} added.")
        self.refresh()
        self.select_patient(ident)

    def select_patient(self, ident: str) -> bool:
        """Show patient ``ident`` if listed (asking first about unsaved changes)."""
        for i in range(self.patient_list.count()):
            if self.patient_list.item(i).data(Qt.ItemDataRole.UserRole) == ident:
                self.patient_list.setCurrentRow(i)
                return self._patient == ident
        return False

    def _gone(self, text: str) -> None:
        """``text`` (what was not saved because it is no longer in the store), after the
        list is read again; what was typed stays shown."""
        self.refresh()
        self.status.setText(f"{text} What you typed is still shown, to copy.")

    def save_patient(self) -> None:
        ident = self._patient
        if not ident:
            self.status.setText("Choose a patient first.")
            return
        changes = self._details_changes()
        if not changes:
            self.statusMessage.emit(f"Nothing to save: the details of patient {ident} are unchanged.")
            return
        if self._write_details(changes):
            self.statusMessage.emit(f"Patient {ident} saved.")
            self.refresh()

    def _write_details(self, changes: dict) -> bool:
        """Write the fields the user changed (only those); False after saying why not."""
        ident = self._patient
        doing = f"Patient {ident} was not saved"
        store = self._store(doing)
        if store is None:
            return False
        try:
            with store.transaction():  # looked up in the same transaction as the write
                there = store.patient(ident, missing_ok=True) is not None
                if there:
                    store.update_patient(ident, **changes)
        except STORE_ERRORS as exc:
            self._failed(exc, doing)
            return False
        if not there:
            self._gone(f"Patient {ident} is no longer in the store (deleted elsewhere?): the details were not "
                       "saved.")
            return False
        if "name" in changes and self.name_edit.text() != changes["name"]:
            self.name_edit.setText(changes["name"])
        self._base.update(changes)
        return True

    def save_notes(self) -> None:
        if self._visit_id is None:
            self.status.setText("Choose a visit first.")
            return
        if self._write_notes():
            self.statusMessage.emit("Notes saved.")

    def _write_notes(self) -> bool:
        ident, visit_id, text = self._patient, self._visit_id, self.notes_edit.toPlainText()
        doing = "The notes were not saved"
        store = self._store(doing)
        if store is None:
            return False
        try:
            with store.transaction():  # the visit looked up in the same transaction as the write
                row = store.patient(ident, missing_ok=True)
                there = row is not None and visit_id in {v["id"] for v in store.visits(row["id"])}
                if there:
                    store.set_visit_notes(visit_id, text)
        except STORE_ERRORS as exc:
            self._failed(exc, doing)
            return False
        if not there:
            self._gone(f"{doing}: " + (f"patient {ident} is no longer in the store" if row is None else
                                       f"this visit of patient {ident} is no longer in the store")
                       + " (deleted elsewhere?).")
            return False
        self._notes_base = text
        return True

    def reanalyse_stale(self) -> list[str]:
        """Queue every recording of the patient whose results are by another model (or
        that has none) for analysis with the active model; the hook stores the results."""
        ident, active = self.current_patient(), self.hook.active_model()
        doing = "Nothing was re-analysed"
        store = self._store(doing)
        if store is None:
            return []
        if not ident:
            self.status.setText("Choose a patient first: nothing was re-analysed.")
            return []
        if active is None:
            self.status.setText("No model is loaded yet: nothing was re-analysed.")
            return []
        try:
            row = store.patient(ident, missing_ok=True)
            if row is None:
                self._gone(f"{doing}: patient {ident} is no longer in the store (deleted elsewhere?).")
                return []
            uids = [r["uid"] for r in store.stale_recordings(active, row["id"])] + \
                store.unanalysed_recordings(row["id"])
            found = [store.recording(u)["path"] for u in uids]
        except STORE_ERRORS as exc:
            self._failed(exc, doing)
            return []
        paths_ = [p for p in found if os.path.isfile(p)]
        for p in paths_:
            self.hook.ctx.request_analysis(p)
        self.statusMessage.emit(f"Re-analysing {len(paths_)} recording(s) with the active model.")
        return paths_

    def relocate_dialog(self) -> None:
        entries = [e for e in self.selected_entries() if e.missing]
        if not entries:
            self.status.setText("Select a recording whose file is missing, then relocate it.")
            return
        path, _ = QFileDialog.getOpenFileName(self, f"Where is {entries[0].path}?")
        if path:
            self.relocate(entries[0].uid, path)

    def relocate(self, uid: str, path: str) -> None:
        store = self._store("The recording was not relocated")
        if store is None:
            return
        try:
            store.relocate(uid, path)
        except STORE_ERRORS as exc:
            self.refresh()  # the recording may be gone: show what the store holds now
            text = store_problem(exc, paths.database_path())
            self.status.setText(text if "not relocated" in text else f"The recording was not relocated: {text}")
            return
        self.refresh()

    def compare_selected(self):
        from lungapp.gui.compare_view import CompareDialog

        entries = self.selected_entries()
        ident = self.current_patient()
        if not entries or not ident:
            self.status.setText("Select a recording to compare with an earlier one of the same site.")
            return None
        doing = "Nothing to compare"
        store = self._store(doing)
        if store is None:
            return None
        try:
            if store.patient(ident, missing_ok=True) is None:
                self._gone(f"{doing}: patient {ident} is no longer in the store (deleted elsewhere?).")
                return None
            if not store.query("SELECT 1 FROM recordings WHERE uid = ?", (entries[0].uid,)):
                self._gone(f"{doing}: the recording {entries[0].path} is no longer in the store (deleted "
                           "elsewhere?).")
                return None
            dlg = CompareDialog(self.hook, ident, entries[0].uid, self)
        except STORE_ERRORS as exc:
            self._failed(exc, doing)
            return None
        dlg.show()
        return dlg

    def report_dialog(self) -> None:
        if self.data is None:
            self.status.setText("Choose a visit first: the report is of one visit.")
            return
        # An identifier such as 2024/0017 is one name, not a folder and a name.
        name = re.sub(r'[\\/:*?"<>|\x00-\x1f]', "-", self.current_patient() or "")
        path, _ = QFileDialog.getSaveFileName(self, "Save the report", f"report-{name}.pdf", "PDF (*.pdf)")
        if path:
            self.write_report(path)

    def write_report(self, path: str) -> str | None:
        from lungapp.report.pdf import write_report

        if self.data is None:
            self.status.setText("Choose a visit first: the report is of one visit.")
            return None
        try:
            out = write_report(self.data, path, self._spectrogram_config())
        except LungappError as exc:
            self.status.setText(str(exc))
            return None
        self.statusMessage.emit(f"Report written to {out}")
        return str(out)

    def _spectrogram_config(self):
        predictor = self.hook.ctx.predictor()
        card = getattr(predictor, "card", None)
        return card.features.spectrogram if card is not None else None

    def import_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import a folder of recordings")
        if folder:
            self.import_folder(folder)

    def import_folder(self, folder: str):
        """Import ``folder`` in a worker (its own connection to the store); returns the task."""
        self.import_button.setEnabled(False)
        self.status.setText(f"Importing {folder}…")
        return run_task(_import, folder, name="import folder", on_finished=self._imported,
                        on_failed=lambda msg, exc: self._imported(msg))

    def _imported(self, outcome) -> None:
        self.import_button.setEnabled(True)
        if isinstance(outcome, str):
            ro = unwritable(paths.database_path())
            self.status.setText(f"Import failed: {outcome}" + (f" — {ro}" if ro else ""))
            return
        added, patients, skipped = outcome
        self.skipped = list(skipped)
        text = f"Imported {added} recording(s) of {patients} patient(s)"
        if skipped:
            path, why = skipped[0]
            more = f" and {len(skipped) - 1} more" if len(skipped) > 1 else ""
            text += f"; {len(skipped)} skipped: {os.path.basename(path)} ({why}){more} (Skipped files… lists them)"
        self.skipped_button.setText(f"Skipped files ({len(skipped)})…")
        self.skipped_button.setVisible(bool(skipped))
        lines = [f"{p} — {w}" for p, w in skipped[:20]]
        self.skipped_button.setToolTip("\n".join(lines + ([f"… and {len(skipped) - 20} more"]
                                                          if len(skipped) > 20 else [])))
        self.statusMessage.emit(text + ".")
        self.refresh()
        self.status.setText(text + ".")

    def show_skipped(self) -> QDialog:
        """A dialog listing every file the last import skipped, with the reason (a long
        list scrolls; the text can be copied)."""
        dlg = QDialog(self)
        dlg.setWindowTitle(f"Files skipped by the import ({len(self.skipped)})")
        lay = QVBoxLayout(dlg)
        dlg.text = QPlainTextEdit(skipped_text(self.skipped))
        dlg.text.setReadOnly(True)
        dlg.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dlg.reject)
        lay.addWidget(dlg.text)
        lay.addWidget(buttons)
        dlg.resize(900, 500)
        dlg.show()
        return dlg
