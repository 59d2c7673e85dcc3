"""The labels panel beside the Review plots: the annotator, the record label (with the
regions' suggestion when they disagree), the editable event list, fine adjustment of the
selected region, and the model's suggestions (Suggest / Accept / Reject).

Pure view over an :class:`~lungapp.gui.annotation_layer.AnnotationLayer`: every change it
makes is a command on the layer's undo stack.

A value typed in the note or the Start/End boxes is committed to the region it was typed for
on Enter, on leaving the field, and before any key the field does not take itself acts on the
view (PageDown to the next recording, Ctrl+2 for the record label, ...). Typed times are kept
inside the recording and at least the layer's minimum region length apart, as a region drawn
by dragging is; the status bar says when a typed time was changed.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QAbstractTableModel, QEvent, QModelIndex, Qt, Signal
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
from lungapp.gui.annotation_layer import ANNOTATOR_KEY, MIN_REGION_S, AnnotationLayer

UNLABELLED = "— not labelled —"
EVENT_COLUMNS = ("Start", "End", "Type", "Note", "By")
FILTERS = ("all", *LABEL_STATES)
RESULT_FILTERS = ("any result", "normal", "abnormal", "poor quality", "not analysed")
# Pressed alone they act on nothing (and Shift comes before every capital typed in a note).
_MODIFIER_KEYS = frozenset({Qt.Key.Key_Shift, Qt.Key.Key_Control, Qt.Key.Key_Alt, Qt.Key.Key_AltGr,
                            Qt.Key.Key_Meta, Qt.Key.Key_CapsLock, Qt.Key.Key_NumLock})


def fit_times(start_s: float, end_s: float, edited: str, duration: float | None,
              min_len: float = MIN_REGION_S) -> tuple[float, float]:
    """A region's times after its ``edited`` edge ("start" or "end") was typed: that edge kept
    inside the recording (0 to ``duration``; None or 0: not known, no upper bound) and at least
    ``min_len`` from the other edge: the layer's rule for a region drawn by dragging (clamped
    to the recording, none shorter than MIN_REGION_S). The other edge moves only when the typed
    one cannot give the region ``min_len`` (a region at an end of the recording)."""
    limit = duration or math.inf
    if edited == "start":
        start_s = min(max(start_s, 0.0), max(limit - min_len, 0.0))
        if end_s - start_s < min_len:
            start_s = max(0.0, end_s - min_len)
            end_s = max(end_s, min(start_s + min_len, limit))
    else:
        end_s = min(max(end_s, min_len), limit)
        if end_s - start_s < min_len:
            end_s = min(start_s + min_len, limit)
            start_s = min(start_s, max(0.0, end_s - min_len))
    return start_s, end_s


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
        self._editing = -1  # the id of the region the editor shows (-1: none)
        self._shown_times = (0.0, 0.0)  # the Start/End boxes' values as filled from it
        self._parked: QWidget | None = None  # had the focus when it was disabled (see _enable)
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

    def _annotator_edited(self) -> None:
        """The name typed becomes the annotator's; an emptied field falls back to the
        default name, which the placeholder then names (not the name of the start-up)."""
        self.layer.set_annotator(self.annotator.text().strip())
        self.annotator.setPlaceholderText(f"your name (saved; now: {self.layer.annotator()})")

    def _build_header(self) -> QFormLayout:
        form = QFormLayout()
        self.annotator = QLineEdit(str(self.layer.settings.value(ANNOTATOR_KEY, "") or ""))
        self.annotator.setPlaceholderText(f"your name (saved; now: {self.layer.annotator()})")
        self.annotator.editingFinished.connect(self._annotator_edited)
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
            sb.setSuffix(" s")  # the range is wide: a typed time is fitted, and said so
        self.start.editingFinished.connect(lambda: self._times_edited("start"))
        self.end.editingFinished.connect(lambda: self._times_edited("end"))
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

    # --- focus ---------------------------------------------------------------------------
    def _enable(self, widget: QWidget, on: bool) -> None:
        """Enable or disable ``widget``. Disabling the widget that has the focus (or holds it)
        would leave nothing focused (Qt gives the focus to the next child, disabled in its
        turn), and the view's keys (PageDown, Ctrl+1..5, 1-7, Delete) would do nothing until a
        click: the focus is parked on the panel instead, still inside the view, and given
        back by :meth:`_restore_focus` once the widget is enabled again."""
        if not on and widget.isEnabled():
            focus = self.window().focusWidget()
            if focus is not None and (focus is widget or widget.isAncestorOf(focus)):
                self._parked = focus
                self.setFocus(Qt.FocusReason.OtherFocusReason)
        widget.setEnabled(on)

    def _restore_focus(self) -> None:
        parked = self._parked
        if parked is None:
            return
        if self.window().focusWidget() is not self:  # the user moved the focus meanwhile
            self._parked = None
        elif parked.isEnabled() and parked.isVisibleTo(self.window()):
            self._parked = None
            parked.setFocus(Qt.FocusReason.OtherFocusReason)

    def event(self, event: QEvent) -> bool:
        """A key the focused field did not take (its ShortcutOverride reaches the panel) is
        about to act on the view, say PageDown to the next recording or Ctrl+2 for the record
        label: what was typed in the note or a time box is committed first, to the region it
        was typed for, instead of being dropped when the view changes under it."""
        if event.type() == QEvent.Type.ShortcutOverride and event.key() not in _MODIFIER_KEYS:
            focus = self.window().focusWidget()
            if focus is not None and any(focus is w or w.isAncestorOf(focus)
                                         for w in (self.note, self.start, self.end)):
                self.commit_pending()
        return super().event(event)

    # --- from the document ---------------------------------------------------------------
    def refresh(self) -> None:
        self._refreshing = True
        try:
            doc = self.layer.doc
            folder_row = (self.progress, self.show_filter, self.result_filter, self.more)
            for w in self.findChildren(QWidget):  # the folder row stays usable without a file
                self._enable(w, doc is not None or w in folder_row)
            self._fill_header(doc)
            self._fill_table(doc)
            self._fill_editor(doc)
        finally:
            self._refreshing = False
        self._restore_focus()

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
        self._enable(self.undo_btn, bool(stack and stack.can_undo()))
        self._enable(self.redo_btn, bool(stack and stack.can_redo()))
        if doc is None:
            self.state.setText("Open a recording to label it.")
        else:
            who = f" by {doc.record_author}" if doc.record_author else ""
            name = self.layer.sidecar.path.name
            where = (f"NOT SAVED: {self.layer.save_error}" if self.layer.save_error
                     else f"read-only ({name})" if self.layer.read_only_reason() else f"saved to {name}")
            self.state.setText(f"{len(doc.regions)} regions · {doc.state()}{who} · {where}")
            self.state.setStyleSheet("color: #b00020; font-weight: bold;" if self.layer.save_error else "")
            self.state.setToolTip(self.layer.save_error or self.layer.read_only_reason() or "")

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
        self._restore_focus()

    def _fill_editor(self, doc) -> None:
        r = doc.region(self.layer.selected) if doc is not None and self.layer.selected != -1 else None
        self._editing = -1 if r is None else r.id
        for w in (self.start, self.end, self.type, self.note, self.delete_btn):
            self._enable(w, r is not None)
        self._enable(self.accept_btn, r is not None and r.pending)
        if r is None:
            self.type.setCurrentText(self.layer.default_type)
            return
        self.start.setValue(r.start_s)
        self.end.setValue(r.end_s)
        self._shown_times = (self.start.value(), self.end.value())  # as rounded to the boxes' decimals
        self.type.setCurrentText(r.type)
        self.note.setText(r.note)

    def _refill_editor(self) -> None:
        self._refreshing = True
        try:
            self._fill_editor(self.layer.doc)
        finally:
            self._refreshing = False

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

    def _editing_region(self):
        """The region the editor shows, if it is still in the open document."""
        doc = self.layer.doc
        if doc is None or self._editing == -1:
            return None
        try:
            return doc.region(self._editing)
        except KeyError:
            return None

    def commit_pending(self) -> None:
        """Commit a note or time typed and not committed yet (no Enter, focus still in the
        field) to the region it was typed for."""
        if self._refreshing:
            return
        self._commit_note()
        for which in ("start", "end"):
            self._commit_time(which)

    def _times_edited(self, which: str) -> None:
        if not self._refreshing:
            self._commit_time(which)

    def _note_edited(self) -> None:
        if not self._refreshing:
            self._commit_note()

    def _commit_note(self) -> None:
        r = self._editing_region()
        if r is not None and self.note.text() != r.note:
            self.layer.change(r.id, note=self.note.text())

    def _commit_time(self, which: str) -> None:
        """The typed ``which`` time ("start" or "end"), fitted into the recording with the
        layer's minimum region length (see :func:`fit_times`); the status bar says when the
        typed value was changed. The boxes then show what the region holds."""
        r = self._editing_region()
        box, shown = (self.start, self._shown_times[0]) if which == "start" else (self.end, self._shown_times[1])
        if r is None or box.value() == shown:  # nothing typed (leaving the box commits nothing)
            return
        typed = box.value()
        duration = self.layer.plots.duration
        start, end = fit_times(typed if which == "start" else r.start_s,
                               typed if which == "end" else r.end_s, which, duration)
        start, end = round(start, 4), round(end, 4)
        if round(start if which == "start" else end, 3) != round(typed, 3):
            why = (f"past the end of the recording ({duration:.3f} s)" if duration and typed > duration
                   else f"not at least {MIN_REGION_S * 1000:.0f} ms "
                        f"{'before the end' if which == 'start' else 'after the start'}")
            self.layer.message.emit(f"{which.capitalize()} {typed:.3f} s is {why}: the region is now "
                                    f"{start:.3f}-{end:.3f} s", 6000)
        self.layer.change(r.id, start_s=start if start != round(r.start_s, 4) else r.start_s,
                          end_s=end if end != round(r.end_s, 4) else r.end_s)
        self._refill_editor()  # the boxes show what the region holds, changed or not


def type_shortcut_text() -> str:
    """"1 Normal · 2 Wheeze ...": the keys of the event types, for tool tips."""
    return " · ".join(f"{i} {t}" for i, t in enumerate(EVENT_TYPES, start=1))
