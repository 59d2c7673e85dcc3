"""Models: pick the active model from the GUI (the bundled one and those installed in the
user's models folder, as ``lungapp models`` lists them), see each card's figures, use one,
or restore the bundled model. Switching to a model much weaker than the active one asks
first, with both cards' figures side by side.

"Recalibrate to my stethoscope…" does what ``lungapp recalibrate`` does, in the background:
the selected model's threshold and calibration chosen again on a folder of the clinic's own
labelled recordings, checked on held-out patients first; the result is installed as a new
model (the model files unchanged) and offered for use only when the check favours it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lungapp.errors import LungappError

# A switch asks first when the new card's cross-validated AUC is this much lower, or it
# was trained on less than this share of the active model's recordings.
AUC_DROP = 0.05
RECORDINGS_SHARE = 0.25

HEADERS = ("Model", "Task", "AUC", "Sensitivity", "Specificity", "Recordings", "Patients", "Folder")


@dataclass
class ModelRow:
    path: Path
    card: object | None     # ModelCard, or None when the card cannot be read
    problem: str = ""
    bundled: bool = False


def model_rows() -> list[ModelRow]:
    """The bundled model (first) and the installed ones, each with its card or why not."""
    from lungapp.inference import registry

    bundled = registry.bundled_model_dir()
    rows = []
    for d in ([bundled] if bundled else []) + registry.installed_models():
        try:  # as `lungapp models list`: a tampered model is not offered
            rows.append(ModelRow(d, registry.checked_card(d), bundled=d == bundled))
        except LungappError as exc:
            rows.append(ModelRow(d, None, getattr(exc, "problem", str(exc)), bundled=d == bundled))
    return rows


def card_figures(card) -> dict:
    """The figures a user compares models by (None where the card has none): AUC,
    sensitivity, specificity (cross-validated, out of fold), recordings and patients."""
    overall, data = card.metrics.overall, card.training.data
    return {"auc": overall and overall.auc, "sensitivity": overall and overall.sensitivity,
            "specificity": overall and overall.specificity,
            "recordings": data and data.n_recordings, "patients": data and data.n_patients}


def _fmt(value, pct: bool = False) -> str:
    if value is None:
        return "–"
    if pct:
        return f"{value * 100:.0f} %"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def figures_text(card) -> str:
    """One line: "lungapp-sprsound 1: AUC 0.93, sensitivity 84 %, ... 1772 recordings"."""
    f = card_figures(card)
    return (f"{card.name} {card.version}: AUC {_fmt(f['auc'])}, sensitivity "
            f"{_fmt(f['sensitivity'], True)}, specificity {_fmt(f['specificity'], True)}, "
            f"trained on {_fmt(f['recordings'])} recordings of {_fmt(f['patients'])} patients")


def recalibration_text(card) -> str:
    """For a recalibrated model (``lungapp recalibrate``, or this dialog), its held-out
    check in one line; "" for any other. Its card's cross-validated figures are its
    training's, at the threshold it had then, so the table alone would not show what the
    recalibration changed."""
    check = next((c for c in reversed(card.external_checks or [])
                  if "model_threshold_score" in (c.extra or {})), None)
    if check is None:
        return ""
    from lungapp.inference.card import finite_number as number  # a card's figures may be missing or odd

    lo_hi, own = check.extra.get("gain_interval_90"), check.extra.get("model_threshold_score")
    sure = (f" (gain {lo_hi[0]:+.3f} to {lo_hi[1]:+.3f}, 90 % interval)"
            if isinstance(lo_hi, list) and len(lo_hi) == 2 and all(map(number, lo_hi)) else "")
    if not (number(check.score) and number(own)):
        return (f"Recalibrated on recordings of {check.name.split(':')[0]}; its card does not give "
                "the check's scores.")
    return (f"Recalibrated: on {check.n} recordings of held-out patients ({check.name.split(':')[0]}), "
            f"score {check.score:.3f} at the new threshold against {own:.3f} at the model's own{sure}.")


def much_weaker(active, new) -> str:
    """Why ``new`` (a card) looks much weaker than ``active`` (a card), or "" when it
    does not: its AUC is at least AUC_DROP lower (or unknown where the active one has
    one), or it learnt from less than RECORDINGS_SHARE of the recordings."""
    a, n = card_figures(active), card_figures(new)
    if a["auc"] is not None:
        if n["auc"] is None:
            return "its card reports no cross-validated AUC"
        if n["auc"] <= a["auc"] - AUC_DROP:
            return f"its AUC is {n['auc']:.2f} against {a['auc']:.2f}"
    if a["recordings"] and n["recordings"] is not None and n["recordings"] < RECORDINGS_SHARE * a["recordings"]:
        return f"it learnt from {n['recordings']} recordings against {a['recordings']}"
    return ""


def switch_question(active, new) -> str:
    """The confirmation's text ("" when no confirmation is needed)."""
    why = much_weaker(active, new)
    if not why:
        return ""
    return (f"The model you are switching to looks much weaker: {why}.\n\n"
            f"Active: {figures_text(active)}\nNew: {figures_text(new)}\n\n"
            "Results already in the list will be marked as made by the old model.\n"
            "Switch anyway?")


