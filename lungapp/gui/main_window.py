"""The main window: Record / Review / Patients / Train tabs, menus, status bar with the model's state."""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable

from PySide6.QtCore import QEvent, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

import lungapp
from lungapp.gui.context import AppContext
from lungapp.gui.review_view import ReviewView

MAX_RECENT = 10

_STATE_STYLE = {
    "loading": ("#6b6b6b", "Loading model…"),
    "ready": ("#00583f", ""),
    "error": ("#a03000", ""),
}


# What closing the window would stop: title, question, the button that stops it and closes.
_CLOSE_QUESTIONS = {
    "recording": ("A recording is in progress",
                  "Closing the window stops the recording. It is kept and filed under its "
                  "patient, as Stop does.", "Stop and keep the recording"),
    "training": ("Training is running",
                 "Closing the window stops the training run; the model it is training is not "
                 "saved.", "Stop training and close"),
}


def ask_close(parent: QWidget | None, busy: str) -> bool:
    """Ask whether to close the window while ``busy`` ("recording" or "training") runs:
    True to stop it and close, False (Cancel) to keep the window open. Tests replace
    :attr:`MainWindow.ask_close` to answer."""
    title, text, stop = _CLOSE_QUESTIONS[busy]
    box = QMessageBox(QMessageBox.Icon.Question, title, text, parent=parent)
    stop_btn = box.addButton(stop, QMessageBox.ButtonRole.AcceptRole)
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(cancel)
    box.exec()
    return box.clickedButton() is stop_btn


def _record_tab(context: AppContext) -> tuple[QWidget, str | None]:
    """The Record view, or an honest label saying why it is unavailable."""
    try:
        from lungapp.gui.record_view import RecordView

        return RecordView(context), None
    except Exception as exc:  # noqa: BLE001 - a broken Record tab must not stop Review
        traceback.print_exc()
        reason = f"{type(exc).__name__}: {exc}"
        return _unavailable(f"Recording is unavailable in this installation.\n\n{reason}"), reason


def _train_tab(context: AppContext) -> QWidget:
    """The Train view, or, without TensorFlow (the viewer build), what is missing and why."""
    from lungapp.training import unavailable_reason

    reason = unavailable_reason()
    if reason:
        return _unavailable("Training is unavailable in this installation: " + reason + ".\n\n"
                            "Review, Record and the bundled model work as usual.")
    from lungapp.gui.train_view import TrainView

    return TrainView(context)


def _unavailable(text: str) -> QWidget:
    w = QWidget()
    lay = QVBoxLayout(w)
    label = QLabel(text)
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    lay.addWidget(label)
    return w


def _patients_tab(context: AppContext, window):
    """The store hook (recordings and results go into the store) and the Patients view."""
    from lungapp.gui.patients_view import PatientsView
    from lungapp.gui.store_hook import StoreHook

    hook = StoreHook(context, window)
    view = PatientsView(hook)
    if hasattr(window.record, "patient_edit"):  # the Record view (not its "unavailable" label)
        from lungapp.gui.guided_exam import ExamPanel

        window.exam_panel = ExamPanel(window.record, hook)
        window.record.layout().insertWidget(1, window.exam_panel)
    view.openRecording.connect(lambda p: window.open_paths([p]))
    view.statusMessage.connect(lambda m: window.show_status(m, 8000))
    hook.message.connect(lambda m: window.show_status(m, 15000))
    return hook, view


