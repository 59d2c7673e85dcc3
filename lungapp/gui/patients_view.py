"""The Patients tab: find a patient, see their visits, each visit's body map of chest
sites coloured by result (and the sites still to record), its recordings with results,
confirmed labels and missing files, and the visit's notes. From here a recording opens in
Review, is compared with an earlier one, results made by another model are re-analysed
in one action, a moved file is relocated, and a visit's report is written as a PDF.

Thin: every read and write goes through :class:`lungapp.store.Store` (via the
:class:`~lungapp.gui.store_hook.StoreHook`)."""

from __future__ import annotations

import datetime as _dt
import os

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
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
from lungapp.gui.workers import run_task
from lungapp.report.content import gather, judged


def _import(task, folder: str) -> tuple[int, int, int]:
    from lungapp.store import Store
    from lungapp.store.importer import import_folder

    with Store() as store:
        report = import_folder(store, folder)
    return len(report.added), len(report.patients), len(report.skipped)


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

    def __init__(self, hook, parent: QWidget | None = None):
        super().__init__(parent)
        self.hook = hook
        self.data = None              # ReportData of the visit shown
        self._build()
        self._connect()
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
        lay.addWidget(self.folder_button)
        return w

    def _build_details(self) -> QWidget:
        """Name, birth year and sex of the selected patient, editable."""
        box = QWidget()
        form = QFormLayout(box)
        form.setContentsMargins(0, 0, 0, 0)
        self.name_edit = QLineEdit()
        self.birth_spin = QSpinBox()
        self.birth_spin.setRange(1899, _dt.date.today().year)
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
        self.patient_list.currentItemChanged.connect(lambda *_: self._show_visits())
        self.visit_list.currentItemChanged.connect(lambda *_: self._show_visit())
        self.body_map.siteClicked.connect(self.select_site)
        self.table.doubleClicked.connect(lambda _: self.open_selected())
        self.open_button.clicked.connect(self.open_selected)
        self.compare_button.clicked.connect(self.compare_selected)
        self.reanalyse_button.clicked.connect(self.reanalyse_stale)
        self.relocate_button.clicked.connect(self.relocate_dialog)
        self.save_notes_button.clicked.connect(self.save_notes)
        self.report_button.clicked.connect(self.report_dialog)
        self.import_button.clicked.connect(self.import_dialog)
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

    def refresh(self) -> None:
        """Re-read the patient list (keeping the selection) and the visit shown."""
        store = self.hook.store
        if store is None:
            self.status.setText(f"The patient store cannot be opened: {self.hook.error}")
            return
        keep, visit = self.current_patient(), self.current_visit_number()
        self.patient_list.blockSignals(True)
        self.patient_list.clear()
        for p in store.find_patients(self.search_edit.text()):
            item = QListWidgetItem(p["identifier"] + (f"  {p['name']}" if p["name"] else ""))
            item.setData(Qt.ItemDataRole.UserRole, p["identifier"])
            self.patient_list.addItem(item)
            if p["identifier"] == keep:
                self.patient_list.setCurrentItem(item)
        self.patient_list.blockSignals(False)
        if self.patient_list.currentItem() is None and self.patient_list.count():
            self.patient_list.setCurrentRow(0)
        self._show_visits(visit)

    def _show_details(self, row) -> None:
        self.name_edit.setText(row["name"] if row else "")
        self.birth_spin.setValue(row["birth_year"] if row and row["birth_year"] else self.birth_spin.minimum())
        self.sex_combo.setCurrentText(row["sex"] if row else "")

    def _show_visits(self, keep: int | None = None) -> None:
        self.visit_list.blockSignals(True)
        self.visit_list.clear()
        ident = self.current_patient()
        store = self.hook.store
        row = store.patient(ident, missing_ok=True) if ident and store is not None else None
        self._show_details(row)
        if row is not None:
            for v in store.visits(store.patient(ident)["id"]):
                item = QListWidgetItem(f"Visit {v['number']}: {v['date']}"
                                       + (f", {v['clinician']}" if v["clinician"] else ""))
                item.setData(Qt.ItemDataRole.UserRole, v["number"])
                self.visit_list.addItem(item)
                if v["number"] == keep:
                    self.visit_list.setCurrentItem(item)
        self.visit_list.blockSignals(False)
        if self.visit_list.currentItem() is None and self.visit_list.count():
            self.visit_list.setCurrentRow(self.visit_list.count() - 1)  # the latest visit
        self._show_visit()

    def _show_visit(self) -> None:
        ident, number, store = self.current_patient(), self.current_visit_number(), self.hook.store
        self.data = None
        if ident and number and store is not None:
            try:
                self.data = gather(store, ident, number, self.hook.active_model())
            except LungappError as exc:
                self.status.setText(str(exc))
        entries = self.data.entries if self.data else []
        self.body_map.set_states(self.data.site_states() if self.data else {})
        self.notes_edit.setPlainText(self.data.visit["notes"] if self.data else "")
        self._fill_table(entries)
        missing = sum(e.missing for e in entries)
        stale = sum(bool(e.result and e.result.get("stale")) for e in entries)
        self.status.setText(self._summary(ident, len(entries), missing, stale))

    @staticmethod
    def _summary(ident, n: int, missing: int, stale: int) -> str:
        if not ident:
            return "No patients yet: record with a patient identifier, or import a folder."
        text = f"Patient {ident}: {n} recording(s) in this visit"
        if missing:
            text += f"; {missing} file(s) missing (moved or deleted outside lungapp: relocate them)"
        if stale:
            text += f"; {stale} result(s) made by another model than the active one (re-analyse)"
        return text + "."

    def _fill_table(self, entries) -> None:
        self.table.setRowCount(len(entries))
        for row, e in enumerate(entries):
            r = e.result or {}
            values = (e.site, "", result_words(e),
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
        self._fill_times()
        self.table.resizeColumnsToContents()

    def _fill_times(self) -> None:
        store = self.hook.store
        for row, e in enumerate(self.data.entries if self.data else []):
            self.table.item(row, 1).setText(store.recording(e.uid)["recorded_at"].replace("T", " ")[:16])

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
            if e.missing:
                self.status.setText(f"{e.path}: the file is missing; relocate it first.")
                continue
            self.openRecording.emit(e.path)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh()  # another window or a CLI command may have written to the store

    def open_recordings_folder(self) -> bool:
        """Show the folder the Record view writes to in the desktop's file manager."""
        folder = paths.ensure(paths.recordings_dir())
        ok = QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
        if not ok:
            self.status.setText(f"Could not open {folder}; it is where recordings are saved.")
        return ok

    def add_patient(self) -> None:
        """Add the identifier typed in the search field (a patient seen for the first time)."""
        ident = self.search_edit.text().strip()
        try:
            self.hook.store.add_patient(ident)
        except LungappError as exc:
            self.status.setText(str(exc))
            return
        self.statusMessage.emit(f"Patient {ident} added.")
        self.refresh()

    def save_patient(self) -> None:
        ident = self.current_patient()
        if not ident:
            return
        year = self.birth_spin.value()
        self.hook.store.update_patient(ident, name=self.name_edit.text().strip(), sex=self.sex_combo.currentText(),
                                       birth_year=None if year == self.birth_spin.minimum() else year)
        self.statusMessage.emit(f"Patient {ident} saved.")
        self.refresh()

    def save_notes(self) -> None:
        if self.data is not None:
            self.hook.store.set_visit_notes(self.data.visit["id"], self.notes_edit.toPlainText())
            self.statusMessage.emit("Notes saved.")

    def reanalyse_stale(self) -> list[str]:
        """Queue every recording of the patient whose results are by another model (or
        that has none) for analysis with the active model; the hook stores the results."""
        ident, store, active = self.current_patient(), self.hook.store, self.hook.active_model()
        if not ident or store is None:
            return []
        if active is None:
            self.status.setText("No model is loaded yet: nothing was re-analysed.")
            return []
        pid = store.patient(ident)["id"]
        uids = [r["uid"] for r in store.stale_recordings(active, pid)] + store.unanalysed_recordings(pid)
        paths = [p for p in (store.recording(u)["path"] for u in uids) if os.path.isfile(p)]
        for p in paths:
            self.hook.ctx.request_analysis(p)
        self.statusMessage.emit(f"Re-analysing {len(paths)} recording(s) with the active model.")
        return paths

    def relocate_dialog(self) -> None:
        entries = [e for e in self.selected_entries() if e.missing]
        if not entries:
            self.status.setText("Select a recording whose file is missing, then relocate it.")
            return
        path, _ = QFileDialog.getOpenFileName(self, f"Where is {entries[0].path}?")
        if path:
            self.relocate(entries[0].uid, path)

    def relocate(self, uid: str, path: str) -> None:
        try:
            self.hook.store.relocate(uid, path)
        except LungappError as exc:
            self.status.setText(str(exc))
            return
        self.refresh()

    def compare_selected(self):
        from lungapp.gui.compare_view import CompareDialog

        entries = self.selected_entries()
        if not entries or not self.current_patient():
            self.status.setText("Select a recording to compare with an earlier one of the same site.")
            return None
        dlg = CompareDialog(self.hook, self.current_patient(), entries[0].uid, self)
        dlg.show()
        return dlg

    def report_dialog(self) -> None:
        if self.data is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save the report", f"report-{self.current_patient()}.pdf",
                                              "PDF (*.pdf)")
        if path:
            self.write_report(path)

    def write_report(self, path: str) -> str | None:
        from lungapp.report.pdf import write_report

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
            self.status.setText(f"Import failed: {outcome}")
            return
        added, patients, skipped = outcome
        self.statusMessage.emit(f"Imported {added} recording(s) of {patients} patient(s); {skipped} skipped.")
        self.refresh()