def confirm_switch(parent: QWidget, ctx, new_dir) -> bool:
    """Ask before making ``new_dir`` active when it is much weaker than the loaded model
    (True when no question is needed). Tests replace ``ask`` to answer."""
    from lungapp.inference.card import load_card

    p = ctx.predictor()
    try:
        new = load_card(new_dir)
    except LungappError:
        return True  # set_active_model refuses it with its own message
    text = switch_question(p.card, new) if p is not None else ""
    return not text or ask(parent, text)


def _yes(parent: QWidget, title: str, text: str, *, warning: bool) -> bool:
    """A Yes / (Cancel or No) question; a warning defaults to Cancel, a question to Yes."""
    B = QMessageBox.StandardButton
    box = QMessageBox(QMessageBox.Icon.Warning if warning else QMessageBox.Icon.Question, title,
                      text, B.Yes | (B.Cancel if warning else B.No), parent)
    box.setTextFormat(Qt.TextFormat.PlainText)  # it names models: data, never markup
    box.setDefaultButton(B.Cancel if warning else B.Yes)
    return box.exec() == B.Yes


def ask(parent: QWidget, text: str) -> bool:
    return _yes(parent, "Switch to a weaker model?", text, warning=True)


def ask_use(parent: QWidget, text: str) -> bool:
    return _yes(parent, "Use the recalibrated model?", text, warning=False)


RECALIBRATE_HELP = (
    "Choose the selected model's decision threshold again on a folder of your own "
    "stethoscope's labelled recordings (at least 12, 4 of each class; patient ids make the "
    "check fair). No training: the model files are unchanged. It first checks on held-out "
    "patients whether the new threshold does better, then installs the result as a new model.")


def recalibrate_and_install(task, model_dir, folder):
    """Worker: recalibrate ``model_dir`` on ``folder`` and install the result in the
    models folder -> (Recalibration, installed path). Raises LungappError naming the folder
    (too few recordings, a device the model cannot rank, unreadable files, ...)."""
    import tempfile

    from lungapp.evaluation.recalibrate import recalibrate, write_recalibrated
    from lungapp.inference.predictor import Predictor
    from lungapp.inference.registry import install_model, safe_model_name

    predictor = Predictor.load(model_dir, runtime="onnx")
    rec = recalibrate(folder, predictor, progress=lambda i, n: task.progress(i, n, ""))
    if task.cancelled:  # the dialog was closed: install nothing the user has not seen
        return None
    name = safe_model_name(rec.card.name)   # "<model>-recalibrated-<folder>"
    with tempfile.TemporaryDirectory(prefix="lungapp-recalibrate-") as tmp:
        write_recalibrated(predictor.model_dir, rec, Path(tmp) / name)
        target = install_model(Path(tmp) / name, name=name)
    return rec, target


