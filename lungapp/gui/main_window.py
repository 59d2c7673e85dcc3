"""The main window: Record / Review tabs, menus, status bar with the model's state."""

from __future__ import annotations

import os
import time
import traceback

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QTabWidget, QVBoxLayout, QWidget

import lungapp
from lungapp.gui.context import AppContext
from lungapp.gui.review_view import ReviewView

MAX_RECENT = 10

_STATE_STYLE = {
    "loading": ("#6b6b6b", "Loading model…"),
    "ready": ("#00583f", ""),
    "error": ("#a03000", ""),
}


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


class MainWindow(QMainWindow):
    #: emitted once, just after the window's first paint (the model loads after it)
    firstPainted = Signal()

    def __init__(self, context: AppContext | None = None):
        super().__init__()
        self._painted = False
        self.first_paint_time: float | None = None
        self.installEventFilter(self)
        self.ctx = context or AppContext(self)
        self.settings = self.ctx.settings
        self.setWindowTitle("lungapp — lung sound review")
        self.setAcceptDrops(False)  # the Review view takes drops

        self.tabs = QTabWidget()
        self.record, self.record_error = _record_tab(self.ctx)
        self.review = ReviewView(self.ctx)
        self.train = _train_tab(self.ctx)
        self.tabs.addTab(self.record, "Record")
        self.tabs.addTab(self.review, "Review")
        self.tabs.addTab(self.train, "Train")
        self.setCentralWidget(self.tabs)

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
        self._restore()

    def eventFilter(self, obj, event) -> bool:
        if obj is self and not self._painted and event.type() == QEvent.Type.Paint:
            self._painted = True
            self.first_paint_time = time.perf_counter()
            self.removeEventFilter(self)
            QTimer.singleShot(0, self.firstPainted.emit)
        return super().eventFilter(obj, event)

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
        a.addAction(self.act_reload)

        h = mb.addMenu("&Help")
        self.act_about = QAction("&About lungapp", self)
        self.act_about.triggered.connect(self.show_about)
        h.addAction(self.act_about)

    def _open_file(self) -> None:
        self.tabs.setCurrentWidget(self.review)
        self.review.open_file_dialog()

    def _open_folder(self) -> None:
        self.tabs.setCurrentWidget(self.review)
        self.review.open_folder_dialog()

    def _export(self) -> None:
        self.tabs.setCurrentWidget(self.review)
        self.review.export_dialog()

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
        tab = self.settings.value("window/tab", "Review")
        for i in range(self.tabs.count()):
            if self.tabs.tabText(i) == tab:
                self.tabs.setCurrentIndex(i)

    def closeEvent(self, event) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/tab", self.tabs.tabText(self.tabs.currentIndex()))
        self.review.shutdown()
        for child in (self.record, self.train):
            stop = getattr(child, "shutdown", None)
            if callable(stop):
                try:
                    stop()
                except Exception:  # noqa: BLE001 - closing must always succeed
                    traceback.print_exc()
        self.ctx.shutdown()
        super().closeEvent(event)

    @property
    def version(self) -> str:
        return lungapp.__version__
