"""Train: run ``lungapp train FOLDER --out DIR --progress json`` in a separate process
and show its progress events (:mod:`lungapp.training.progress`) as live curves.

The training runs in its own process (QProcess), so a crash there never takes the
window down and the GUI stays responsive; Cancel sends SIGTERM (the CLI stops within a
batch and leaves --out untouched), then kills it if it has not exited after 15 s.

Pieces: :class:`TrainSettings` (the run's options, saved in the app settings),
:class:`RunForm` (the form that edits them), :class:`EventLines` (bytes -> events),
:class:`CurvesPlot` (loss and AUC curves from the events) and :class:`TrainView`, which
runs the process and wires them together.
"""

from __future__ import annotations

import datetime as _dt
import html
import os
import sys
import time
from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtCore import QProcess, QProcessEnvironment, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from lungapp import paths
from lungapp.errors import LungappError
from lungapp.gui import theme
from lungapp.training import progress as P
from lungapp.training.recipes import PRESET_NAMES

KILL_AFTER_MS = 15000

# How the form describes the recipes of lungapp.training.recipes (a recipe not described
# here is offered under its name).
PRESET_LABELS = {
    "bundled": "bundled (the app's model: finer time steps, about 2.5x slower)",
    "bundled-4s": "bundled-4s (the app's model's 4-s windows: about twice bundled's time)",
    "seed": "seed (the student project's CNN)",
}
TASK_LABELS = {"binary": "binary: normal vs abnormal",
               "4class": "4 classes: Normal, CAS, DAS, CAS & DAS"}
# What each run starts from ("active": passed as --init-from active, lungapp.training.finetune).
START_LABELS = {"new": "a new model (random weights)",
                "active": "the active model (fine-tune it on this folder)"}
START_HELP = ("Fine-tuning adapts the active model to your stethoscope: it trains it gently on "
              "this folder, sets a new threshold and compares the result with it.")
EQUALISE_HELP = ("Filter every recording to the training recordings' mean balance of frequencies "
                 "before the model reads it, in training and in the app. With the recommended "
                 "preset, models trained so ranked other stethoscopes' recordings better in a "
                 "check on SPRSound; with the bundled presets (2-s and 4-s) they did not. A fine-tune keeps "
                 "the active model's setting.")


def train_command(folder: str, out: str, preset: str, task: str, folds: int,
                  epochs: int | None, init_from: str | None = None,
                  equalise: bool = False) -> tuple[str, list[str]]:
    """Program and arguments of the training process (source install or frozen app)."""
    args = ["train", folder, "--out", out, "--progress", "json", "--preset", preset,
            "--task", task, "--folds", str(folds)]
    if epochs:
        args += ["--epochs", str(epochs)]
    if init_from:
        args += ["--init-from", init_from]
    if equalise:
        args += ["--equalise"]
    if getattr(sys, "frozen", False):  # PyInstaller: the app binary is the CLI too
        return sys.executable, args
    return sys.executable, ["-m", "lungapp", *args]


def _typed_path(text: str) -> str:
    """A folder as typed into the form: trimmed, ``~`` expanded ("" stays "")."""
    text = text.strip()
    return os.path.expanduser(text) if text else ""


def _summary_key(run: TrainSettings) -> tuple:
    """What the folder summary depends on (the fields of ``RunForm.changed_signals``): a
    change to another field ("Save model to", "Equalise") does not make it stale."""
    return run.folder, run.task, run.folds, run.preset, run.epochs, run.start


def _remembered(settings, key: str, allowed: tuple[str, ...]) -> str:
    """``train/KEY`` from the app's QSettings if it is one of ``allowed``, else the first of
    them (a hand-edited or older ``lungapp.ini`` must not stop the window opening)."""
    value = str(settings.value(f"train/{key}", allowed[0])).strip().lower()
    return value if value in allowed else allowed[0]


def _remembered_int(settings, key: str, default: int) -> int:
    """``train/KEY`` as a whole number of 0 or more, else ``default`` (see :func:`_remembered`)."""
    try:
        value = int(str(settings.value(f"train/{key}", default)).strip())
    except ValueError:
        return default
    return value if value >= 0 else default