class MainWindow(QMainWindow):
    #: emitted once, just after the window's first paint (the model loads after it)
    firstPainted = Signal()

    def __init__(self, context: AppContext | None = None):
        super().__init__()
        self._painted = False
        self.first_paint_time: float | None = None
        self.installEventFilter(self)
        #: asked before closing stops a recording or a training run (tests answer it)
        self.ask_close: Callable[[QWidget | None, str], bool] = ask_close
        self.ctx = context or AppContext(self)
        self.settings = self.ctx.settings
        self.setWindowTitle("lungapp — lung sound review")
        self.setAcceptDrops(False)  # the Review view takes drops

        self.tabs = QTabWidget()
        self.record, self.record_error = _record_tab(self.ctx)
        self.review = ReviewView(self.ctx)
        self.train = _train_tab(self.ctx)
        self.store_hook, self.patients = _patients_tab(self.ctx, self)
        from lungapp.gui.review_persist import ReviewPersistence

        self.review_persist = ReviewPersistence(self.review, self.store_hook)
        self.tabs.addTab(self.record, "Record")
        self.tabs.addTab(self.review, "Review")
        self.tabs.addTab(self.patients, "Patients")
        self.tabs.addTab(self.train, "Train")
        self.setCentralWidget(self._central())

        self.model_label = QLabel()
        self.model_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.statusBar().addPermanentWidget(self.model_label)
        self._model_state(self.ctx.model_state(), self.ctx.model_message())

        self._menus()
        self.ctx.modelStateChanged.connect(self._model_state)
        self.review.statusMessage.connect(self.show_status)
        self.review.pathOpened.connect(self.add_recent)
        if hasattr(self.train, "statusMessage"):  # not the "unavailable" label
            self.train.statusMessage.connect(self.show_status)
        self.ctx.recordingFinished.connect(lambda p: self.show_status(f"Recorded {p}", 5000))
        if hasattr(self.record, "interruptedFound"):
            self.record.interruptedFound.connect(self._interrupted_found)
        self._restore()
        self.review_persist.restore()   # after the status bar is connected: it says what is missing

    def eventFilter(self, obj, event) -> bool:
        if obj is self and not self._painted and event.type() == QEvent.Type.Paint:
            self._painted = True
            self.first_paint_time = time.perf_counter()
            self.removeEventFilter(self)
            QTimer.singleShot(0, self.firstPainted.emit)
        return super().eventFilter(obj, event)

    def _central(self) -> QWidget:
        """The tabs, under a notice shown on whichever tab the app opens with (e.g.
        interrupted recordings found, which the Record tab recovers)."""
        w = QWidget()
        lay = QVBoxLayout(w)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        self.notice = QFrame()
        self.notice.setStyleSheet("QFrame { background: #fff4d6; border: 1px solid #e0b84d; }")
        row = QHBoxLayout(self.notice)
        self.notice_text = QLabel()
        self.notice_text.setWordWrap(True)
        self.notice_show = QPushButton("Go to Record")
        self.notice_show.clicked.connect(self._go_to_record)
        later = QPushButton("Later")
        later.clicked.connect(self.notice.hide)
        row.addWidget(self.notice_text, 1)
        row.addWidget(self.notice_show)
        row.addWidget(later)
        self.notice.hide()
        lay.addWidget(self.notice)
        lay.addWidget(self.tabs, 1)
        return w

    def _go_to_record(self) -> None:
        self.tabs.setCurrentWidget(self.record)
        self.notice.hide()

    def _interrupted_found(self, text: str) -> None:
        """The Record tab shows its own banner; elsewhere the window's notice says it."""
        if self.tabs.currentWidget() is not self.record:
            self.notice_text.setText(text)
            self.notice.show()

    # --- menus ----------------------------------------------------------------------
    def _menus(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        self.act_open = QAction("&Open file…", self, shortcut=QKeySequence.StandardKey.Open)
        self.act_open.triggered.connect(self._open_file)
        self.act_open_folder = QAction("Open &folder…", self, shortcut=QKeySequence("Ctrl+Shift+O"))
        self.act_open_folder.triggered.connect(self._open_folder)
        m.addAction(self.act_open)
        m.addAction(self.act_open_folder)
        self.recent_menu = m.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        m.addSeparator()
        self.act_export = QAction("&Export results (CSV)…", self, shortcut=QKeySequence("Ctrl+E"))
        self.act_export.triggered.connect(self._export)
        m.addAction(self.act_export)
        self.act_save_png = QAction("Save &view as PNG…", self, shortcut=QKeySequence("Ctrl+Shift+S"))
        self.act_save_png.setToolTip("The Review or Record plots as shown, at the current zoom")
        self.act_save_png.triggered.connect(self.save_view_png)
        m.addAction(self.act_save_png)
        self._recordings_menu(m)
        m.addSeparator()
        self.act_quit = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        self.act_quit.triggered.connect(self.close)
        m.addAction(self.act_quit)

        a = mb.addMenu("&Analysis")
        self.act_analyse = QAction("&Analyse selected", self, shortcut=QKeySequence("Ctrl+R"))
        self.act_analyse.triggered.connect(self._analyse)
        self.act_analyse_all = QAction("Analyse a&ll", self, shortcut=QKeySequence("Ctrl+Shift+R"))
        self.act_analyse_all.triggered.connect(self._analyse_all)
        self.act_cancel = QAction("&Cancel analyse all", self)
        self.act_cancel.triggered.connect(self.review.cancel_batch)
        self.act_reload = QAction("&Reload model", self)
        self.act_reload.triggered.connect(lambda: self.ctx.load_model())
        for act in (self.act_analyse, self.act_analyse_all, self.act_cancel):
            a.addAction(act)
        a.addSeparator()
        self._models_menu(a)
        a.addAction(self.act_reload)

        h = mb.addMenu("&Help")
        self.act_about = QAction("&About lungapp", self)
        self.act_about.triggered.connect(self.show_about)
        h.addAction(self.act_about)

    def _recordings_menu(self, menu) -> None:
        self.act_recordings = QAction("Open the &recordings folder", self)
        self.act_recordings.setToolTip("Where new recordings are saved (chosen in the Record tab)")
        self.act_recordings.triggered.connect(self.open_recordings_folder)
        menu.addAction(self.act_recordings)

    def open_recordings_folder(self) -> str:
        """Show the recordings folder in the desktop's file manager; returns its path."""
        from lungapp import paths

        folder = paths.ensure(paths.recordings_dir())
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
        return str(folder)

    def _models_menu(self, menu) -> None:
        self.act_models = QAction("&Models…", self)
        self.act_models.setToolTip("Choose the active model, or restore the bundled one")
        self.act_models.triggered.connect(self.show_models)
        menu.addAction(self.act_models)

    def show_models(self):
        from lungapp.gui.models_dialog import ModelsDialog

        dlg = ModelsDialog(self.ctx, self)
        dlg.open()
        return dlg

    def _open_file(self) -> None:
        self.tabs.setCurrentWidget(self.review)
        self.review.open_file_dialog()

    def _open_folder(self) -> None:
        self.tabs.setCurrentWidget(self.review)
        self.review.open_folder_dialog()

    def _export(self) -> None:
        self.tabs.setCurrentWidget(self.review)
        self.review.export_dialog()

    def save_view_png(self) -> None:
        """The current tab's plots (Record or Review; else Review's) as a PNG."""
        tab = self.tabs.currentWidget()
        if not hasattr(tab, "save_view_png"):
            self.tabs.setCurrentWidget(self.review)
            tab = self.review
        tab.save_view_png()

    def _analyse(self) -> None:
        self.tabs.setCurrentWidget(self.review)
        self.review.analyse_selected()

    def _analyse_all(self) -> None:
        self.tabs.setCurrentWidget(self.review)
        self.review.analyse_all()

    def open_paths(self, paths: list[str]) -> None:
        """Open files/folders in Review and show it (command line, drops)."""
        self.tabs.setCurrentWidget(self.review)
        self.review.open_paths(paths)

    # --- recent ---------------------------------------------------------------------
    def recent(self) -> list[str]:
        v = self.settings.value("recent", [])
        if isinstance(v, str):
            v = [v]
        return [str(x) for x in (v or [])]

    def add_recent(self, path: str) -> None:
        items = [p for p in self.recent() if p != path]
        items.insert(0, path)
        self.settings.setValue("recent", items[:MAX_RECENT])

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        items = self.recent()
        if not items:
            act = self.recent_menu.addAction("(nothing opened yet)")
            act.setEnabled(False)
            return
        for p in items:
            act = self.recent_menu.addAction(p)
            act.setEnabled(os.path.exists(p))
            if not os.path.exists(p):
                act.setText(f"{p} (missing)")
            act.triggered.connect(lambda _=False, p=p: self.open_paths([p]))
        self.recent_menu.addSeparator()
        clear = self.recent_menu.addAction("Clear list")
        clear.triggered.connect(lambda: self.settings.setValue("recent", []))

    # --- status ---------------------------------------------------------------------
    def show_status(self, text: str, timeout_ms: int = 0) -> None:
        self.statusBar().showMessage(text, timeout_ms)

    def _model_state(self, state: str, message: str) -> None:
        color, default = _STATE_STYLE.get(state, ("#333", ""))
        text = message or default
        if state == "ready":
            text = f"● {text} — ready"
        elif state == "loading":
            text = f"◌ {text}"
        else:
            text = f"✖ {text}"
            self.show_status(message, 15000)
        self.model_label.setText(text)
        self.model_label.setToolTip(message)
        self.model_label.setStyleSheet(f"color: {color}; padding: 0 6px;")

    def show_about(self):
        from lungapp.gui.about import AboutDialog

        dlg = AboutDialog(self.ctx, self)
        dlg.open()
        return dlg

    # --- persistence ----------------------------------------------------------------
    def _restore(self) -> None:
        geo = self.settings.value("window/geometry")
        if geo is None or not self.restoreGeometry(geo):
            self.resize(1400, 820)
        self._fit_screen()
        tab = self.settings.value("window/tab", "Review")
        for i in range(self.tabs.count()):
            if self.tabs.tabText(i) == tab:
                self.tabs.setCurrentIndex(i)

    def _fit_screen(self) -> None:
        """No bigger than the screen's free area (a 1280x720 screen, or 1920x1080 at
        150 %), so no control sits off-screen."""
        screen = self.screen()
        if screen is None:
            return
        avail = screen.availableGeometry()
        w, h = min(self.width(), avail.width()), min(self.height(), avail.height())
        if (w, h) != (self.width(), self.height()):
            self.resize(w, h)
            self.move(avail.topLeft())

    def busy(self) -> list[str]:
        """What closing the window would stop: "recording" (one being made or started)
        and "training" (a run in progress)."""
        out = []
        if getattr(self.record, "state", "idle") in ("starting", "recording"):
            out.append("recording")
        if getattr(self.train, "running", False):
            out.append("training")
        return out

    @staticmethod
    def _shutdown(child) -> None:
        stop = getattr(child, "shutdown", None)
        if callable(stop):
            try:
                stop()
            except Exception:  # noqa: BLE001 - closing must always succeed
                traceback.print_exc()

    def closeEvent(self, event) -> None:
        # Asked first, one question per running thing; Cancel keeps the window open.
        if not all(self.ask_close(self, what) for what in self.busy()):
            event.ignore()
            return
        # Typed patient details or visit notes not saved: save, discard or stay.
        confirm = getattr(self.patients, "confirm_close", None)
        if callable(confirm) and not confirm():
            event.ignore()
            return
        # Labels whose save failed (a full disk): saved again, else stay or close without them.
        if not self.review.may_close_labels():
            event.ignore()
            return
        # The recording first: stopping it files it (recordingFinished: the store, the
        # guided exam's site, Review's list) while the store and that list are still open.
        self._shutdown(self.record)
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/tab", self.tabs.tabText(self.tabs.currentIndex()))
        self.review_persist.save()
        self.review.shutdown()
        self._shutdown(self.train)
        self.ctx.shutdown()
        self.store_hook.close()
        self.review_persist.close()
        super().closeEvent(event)

    @property
    def version(self) -> str:
        return lungapp.__version__
