"""Review: open recordings, see them (waveform + spectrogram), hear them, analyse them.

Everything slow happens in workers: folder scans and header reads (durations), decoding
+ spectrogram of the selected file, and the analyses (queued in the AppContext).
"""

from __future__ import annotations

import os
import time

from PySide6.QtCore import QEvent, QItemSelectionModel, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QDoubleSpinBox,
                               QFileDialog, QHBoxLayout, QHeaderView, QLabel, QProgressBar,
                               QPushButton, QSplitter, QTableView, QVBoxLayout, QWidget)

from lungapp.gui import file_list as fl
from lungapp.gui.context import READY, AppContext
from lungapp.gui.playback import SPEEDS, Player
from lungapp.gui.plots import COLORMAPS, RecordingPlots
from lungapp.gui.result_panel import ResultPanel
from lungapp.gui.workers import Task, run_task

DEFAULT_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au", ".w64", ".caf")


def audio_extensions() -> tuple[str, ...]:
    try:
        from lungapp.audio import AUDIO_EXTENSIONS
    except ImportError:
        return DEFAULT_EXTENSIONS
    return tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in AUDIO_EXTENSIONS)


# The dB range shown before the user changes it: SpectrogramConfig's default range
# (not imported here: lungapp.dsp pulls in scipy.signal, too slow for the first paint).
DEFAULT_DB_RANGE = (-100.0, 0.0)


def examples_dir():
    """resources/examples when it holds recordings, else None."""
    from lungapp.paths import resources_dir

    try:
        d = resources_dir() / "examples"
    except FileNotFoundError:
        return None
    return d if d.is_dir() and any(p.suffix.lower() == ".wav" for p in d.iterdir()) else None


# --- worker functions (no Qt widgets here) ---------------------------------------------

def _scan(task: Task, folders: list[str], exts: tuple[str, ...]) -> list[str]:
    found = []
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            if task.cancelled:
                return found
            dirs.sort()
            for name in sorted(files):
                if name.lower().endswith(exts) and not name.startswith("."):
                    found.append(os.path.join(root, name))
            task.progress(len(found), 0, f"Scanning {root}")
    return found


def _read_infos(task: Task, paths: list[str]):
    """Header of each file (fast): emits batches of (path, info, error) as it goes."""
    from lungapp.audio import audio_info
    from lungapp.errors import LungappError

    batch, last = [], time.monotonic()
    for i, p in enumerate(paths):
        if task.cancelled:
            break
        try:
            batch.append((p, audio_info(p), ""))
        except LungappError as exc:
            batch.append((p, None, exc.problem))
        except Exception as exc:  # noqa: BLE001 - one odd file must not stop the scan
            batch.append((p, None, f"{type(exc).__name__}: {exc}"))
        now = time.monotonic()
        if now - last > 0.1 or len(batch) >= 200:
            task.emit_partial(batch)
            task.progress(i + 1, len(paths), "Reading durations")
            batch, last = [], now
    if batch:
        task.emit_partial(batch)
    return len(paths)


def _load_display(task: Task, path: str, cfg):
    """Decode a file for playback (its own rate) and its spectrogram at the model's
    rate, with the model's spectrogram config (what the user sees = what it reads);
    ``cfg`` None (no model yet) = the engine's default config."""
    from lungapp.audio import load_audio, resample
    from lungapp.dsp import SpectrogramConfig, spectrogram

    if cfg is None:
        cfg = SpectrogramConfig()

    audio = load_audio(path)
    if task.cancelled:
        return None
    samples = audio.samples if audio.rate == cfg.rate else resample(audio.samples, audio.rate, cfg.rate)
    if task.cancelled:
        return None
    spec = spectrogram(samples, cfg)
    return {"path": path, "audio": audio, "spec": spec, "cfg": cfg,
            "wave": wave_points(audio.samples, audio.rate)}