@dataclass
class TrainSettings:
    """A training run's options as the Train tab edits them (``epochs`` 0: the preset's)."""

    folder: str = ""
    out: str = ""
    preset: str = "recommended"
    task: str = "binary"
    folds: int = 4
    epochs: int = 0
    overwrite: bool = False   # replace an existing "Save model to" folder (asked first)
    start: str = "new"        # "new" (random weights) or "active" (fine-tune the active model)
    equalise: bool = False    # --equalise (a new model only: a fine-tune keeps the model's)

    @classmethod
    def load(cls, settings) -> TrainSettings:
        """The remembered folder, preset, task, folds and epochs from the app's QSettings
        (task "": none remembered yet, the active model's task is offered)."""
        return cls(folder=str(settings.value("train/folder", "")),
                   preset=str(settings.value("train/preset", "recommended")),
                   task=_remembered(settings, "task", ("", "binary", "4class")),
                   folds=_remembered_int(settings, "folds", 4),
                   epochs=_remembered_int(settings, "epochs", 0),
                   start=_remembered(settings, "start", ("new", "active")),
                   equalise=_remembered(settings, "equalise", ("false", "true")) == "true")

    def save(self, settings) -> None:
        settings.setValue("train/folder", self.folder)
        settings.setValue("train/preset", self.preset)
        settings.setValue("train/task", self.task)
        settings.setValue("train/folds", self.folds)
        settings.setValue("train/epochs", self.epochs)
        settings.setValue("train/start", self.start)
        settings.setValue("train/equalise", self.equalise)

    @property
    def run_epochs(self) -> int:
        """The epochs the run will do (0: the preset's; a fine-tuning run does fewer)."""
        from lungapp.training.recipes import finetune_epochs

        return self.epochs or (finetune_epochs(self.preset) if self.start == "active" else 0)

    def command(self, active_dir: str | None = None) -> tuple[str, list[str]]:
        """The training process's command; ``active_dir``: the folder of the model the
        window uses, which a fine-tune starts from (else ``--init-from active``, which the
        process resolves itself, through ``LUNGAPP_MODEL`` too)."""
        active = self.start == "active"
        program, args = train_command(self.folder, self.out, self.preset, self.task, self.folds,
                                      self.epochs or None, (active_dir or "active") if active else None,
                                      self.equalise and not active)
        return program, args + (["--overwrite"] if self.overwrite else [])


# The CLI's words in messages from the core, and the Train tab's fields they mean.
CLI_FIELDS = {"--folds": "Cross-validation folds", "--epochs": "Epochs", "--preset": "Preset",
              "--task": "Task", "--out": "Save model to", "--overwrite": "Save model to",
              "--init-from": "Start from", "--equalise": "Input"}
_FLAG_PHRASES = (("use --overwrite to replace it", "choose another folder in “Save model to”, or "
                  "replace it"),
                 ("use --preset seed", "choose the seed preset in “Preset”"),
                 ("leave --equalise out", "untick “Equalise” in “Input”"))


def gui_terms(message: str) -> tuple[str, list[str]]:
    """``message`` with the CLI's flags put in the Train tab's words, and the names of the
    fields it points at: "use fewer folds (--folds)" -> "use fewer folds (the
    “Cross-validation folds” field)", ["Cross-validation folds"] (the core gives that advice
    only above 2 folds, the form's minimum too)."""
    fields = []
    for flag, field in CLI_FIELDS.items():
        if flag in message and field not in fields:
            fields.append(field)
    for phrase, gui in _FLAG_PHRASES:
        message = message.replace(phrase, gui)
    for flag, field in CLI_FIELDS.items():
        message = message.replace(f"({flag})", f"(the “{field}” field)").replace(flag, f"“{field}”")
    return message, fields


# TensorFlow's and absl's start-up chatter on stderr (info lines, CPU feature notes):
# not problems, and they hid the real reason of a failure in the log.
_TF_NOISE = ("I0000 ", "W0000 ", "WARNING: All log messages before absl::InitializeLog()",
             "oneDNN custom operations", "This TensorFlow binary is optimized",
             "To enable the following instructions", "rebuild TensorFlow with the appropriate",
             "cpu_feature_guard", "Unable to register cu", "TF-TRT Warning", "computation placer",
             "Number of eligible GPUs", "single_machine.cc", "devices.cc:")


def is_tf_noise(line: str) -> bool:
    """True for a stderr line that is TensorFlow's routine start-up noise."""
    return any(k in line for k in _TF_NOISE)


def _active_card_task() -> str:
    """The active model's task from its card ("" when there is none)."""
    from lungapp.inference.card import load_card
    from lungapp.inference.registry import active_model_dir

    try:
        return load_card(active_model_dir()).task
    except LungappError:
        return ""


def existing_out(path: str) -> bool:
    """True when ``path`` exists and is not an empty folder (training would refuse it)."""
    return os.path.exists(path) and (not os.path.isdir(path) or bool(os.listdir(path)))


