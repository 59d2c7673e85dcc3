"""The Review view's list of recordings: the table over a
:class:`~lungapp.gui.file_list.FileListModel`, its context menu (remove, clear, open the
folder), and what an empty list shows instead (a hint, and a button to open the bundled
example recordings)."""

from __future__ import annotations

import os

from PySide6.QtCore import QEvent, QItemSelectionModel, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from lungapp.gui import file_list as fl


class FilePanel(QWidget):
    """``spacePressed`` replaces the table's own use of Space (select), so the view can
    make it play/pause everywhere."""

    spacePressed = Signal()
    removeRequested = Signal(list)   # paths to take off the list (files stay on disk)
    clearRequested = Signal()
    relocateRequested = Signal(str)  # a missing file's path: ask where it is now

    def __init__(self, model, examples=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self.examples = examples     # the example recordings' folder, or None
        self.setMinimumWidth(260)  # narrow enough for 1280 px with the plots and result beside it
        self.table = QTableView()
        self._set_up_table()
        self.empty_hint = QLabel("Drop recordings or a folder here,\nor use Open file / Open folder.")
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_hint.setStyleSheet("color: #777;")
        self.examples_btn = QPushButton("Open the example recordings")
        self.examples_btn.setToolTip("Four generated recordings: normal, wheeze, crackles, both. "
                                     "The bundled model misses the generated crackles.")
        self.examples_btn.setVisible(examples is not None)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.empty_hint)
        lay.addWidget(self.examples_btn)
        self.table.installEventFilter(self)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(lambda pos: self.context_menu().popup(
            self.table.viewport().mapToGlobal(pos)))

    def _set_up_table(self) -> None:
        t = self.table
        t.setModel(self.model)
        t.setSortingEnabled(True)
        t.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        t.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        t.verticalHeader().setVisible(False)
        t.verticalHeader().setDefaultSectionSize(22)
        t.setAlternatingRowColors(True)
        t.setWordWrap(False)
        hh = t.horizontalHeader()
        # Fixed, user-adjustable widths: ResizeToContents would measure every row on
        # every update (seconds of GUI stall with thousands of files).
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        fm = t.fontMetrics()
        hh.resizeSection(fl.FILE_COL, 150)
        hh.resizeSection(fl.DURATION_COL, fm.horizontalAdvance("Duration") + 24)
        hh.resizeSection(fl.STATUS_COL, fm.horizontalAdvance(fl.STALE) + 16)
        hh.resizeSection(fl.RESULT_COL, fm.horizontalAdvance("CAS & DAS · abnormal 100 %") + 12)
        # The answer beside the name (the model's column order stays as COLUMNS): at
        # 1280 px the list is about 380 px wide, and after Duration and Status the
        # result was cut to "Normal · ab...".
        hh.moveSection(hh.visualIndex(fl.RESULT_COL), 1)
        t.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        hh.setStretchLastSection(True)
        hh.setMinimumSectionSize(40)

    def eventFilter(self, obj, event) -> bool:
        if (obj is self.table and event.type() == QEvent.Type.ShortcutOverride
                and not event.modifiers() and event.key() in (Qt.Key.Key_Space, Qt.Key.Key_Delete)):
            # The list's own keys, not the Review view's shortcuts: Delete there deletes
            # the selected annotation region.
            event.accept()
            return True
        if obj is self.table and event.type() == QEvent.Type.KeyPress and not event.modifiers():
            if event.key() == Qt.Key.Key_Space:
                self.spacePressed.emit()
                return True
            if event.key() == Qt.Key.Key_Delete and self.selected_paths():
                self.removeRequested.emit(self.selected_paths())
                return True
        return super().eventFilter(obj, event)

    def selected_paths(self) -> list[str]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.model.entries[r].path for r in rows if r < len(self.model.entries)]

    def context_menu(self) -> QMenu:
        """Remove the selected files, relocate a missing one, clear the list, open the
        file's folder."""
        menu = QMenu(self.table)
        # Gone once closed: a kept menu would keep its Delete shortcut for these paths.
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        paths = self.selected_paths()
        remove = menu.addAction(f"Remove {len(paths)} file(s) from the list" if len(paths) > 1
                                else "Remove from the list", lambda: self.removeRequested.emit(paths))
        remove.setShortcut(Qt.Key.Key_Delete)
        remove.setEnabled(bool(paths))
        missing = [p for p in paths if (e := self.model.entry(p)) is not None and e.status == fl.MISSING]
        relocate = menu.addAction("Relocate missing file…", lambda: self.relocateRequested.emit(missing[0]))
        relocate.setEnabled(len(missing) == 1)
        clear = menu.addAction("Clear the list", self.clearRequested.emit)
        clear.setEnabled(self.model.rowCount() > 0)
        menu.addSeparator()
        folder = menu.addAction("Open the containing folder", lambda: QDesktopServices.openUrl(
            QUrl.fromLocalFile(os.path.dirname(paths[0]))))
        folder.setEnabled(len(paths) == 1)
        return menu

    def show_empty(self, has_rows: bool) -> None:
        """The hint and the examples button only while the list is empty."""
        self.empty_hint.setVisible(not has_rows)
        self.examples_btn.setVisible(not has_rows and self.examples is not None)

    def resort(self) -> None:
        """Sort the model again as the header shows (after rows were added)."""
        if self.table.isSortingEnabled():
            hh = self.table.horizontalHeader()
            self.model.sort(hh.sortIndicatorSection(), hh.sortIndicatorOrder())

    def select(self, path: str) -> None:
        """Select ``path``'s row and scroll to it (nothing when it is not listed)."""
        row = self.model.row_of(path)
        if row < 0:
            return
        idx = self.model.index(row, 0)
        self.table.selectionModel().setCurrentIndex(
            idx, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
        self.table.scrollTo(idx)
