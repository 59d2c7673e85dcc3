"""The guided exam panel of the Record view: pick the protocol (4, 6 or 8 sites, or type
your own), Start; the panel sets the Record view's chest site to the next site and names
it, and every recording made is filed under the exam's patient, visit and site. Skip
leaves a site out; Repeat records the last site again. The steps are
:class:`lungapp.store.exam.Exam` (no Qt); this panel only wires them to the Record view."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout

from lungapp.errors import LungappError
from lungapp.store.exam import PROTOCOLS, Exam, parse_sites


class ExamPanel(QGroupBox):
    examChanged = Signal()

    def __init__(self, record_view, hook, parent=None):
        super().__init__("Guided exam", parent)
        self.view, self.hook = record_view, hook
        self.exam: Exam | None = None
        self._build()
        self.protocol_combo.currentIndexChanged.connect(self._protocol_chosen)
        self.start_button.clicked.connect(self.toggle)
        self.skip_button.clicked.connect(self.skip)
        self.repeat_button.clicked.connect(self.repeat)
        record_view.stateChanged.connect(lambda _: self._enable())
        hook.ctx.recordingFinished.connect(self._recorded)
        self._protocol_chosen()
        self._enable()

    def _build(self) -> None:
        self.protocol_combo = QComboBox()
        for n in PROTOCOLS:
            self.protocol_combo.addItem(f"{n} sites", n)
        self.sites_edit = QLineEdit()
        self.sites_edit.setToolTip("The sites in order, comma-separated (edit to suit your protocol)")
        self.start_button = QPushButton("Start exam")
        self.skip_button = QPushButton("Skip site")
        self.repeat_button = QPushButton("Repeat last site")
        self.next_label = QLabel("Enter the patient, choose the protocol and press Start exam.")
        self.next_label.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.protocol_combo)
        row.addWidget(self.sites_edit, 1)
        for b in (self.start_button, self.skip_button, self.repeat_button):
            row.addWidget(b)
        lay = QVBoxLayout(self)
        lay.addLayout(row)
        lay.addWidget(self.next_label)

    def _protocol_chosen(self) -> None:
        self.sites_edit.setText(", ".join(PROTOCOLS[self.protocol_combo.currentData()]))

    def _enable(self) -> None:
        idle = self.view.state == "idle"
        running = self.exam is not None
        self.start_button.setEnabled(idle)
        self.start_button.setText("End exam" if running else "Start exam")
        for w in (self.protocol_combo, self.sites_edit):
            w.setEnabled(idle and not running)
        self.skip_button.setEnabled(idle and running and not self.exam.finished)
        self.repeat_button.setEnabled(idle and running and self.exam.last is not None)
        self.view.patient_edit.setReadOnly(running)
        # The exam chooses the chest site: a recording is filed under the site it was made at.
        self.view.setup_panel.site_locked = running
        self.view.site_combo.setEnabled(idle and not running)

    # --- steps --------------------------------------------------------------------------
    def toggle(self) -> None:
        if self.exam is None:
            self.start()
        elif self._may_end():
            self.stop()

    def _may_end(self) -> bool:
        """Ending an exam with sites still to record asks first (a second click on Start
        exam must not end it unseen)."""
        from PySide6.QtWidgets import QMessageBox

        exam = self.exam
        left = [s for s in exam.sites if not exam.recorded.get(s) and s not in exam.skipped]
        if not left:
            return True
        answer = QMessageBox.question(
            self, "End the exam?", f"{len(left)} of the exam's {len(exam.sites)} sites are not "
            f"recorded yet. End the exam anyway? ({exam.summary()})",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def start(self) -> Exam | None:
        patient = self.view.patient_edit.text().strip()
        sites = parse_sites(self.sites_edit.text())
        store = self.hook.store
        if not patient or not sites or store is None:
            self.next_label.setText("Enter the patient identifier (and at least one site) first."
                                    if store is not None else f"No patient store: {self.hook.error}")
            return None
        from lungapp.store.recorded import todays_visit

        try:  # the patient's visit of today: a second exam today goes on with it
            visit = todays_visit(store, store.ensure_patient(patient))
        except LungappError as exc:  # the store's disk is full or gone
            self.next_label.setText(f"Cannot start the exam: {exc}")
            return None
        self.exam = Exam(patient, sites, visit)
        self._show()
        self.hook.changed.emit()
        return self.exam

    def stop(self) -> None:
        done = self.exam.summary() if self.exam else ""
        self.exam = None
        self.next_label.setText(f"Exam ended: {done}" if done else "")
        self._enable()
        self.examChanged.emit()

    def skip(self) -> None:
        if self.exam is not None:
            self.exam.skip()
            self._show()

    def repeat(self) -> None:
        if self.exam is not None:
            self.exam.repeat()
            self._show()

    def _recorded(self, path: str) -> None:
        """A recording was saved: file it under the exam's visit and current site."""
        exam, store = self.exam, self.hook.store
        if exam is None or exam.finished or path != self.view.last_path or store is None:
            return
        # (imported here: the window paints before the inference modules are imported)
        from lungapp.inference.predictor import MIN_SECONDS
        from lungapp.store.recorded import file_recording

        result = self.view.last_result
        seconds = getattr(result, "duration_s", None)
        if seconds is not None and seconds < MIN_SECONDS:
            self.next_label.setText(f"That recording is {seconds:.1f} s long, too short to analyse "
                                    f"(at least {MIN_SECONDS:g} s): record {exam.current} again. "
                                    f"It is kept in {path}.")
            return
        from lungapp.store.recorded import recording_site

        made_at = recording_site(path) or exam.current
        try:
            uid = file_recording(store, path, exam.visit_id)
            store.file_under(uid, exam.visit_id, made_at)
        except LungappError as exc:  # the store's disk is full or gone: the file is kept
            self.next_label.setText(f"The recording of {exam.current} is saved in {path}, but it "
                                    f"could not be filed under the exam: {exc}. Record it again "
                                    "once that is mended, or Skip site.")
            return
        if made_at != exam.current:  # not the site the exam asked for: filed as made, not ticked
            self.hook.changed.emit()
            self.next_label.setText(f"That recording was made at {made_at} and is filed there; the exam "
                                    f"still asks for {exam.current}. {exam.summary()}")
            return
        exam.record(uid)
        self.hook.changed.emit()
        self._show()

    def _show(self) -> None:
        exam = self.exam
        if exam is not None and exam.current is not None:
            combo = self.view.site_combo
            if combo.findText(exam.current) < 0:
                combo.addItem(exam.current)  # a site of a typed protocol
            combo.setCurrentText(exam.current)
            i, n = exam.position()
            self.next_label.setText(f"Next: {exam.current} (site {i} of {n}). {exam.summary()}")
        elif exam is not None:
            self.next_label.setText(f"Exam complete. {exam.summary()}")
        self._enable()
        self.examChanged.emit()