def ask_existing_out(parent: QWidget, out: str) -> str:
    """Ask what to do with an existing "Save model to" folder: "new" (a fresh name),
    "replace" or "cancel". Tests replace this function to answer."""
    box = QMessageBox(QMessageBox.Icon.Question, "The model folder exists",
                      f"{out} already holds a model.\n\nSave the new model under a new name, or "
                      "replace that folder once the new model is complete?", parent=parent)
    new = box.addButton("Use a new name", QMessageBox.ButtonRole.AcceptRole)
    replace = box.addButton("Replace it", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(new)
    box.exec()
    return {new: "new", replace: "replace"}.get(box.clickedButton(), "cancel")


def _browse_row(edit: QLineEdit, on_browse) -> QHBoxLayout:
    row = QHBoxLayout()
    button = QPushButton("Browse…")
    button.clicked.connect(on_browse)
    row.addWidget(edit, 1)
    row.addWidget(button)
    return row


class RunForm(QGroupBox):
    """The form of a training run: data folder, output folder, preset, task, folds, epochs."""

    def __init__(self, initial: TrainSettings, last_folder: str = "", parent: QWidget | None = None):
        super().__init__("Training run", parent)
        self._last_folder = last_folder
        form = QFormLayout(self)
        self.folder = QLineEdit(initial.folder)
        self.folder.setPlaceholderText("a labelled folder (SPRSound, ICBHI, class folders, CSV…)")
        form.addRow("Data folder", _browse_row(self.folder, self._browse_folder))
        self.out = QLineEdit()
        self.out.setPlaceholderText("new model folder (default: in your models folder)")
        form.addRow("Save model to", _browse_row(self.out, self._browse_out))
        self.preset = QComboBox()
        for key in sorted(PRESET_NAMES, key=lambda k: k != "recommended"):  # the default first
            self.preset.addItem(PRESET_LABELS.get(key, key), key)
        self.task = QComboBox()
        for key, label in TASK_LABELS.items():
            self.task.addItem(label, key)
        self.folds = QSpinBox()
        self.folds.setRange(2, 10)
        self.folds.setValue(initial.folds)
        self.epochs = QSpinBox()
        self.epochs.setRange(0, 500)
        self.epochs.setSpecialValueText("preset default")
        self.epochs.setValue(initial.epochs)
        for combo, key in ((self.preset, initial.preset), (self.task, initial.task)):
            if combo.findData(key) >= 0:
                combo.setCurrentIndex(combo.findData(key))
        self.task_remembered = bool(initial.task)
        self.start_from = QComboBox()
        for key, label in START_LABELS.items():
            self.start_from.addItem(label, key)
        self.start_from.setCurrentIndex(max(0, self.start_from.findData(initial.start)))
        self.start_from.setToolTip(START_HELP)
        form.addRow("Start from", self.start_from)
        self.start_help = QLabel(START_HELP)
        self.start_help.setWordWrap(True)
        self.start_help.setStyleSheet(f"color: {theme.MUTED};")
        form.addRow("", self.start_help)
        form.addRow("Preset", self.preset)
        form.addRow("Task", self.task)
        form.addRow("Cross-validation folds", self.folds)
        form.addRow("Epochs", self.epochs)
        self.equalise = QCheckBox("Equalise each recording's balance of frequencies")
        self.equalise.setChecked(initial.equalise)
        self.equalise.setToolTip(EQUALISE_HELP)
        form.addRow("Input", self.equalise)
        self.start_from.currentIndexChanged.connect(self._start_changed)
        self._start_changed()

    def _start_changed(self, *_) -> None:
        """A fine-tune keeps the active model's input: the box is then not offered."""
        active = self.start_from.currentData() == "active"
        self.equalise.setEnabled(not active)
        self.equalise.setToolTip(("Fine-tuning keeps the active model's setting. " if active else "")
                                 + EQUALISE_HELP)

    def follow_model_task(self, task: str) -> None:
        """Offer the active model's task (binary / 4class) until the user has chosen one."""
        if not self.task_remembered and self.task.findData(task) >= 0:
            self.task.setCurrentIndex(self.task.findData(task))

    def changed_signals(self) -> list:
        """Signals of every field the folder summary depends on."""
        return [self.folder.textChanged, self.task.currentIndexChanged, self.folds.valueChanged,
                self.preset.currentIndexChanged, self.epochs.valueChanged,
                self.start_from.currentIndexChanged]

    def field(self, label: str) -> QWidget | None:
        """The field whose row is labelled ``label`` (gui_terms' names)."""
        return {"Data folder": self.folder, "Save model to": self.out, "Preset": self.preset,
                "Task": self.task, "Cross-validation folds": self.folds, "Epochs": self.epochs,
                "Start from": self.start_from, "Input": self.equalise}.get(label)

    def mark(self, labels: list[str]) -> None:
        """Outline the fields named ``labels`` (the others lose their outline and get their
        own help back) and put the cursor in the first."""
        for name in ("Data folder", "Save model to", "Start from", "Preset", "Task",
                     "Cross-validation folds", "Epochs", "Input"):
            w = self.field(name)
            w.setStyleSheet(f"border: 2px solid {theme.VERMILLION};" if name in labels else "")
            w.setToolTip("The problem the training reported is about this field" if name in labels else "")
        if "Start from" not in labels:
            self.start_from.setToolTip(START_HELP)
        if "Input" not in labels:
            self._start_changed()
        if labels and self.field(labels[0]) is not None:
            self.field(labels[0]).setFocus()

    def value(self) -> TrainSettings:
        """The form as settings; a typed ``~`` means the home folder, as in a shell."""
        return TrainSettings(_typed_path(self.folder.text()), _typed_path(self.out.text()),
                             self.preset.currentData(), self.task.currentData(),
                             self.folds.value(), self.epochs.value(),
                             start=self.start_from.currentData(), equalise=self.equalise.isChecked())

    def default_out(self) -> str:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        return str(paths.models_dir() / f"{self.task.currentData()}-{stamp}")

    def _browse_folder(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Labelled data folder",
                                             self.folder.text() or self._last_folder)
        if d:
            self.folder.setText(d)

    def _browse_out(self) -> None:
        d, _ = QFileDialog.getSaveFileName(self, "New model folder", self.default_out())
        if d:
            self.out.setText(d)


class EventLines:
    """Splits a process's stdout bytes into progress events; lines that are not events
    come back as text."""

    def __init__(self):
        self._buf = b""

    def reset(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[P.Event | str]:
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        out: list[P.Event | str] = []
        for raw in lines:
            raw = raw.strip()
            if not raw:
                continue
            try:
                out.append(P.parse(raw))
            except ValueError:
                out.append(raw.decode("utf-8", "replace"))
        return out


CURVE_NAMES = {"loss": "training loss", "val_loss": "validation loss",
               "val_auc": "validation AUC", "heldout": "held-out fold AUC"}


class CurvesPlot(pg.GraphicsLayoutWidget):
    """Training and validation loss, validation AUC and each fold's held-out AUC, on one
    epoch axis over all folds (a gap and a dotted line between folds)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setBackground(theme.PLOT_BG)
        self.loss_plot = self.addPlot(row=0, col=0)
        self.loss_plot.setLabel("left", "Loss")
        # Plain numbers: pyqtgraph's automatic SI prefix turned losses of 0.35-0.75 into
        # "Loss (x0.001)" with ticks of 350-750.
        self.loss_plot.getAxis("left").enableAutoSIPrefix(False)
        self.legends = {"loss": self.loss_plot.addLegend(offset=(-8, 4), labelTextSize="8pt")}
        self.auc_plot = self.addPlot(row=1, col=0)
        self.auc_plot.setLabel("left", "AUC")
        self.auc_plot.setLabel("bottom", "Epoch (all folds, in order)")
        self.auc_plot.getAxis("left").enableAutoSIPrefix(False)
        self.legends["auc"] = self.auc_plot.addLegend(offset=(-8, -8), labelTextSize="8pt")
        self.auc_plot.setXLink(self.loss_plot)
        for p in (self.loss_plot, self.auc_plot):
            p.showGrid(x=True, y=True, alpha=0.15)
        line = lambda color: pg.mkPen(color, width=2)  # noqa: E731
        # No name= here: a curve joins its legend when it is first drawn, so the legend
        # never lists a curve the run does not produce (no validation split: no
        # validation loss).
        self.items = {
            "loss": self.loss_plot.plot(pen=line(theme.BLUE)),
            "val_loss": self.loss_plot.plot(pen=line(theme.VERMILLION)),
            "val_auc": self.auc_plot.plot(pen=line(theme.GREEN), symbol="o", symbolSize=4,
                                          symbolBrush=theme.GREEN, symbolPen=None),
            # the held-out fold's recording AUC, once per fold (recipes without a
            # validation split have no per-epoch AUC)
            "heldout": self.auc_plot.plot(pen=None, symbol="s", symbolSize=9, symbolBrush=theme.BLUE,
                                          symbolPen=None),
        }
        self.curves: dict[str, tuple[list, list]] = {k: ([], []) for k in self.items}
        self.in_legend: set[str] = set()
        self.epochs_per_fold = 1
        self._fold_lines: list = []
        self._reset_axes()

    def _reset_axes(self) -> None:
        """Back to an empty run's axes (a failed or new run must not keep the last one's)."""
        self.loss_plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.02)
        self.loss_plot.enableAutoRange()   # follows the new run's data from its first point
        self.auc_plot.setYRange(0.0, 1.0, padding=0.02)

    def _show(self, key: str, xs: list, ys: list) -> None:
        if key == "heldout":   # points only
            self.items[key].setData(xs, ys)
        else:
            self.items[key].setData(xs, ys, connect="finite")
        if key not in self.in_legend:
            self.in_legend.add(key)
            legend = self.legends["loss" if key in ("loss", "val_loss") else "auc"]
            legend.addItem(self.items[key], CURVE_NAMES[key])

    def reset(self) -> None:
        self.curves = {k: ([], []) for k in self.items}
        for item in self.items.values():
            item.setData([], [])
        for legend in self.legends.values():
            legend.clear()
        self.in_legend = set()
        for line in self._fold_lines:
            self.loss_plot.removeItem(line)
        self._fold_lines = []
        self._reset_axes()

    def add_epoch(self, e: P.EpochEnd) -> int:
        """Plot one epoch's metrics; returns its position on the epoch axis."""
        self.epochs_per_fold = e.epochs or self.epochs_per_fold
        fold = int(e.fold) if str(e.fold).isdigit() else len(self._fold_lines) + 1
        x = (fold - 1) * self.epochs_per_fold + e.epoch
        for key in self.items:
            v = e.metrics.get(key)
            if v is None:
                continue
            xs, ys = self.curves[key]
            if xs and e.epoch == 1:  # a new fold: break the line (NaN gap)
                xs.append(x - 0.5)
                ys.append(float("nan"))
            xs.append(x)
            ys.append(float(v))
            self._show(key, xs, ys)
        return x

    def add_fold(self, e: P.FoldEnd) -> None:
        """A dotted line after the fold, and its held-out AUC at its last epoch."""
        end = int(e.fold) * self.epochs_per_fold
        line = pg.InfiniteLine(pos=end + 0.5, angle=90,
                               pen=pg.mkPen(theme.MUTED, style=Qt.PenStyle.DotLine))
        self.loss_plot.addItem(line)
        self._fold_lines.append(line)
        auc = e.metrics.get("auc")
        if auc is not None and auc == auc:
            xs, ys = self.curves["heldout"]
            xs.append(end)
            ys.append(float(auc))
            self._show("heldout", xs, ys)


class TrainView(QWidget):
    statusMessage = Signal(str, int)
    trainingFinished = Signal(str, object)     # out folder, the last event (P.Done / P.Error)

    def __init__(self, context, parent: QWidget | None = None):
        super().__init__(parent)
        self.ctx = context
        self.settings = context.settings
        self.proc: QProcess | None = None
        self._lines = EventLines()
        self._stderr_tail: list[str] = []
        self._last_event: P.Event | None = None
        self._folds = 1
        self._cancelled = False
        self._out = ""
        self._summary_task = None
        self.last_summary: dict | None = None    # the folder summary shown
        self.last_estimate: float | None = None  # its estimated run time (s)
        self._started_at = 0.0
        self._build()
        self._watch_form()

    # --- construction ---------------------------------------------------------------
    def _build(self) -> None:
        split = QSplitter(Qt.Orientation.Horizontal)
        QHBoxLayout(self).addWidget(split)
        left = QWidget()
        ll = QVBoxLayout(left)
        self.form = RunForm(TrainSettings.load(self.settings),
                            str(self.settings.value("last_folder", "")))
        # the form's fields, under the names the rest of the app (and tests) use
        self.folder, self.out, self.preset = self.form.folder, self.form.out, self.form.preset
        self.task, self.folds, self.epochs = self.form.task, self.form.folds, self.form.epochs
        ll.addWidget(self.form)
        self.folder_info = QLabel("Choose a labelled folder to see what it holds.")
        self.folder_info.setWordWrap(True)
        self.folder_info.setTextFormat(Qt.TextFormat.RichText)
        ll.addWidget(self.folder_info)
        ll.addLayout(self._buttons())
        self.stage = QLabel("Choose a labelled folder and press Start training.")
        self.stage.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.times = QLabel()   # elapsed and remaining time while a run goes
        for w in (self.stage, self.progress, self.times, self.summary, QLabel("Log")):
            ll.addWidget(w)
        ll.addWidget(self.log, 1)
        split.addWidget(left)
        self.plot = CurvesPlot()
        split.addWidget(self.plot)
        split.setSizes([420, 800])

    def _buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.start_btn = QPushButton("Start training")
        self.start_btn.clicked.connect(self.start)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(self.cancel)
        self.use_btn = QPushButton("Use this model")
        self.use_btn.setEnabled(False)
        self.use_btn.setToolTip("Make the trained model the active model and load it")
        self.use_btn.clicked.connect(self.use_model)
        for b in (self.start_btn, self.cancel_btn, self.use_btn):
            row.addWidget(b)
        return row

    # --- the folder summary, the model's task, the clock -------------------------------
    def _watch_form(self) -> None:
        self._summary_timer = QTimer(self, singleShot=True, interval=400)   # typing: once at the end
        self._summary_timer.timeout.connect(self.refresh_summary)
        for sig in self.form.changed_signals():
            sig.connect(lambda *_: self._summary_timer.start())
        # The last preset and task chosen are remembered at once, not only at Start.
        self.preset.currentIndexChanged.connect(
            lambda _i: self.settings.setValue("train/preset", self.preset.currentData()))
        self.task.activated.connect(self._task_chosen)
        self.form.start_from.activated.connect(self._start_chosen)
        self._clock = QTimer(self, interval=1000)
        self._clock.timeout.connect(self._show_times)
        self.ctx.modelStateChanged.connect(self._model_state)
        self._model_state(self.ctx.model_state(), "")
        if self.folder.text().strip():
            self._summary_timer.start()

    def _task_chosen(self, _index: int) -> None:
        """The user picked a task: remembered, and no longer follows the active model."""
        self.form.task_remembered = True
        self.settings.setValue("train/task", self.task.currentData())

    def _start_chosen(self, _index: int) -> None:
        """Fine-tuning keeps the active model's task: the Task field takes it (a run with
        another task would be refused)."""
        self.settings.setValue("train/start", self.form.start_from.currentData())
        if self.form.start_from.currentData() != "active":
            return
        p = self.ctx.predictor()
        task = p.card.task if p is not None else _active_card_task()
        if task and self.task.findData(task) >= 0:
            self.task.setCurrentIndex(self.task.findData(task))

    def _model_state(self, state: str, message: str) -> None:
        """Offer the active model's task; before it loads, its card says it."""
        if self.running:
            return
        p = self.ctx.predictor()
        task = p.card.task if p is not None else _active_card_task()
        if task:
            self.form.follow_model_task(task)

    def refresh_summary(self):
        """Summarise the chosen folder in a worker (layout, classes, patients, duration,
        problems, estimated run time); returns the task, or None without a folder."""
        from lungapp.gui.train_summary import folder_summary
        from lungapp.gui.workers import run_task

        run = self.form.value()
        if self._summary_task is not None and not self._summary_task.is_done:
            self._summary_task.cancel()
        if not run.folder or not os.path.isdir(run.folder):
            self.folder_info.setText("Choose a labelled folder to see what it holds." if not run.folder
                                     else f"Not a folder: {html.escape(run.folder)}")
            return None
        self.folder_info.setText("Reading the folder…")
        self._summary_task = run_task(folder_summary, run.folder, run.task, run.folds,
                                      name="folder summary", owner=self,
                                      on_finished=lambda sm, r=run: self._summary_ready(r, sm),
                                      on_failed=lambda msg, exc: self.folder_info.setText(html.escape(msg)))
        return self._summary_task

    def _summary_ready(self, run: TrainSettings, summary: dict | None) -> None:
        from lungapp.gui.train_summary import estimate_s, summary_html

        if summary is None or _summary_key(run) != _summary_key(self.form.value()):
            return  # cancelled, or a field it depends on changed meanwhile (a newer summary comes)
        if summary.get("problems"):  # in the form's words
            summary = {**summary, "problems": [gui_terms(p)[0] for p in summary["problems"]]}
        self.last_summary = summary
        est = estimate_s(summary.get("duration_s"), run.preset, run.folds, run.run_epochs)
        self.last_estimate = est
        self.folder_info.setText(summary_html(summary, est))

    def _show_times(self) -> None:
        from lungapp.gui.train_summary import fmt_span, remaining_s

        elapsed = time.monotonic() - self._started_at
        left = remaining_s(elapsed, self.progress.value(), self.progress.maximum()) \
            if self.progress.format().startswith(("fold", "final")) else None
        self.times.setText(f"Elapsed {fmt_span(elapsed)}"
                           + (f" · about {fmt_span(left)} left" if left is not None else ""))

    @property
    def _curves(self) -> dict[str, tuple[list, list]]:
        return self.plot.curves

    def default_out(self) -> str:
        return self.form.default_out()

    def fresh_out(self, used: str) -> str:
        """A free folder name beside ``used``: NAME-2, NAME-3, ..."""
        from lungapp.fsutil import unique_path

        return str(unique_path(used))

    # --- running --------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.proc is not None

    def start(self) -> bool:
        if self.running:
            return False
        run = self.form.value()
        if not run.folder or not os.path.isdir(run.folder):
            self.stage.setText(f"Not a folder: {run.folder or '(empty)'}")
            return False
        run.out = run.out or self.default_out()
        if existing_out(run.out):
            answer = ask_existing_out(self, run.out)
            if answer == "cancel":
                return False
            if answer == "new":
                run.out = self.fresh_out(run.out)
            run.overwrite = answer == "replace"
        self.out.setText(run.out)
        self.form.mark([])
        self.form.task_remembered = True   # a task was used: no longer follow the model
        paths.ensure(paths.models_dir())
        run.save(self.settings)
        self._reset_run()
        self._out = run.out
        model_dir = getattr(self.ctx.predictor(), "model_dir", None)  # the model the window shows
        program, args = run.command(os.fspath(model_dir) if model_dir is not None else None)
        self.proc = self._make_process()
        self.log.appendPlainText("$ " + " ".join([program, *args]))
        self.proc.start(program, args)
        self.stage.setText("Starting the training process…")
        self._started_at = time.monotonic()
        self._set_running(True)
        self.progress.setRange(0, 0)
        return True

    def _make_process(self) -> QProcess:
        proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("TF_CPP_MIN_LOG_LEVEL", "2")
        env.insert("PYTHONUNBUFFERED", "1")
        proc.setProcessEnvironment(env)
        proc.readyReadStandardOutput.connect(self._read_stdout)
        proc.readyReadStandardError.connect(self._read_stderr)
        proc.finished.connect(self._finished)
        proc.errorOccurred.connect(self._process_error)
        return proc

    def _set_running(self, running: bool) -> None:
        if running:
            self._clock.start()
            self._show_times()
        else:
            if self._clock.isActive():
                from lungapp.gui.train_summary import fmt_span

                self.times.setText(f"Took {fmt_span(time.monotonic() - self._started_at)}")
            self._clock.stop()
        self.start_btn.setEnabled(not running)
        self.cancel_btn.setEnabled(running)
        self.progress.setVisible(running)
        if running:
            self.use_btn.setEnabled(False)

    def cancel(self) -> None:
        if not self.running:
            return
        self._cancelled = True
        self.stage.setText("Cancelling: the run stops after the current batch…")
        self.proc.terminate()
        proc = self.proc
        QTimer.singleShot(KILL_AFTER_MS, self, lambda: proc.kill() if self.proc is proc else None)

    def _reset_run(self) -> None:
        self._lines.reset()
        self._stderr_tail = []
        self._last_event = None
        self._cancelled = False
        self.plot.reset()
        self.summary.setText("")
        self.log.clear()

    def _read_stdout(self) -> None:
        for item in self._lines.feed(bytes(self.proc.readAllStandardOutput())):
            if isinstance(item, str):
                self.log.appendPlainText(item)
            else:
                self.handle_event(item)

    def _read_stderr(self) -> None:
        text = bytes(self.proc.readAllStandardError()).decode("utf-8", "replace")
        self._stderr_tail += [line for line in text.splitlines() if line.strip() and not is_tf_noise(line)]
        self._stderr_tail = self._stderr_tail[-40:]

    # --- events -----------------------------------------------------------------------
    def handle_event(self, e: P.Event) -> None:
        """Show one progress event of the train CLI."""
        self._last_event = e
        handler = {P.Start: self._on_start, P.Extract: self._on_extract,
                   P.EpochEnd: self._on_epoch, P.FoldEnd: self._on_fold, P.Log: self._on_log,
                   P.Done: self._on_done, P.Error: self._on_error}.get(type(e))
        if handler is not None:
            handler(e)

    def _on_start(self, e: P.Start) -> None:
        from lungapp.training.recipes import PRESETS

        self.plot.epochs_per_fold = max(1, e.epochs or 1)
        # The fits the bar counts: the folds, then the model fitted on all the data that a
        # "retrain" recipe (the bundled presets) keeps.
        retrain = PRESETS.get(e.preset, {}).get("artifact") == "retrain"
        self._folds = (e.folds or 1) + (1 if retrain else 0)
        self.stage.setText(f"Training {e.preset} / {e.arch} / {e.task} "
                           f"with {e.folds}-fold cross-validation")
        self.log.appendPlainText(f"classes: {', '.join(e.classes)}")

    def _on_extract(self, e: P.Extract) -> None:
        self.progress.setRange(0, max(e.total, 1))
        self.progress.setValue(e.done)
        self.progress.setFormat(f"features %v / %m ({e.bad} unreadable)")
        self.stage.setText("Computing features (spectrogram windows)…")

    def _on_epoch(self, e: P.EpochEnd) -> None:
        x = self.plot.add_epoch(e)
        self.progress.setRange(0, self._folds * self.plot.epochs_per_fold)
        self.progress.setValue(x)
        fit = f"fold {e.fold}" if str(e.fold).isdigit() else "final model (all the data)"
        self.progress.setFormat(f"{fit}, epoch {e.epoch}/{e.epochs}")
        m = e.metrics
        loss = m.get("loss")
        extra = f", validation AUC {m['val_auc']:.3f}" if m.get("val_auc") is not None else ""
        self.stage.setText(f"{fit[0].upper()}{fit[1:]}: epoch {e.epoch}/{e.epochs}, "
                           f"loss {loss if loss is not None else float('nan'):.3f}{extra}")

    def _on_fold(self, e: P.FoldEnd) -> None:
        self.plot.add_fold(e)
        auc = e.metrics.get("auc")
        self.log.appendPlainText(f"fold {e.fold}/{e.folds} done: held-out AUC {auc:.3f}"
                                 if auc is not None else f"fold {e.fold} done")

    def _on_log(self, e: P.Log) -> None:
        self.log.appendPlainText(f"{e.level}: {e.message}")

    def _on_done(self, e: P.Done) -> None:
        m = {k: (v if v is not None else float("nan")) for k, v in e.metrics.items()}
        nan = float("nan")
        self.summary.setText(
            f"<b>Done</b> in {e.wall_s or 0:.0f} s — cross-validated (out-of-fold): "
            f"AUC <b>{m.get('auc', nan):.3f}</b>, sensitivity {m.get('sensitivity', nan):.3f}, "
            f"specificity {m.get('specificity', nan):.3f}, score {m.get('score', nan):.3f} "
            f"at threshold {e.threshold if e.threshold is not None else nan:.3f}.<br>"
            + self._comparison_html(e) + f"Saved to {e.out}")

    @staticmethod
    def _comparison_html(e: P.Done) -> str:
        """A fine-tuning run's comparison with the model it started from ("" otherwise)."""
        if not e.start_comparison:
            return ""
        from lungapp.training.finetune import comparison_text

        return f"Fine-tuned: {html.escape(comparison_text(e.start_comparison))}.<br>"

    def _on_error(self, e: P.Error) -> None:
        text, fields = gui_terms(e.message)
        self.summary.setText(f"<b>Stopped</b>: {html.escape(text)}")
        self.form.mark(fields)

    # --- the end of a run -------------------------------------------------------------
    def _finished(self, code: int, status) -> None:
        e = self._last_event
        done = isinstance(e, P.Done) and code == 0
        if done:
            self.stage.setText("Training finished. Review the cross-validated results, then use the model.")
            self.use_btn.setEnabled(True)
            self.statusMessage.emit(f"Training finished: {e.out}", 10000)
            # The next run gets a fresh folder, not this one ("Use this model" keeps _out).
            self.out.setText(self.fresh_out(self._out))
        elif self._cancelled:
            self.stage.setText(f"Cancelled; nothing was written to {self._out}.")
            self.statusMessage.emit("Training cancelled", 6000)
        else:
            self.stage.setText(f"Training failed: {self._failure(e, code, status)}")
            self.statusMessage.emit("Training failed", 8000)
        if self._stderr_tail and not isinstance(e, P.Done):
            self.log.appendPlainText("--- training process stderr (last lines) ---")
            self.log.appendPlainText("\n".join(self._stderr_tail[-20:]))
        self._set_running(False)
        self.proc.deleteLater()
        self.proc = None
        self.trainingFinished.emit(self._out, e)

    def _failure(self, e: P.Event | None, code: int, status) -> str:
        """Why the run failed: its error event's message, or how the process ended."""
        if isinstance(e, P.Error):
            return gui_terms(e.message)[0]
        crashed = status == QProcess.ExitStatus.CrashExit
        tail = "\n".join(self._stderr_tail[-6:])
        return (f"the training process {'crashed' if crashed else 'exited'} (exit code {code})"
                + (f":\n{tail}" if tail else ""))

    def _process_error(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart and self.proc is not None:
            self.stage.setText(f"Could not start the training process: {self.proc.errorString()}")
            self._set_running(False)
            self.proc.deleteLater()
            self.proc = None

    def use_model(self) -> None:
        from lungapp.gui.models_dialog import confirm_switch
        from lungapp.inference.registry import set_active_model

        if not confirm_switch(self, self.ctx, self._out):
            return
        try:
            set_active_model(self._out)
        except LungappError as exc:
            self.stage.setText(f"Cannot use this model: {exc}")
            return
        self.ctx.load_model(self._out)
        self.statusMessage.emit(f"Active model: {self._out}", 8000)
        self.use_btn.setEnabled(False)

    def shutdown(self) -> None:
        if self.running:
            self.cancel()
            if not self.proc.waitForFinished(KILL_AFTER_MS):
                self.proc.kill()
                self.proc.waitForFinished(3000)