class ModelsDialog(QDialog):
    """``modelChosen(path)``: a model was made active ("" = the bundled one)."""

    modelChosen = Signal(str)

    def __init__(self, ctx, parent: QWidget | None = None):
        super().__init__(parent)
        self.ctx = ctx
        self.setWindowTitle("Models")
        self.rows: list[ModelRow] = []
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(HEADERS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.details = QLabel()
        self.details.setTextFormat(Qt.TextFormat.PlainText)  # names and descriptions are data, never markup
        self.details.setWordWrap(True)
        self.env_note = QLabel("LUNGAPP_MODEL is set: it chooses the model when the app starts, "
                               "whatever is chosen here.")
        self.env_note.setWordWrap(True)
        self.env_note.setVisible(bool(os.environ.get("LUNGAPP_MODEL")))
        self.use_btn = QPushButton("Use this model")
        self.restore_btn = QPushButton("Restore the bundled model")
        self.recal_btn = QPushButton("Recalibrate to my stethoscope…")
        self.recal_btn.setToolTip(RECALIBRATE_HELP)
        self.recal_task = None
        close = QPushButton("Close")
        buttons = QHBoxLayout()
        for b in (self.use_btn, self.restore_btn, self.recal_btn):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(close)
        lay = QVBoxLayout(self)
        for w in (self.table, self.details, self.env_note):
            lay.addWidget(w)
        lay.addLayout(buttons)
        self.use_btn.clicked.connect(self.use_selected)
        self.restore_btn.clicked.connect(self.restore_bundled)
        self.recal_btn.clicked.connect(self.recalibrate_selected)
        close.clicked.connect(self.accept)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.resize(900, 320)
        self.refresh()

    def active_dir(self) -> Path | None:
        p = self.ctx.predictor()
        if p is not None and getattr(p, "model_dir", None):
            return Path(p.model_dir)
        from lungapp.inference.registry import active_model_dir

        try:
            return active_model_dir()
        except LungappError:
            return None

    def refresh(self) -> None:
        self.rows = model_rows()
        active = self.active_dir()
        active = active.resolve() if active else None
        self.table.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            self._fill_row(r, row, active is not None and row.path.resolve() == active)
        self._selection_changed()

    def _fill_row(self, r: int, row: ModelRow, is_active: bool) -> None:
        c = row.card
        name = f"{c.name} {c.version}" if c else f"cannot be read: {row.problem}"
        name = ("● " if is_active else "") + name + (" (bundled)" if row.bundled else "")
        f = card_figures(c) if c else dict.fromkeys(("auc", "sensitivity", "specificity",
                                                     "recordings", "patients"))
        cells = (name, c.task if c else "", _fmt(f["auc"]), _fmt(f["sensitivity"], True),
                 _fmt(f["specificity"], True), _fmt(f["recordings"]), _fmt(f["patients"]), str(row.path))
        for col, text in enumerate(cells):
            item = QTableWidgetItem(text)
            item.setToolTip(str(row.path) if col == len(cells) - 1 else text)
            if is_active:
                font = QFont(item.font())
                font.setBold(True)
                item.setFont(font)
            if col in range(2, 7):
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(r, col, item)

    def selected(self) -> ModelRow | None:
        rows = self.table.selectionModel().selectedRows()
        return self.rows[rows[0].row()] if rows else None

    def select_path(self, path) -> None:
        for r, row in enumerate(self.rows):
            if row.path.resolve() == Path(path).resolve():
                self.table.selectRow(r)

    def _update_buttons(self) -> None:
        """Buttons that act on a readable selected model; none while a recalibration runs."""
        row = self.selected()
        usable = row is not None and row.card is not None and self.recal_task is None
        self.use_btn.setEnabled(usable)
        self.recal_btn.setEnabled(usable)
        self.restore_btn.setEnabled(self.recal_task is None)

    def _selection_changed(self) -> None:
        self._update_buttons()
        if self.recal_task is not None:
            return  # the details show the recalibration's progress
        row = self.selected()
        if row is None:
            self.details.setText("Select a model to see its figures.")
        elif row.card is None:
            self.details.setText(f"{row.path}: {row.problem}")
        else:
            self.details.setText("\n".join(t for t in (figures_text(row.card), recalibration_text(row.card),
                                                       row.card.description or "") if t))

    def use_selected(self) -> bool:
        """Make the selected model active (asking first when it is much weaker)."""
        row = self.selected()
        if row is None or row.card is None:
            return False
        if not confirm_switch(self, self.ctx, row.path):
            return False
        return self._activate(None if row.bundled else row.path)

    def restore_bundled(self) -> bool:
        from lungapp.inference.registry import bundled_model_dir

        bundled = bundled_model_dir()
        if bundled is None:
            self.details.setText("The bundled model is missing from this installation.")
            return False
        if not confirm_switch(self, self.ctx, bundled):
            return False
        return self._activate(None)

    def _activate(self, path: Path | None) -> bool:
        from lungapp.inference.registry import bundled_model_dir, set_active_model

        try:
            set_active_model(path)
        except LungappError as exc:
            self.details.setText(f"Cannot use this model: {exc}")
            return False
        # The folder itself, not None: LUNGAPP_MODEL would win over the setting.
        self.ctx.load_model(path if path is not None else bundled_model_dir())
        self.modelChosen.emit("" if path is None else str(path))
        self.refresh()
        return True

    # --- recalibration ----------------------------------------------------------------
    def done(self, result: int) -> None:
        """Closing the dialog cancels a recalibration still running (nothing is installed)."""
        if self.recal_task is not None:
            self.recal_task.cancel()
        super().done(result)

    def recalibrate_selected(self) -> None:
        """Ask for a folder of labelled recordings, then :meth:`start_recalibration`."""
        folder = QFileDialog.getExistingDirectory(
            self, "Folder of your stethoscope's labelled recordings")
        if folder:
            self.start_recalibration(folder)

    def start_recalibration(self, folder) -> bool:
        """Recalibrate the selected model on ``folder`` in the background; the table gains
        the result when it is done. False when nothing was started."""
        from lungapp.gui.workers import run_task

        row = self.selected()
        if row is None or row.card is None or self.recal_task is not None:
            return False
        self.recal_folder = str(folder)
        self.recal_task = run_task(
            recalibrate_and_install, row.path, str(folder), name="recalibrate", owner=self,
            on_progress=self._recal_progress, on_finished=self._recal_finished,
            on_failed=self._recal_failed, on_done=self._recal_done)
        self.details.setText(f"Recalibrating {row.card.name} on {folder}: reading the recordings…")
        self._update_buttons()
        return True

    def _recal_progress(self, done: int, total: int, _text: str) -> None:
        self.details.setText(f"Recalibrating on {self.recal_folder}: scored {done} of {total} recordings…")

    def _recal_failed(self, message: str, _exc) -> None:
        self.details.setText(f"Cannot recalibrate: {message}")

    def _recal_done(self) -> None:
        self.recal_task = None
        self._update_buttons()  # the details keep the outcome

    def _recal_finished(self, result) -> None:
        rec, target = result
        self.recal_task = None
        self.refresh()
        self.select_path(target)
        text = f"{rec.summary()}\n\nInstalled as {Path(target).name}."
        self.details.setText(text)
        if rec.gain > 0:
            if ask_use(self, text + "\n\nUse it now?") and self.use_selected():
                self.details.setText(text + " It is now in use.")
            else:
                self.details.setText(text + " Not in use: \"Use this model\" uses it.")
        else:
            self.details.setText(text + " It is not in use: on held-out patients it did no "
                                 "better than the model's own threshold.")