def wave_points(samples, rate: int, max_points: int = 1_000_000):
    """(t, y) to draw a waveform: every sample when there are few enough, else the
    min/max of consecutive blocks (how a long recording looks at full width), so an
    hour at 44.1 kHz does not need gigabytes of plot arrays. float32 throughout."""
    import numpy as np

    n = len(samples)
    if n <= max_points:
        return np.arange(n, dtype=np.float32) / np.float32(rate), samples
    k = -(-n // (max_points // 2))
    m = n // k
    blocks = samples[: m * k].reshape(m, k)
    y = np.empty(2 * m, dtype=np.float32)
    y[0::2] = blocks.min(axis=1)
    y[1::2] = blocks.max(axis=1)
    starts = np.arange(m, dtype=np.float64) * k
    t = np.empty(2 * m, dtype=np.float32)
    t[0::2] = starts / rate
    t[1::2] = (starts + k / 2) / rate
    return t, y


# --- the view ---------------------------------------------------------------------------

class ReviewView(QWidget):
    statusMessage = Signal(str, int)     # text, timeout ms (0 = until replaced)
    pathOpened = Signal(str)             # a file or folder the user opened (for Recent)
    displayed = Signal(str)              # the selected file's plots are drawn
    batchFinished = Signal(int, int)     # analysed, requested

    def __init__(self, context: AppContext, parent: QWidget | None = None):
        super().__init__(parent)
        self.ctx = context
        self.settings = context.settings
        self.setAcceptDrops(True)
        self.current_path: str | None = None
        self.display_cfg = None   # None: the engine's default until a model is loaded
        self._load_task: Task | None = None
        self._scan_tasks: list[Task] = []
        self._batch: set[str] = set()
        self._batch_total = 0
        self._batch_done = 0
        self._select_on_add: str | None = None

        self.model = fl.FileListModel(self)
        self.player = Player(self)
        self._build()
        self._restore()
        self._connect()
        self.player.probe_device()

    # --- construction ---------------------------------------------------------------
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(6, 6, 6, 6)

        bar = QHBoxLayout()
        self.open_file_btn = QPushButton("Open file…")
        self.open_folder_btn = QPushButton("Open folder…")
        self.analyse_btn = QPushButton("Analyse")
        self.analyse_btn.setToolTip("Analyse the selected recording")
        self.analyse_all_btn = QPushButton("Analyse all")
        self.analyse_all_btn.setToolTip("Analyse every recording in the list not analysed yet")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setToolTip("Stop analysing the rest of the list")
        self.cancel_btn.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setVisible(False)
        self._hide_progress = QTimer(self)
        self._hide_progress.setSingleShot(True)
        self._hide_progress.setInterval(1500)
        self._hide_progress.timeout.connect(lambda: self.progress.setVisible(bool(self._batch)))
        self.auto_analyse = QCheckBox("Analyse on select")
        self.auto_analyse.setToolTip("Analyse a recording as soon as it is selected")
        self.export_btn = QPushButton("Export CSV…")
        for w in (self.open_file_btn, self.open_folder_btn):
            bar.addWidget(w)
        bar.addSpacing(16)
        for w in (self.analyse_btn, self.analyse_all_btn, self.cancel_btn, self.progress,
                  self.auto_analyse):
            bar.addWidget(w)
        bar.addStretch(1)
        bar.addWidget(self.export_btn)
        root.addLayout(bar)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        root.addWidget(self.splitter, 1)

        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        hh = self.table.horizontalHeader()
        # Fixed, user-adjustable widths: ResizeToContents would measure every row on
        # every update (seconds of GUI stall with thousands of files).
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        fm = self.table.fontMetrics()
        hh.resizeSection(0, 175)
        hh.resizeSection(1, fm.horizontalAdvance("Duration") + 24)
        hh.resizeSection(2, fm.horizontalAdvance("analysing") + 16)
        hh.setStretchLastSection(True)
        hh.setMinimumSectionSize(40)
        self.empty_hint = QLabel("Drop recordings or a folder here,\nor use Open file / Open folder.")
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_hint.setStyleSheet("color: #777;")
        self.examples_btn = QPushButton("Open the example recordings")
        self.examples_btn.setToolTip("Four generated recordings: normal, wheeze, crackles, both")
        self.examples_btn.clicked.connect(self.open_examples)
        self._examples = examples_dir()
        self.examples_btn.setVisible(self._examples is not None)
        left = QWidget()
        left.setMinimumWidth(400)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.table, 1)
        ll.addWidget(self.empty_hint)
        ll.addWidget(self.examples_btn)
        self.splitter.addWidget(left)

        middle = QWidget()
        ml = QVBoxLayout(middle)
        ml.setContentsMargins(0, 0, 0, 0)
        transport = QHBoxLayout()
        self.play_btn = QPushButton("▶ Play")
        self.play_btn.setMinimumWidth(90)
        self.play_btn.setEnabled(False)
        self.speed = QComboBox()
        for s in SPEEDS:
            self.speed.addItem(f"{s:g}×", s)
        self.speed.setToolTip("Playback speed (tape-style: slower is also lower in pitch)")
        self.time_label = QLabel("0:00.0 / 0:00.0")
        self.time_label.setMinimumWidth(110)
        self.title = QLabel("")
        self.title.setStyleSheet("font-weight: bold;")
        self.min_db = QDoubleSpinBox()
        self.max_db = QDoubleSpinBox()
        for sb, tip in ((self.min_db, "Floor of the colour scale (dB)"),
                        (self.max_db, "Top of the colour scale (dB)")):
            sb.setRange(-200, 50)
            sb.setSingleStep(5)
            sb.setSuffix(" dB")
            sb.setToolTip(tip)
        self.cmap = QComboBox()
        self.cmap.addItems(COLORMAPS)
        self.cmap.setToolTip("Colour map (perceptually uniform, colour-blind safe)")
        transport.addWidget(self.play_btn)
        transport.addWidget(QLabel("Speed"))
        transport.addWidget(self.speed)
        transport.addWidget(self.time_label)
        transport.addWidget(self.title, 1)
        transport.addWidget(QLabel("Range"))
        transport.addWidget(self.min_db)
        transport.addWidget(QLabel("to"))
        transport.addWidget(self.max_db)
        transport.addWidget(self.cmap)
        ml.addLayout(transport)
        self.plots = RecordingPlots()
        self.plots.setToolTip("Click: play from there · Wheel: zoom time · Drag: pan · "
                              "Double-click: whole recording")
        ml.addWidget(self.plots, 1)
        self.splitter.addWidget(middle)

        self.result = ResultPanel()
        self.splitter.addWidget(self.result)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 5)
        self.splitter.setStretchFactor(2, 2)
        self.splitter.setSizes([430, 760, 270])

        # Space = play/pause. The list would otherwise use Space for selection, so it
        # gets an event filter; elsewhere in the view a shortcut does it.
        self.table.installEventFilter(self)
        self.space = QShortcut(QKeySequence(Qt.Key.Key_Space), self)
        self.space.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self._update_buttons()

    def _restore(self) -> None:
        s = self.settings
        self.min_db.setValue(float(s.value("review/min_db", DEFAULT_DB_RANGE[0])))
        self.max_db.setValue(float(s.value("review/max_db", DEFAULT_DB_RANGE[1])))
        self.cmap.setCurrentText(str(s.value("review/colormap", "viridis")))
        speed = float(s.value("review/speed", 1.0))
        i = self.speed.findData(speed)
        self.speed.setCurrentIndex(i if i >= 0 else SPEEDS.index(1.0))
        self.player.set_speed(self.speed.currentData())
        self.auto_analyse.setChecked(str(s.value("review/auto_analyse", "true")).lower() == "true")
        state = s.value("review/splitter")
        if state is not None:
            self.splitter.restoreState(state)
        self.plots.set_colormap(self.cmap.currentText())
        self.plots.set_levels(self.min_db.value(), self.max_db.value())

    def save_settings(self) -> None:
        s = self.settings
        s.setValue("review/min_db", self.min_db.value())
        s.setValue("review/max_db", self.max_db.value())
        s.setValue("review/colormap", self.cmap.currentText())
        s.setValue("review/speed", self.speed.currentData())
        s.setValue("review/auto_analyse", "true" if self.auto_analyse.isChecked() else "false")
        s.setValue("review/splitter", self.splitter.saveState())

    def _connect(self) -> None:
        self.open_file_btn.clicked.connect(self.open_file_dialog)
        self.open_folder_btn.clicked.connect(self.open_folder_dialog)
        self.analyse_btn.clicked.connect(self.analyse_selected)
        self.analyse_all_btn.clicked.connect(self.analyse_all)
        self.cancel_btn.clicked.connect(self.cancel_batch)
        self.export_btn.clicked.connect(self.export_dialog)
        self.table.selectionModel().currentRowChanged.connect(self._row_changed)
        self.play_btn.clicked.connect(self.player.toggle)
        self.space.activated.connect(self.player.toggle)
        self.speed.currentIndexChanged.connect(lambda _i: self.player.set_speed(self.speed.currentData()))
        self.min_db.valueChanged.connect(self._levels_changed)
        self.max_db.valueChanged.connect(self._levels_changed)
        self.cmap.currentTextChanged.connect(self.plots.set_colormap)
        self.plots.seekRequested.connect(self.player.seek)
        self.player.positionChanged.connect(self._position)
        self.player.playingChanged.connect(self._playing)
        self.player.availabilityChanged.connect(lambda ok, why: self._update_buttons())
        self.player.error.connect(lambda msg: self.statusMessage.emit(msg, 8000))
        self.auto_analyse.toggled.connect(lambda on: self.save_settings())

        c = self.ctx
        c.analysisStarted.connect(self._analysis_started)
        c.analysisFinished.connect(self._analysis_finished)
        c.analysisFailed.connect(self._analysis_failed)
        c.analysisCancelled.connect(self._analysis_cancelled)
        c.modelStateChanged.connect(self._model_state)
        c.recordingFinished.connect(self._recording_finished)

    # --- opening ----------------------------------------------------------------------
    def last_folder(self) -> str:
        return str(self.settings.value("last_folder", os.path.expanduser("~")))

    def _remember_folder(self, folder: str) -> None:
        self.settings.setValue("last_folder", folder)

    def open_file_dialog(self) -> None:
        exts = " ".join(f"*{e}" for e in audio_extensions())
        files, _ = QFileDialog.getOpenFileNames(self, "Open recordings", self.last_folder(),
                                                f"Audio ({exts});;All files (*)")
        if files:
            self._remember_folder(os.path.dirname(files[0]))
            self.open_paths(files)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of recordings",
                                                  self.last_folder())
        if folder:
            self._remember_folder(folder)
            self.open_paths([folder])

    def open_examples(self) -> None:
        if self._examples is not None:
            self.open_paths([str(self._examples)], remember=False)

    def open_paths(self, paths: list[str], *, remember: bool = True) -> None:
        """Add files and (recursively) folders to the list; the first new file opened
        directly is selected."""
        files, folders, missing = [], [], []
        for p in paths:
            p = os.path.abspath(os.path.expanduser(os.fspath(p)))
            if os.path.isdir(p):
                folders.append(p)
            elif os.path.isfile(p):
                files.append(p)
            else:
                missing.append(p)
            if remember and (os.path.isdir(p) or os.path.isfile(p)):
                self.pathOpened.emit(p)
        for p in missing:
            self.statusMessage.emit(f"{p}: no such file or folder", 8000)
        if files:
            self._add_files(files, select=files[0])
        if folders:
            self.statusMessage.emit(f"Scanning {len(folders)} folder(s)…", 0)
            exts = audio_extensions()
            task = run_task(_scan, folders, exts, name="scan folders",
                            on_finished=lambda found, fs=folders: self._scanned(fs, found),
                            on_failed=lambda msg, exc: self.statusMessage.emit(msg, 8000))
            self._scan_tasks.append(task)

    def _scanned(self, folders: list[str], found: list[str]) -> None:
        if not found:
            self.statusMessage.emit(f"No recordings found in {', '.join(folders)}", 8000)
            return
        self.statusMessage.emit(f"Found {len(found)} recording(s) in {', '.join(folders)}", 5000)
        self._add_files(found, select=found[0] if self.current_path is None else None)

    def _add_files(self, files: list[str], select: str | None = None) -> list[str]:
        new = self.model.add(files)
        if new and self.table.isSortingEnabled():
            hh = self.table.horizontalHeader()
            self.model.sort(hh.sortIndicatorSection(), hh.sortIndicatorOrder())
        if new:
            run_task(_read_infos, new, name="read durations", on_partial=self._infos)
        if select is not None:
            self.select(select)
        self._update_buttons()
        return new

    def _infos(self, batch) -> None:
        changes = []
        for path, info, error in batch:
            if info is not None:
                changes.append((path, {"duration_s": float(info.duration_s), "info": info}))
            else:
                changes.append((path, {"status": fl.ERROR, "error": error}))
                if path == self.current_path:
                    self.result.show_error(error)
        self.model.update_many(changes)

    def eventFilter(self, obj, event) -> bool:
        if (obj is self.table and event.type() == QEvent.Type.KeyPress
                and event.key() == Qt.Key.Key_Space and not event.modifiers()):
            self.player.toggle()
            return True
        return super().eventFilter(obj, event)

    # --- drag and drop ------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    # --- selection & display ----------------------------------------------------------
    def select(self, path: str) -> None:
        row = self.model.row_of(path)
        if row < 0:
            return
        idx = self.model.index(row, 0)
        self.table.selectionModel().setCurrentIndex(
            idx, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
        self.table.scrollTo(idx)

    def selected_path(self) -> str | None:
        return self.current_path

    def _row_changed(self, current, previous) -> None:
        path = self.model.data(current, fl.PATH_ROLE) if current.isValid() else None
        if path == self.current_path:
            return
        self.current_path = path
        self.player.clear()
        self._update_buttons()
        if path is None:
            self.plots.clear()
            self.title.setText("")
            self.result.show_message("Open a recording to see its result.")
            return
        self.title.setText(os.path.basename(path))
        self._load_current()
        self._show_entry_result(path)
        e = self.model.entry(path)
        if (e is not None and self.auto_analyse.isChecked() and e.prediction is None
                and e.status not in (fl.ERROR, fl.QUEUED, fl.ANALYSING)):
            self.analyse(path)

    def _load_current(self) -> None:
        path = self.current_path
        if self._load_task is not None and not self._load_task.is_done:
            self._load_task.cancel()
        self.plots.clear("Loading…")
        if path is None:
            return
        self._load_task = run_task(
            _load_display, path, self.display_cfg, name="load for display",
            on_finished=self._loaded,
            on_failed=lambda msg, exc, p=path: self._load_failed(p, msg, exc))

    def _loaded(self, data) -> None:
        if data is None or data["path"] != self.current_path:
            return  # the user moved on
        audio = data["audio"]
        self.plots.set_recording(audio.samples, audio.rate, data["spec"], data["cfg"],
                                 wave=data["wave"])
        self.player.set_audio(audio.samples, audio.rate)
        self.model.update(data["path"], duration_s=float(audio.duration_s))
        e = self.model.entry(data["path"])
        if e is not None and e.prediction is not None:
            self._show_timeline(e.prediction)
        else:
            self.plots.clear_timeline(self._timeline_placeholder(e))
        self._position(0.0)
        self._update_buttons()
        self.displayed.emit(data["path"])

    def _load_failed(self, path: str, message: str, exc) -> None:
        problem = getattr(exc, "problem", message)
        self.ctx.cancel_analyses([path])
        self.model.update(path, status=fl.ERROR, error=problem)
        if path == self.current_path:
            self.plots.clear(f"Cannot open this file: {problem}")
            self.result.show_error(problem)
            self._update_buttons()
        self.statusMessage.emit(message, 10000)

    def _timeline_placeholder(self, e) -> str:
        if e is None:
            return ""
        if e.status in (fl.QUEUED, fl.ANALYSING):
            return "Analysing…"
        if e.status == fl.ERROR:
            return e.error
        return "Not analysed yet — press Analyse"

    def _show_entry_result(self, path: str) -> None:
        e = self.model.entry(path)
        if e is None:
            return
        if e.prediction is not None:
            self.result.show_prediction(e.prediction)
        elif e.status == fl.ERROR:
            self.result.show_error(e.error)
        elif e.status in (fl.QUEUED, fl.ANALYSING):
            self.result.show_message("Analysing…", busy=True)
        else:
            self.result.show_message(self._not_analysed_text())

    def _not_analysed_text(self) -> str:
        state = self.ctx.model_state()
        if state == "error":
            return "No model available"
        return "Not analysed yet"

    def _show_timeline(self, prediction) -> None:
        threshold = getattr(prediction, "threshold", None)
        if threshold is None:
            p = self.ctx.predictor()
            threshold = p.card.threshold if p is not None else 0.5
        self.plots.set_timeline(prediction, threshold)

    # --- playback ---------------------------------------------------------------------
    def _position(self, seconds: float) -> None:
        self.plots.set_cursor(seconds)
        dur = self.player.duration
        self.time_label.setText(f"{fl.fmt_clock(seconds)} / {fl.fmt_clock(dur)}")

    def _playing(self, playing: bool) -> None:
        self.play_btn.setText("❚❚ Pause" if playing else "▶ Play")

    def _levels_changed(self) -> None:
        lo, hi = self.min_db.value(), self.max_db.value()
        if lo >= hi:
            return
        self.plots.set_levels(lo, hi)

    # --- analysis -----------------------------------------------------------------------
    def analyse(self, path: str) -> None:
        e = self.model.entry(path)
        if e is None:
            return
        self.model.update(path, status=fl.QUEUED, error="")
        if path == self.current_path:
            self.result.show_message("Analysing…", busy=True)
            self.plots.clear_timeline("Analysing…")
        self.ctx.request_analysis(path)

    def analyse_selected(self) -> None:
        if self.current_path:
            self.analyse(self.current_path)

    def analyse_all(self) -> None:
        todo = [e.path for e in self.model.entries
                if e.prediction is None and e.status not in (fl.QUEUED, fl.ANALYSING)]
        if not todo:
            self.statusMessage.emit("Every recording in the list is already analysed", 5000)
            return
        if not self._batch:
            self._batch_total = self._batch_done = 0
        self._batch.update(todo)
        self._batch_total += len(todo)
        self.progress.setRange(0, self._batch_total)
        self.progress.setValue(self._batch_done)
        self.progress.setFormat("%v / %m")
        self.progress.setVisible(True)
        self.cancel_btn.setEnabled(True)
        for p in todo:
            self.analyse(p)

    def cancel_batch(self) -> None:
        dropped = self.ctx.cancel_analyses(sorted(self._batch))
        self.statusMessage.emit(f"Cancelled: {len(dropped)} recording(s) not analysed", 5000)

    def _batch_step(self, path: str) -> None:
        if path not in self._batch:
            return
        self._batch.discard(path)
        self._batch_done += 1
        self.progress.setValue(self._batch_done)
        if not self._batch:
            self.cancel_btn.setEnabled(False)
            analysed = sum(1 for e in self.model.entries if e.status == fl.DONE)
            self._hide_progress.start()
            self.statusMessage.emit(f"Analyse all finished: {analysed} of "
                                    f"{self.model.rowCount()} recordings analysed", 8000)
            self.batchFinished.emit(self._batch_done, self._batch_total)

    def _analysis_started(self, path: str) -> None:
        self.model.update(path, status=fl.ANALYSING)

    def _analysis_finished(self, path: str, prediction) -> None:
        e = self.model.update(path, status=fl.DONE, prediction=prediction, error="",
                              duration_s=float(prediction.duration_s))
        if e is not None and path == self.current_path:
            self.result.show_prediction(prediction)
            if self.plots.duration:
                self._show_timeline(prediction)
        if e is not None:
            self.statusMessage.emit(f"{os.path.basename(path)}: {prediction.label}", 4000)
        self._batch_step(path)

    def _analysis_failed(self, path: str, message: str) -> None:
        if message.startswith(path + ": "):  # the row already names the file
            message = message[len(path) + 2:]
        e = self.model.update(path, status=fl.ERROR, error=message)
        if e is not None:
            if path == self.current_path:
                self.result.show_error(message)
                self.plots.clear_timeline(message)
            self.statusMessage.emit(f"{os.path.basename(path)}: {message}", 10000)
        self._batch_step(path)

    def _analysis_cancelled(self, path: str) -> None:
        e = self.model.entry(path)
        if e is not None and e.status != fl.ERROR:
            self.model.update(path, status=fl.CANCELLED)
        if e is not None and e.status == fl.CANCELLED and path == self.current_path:
            self.result.show_message("Not analysed (cancelled)")
            self.plots.clear_timeline("Not analysed (cancelled)")
        self._batch_step(path)

    def _model_state(self, state: str, message: str) -> None:
        if state == READY:
            cfg = self.ctx.predictor().card.features.spectrogram
            if cfg != self.display_cfg:
                self.display_cfg = cfg
                if self.current_path:
                    self._load_current()
            # Files that failed only because no model was available get another chance.
        elif state == "error" and self.current_path:
            e = self.model.entry(self.current_path)
            if e is not None and e.prediction is None and e.status not in (fl.ERROR,):
                self.result.show_message(self._not_analysed_text())
        self._update_buttons()

    def _recording_finished(self, path: str) -> None:
        path = os.path.abspath(path)
        self._add_files([path])
        self.analyse(path)

    # --- export -------------------------------------------------------------------------
    def export_dialog(self) -> None:
        if not self.model.rowCount():
            self.statusMessage.emit("Nothing to export: the list is empty", 5000)
            return
        target, _ = QFileDialog.getSaveFileName(
            self, "Export results", os.path.join(self.last_folder(), "lungapp-results.csv"),
            "CSV (*.csv)")
        if target:
            self.export_csv(target)

    def export_csv(self, target: str) -> int:
        from lungapp.gui.export import export_csv

        try:
            n = export_csv(target, self.model.entries)
        except OSError as exc:
            self.statusMessage.emit(f"{target}: cannot write ({exc.strerror or exc})", 10000)
            return 0
        self.statusMessage.emit(f"Exported {n} row(s) to {target}", 6000)
        return n

    # --- misc ---------------------------------------------------------------------------
    def _update_buttons(self) -> None:
        has_rows = self.model.rowCount() > 0
        no_model = self.ctx.model_state() == "error"
        self.analyse_btn.setEnabled(self.current_path is not None and not no_model)
        self.analyse_all_btn.setEnabled(has_rows and not no_model)
        tip = "No model available: see the status bar" if no_model else ""
        self.analyse_btn.setToolTip(tip or "Analyse the selected recording")
        self.analyse_all_btn.setToolTip(tip or "Analyse every recording in the list not analysed yet")
        self.export_btn.setEnabled(has_rows)
        self.empty_hint.setVisible(not has_rows)
        self.examples_btn.setVisible(not has_rows and self._examples is not None)
        if not self.player.available:
            self.play_btn.setEnabled(False)
            self.play_btn.setToolTip(f"Playback unavailable: {self.player.unavailable_reason}")
        else:
            self.play_btn.setEnabled(self.player.has_audio)
            self.play_btn.setToolTip(f"Play / pause (Space) on {self.player.device_name}")

    def shutdown(self) -> None:
        self.player.stop()
        for t in self._scan_tasks:
            t.cancel()
        if self._load_task is not None:
            self._load_task.cancel()
        self.save_settings()
