"""Review: open recordings, see them (waveform + spectrogram), hear them, analyse them.

The view wires small widgets together: the tool bar (:mod:`~lungapp.gui.review_toolbar`),
the list of recordings (:mod:`~lungapp.gui.file_panel` over
:mod:`~lungapp.gui.file_list`'s model), the transport bar
(:mod:`~lungapp.gui.transport_bar`) over the plots (:mod:`~lungapp.gui.plots`), and the
result (:mod:`~lungapp.gui.result_panel`). Everything slow happens in workers
(:mod:`~lungapp.gui.review_tasks`): folder scans and header reads (durations), decoding
+ spectrogram of the selected file, and the analyses (queued in the AppContext).
"""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QFileDialog, QSplitter, QVBoxLayout, QWidget

from lungapp.gui import file_list as fl
from lungapp.gui.context import READY, AppContext
from lungapp.gui.file_panel import FilePanel
from lungapp.gui.playback import Player
from lungapp.gui.plots import RecordingPlots
from lungapp.gui.result_panel import ResultPanel
from lungapp.gui.review_annotation import ReviewAnnotation
from lungapp.gui.review_tasks import audio_extensions, examples_dir, load_display, read_infos, scan_folders
from lungapp.gui.review_toolbar import ReviewToolbar
from lungapp.gui.scrolling import scrolling
from lungapp.gui.transport_bar import TransportBar
from lungapp.gui.workers import Task, run_task


