"""The Review view's list of recordings: the table over a
:class:`~lungapp.gui.file_list.FileListModel`, and what an empty list shows instead
(a hint, and a button to open the bundled example recordings)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QItemSelectionModel, Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLabel, QPushButton, QTableView, QVBoxLayout, QWidget


class FilePanel(QWidget):
    """``spacePressed`` replaces the table's own use of Space (select), so the view can
    make it play/pause everywhere."""

    spacePressed = Signal()

    def __init__(self, model, examples=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self.examples = examples     # the example recordings' folder, or None
        self.setMinimumWidth(400)
        self.table = QTableView()
        self._set_up_table()
        self.empty_hint = QLabel("Drop recordings or a folder here,\nor use Open file / Open folder.")
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_hint.setStyleSheet("color: #777;")
        self.examples_btn = QPushButton("Open the example recordings")
        self.examples_btn.setToolTip("Four generated recordings: normal, wheeze, crackles, both")
        self.examples_btn.setVisible(examples is not None)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.empty_hint)
        lay.addWidget(self.examples_btn)
        self.table.installEventFilter(self)

    def _set_up_table(self) -> None:
        t = self.table
        t.setModel(self.model)
        t.setSortingEnabled(True)
        t.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
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
        hh.resizeSection(0, 175)
        hh.resizeSection(1, fm.horizontalAdvance("Duration") + 24)
        hh.resizeSection(2, fm.horizontalAdvance("analysing") + 16)
        hh.setStretchLastSection(True)
        hh.setMinimumSectionSize(40)

    def eventFilter(self, obj, event) -> bool:
        if (obj is self.table and event.type() == QEvent.Type.KeyPress
                and event.key() == Qt.Key.Key_Space and not event.modifiers()):
            self.spacePressed.emit()
            return True
        return super().eventFilter(obj, event)

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
