"""Train: run ``lungapp train FOLDER --out DIR --progress json`` in a separate process
and show its JSON-lines progress as live curves.

The training runs in its own process (QProcess), so a crash there never takes the
window down and the GUI stays responsive; Cancel sends SIGTERM (the CLI stops within a
batch and leaves --out untouched), then kills it if it has not exited after 15 s.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys

import pyqtgraph as pg
from PySide6.QtCore import QProcess, QProcessEnvironment, Qt, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout,
                               QLabel, QLineEdit, QPlainTextEdit, QProgressBar, QPushButton,
                               QSpinBox, QSplitter, QVBoxLayout, QWidget)

from lungapp import paths
from lungapp.gui import theme

KILL_AFTER_MS = 15000


def train_command(folder: str, out: str, preset: str, task: str, folds: int,
                  epochs: int | None) -> tuple[str, list[str]]:
    """Program and arguments of the training process (source install or frozen app)."""
    args = ["train", folder, "--out", out, "--progress", "json", "--preset", preset,
            "--task", task, "--folds", str(folds)]
    if epochs:
        args += ["--epochs", str(epochs)]
    if getattr(sys, "frozen", False):  # PyInstaller: the app binary is the CLI too
        return sys.executable, args
    return sys.executable, ["-m", "lungapp", *args]


class TrainView(QWidget):
    statusMessage = Signal(str, int)
    trainingFinished = Signal(str, object)     # out folder, the "done"/"error" event

    def __init__(self, context, parent: QWidget | None = None):
        super().__init__(parent)
        self.ctx = context
        self.settings = context.settings
        self.proc: QProcess | None = None
        self._buf = b""
        self._stderr_tail: list[str] = []
        self._last_event: dict | None = None
        self._epochs_per_fold = 1
        self._curves: dict[str, tuple[list, list]] = {}
        self._cancelled = False
        self._build()

    # --- construction ---------------------------------------------------------------
    def _build(self) -> None:
        root = QHBoxLayout(self)
        split = QSplitter(Qt.Orientation.Horizontal)
        root.addWidget(split)

        left = QWidget()
        ll = QVBoxLayout(left)
        form_box = QGroupBox("Training run")
        form = QFormLayout(form_box)
        self.folder = QLineEdit(str(self.settings.value("train/folder", "")))
        self.folder.setPlaceholderText("a labelled folder (SPRSound, ICBHI, class folders, CSV…)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_folder)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        form.addRow("Data folder", row)
        self.out = QLineEdit()
        self.out.setPlaceholderText("new model folder (default: in your models folder)")
        browse_out = QPushButton("Browse…")
        browse_out.clicked.connect(self._browse_out)
        row2 = QHBoxLayout()
        row2.addWidget(self.out, 1)
        row2.addWidget(browse_out)
        form.addRow("Save model to", row2)
        self.preset = QComboBox()
        self.preset.addItem("recommended", "recommended")
        self.preset.addItem("bundled (the app's model: finer time steps, about 2.5x slower)", "bundled")
        self.preset.addItem("bundled-4s (the app's model's 4-s windows: about twice bundled's time)",
                            "bundled-4s")
        self.preset.addItem("seed (the student project's CNN)", "seed")
        self.task = QComboBox()
        self.task.addItem("binary: normal vs abnormal", "binary")
        self.task.addItem("4 classes: Normal, CAS, DAS, CAS & DAS", "4class")
        self.folds = QSpinBox()
        self.folds.setRange(2, 10)
        self.folds.setValue(int(self.settings.value("train/folds", 4)))
        self.epochs = QSpinBox()
        self.epochs.setRange(0, 500)
        self.epochs.setSpecialValueText("preset default")
        self.epochs.setValue(int(self.settings.value("train/epochs", 0)))
        form.addRow("Preset", self.preset)
        form.addRow("Task", self.task)
        form.addRow("Cross-validation folds", self.folds)
        form.addRow("Epochs", self.epochs)
        ll.addWidget(form_box)

        buttons = QHBoxLayout()
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
            buttons.addWidget(b)
        ll.addLayout(buttons)

        self.stage = QLabel("Choose a labelled folder and press Start training.")
        self.stage.setWordWrap(True)
        ll.addWidget(self.stage)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        ll.addWidget(self.progress)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        ll.addWidget(self.summary)
        ll.addWidget(QLabel("Log"))
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        ll.addWidget(self.log, 1)
        split.addWidget(left)

        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground(theme.PLOT_BG)
        self.loss_plot = self.glw.addPlot(row=0, col=0)
        self.loss_plot.setLabel("left", "Loss")
        self.loss_plot.addLegend(offset=(-8, 4), labelTextSize="8pt")
        self.auc_plot = self.glw.addPlot(row=1, col=0)
        self.auc_plot.setLabel("left", "AUC (line: validation, squares: held-out fold)")
        self.auc_plot.setLabel("bottom", "Epoch (all folds, in order)")
        self.auc_plot.setYRange(0.0, 1.0, padding=0.02)
        self.auc_plot.setXLink(self.loss_plot)
        for p in (self.loss_plot, self.auc_plot):
            p.showGrid(x=True, y=True, alpha=0.15)
        self._items = {
            "loss": self.loss_plot.plot(pen=pg.mkPen(theme.BLUE, width=2), name="training loss"),
            "val_loss": self.loss_plot.plot(pen=pg.mkPen(theme.VERMILLION, width=2), name="validation loss"),
            "val_auc": self.auc_plot.plot(pen=pg.mkPen(theme.GREEN, width=2), symbol="o", symbolSize=4,
                                          symbolBrush=theme.GREEN, symbolPen=None),
            # the held-out fold's recording AUC, once per fold (recipes without a
            # validation split have no per-epoch AUC)
            "heldout": self.auc_plot.plot(pen=None, symbol="s", symbolSize=9, symbolBrush=theme.BLUE,
                                          symbolPen=None, name="held-out fold AUC"),
        }
        self._fold_lines: list = []
        split.addWidget(self.glw)
        split.setSizes([420, 800])

    def _browse_folder(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Labelled data folder", self.folder.text()
                                             or str(self.settings.value("last_folder", "")))
        if d:
            self.folder.setText(d)

    def _browse_out(self) -> None:
        d, _ = QFileDialog.getSaveFileName(self, "New model folder", self.default_out())
        if d:
            self.out.setText(d)

    def default_out(self) -> str:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        return str(paths.models_dir() / f"{self.task.currentData()}-{stamp}")

    # --- running --------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.proc is not None

    def start(self) -> bool:
        if self.running:
            return False
        folder = self.folder.text().strip()
        if not folder or not os.path.isdir(folder):
            self.stage.setText(f"Not a folder: {folder or '(empty)'}")
            return False
        out = self.out.text().strip() or self.default_out()
        self.out.setText(out)
        paths.ensure(paths.models_dir())
        self.settings.setValue("train/folder", folder)
        self.settings.setValue("train/folds", self.folds.value())
        self.settings.setValue("train/epochs", self.epochs.value())
        program, args = train_command(folder, out, self.preset.currentData(), self.task.currentData(),
                                      self.folds.value(), self.epochs.value() or None)
        self._reset_run()
        proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("TF_CPP_MIN_LOG_LEVEL", "2")
        env.insert("PYTHONUNBUFFERED", "1")
        proc.setProcessEnvironment(env)
        proc.readyReadStandardOutput.connect(self._read_stdout)
        proc.readyReadStandardError.connect(self._read_stderr)
        proc.finished.connect(self._finished)
        proc.errorOccurred.connect(self._process_error)
        self.proc = proc
        self._out = out
        self.log.appendPlainText("$ " + " ".join([program, *args]))
        proc.start(program, args)
        self.stage.setText("Starting the training process…")
        self.start_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        self.use_btn.setEnabled(False)
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        return True

    def cancel(self) -> None:
        if not self.running:
            return
        self._cancelled = True
        self.stage.setText("Cancelling: the run stops after the current batch…")
        self.proc.terminate()
        proc = self.proc
        QTimer.singleShot(KILL_AFTER_MS, self, lambda: proc.kill() if self.proc is proc else None)

    def _reset_run(self) -> None:
        self._buf = b""
        self._stderr_tail = []
        self._last_event = None
        self._cancelled = False
        self._curves = {k: ([], []) for k in self._items}
        for item in self._items.values():
            item.setData([], [])
        for line in self._fold_lines:
            self.loss_plot.removeItem(line)
        self._fold_lines = []
        self.summary.setText("")
        self.log.clear()

    def _read_stdout(self) -> None:
        self._buf += bytes(self.proc.readAllStandardOutput())
        *lines, self._buf = self._buf.split(b"\n")
        for raw in lines:
            raw = raw.strip()
            if not raw:
                continue
            try:
                event = json.loads(raw)
            except ValueError:
                self.log.appendPlainText(raw.decode("utf-8", "replace"))
                continue
            if isinstance(event, dict):
                self.handle_event(event)

    def _read_stderr(self) -> None:
        text = bytes(self.proc.readAllStandardError()).decode("utf-8", "replace")
        for line in text.splitlines():
            if line.strip():
                self._stderr_tail.append(line)
        self._stderr_tail = self._stderr_tail[-40:]

    def handle_event(self, e: dict) -> None:
        """Show one progress event of the train CLI (see lungapp.cli.train)."""
        self._last_event = e
        kind = e.get("event")
        if kind == "start":
            self._epochs_per_fold = max(1, int(e.get("epochs") or 1))
            self._folds = int(e.get("folds") or 1)
            self.stage.setText(f"Training {e.get('preset')} / {e.get('arch')} / {e.get('task')} "
                               f"with {e.get('folds')}-fold cross-validation")
            self.log.appendPlainText(f"classes: {', '.join(e.get('classes', []))}")
        elif kind == "extract":
            total = int(e.get("total") or 0)
            self.progress.setRange(0, max(total, 1))
            self.progress.setValue(int(e.get("done") or 0))
            self.progress.setFormat(f"features %v / %m ({e.get('bad', 0)} unreadable)")
            self.stage.setText("Computing features (spectrogram windows)…")
        elif kind == "epoch_end":
            fold, epoch = int(e["fold"]), int(e["epoch"])
            epochs = int(e.get("epochs") or self._epochs_per_fold)
            self._epochs_per_fold = epochs
            x = (fold - 1) * epochs + epoch
            m = e.get("metrics", {})
            for key in self._items:
                v = m.get(key)
                if v is not None:
                    xs, ys = self._curves[key]
                    if xs and epoch == 1:  # a new fold: break the line (NaN gap)
                        xs.append(x - 0.5)
                        ys.append(float("nan"))
                    xs.append(x)
                    ys.append(float(v))
                    self._items[key].setData(xs, ys, connect="finite")
            total = getattr(self, "_folds", 1) * epochs
            self.progress.setRange(0, total)
            self.progress.setValue(x)
            self.progress.setFormat(f"fold {fold}, epoch {epoch}/{epochs}")
            extra = f", validation AUC {m['val_auc']:.3f}" if m.get("val_auc") is not None else ""
            self.stage.setText(f"Fold {fold}: epoch {epoch}/{epochs}, loss {m.get('loss', float('nan')):.3f}{extra}")
        elif kind == "fold_end":
            x = int(e["fold"]) * self._epochs_per_fold + 0.5
            line = pg.InfiniteLine(pos=x, angle=90, pen=pg.mkPen(theme.MUTED, style=Qt.PenStyle.DotLine))
            self.loss_plot.addItem(line)
            self._fold_lines.append(line)
            auc = e.get("metrics", {}).get("auc")
            if auc is not None and auc == auc:
                xs, ys = self._curves["heldout"]
                xs.append(int(e["fold"]) * self._epochs_per_fold)
                ys.append(float(auc))
                self._items["heldout"].setData(xs, ys)
            self.log.appendPlainText(f"fold {e['fold']}/{e['folds']} done: held-out AUC "
                                     f"{auc:.3f}" if auc is not None else f"fold {e['fold']} done")
        elif kind == "log":
            self.log.appendPlainText(f"{e.get('level', 'info')}: {e.get('message', '')}")
        elif kind == "done":
            m = e.get("metrics", {})
            self.summary.setText(
                f"<b>Done</b> in {e.get('wall_s', 0):.0f} s — cross-validated (out-of-fold): "
                f"AUC <b>{m.get('auc', float('nan')):.3f}</b>, sensitivity {m.get('sensitivity', float('nan')):.3f}, "
                f"specificity {m.get('specificity', float('nan')):.3f}, score {m.get('score', float('nan')):.3f} "
                f"at threshold {e.get('threshold', float('nan')):.3f}.<br>Saved to {e.get('out')}")
        elif kind == "error":
            self.summary.setText(f"<b>Stopped</b>: {e.get('message', '')}")

    def _finished(self, code: int, status) -> None:
        e = self._last_event or {}
        crashed = status == QProcess.ExitStatus.CrashExit
        if e.get("event") == "done" and code == 0:
            self.stage.setText("Training finished. Review the cross-validated results, then use the model.")
            self.use_btn.setEnabled(True)
            self.statusMessage.emit(f"Training finished: {e.get('out')}", 10000)
        elif self._cancelled:
            self.stage.setText(f"Cancelled; nothing was written to {self._out}.")
            self.statusMessage.emit("Training cancelled", 6000)
        else:
            why = e.get("message") if e.get("event") == "error" else None
            if why is None:
                tail = "\n".join(self._stderr_tail[-6:])
                why = (f"the training process {'crashed' if crashed else 'exited'} "
                       f"(exit code {code})" + (f":\n{tail}" if tail else ""))
            self.stage.setText(f"Training failed: {why}")
            self.statusMessage.emit("Training failed", 8000)
        if self._stderr_tail and e.get("event") != "done":
            self.log.appendPlainText("--- training process stderr (last lines) ---")
            self.log.appendPlainText("\n".join(self._stderr_tail[-20:]))
        self.progress.setVisible(False)
        self.start_btn.setEnabled(True)
        self.cancel_btn.setEnabled(False)
        self.proc.deleteLater()
        self.proc = None
        self.trainingFinished.emit(self._out, e)

    def _process_error(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart and self.proc is not None:
            self.stage.setText(f"Could not start the training process: {self.proc.errorString()}")
            self.progress.setVisible(False)
            self.start_btn.setEnabled(True)
            self.cancel_btn.setEnabled(False)
            self.proc.deleteLater()
            self.proc = None

    def use_model(self) -> None:
        from lungapp.errors import LungappError
        from lungapp.inference.registry import set_active_model

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