def ask_export_into_data(parent: QWidget, target: str) -> bool:
    """Confirm a CSV saved among the recordings (tests replace this function)."""
    from PySide6.QtWidgets import QMessageBox

    answer = QMessageBox.question(
        parent, "Export into a folder of recordings?",
        f"{os.path.dirname(target)} holds recordings from the list. A results CSV saved there "
        "makes Train (and lungapp train / evaluate) read that folder as a CSV layout.\n\n"
        "Save it there anyway?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
        QMessageBox.StandardButton.Cancel)
    return answer == QMessageBox.StandardButton.Yes


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
        self._player_path: str | None = None  # the file whose audio the player holds
        self._build()
        self._restore()
        self._connect()
        self.player.probe_device()

    # --- construction ---------------------------------------------------------------
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(6, 6, 6, 6)
        self.toolbar = ReviewToolbar()
        root.addWidget(self.toolbar)
        self.files = FilePanel(self.model, examples_dir())
        self.transport = TransportBar()
        self.plots = RecordingPlots()
        self.plots.setToolTip("Click: play from there · Wheel: zoom time · Drag: new region "
                              "(Shift+drag: pan) · Double-click: whole recording")
        self.annotation = ReviewAnnotation(self)
        middle = QWidget()
        ml = QVBoxLayout(middle)
        ml.setContentsMargins(0, 0, 0, 0)
        ml.addWidget(scrolling(self.transport, vertical=False))
        ml.addWidget(scrolling(self.annotation.listening, vertical=False))
        ml.addWidget(self.plots, 1)
        self.result = ResultPanel()
        right = QSplitter(Qt.Orientation.Vertical)
        # Both scroll rather than squeeze: the result keeps its natural height (its bars
        # overlapped at 1280x720 once the Labels panel shared the column).
        right.addWidget(scrolling(self.result))
        right.addWidget(scrolling(self.annotation.panel))
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 2)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        for i, (w, stretch) in enumerate(((self.files, 2), (middle, 5), (right, 2))):
            self.splitter.addWidget(w)
            self.splitter.setStretchFactor(i, stretch)
        self.splitter.setSizes([384, 606, 290])   # at 1280 px the Result column shows
        root.addWidget(self.splitter, 1)
        # Space = play/pause: the list turns it into spacePressed; elsewhere in the view
        # a shortcut does it.
        self.space = QShortcut(QKeySequence(Qt.Key.Key_Space), self)
        self.space.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        # Left / Right seek 1 s, with Shift 5 s (a table of rows has no use for them).
        self.seek_keys = {}
        for key, step in ((Qt.Key.Key_Left, -1.0), (Qt.Key.Key_Right, 1.0),
                          (Qt.Key.Key_Left | Qt.KeyboardModifier.ShiftModifier, -5.0),
                          (Qt.Key.Key_Right | Qt.KeyboardModifier.ShiftModifier, 5.0)):
            sc = QShortcut(QKeySequence(key), self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.seek_keys[step] = sc
        self._expose_children()
        self._update_buttons()

    def _expose_children(self) -> None:
        """The children's controls as the view's own attributes: tests, benchmarks and
        the screenshot script drive the view through them."""
        tb, tr = self.toolbar, self.transport
        self.open_file_btn, self.open_folder_btn = tb.open_file_btn, tb.open_folder_btn
        self.analyse_btn, self.analyse_all_btn = tb.analyse_btn, tb.analyse_all_btn
        self.cancel_btn, self.progress = tb.cancel_btn, tb.progress
        self.auto_analyse, self.export_btn = tb.auto_analyse, tb.export_btn
        self.table, self.empty_hint = self.files.table, self.files.empty_hint
        self.examples_btn = self.files.examples_btn
        self.play_btn, self.speed, self.title = tr.play_btn, tr.speed, tr.title
        self.min_db, self.max_db, self.cmap = tr.min_db, tr.max_db, tr.cmap
        self.auto_levels = tr.auto_levels

    def _restore(self) -> None:
        s = self.settings
        self.transport.restore(s)
        self.player.set_speed(self.speed.currentData())
        self.toolbar.restore(s)
        state = s.value("review/splitter")
        self._splitter_restored = state is not None and self.splitter.restoreState(state)
        self.plots.set_colormap(self.cmap.currentText())
        self.plots.set_levels(*self.transport.levels())

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._splitter_restored:
            # First run: sizes from the real width (set before the first show, Qt scales
            # them by the stretch factors and the list lost its Result column at 1280 px).
            self._splitter_restored = True
            w = self.splitter.width()
            # The result column is wider than the panel's minimum (240) plus its scroll
            # bar and frame: at 250 the panel scrolled sideways and its headline was cut.
            files, result = min(420, int(0.30 * w)), 290
            self.splitter.setSizes([files, max(0, w - files - result), result])

    def save_settings(self) -> None:
        s = self.settings
        self.transport.save(s)
        self.toolbar.save(s)
        s.setValue("review/splitter", self.splitter.saveState())

    def _connect(self) -> None:
        self._connect_widgets()
        self._connect_player()
        c = self.ctx
        c.analysisStarted.connect(self._analysis_started)
        c.analysisFinished.connect(self._analysis_finished)
        c.analysisFailed.connect(self._analysis_failed)
        c.analysisCancelled.connect(self._analysis_cancelled)
        c.modelStateChanged.connect(self._model_state)
        c.recordingFinished.connect(self._recording_finished)

    def _connect_widgets(self) -> None:
        self.open_file_btn.clicked.connect(self.open_file_dialog)
        self.open_folder_btn.clicked.connect(self.open_folder_dialog)
        self.analyse_btn.clicked.connect(self.analyse_selected)
        self.analyse_all_btn.clicked.connect(self.analyse_all)
        self.cancel_btn.clicked.connect(self.cancel_batch)
        self.export_btn.clicked.connect(self.export_dialog)
        self.auto_analyse.toggled.connect(lambda on: self.save_settings())
        self.examples_btn.clicked.connect(self.open_examples)
        self.files.removeRequested.connect(self.remove_files)
        self.files.clearRequested.connect(lambda: self.remove_files(self.model.paths()))
        self.table.selectionModel().currentRowChanged.connect(self._row_changed)
        self.transport.levelsChanged.connect(self.plots.set_levels)
        self.cmap.currentTextChanged.connect(self.plots.set_colormap)
        self.plots.savePngRequested.connect(self.save_view_png)

    def _play_pause(self) -> None:
        """Play / pause (the button, Space): Play after a region was played (Play selection)
        plays the whole recording on, not the region again."""
        if not self.player.playing:
            self.player.clear_range()
        self.player.toggle()

    def _connect_player(self) -> None:
        p = self.player
        for play_pause in (self.play_btn.clicked, self.space.activated, self.files.spacePressed):
            play_pause.connect(self._play_pause)
        self.speed.currentIndexChanged.connect(lambda _i: p.set_speed(self.speed.currentData()))
        self.plots.seekRequested.connect(p.seek)
        for step, sc in self.seek_keys.items():
            sc.activated.connect(lambda step=step: self._arrow(step))
        p.positionChanged.connect(self._position)
        p.playingChanged.connect(self.transport.set_playing)
        p.availabilityChanged.connect(lambda ok, why: self._update_buttons())
        p.error.connect(lambda msg: self.statusMessage.emit(msg, 8000))

    def _arrow(self, step: float) -> None:
        """Left/Right (Shift: 5 s): nudge the selected region, else seek by ``step`` s."""
        if not self.annotation.layer.arrow(1 if step > 0 else -1, abs(step) > 1.0):
            self.player.seek_by(step)

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
        if self.files.examples is not None:
            self.open_paths([str(self.files.examples)], remember=False)

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
            task = run_task(scan_folders, folders, exts, name="scan folders", owner=self,
                            on_finished=lambda found, fs=folders: self._scanned(fs, found),
                            on_failed=lambda msg, exc: self.statusMessage.emit(msg, 8000))
            self._scan_tasks.append(task)

    def _back(self, files: list[str]) -> list[str]:
        """The listed ``files`` marked missing whose file is there again (a drive mounted
        late): no longer missing, read again. Returns them."""
        back = [f for f in files if (e := self.model.entry(f)) is not None and e.status == fl.MISSING
                and os.path.isfile(f)]
        if back:
            self.model.update_many([(f, {"status": fl.DONE if self.model.entry(f).prediction is not None
                                         else fl.NEW, "error": ""}) for f in back])
            run_task(read_infos, back, name="read durations", on_partial=self._infos)
        return back

    def _listable(self, files: list[str]) -> list[str]:
        """``files`` but those whose name is not valid UTF-8 (a disk from another system):
        Qt's signals and the list's database cannot carry such a name, so each is refused
        in one line instead of being listed and never analysed."""
        ok = []
        for f in files:
            try:
                f.encode("utf-8")
            except UnicodeEncodeError:
                shown = f.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                self.statusMessage.emit(f"{shown}: its name is not valid UTF-8 (a disk from another "
                                        "system?): rename it to open it", 10000)
                continue
            ok.append(f)
        return ok

    def _scanned(self, folders: list[str], found: list[str]) -> None:
        if not found:
            self.statusMessage.emit(f"No recordings found in {', '.join(folders)}", 8000)
            return
        self.statusMessage.emit(f"Found {len(found)} recording(s) in {', '.join(folders)}", 5000)
        self._add_files(found, select=found[0] if self.current_path is None else None)

    def _add_files(self, files: list[str], select: str | None = None) -> list[str]:
        files = self._listable(files)
        if select is not None and select not in files:
            select = None
        self._back(files)
        new = self.model.add(files)
        if new:
            self.files.resort()
            run_task(read_infos, new, name="read durations", on_partial=self._infos)
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

    def list_remembered(self, paths: list[str], missing: list[str]) -> None:
        """List the files open at the last close; ``missing`` ones (moved or deleted
        since) are marked so, without reading them or a dialog each."""
        new = self.model.add(paths)
        gone = set(missing)
        self.model.update_many([(p, {"status": fl.MISSING}) for p in new if p in gone])
        self.files.resort()
        present = [p for p in new if p not in gone]
        if present:
            run_task(read_infos, present, name="read durations", on_partial=self._infos)
        self._update_buttons()

    def file_relocated(self, old: str, new: str) -> None:
        """A missing file's row now points at ``new``: read it, show it if selected."""
        run_task(read_infos, [new], name="read durations", on_partial=self._infos)
        self.annotation.reread_state(new)
        if self.current_path == old:
            self.current_path = None
            self._row_changed(self.table.currentIndex(), None)
        self.statusMessage.emit(f"{os.path.basename(old)} relocated to {new}", 6000)

    def show_known_result(self, path: str) -> None:
        """A result found for the selected file (store or cache): show it as if analysed."""
        self._show_entry_result(path)
        e = self.model.entry(path)
        if e is not None and e.prediction is not None and self.plots.duration:
            self._show_timeline(e.prediction)

    def remove_files(self, paths: list[str]) -> None:
        """Take files off the list (never off the disk); their queued analyses are dropped."""
        self.ctx.cancel_analyses(paths)
        removed = self.model.remove(paths)
        if self.current_path in removed:
            self.table.selectionModel().clearCurrentIndex()
            self._row_changed(self.table.currentIndex(), None)
        self._update_buttons()
        if removed:
            self.statusMessage.emit(f"Removed {len(removed)} file(s) from the list "
                                    "(the files stay on disk)", 5000)

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
        self.files.select(path)

    def selected_path(self) -> str | None:
        return self.current_path

    def may_close_labels(self) -> bool:
        """Whether the open labels may be left: saved, saved again now, or the user says
        to leave them unsaved (their last save failed: a full disk)."""
        layer = self.annotation.layer
        if layer.sidecar is None or layer.save_error is None:
            return True
        layer._save()
        return layer.save_error is None or self.ask_leave_unsaved(self, layer.save_error)

    def _may_leave_labels(self, previous) -> bool:
        """Labels whose last save failed (a full disk) are saved again before the recording
        is left; if that fails too, the user chooses: stay (the row comes back) or leave
        them unsaved."""
        if self.may_close_labels():
            return True
        if previous.isValid():
            sm = self.table.selectionModel()
            sm.blockSignals(True)
            sm.setCurrentIndex(previous, sm.SelectionFlag.ClearAndSelect | sm.SelectionFlag.Rows)
            sm.blockSignals(False)
        return False

    @staticmethod
    def ask_leave_unsaved(parent, why: str) -> bool:
        """Whether to leave a recording whose labels cannot be saved (tests replace it)."""
        from PySide6.QtWidgets import QMessageBox

        return QMessageBox.question(
            parent, "Labels not saved", f"{why}.\n\nLeave this recording anyway? Its unsaved "
            "edits are then lost. (Stay, free some space, and edit again to save them.)",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No) == QMessageBox.StandardButton.Yes

    def _row_changed(self, current, previous) -> None:
        path = self.model.data(current, fl.PATH_ROLE) if current.isValid() else None
        if path == self.current_path:
            return
        if not self._may_leave_labels(previous):
            return
        self.current_path = path
        self.player.clear()
        self._player_path = None
        self._update_buttons()
        self.annotation.close()
        if path is None:
            self.plots.clear()
            self.transport.set_title("")
            self.result.show_message("Open a recording to see its result.")
            return
        self.transport.set_title(path)
        e = self.model.entry(path)
        if e is not None and e.status == fl.MISSING and self._back([path]):
            e = self.model.entry(path)
        if e is not None and e.status == fl.MISSING:
            self.plots.clear("This file was moved or deleted: right-click its row to relocate it")
            self.result.show_message(f"Missing file: {path}")
            return
        self._load_current()
        self._show_entry_result(path)
        if (e is not None and self.auto_analyse.isChecked()
                and (e.prediction is None or e.is_stale(self.model.current_model))
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
            load_display, path, self.display_cfg, name="load for display", owner=self,
            on_finished=self._loaded,
            on_failed=lambda msg, exc, p=path: self._load_failed(p, msg, exc))

    def _loaded(self, data) -> None:
        if data is None or data["path"] != self.current_path:
            return  # the user moved on
        audio = data["audio"]
        # The same file drawn again (the model's spectrogram changed): what is being heard,
        # and where, stays as it is.
        again = data["path"] == self._player_path and self.player.has_audio
        self.transport.show_recording_levels(data["spec"])
        self.plots.set_recording(audio.samples, audio.rate, data["spec"], data["cfg"],
                                 wave=data["wave"])
        if not again:
            self.player.set_audio(audio.samples, audio.rate)
            self._player_path = data["path"]
        sidecar = self.annotation.layer.sidecar
        if not again or sidecar is None or str(sidecar.audio) != data["path"]:
            self.annotation.open(data["path"])  # (a redraw keeps the labels, undo and selection)
        self._note_truncated(data["path"], audio)
        e = self.model.entry(data["path"])
        if e is not None and e.prediction is not None:
            self._show_timeline(e.prediction)
        else:
            self.plots.clear_timeline(self._timeline_placeholder(e))
        self._position(self.player.position() if again else 0.0)
        self._update_buttons()
        self.displayed.emit(data["path"])

    def _note_truncated(self, path: str, audio) -> None:
        """The decoded duration, and whether the header promised more (truncated)."""
        e = self.model.entry(path)
        if e is not None and audio.declared_duration_s is not None:
            e.extra.update(declared_duration_s=float(audio.declared_duration_s),
                           truncated=audio.truncated)
            self.statusMessage.emit(f"{os.path.basename(path)}: {audio.truncated}", 10000)
        self.model.update(path, duration_s=float(audio.duration_s))

    def _note_prediction_truncated(self, path: str, prediction) -> None:
        """A Prediction that says its file was truncated marks the row too (the file
        need not have been displayed)."""
        said = getattr(prediction, "truncated", None)
        e = self.model.entry(path)
        if said and e is not None and not e.extra.get("truncated"):
            e.extra["truncated"] = (said if isinstance(said, str)
                                    else "truncated: the file is shorter than its header says")
            declared = getattr(prediction, "declared_duration_s", None)
            if declared:
                e.extra["declared_duration_s"] = float(declared)

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
        self.transport.set_clock(seconds, self.player.duration)

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
        todo = self.model.not_analysed()
        if not todo:
            self.statusMessage.emit("Every recording in the list is already analysed", 5000)
            return
        if not self._batch:
            self._batch_total = self._batch_done = 0
        self._batch.update(todo)
        self._batch_total += len(todo)
        self.toolbar.show_batch(self._batch_done, self._batch_total)
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
        self.toolbar.batch_step(self._batch_done)
        if not self._batch:
            self.toolbar.batch_finished()
            analysed = self.model.count(fl.DONE)
            self.statusMessage.emit(f"Analyse all finished: {analysed} of "
                                    f"{self.model.rowCount()} recordings analysed", 8000)
            self.batchFinished.emit(self._batch_done, self._batch_total)

    def _analysis_started(self, path: str) -> None:
        self.model.update(path, status=fl.ANALYSING)

    def _analysis_finished(self, path: str, prediction) -> None:
        self._note_prediction_truncated(path, prediction)
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
            self._mark_stale()
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

    def _mark_stale(self) -> None:
        """Results of another model than the one just loaded are shown as "old model";
        Analyse all (or selecting one, with auto-analyse) analyses them again."""
        n = self.model.set_current_model(self.ctx.model_key())
        if n:
            self.statusMessage.emit(f"The model changed: {n} result(s) in the list were made by "
                                    "the previous model (marked \"old model\"); Analyse all "
                                    "analyses them again", 12000)

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
            self, "Export results", os.path.join(self.export_folder(), "lungapp-results.csv"),
            "CSV (*.csv)")
        if target and self._confirm_export_target(target):
            self.settings.setValue("review/export_folder", os.path.dirname(os.path.abspath(target)))
            self.export_csv(target)

    def export_folder(self) -> str:
        """The export dialog's starting folder: the last one exported to, unless it holds
        listed recordings; else the app's exports folder (never a data folder)."""
        from lungapp import paths

        last = str(self.settings.value("review/export_folder", "") or "")
        if last and os.path.isdir(last) and not self._holds_recordings(last):
            return last
        return str(paths.ensure(paths.exports_dir()))

    def _holds_recordings(self, folder: str) -> bool:
        """True when ``folder`` is (or is inside) the folder of a listed recording."""
        folder = os.path.abspath(folder)
        return any(folder == d or folder.startswith(d + os.sep)
                   for d in {os.path.dirname(p) for p in self.model.paths()})

    def _confirm_export_target(self, target: str) -> bool:
        if not self._holds_recordings(os.path.dirname(os.path.abspath(target))):
            return True
        return ask_export_into_data(self, target)

    def export_csv(self, target: str) -> int:
        from lungapp.gui.export import export_csv

        try:
            n = export_csv(target, self.model.entries)
        except OSError as exc:
            self.statusMessage.emit(f"{target}: cannot write ({exc.strerror or exc})", 10000)
            return 0
        self.statusMessage.emit(f"Exported {n} row(s) to {target}", 6000)
        return n

    def save_view_png(self, target: str | None = None) -> str | None:
        """Save the plots (waveform, spectrogram, timeline) as shown, at the current zoom,
        as a PNG; ``target``: no dialog (raises LungappError when it cannot be written)."""
        from lungapp.gui.png_export import save_png, save_view_dialog

        stem = os.path.splitext(os.path.basename(self.current_path))[0] if self.current_path else None
        if target is None:
            return save_view_dialog(self, self.plots, stem, self.statusMessage.emit)
        save_png(self.plots, target)
        return target

    # --- misc ---------------------------------------------------------------------------
    def _update_buttons(self) -> None:
        has_rows = self.model.rowCount() > 0
        self.toolbar.update_enabled(has_rows, self.current_path is not None,
                                    self.ctx.model_state() == "error")
        self.files.show_empty(has_rows)
        self.transport.show_player(self.player)

    def shutdown(self) -> None:
        self.player.stop()
        for t in self._scan_tasks:
            t.cancel()
        if self._load_task is not None:
            self._load_task.cancel()
        self.save_settings()
