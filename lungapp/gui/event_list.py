"""The labels panel beside the Review plots: the annotator, the record label (with the
regions' suggestion when they disagree), the editable event list, fine adjustment of the
selected region, and the model's suggestions (Suggest / Accept / Reject).

Pure view over an :class:`~lungapp.gui.annotation_layer.AnnotationLayer`: every change it
makes is a command on the layer's undo stack.
"""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from lungapp.annotation.folder import LABEL_STATES
from lungapp.data.labels import EVENT_TYPES, RECORD_LABELS
from lungapp.gui.annotation_layer import ANNOTATOR_KEY, AnnotationLayer

UNLABELLED = "— not labelled —"
EVENT_COLUMNS = ("Start", "End", "Type", "Note", "By")
FILTERS = ("all", *LABEL_STATES)
RESULT_FILTERS = ("any result", "normal", "abnormal", "poor quality", "not analysed")


class EventTableModel(QAbstractTableModel):
    """The regions as table rows, in time order. A model, not a QTableWidget's items: a long
    recording's hundreds of regions cost nothing until their rows are on screen, so an edit
    does not rebuild a cell per region and column."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.regions: list = []

    def set_regions(self, regions: list) -> None:
        self.beginResetModel()
        self.regions = sorted(regions, key=lambda r: (r.start_s, r.end_s))
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self.regions)

    def columnCount(self, parent: QModelIndex | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(EVENT_COLUMNS)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if role != Qt.ItemDataRole.DisplayRole or not index.isValid():
            return None
        r = self.regions[index.row()]
        col = index.column()
        if col == 0:
            return f"{r.start_s:.3f}"
        if col == 1:
            return f"{r.end_s:.3f}"
        if col == 2:
            return r.type
        if col == 3:
            return r.note
        return f"{r.author} (suggested{'' if r.accepted else ', pending'})" if r.suggested else r.author

    def headerData(self, section: int, orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return EVENT_COLUMNS[section]
        return None


class EventPanel(QFrame):
    """``playRequested(start, end)`` when an event is clicked; ``suggestRequested()`` for
    the Suggest button (the view knows the prediction)."""

    playRequested = Signal(float, float)
    suggestRequested = Signal()

    def __init__(self, layer: AnnotationLayer, parent: QWidget | None = None):
        super().__init__(parent)
        self.layer = layer
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self._refreshing = False
        lay = QVBoxLayout(self)
        title = QLabel("Labels")
        title.setStyleSheet("font-weight: bold; font-size: 13pt;")
        lay.addWidget(title)
        lay.addLayout(self._build_folder_row())
        lay.addLayout(self._build_header())
        lay.addWidget(self._build_table(), 1)
        lay.addWidget(self._build_editor())
        lay.addLayout(self._build_buttons())
        self.state = QLabel("")
        self.state.setWordWrap(True)
        lay.addWidget(self.state)
        layer.changed.connect(self.refresh)
        layer.selectionChanged.connect(lambda _id: self._selection_changed())
        self.refresh()

    # --- construction --------------------------------------------------------------------
    def _build_folder_row(self) -> QHBoxLayout:
        """Progress through the list and the filter by label state."""
        row = QHBoxLayout()
        self.progress = QLabel("")
        self.progress.setToolTip("PageDown / PageUp: next / previous recording; "
                                 "Shift+PageDown: next unlabelled")
        self.show_filter = QComboBox()
        self.show_filter.addItems(FILTERS)
        self.show_filter.setToolTip("Show only the recordings in this label state")
        self.more = QToolButton()
        self.more.setText("Labels ▾")
        self.more.setToolTip("Export, import, agreement, add to a training folder")
        self.more.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.result_filter = QComboBox()
        self.result_filter.addItems(RESULT_FILTERS)
        self.result_filter.setToolTip("Show only the recordings with this result")
        row.addWidget(self.progress, 1)
        row.addWidget(QLabel("Show"))
        row.addWidget(self.show_filter)
        row.addWidget(self.result_filter)
        row.addWidget(self.more)
        return row

    def _build_header(self) -> QFormLayout:
        form = QFormLayout()
        self.annotator = QLineEdit(str(self.layer.settings.value(ANNOTATOR_KEY, "") or ""))
        self.annotator.setPlaceholderText(f"your name (saved; now: {self.layer.annotator()})")
        self.annotator.editingFinished.connect(
            lambda: self.layer.set_annotator(self.annotator.text().strip()))
        self.record_label = QComboBox()
        self.record_label.addItems((UNLABELLED, *RECORD_LABELS))
        self.record_label.setToolTip("The recording's label (Ctrl+1..5; Ctrl+0: not labelled)")
        self.record_label.currentIndexChanged.connect(self._label_chosen)
        self.suggestion = QPushButton("")
        self.suggestion.setFlat(True)
        self.suggestion.setToolTip("What the regions imply; click to use it")
        self.suggestion.clicked.connect(self._use_suggestion)
        form.addRow("Annotator", self.annotator)
        form.addRow("Recording", self.record_label)
        form.addRow("", self.suggestion)
        return form

    def _build_table(self) -> QTableView:
        self.events = EventTableModel(self)
        self.table = QTableView()
        self.table.setModel(self.events)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.clicked.connect(lambda index: self._row_clicked(index.row()))
        return self.table

    def _build_editor(self) -> QWidget:
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        self.start = QDoubleSpinBox()
        self.end = QDoubleSpinBox()
        for sb in (self.start, self.end):
            sb.setDecimals(3)
            sb.setSingleStep(0.01)
            sb.setRange(0, 1e6)
            sb.setSuffix(" s")
            sb.editingFinished.connect(self._times_edited)
        self.type = QComboBox()
        self.type.addItems(EVENT_TYPES)
        self.type.setToolTip(f"Event type (keys: {type_shortcut_text()})")
        self.type.activated.connect(lambda i: self.layer.set_type(EVENT_TYPES[i]))
        self.note = QLineEdit()
        self.note.setPlaceholderText("note")
        self.note.editingFinished.connect(self._note_edited)
        for w in (self.start, self.end, self.type, self.note):
            row.addWidget(w)
        return box

    def _build_buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.suggest_btn = QPushButton("Suggest regions")
        self.suggest_btn.setToolTip("The model's windows above threshold become draft regions")
        self.suggest_btn.clicked.connect(self.suggestRequested)
        self.accept_btn = QPushButton("Accept")
        self.accept_btn.setToolTip("Accept the selected suggestion (A)")
        self.accept_btn.clicked.connect(lambda: self.layer.accept(self.layer.selected))
        self.delete_btn = QPushButton("Delete")
        self.delete_btn.setToolTip("Delete (or reject) the selected region (Delete)")
        self.delete_btn.clicked.connect(self.layer.delete_selected)
        self.undo_btn = QPushButton("Undo")
        self.undo_btn.clicked.connect(self.layer.undo)
        self.redo_btn = QPushButton("Redo")
        self.redo_btn.clicked.connect(self.layer.redo)
        for b in (self.suggest_btn, self.accept_btn, self.delete_btn, self.undo_btn, self.redo_btn):
            row.addWidget(b)
        return row

    # --- from the document ---------------------------------------------------------------
    def refresh(self) -> None:
        self._refreshing = True
        try:
            doc = self.layer.doc
            for w in self.findChildren(QWidget):  # the folder row stays usable without a file
                w.setEnabled(doc is not None or w in (self.progress, self.show_filter, self.result_filter, self.more))
            self._fill_header(doc)
            self._fill_table(doc)
            self._fill_editor(doc)
        finally:
            self._refreshing = False

    def _fill_header(self, doc) -> None:
        label = doc.record_label if doc is not None else None
        if label is not None and self.record_label.findText(label) < 0:
            self.record_label.addItem(label)  # e.g. a binary dataset's "Abnormal": shown, kept
        self.record_label.setCurrentIndex(0 if label is None else self.record_label.findText(label))
        hint = doc.suggested_label() if doc is not None else None
        show = hint is not None and hint != label
        self.suggestion.setText(f"Regions suggest: {hint}" if show else "")
        self.suggestion.setVisible(show)
        stack = self.layer.stack
        self.undo_btn.setEnabled(bool(stack and stack.can_undo()))
        self.redo_btn.setEnabled(bool(stack and stack.can_redo()))
        if doc is None:
            self.state.setText("Open a recording to label it.")
        else:
            who = f" by {doc.record_author}" if doc.record_author else ""
            self.state.setText(f"{len(doc.regions)} regions · {doc.state()}{who} · "
                               f"saved to {self.layer.sidecar.path.name}")

    def _fill_table(self, doc) -> None:
        self.events.set_regions(list(doc.regions) if doc else [])
        self.rows = [r.id for r in self.events.regions]
        self._select_row()

    def _select_row(self) -> None:
        if self.layer.selected in self.rows:
            self.table.selectRow(self.rows.index(self.layer.selected))
        else:
            self.table.clearSelection()

    def _selection_changed(self) -> None:
        """Only the selection moved (the document is as the table shows it): refilling the
        table's rows would cost a long recording's hundreds of regions again."""
        self._refreshing = True
        try:
            self._select_row()
            self._fill_editor(self.layer.doc)
        finally:
            self._refreshing = False

    def _fill_editor(self, doc) -> None:
        r = doc.region(self.layer.selected) if doc is not None and self.layer.selected != -1 else None
        for w in (self.start, self.end, self.type, self.note, self.delete_btn):
            w.setEnabled(r is not None)
        self.accept_btn.setEnabled(r is not None and r.pending)
        if r is None:
            self.type.setCurrentText(self.layer.default_type)
            return
        self.start.setValue(r.start_s)
        self.end.setValue(r.end_s)
        self.type.setCurrentText(r.type)
        self.note.setText(r.note)

    # --- to the document -----------------------------------------------------------------
    def _label_chosen(self, index: int) -> None:
        if not self._refreshing:
            self.layer.set_record_label(None if index == 0 else self.record_label.itemText(index))

    def _use_suggestion(self) -> None:
        if self.layer.doc is not None:
            self.layer.set_record_label(self.layer.doc.suggested_label())

    def _row_clicked(self, row: int) -> None:
        region_id = self.rows[row]
        self.layer.select(region_id)
        r = self.layer.doc.region(region_id)
        self.playRequested.emit(r.start_s, r.end_s)

    def _times_edited(self) -> None:
        if not self._refreshing and self.layer.selected != -1:
            self.layer.change(self.layer.selected, start_s=round(self.start.value(), 4),
                              end_s=round(self.end.value(), 4))

    def _note_edited(self) -> None:
        if not self._refreshing and self.layer.selected != -1:
            self.layer.change(self.layer.selected, note=self.note.text())


def type_shortcut_text() -> str:
    """"1 Normal · 2 Wheeze ...": the keys of the event types, for tool tips."""
    return " · ".join(f"{i} {t}" for i, t in enumerate(EVENT_TYPES, start=1))
