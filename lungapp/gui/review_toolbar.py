"""The Review view's tool bar: open files or a folder, analyse one or all (with the batch's
progress and Cancel), analyse-on-select, export."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QProgressBar, QPushButton, QWidget

ANALYSE_TIP = "Analyse the selected recording"
ANALYSE_ALL_TIP = "Analyse every recording in the list not analysed yet"


class ReviewToolbar(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.open_file_btn = QPushButton("Open file…")
        self.open_folder_btn = QPushButton("Open folder…")
        self.analyse_btn = QPushButton("Analyse")
        self.analyse_btn.setToolTip(ANALYSE_TIP)
        self.analyse_all_btn = QPushButton("Analyse all")
        self.analyse_all_btn.setToolTip(ANALYSE_ALL_TIP)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setToolTip("Stop analysing the rest of the list")
        self.cancel_btn.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setVisible(False)
        self.auto_analyse = QCheckBox("Analyse on select")
        self.auto_analyse.setToolTip("Analyse a recording as soon as it is selected")
        self.export_btn = QPushButton("Export CSV…")
        # The finished batch's count stays readable a moment before the bar goes.
        self._batch_running = False
        self._hide_progress = QTimer(self)
        self._hide_progress.setSingleShot(True)
        self._hide_progress.setInterval(1500)
        self._hide_progress.timeout.connect(lambda: self.progress.setVisible(self._batch_running))
        self._lay_out()

    def _lay_out(self) -> None:
        bar = QHBoxLayout(self)
        bar.setContentsMargins(0, 0, 0, 0)
        for w in (self.open_file_btn, self.open_folder_btn):
            bar.addWidget(w)
        bar.addSpacing(16)
        for w in (self.analyse_btn, self.analyse_all_btn, self.cancel_btn, self.progress,
                  self.auto_analyse):
            bar.addWidget(w)
        bar.addStretch(1)
        bar.addWidget(self.export_btn)

    # --- settings ---------------------------------------------------------------------
    def restore(self, s) -> None:
        self.auto_analyse.setChecked(str(s.value("review/auto_analyse", "true")).lower() == "true")

    def save(self, s) -> None:
        s.setValue("review/auto_analyse", "true" if self.auto_analyse.isChecked() else "false")

    # --- state --------------------------------------------------------------------------
    def show_batch(self, done: int, total: int) -> None:
        """A batch is running: ``done`` of ``total`` analysed; Cancel is available."""
        self._batch_running = True
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.progress.setFormat("%v / %m")
        self.progress.setVisible(True)
        self.cancel_btn.setEnabled(True)

    def batch_step(self, done: int) -> None:
        self.progress.setValue(done)

    def batch_finished(self) -> None:
        self._batch_running = False
        self.cancel_btn.setEnabled(False)
        self._hide_progress.start()

    def update_enabled(self, has_rows: bool, has_selection: bool, no_model: bool) -> None:
        """Analyse needs a selection, Analyse all and Export a non-empty list; without a
        model neither analyse button works, and their tool tips say so."""
        self.analyse_btn.setEnabled(has_selection and not no_model)
        self.analyse_all_btn.setEnabled(has_rows and not no_model)
        tip = "No model available: see the status bar" if no_model else ""
        self.analyse_btn.setToolTip(tip or ANALYSE_TIP)
        self.analyse_all_btn.setToolTip(tip or ANALYSE_ALL_TIP)
        self.export_btn.setEnabled(has_rows)
