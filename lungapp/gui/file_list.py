"""The Review view's list of recordings: a Qt table model (file, duration, status,
result) sorted on raw values (seconds, probabilities), not strings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from lungapp.gui import theme

COLUMNS = ("File", "Duration", "Status", "Result", "Labels")
LABELS_COLUMN = 4
PATH_ROLE = Qt.ItemDataRole.UserRole + 2

# status values
NEW, QUEUED, ANALYSING, DONE, ERROR, CANCELLED = ("", "queued", "analysing", "done",
                                                  "error", "cancelled")


@dataclass
class Entry:
    path: str
    duration_s: float | None = None
    status: str = NEW
    prediction: object | None = None
    error: str = ""
    info: object | None = None
    extra: dict = field(default_factory=dict)
    labels: tuple[str, str] | None = None   # (label state, who): see lungapp.annotation.folder

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    def result_text(self) -> str:
        if self.status == ERROR:
            return self.error
        p = self.prediction
        if p is None:
            return ""
        ab = p.abnormal_probability
        return f"{p.label}" + (f" ({ab * 100:.0f} %)" if ab is not None and p.decision != "poor quality" else "")

    def labels_text(self) -> str:
        """The label state and who labelled it, e.g. ``reviewed (anna)``."""
        if self.labels is None:
            return ""
        state, who = self.labels
        return f"{state} ({who})" if who and state != "unreadable" else state


def fmt_duration(s: float | None) -> str:
    if s is None:
        return ""
    m, sec = divmod(s, 60)
    return f"{int(m)}:{sec:04.1f}" if m else f"{sec:.1f} s"


class FileListModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.entries: list[Entry] = []
        self._index: dict[str, int] = {}

    # --- Qt model API ---------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()):  # noqa: B008 - Qt's own signature
        return 0 if parent.isValid() else len(self.entries)

    def columnCount(self, parent=QModelIndex()):  # noqa: B008 - Qt's own signature
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        e = self.entries[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (e.name, fmt_duration(e.duration_s), e.status, e.result_text(), e.labels_text())[col]
        if role == PATH_ROLE:
            return e.path
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == 0:
                return e.path
            if col == LABELS_COLUMN and e.labels is not None:
                return e.labels[1] if e.labels[0] == "unreadable" else e.labels_text()
            if e.status == ERROR:
                return e.error
            if col == 3 and e.prediction is not None:
                probs = ", ".join(f"{k} {v * 100:.0f} %" for k, v in e.prediction.probabilities.items())
                return probs
        if role == Qt.ItemDataRole.ForegroundRole and e.status == ERROR and col in (2, 3):
            return QBrush(QColor("#a03000"))
        if role == Qt.ItemDataRole.BackgroundRole and col == 3 and e.prediction is not None:
            bg = theme.DECISION_STYLE.get(e.prediction.decision, (None,))[0]
            if bg:
                return QBrush(QColor(bg))
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 1:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    # --- entries --------------------------------------------------------------------
    def add(self, paths: list[str]) -> list[str]:
        """Append files not already listed; returns the new ones."""
        new = []
        seen = set(self._index)
        for p in paths:
            p = os.path.abspath(os.fspath(p))
            if p not in seen:
                seen.add(p)
                new.append(p)
        if not new:
            return []
        first = len(self.entries)
        self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
        for p in new:
            self._index[p] = len(self.entries)
            self.entries.append(Entry(p))
        self.endInsertRows()
        return new

    def clear(self) -> None:
        self.beginResetModel()
        self.entries, self._index = [], {}
        self.endResetModel()

    def row_of(self, path: str) -> int:
        return self._index.get(os.path.abspath(path), -1)

    def entry(self, path: str) -> Entry | None:
        r = self.row_of(path)
        return self.entries[r] if r >= 0 else None

    def update(self, path: str, **changes) -> Entry | None:
        r = self.row_of(path)
        if r < 0:
            return None
        e = self.entries[r]
        for k, v in changes.items():
            setattr(e, k, v)
        self.dataChanged.emit(self.index(r, 0), self.index(r, len(COLUMNS) - 1))
        return e

    def sort_key(self, e: Entry, column: int):
        if column == 1:
            return e.duration_s if e.duration_s is not None else -1.0
        if column == 2:
            return e.status
        if column == 3:
            p = e.prediction
            if p is not None and p.abnormal_probability is not None:
                return float(p.abnormal_probability)
            return -1.0 if e.status != ERROR else -2.0
        if column == LABELS_COLUMN:
            return e.labels_text()
        return e.name.lower()

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        """Sort in Python (one key per row). A QSortFilterProxyModel would call data()
        through Python for every comparison: seconds of GUI stall for a few thousand
        files. Persistent indexes (the selection) follow their rows."""
        if not self.entries or not 0 <= column < len(COLUMNS):
            return
        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        where = [(self.entries[i.row()].path, i.column()) for i in old]
        self.entries.sort(key=lambda e: (self.sort_key(e, column), e.name.lower()),
                          reverse=order == Qt.SortOrder.DescendingOrder)
        self._index = {e.path: i for i, e in enumerate(self.entries)}
        self.changePersistentIndexList(old, [self.index(self._index[p], c) for p, c in where])
        self.layoutChanged.emit()

    def update_many(self, changes: list[tuple[str, dict]]) -> None:
        """Apply ``[(path, {field: value}), ...]`` with one dataChanged for the span."""
        rows = []
        for path, ch in changes:
            r = self.row_of(path)
            if r < 0:
                continue
            e = self.entries[r]
            for k, v in ch.items():
                setattr(e, k, v)
            rows.append(r)
        if rows:
            self.dataChanged.emit(self.index(min(rows), 0), self.index(max(rows), len(COLUMNS) - 1))

    def paths(self) -> list[str]:
        return [e.path for e in self.entries]

    def not_analysed(self) -> list[str]:
        """Paths, in list order, with no result that are not queued or analysing now."""
        return [e.path for e in self.entries
                if e.prediction is None and e.status not in (QUEUED, ANALYSING)]

    def count(self, status: str) -> int:
        """How many entries have ``status``."""
        return sum(1 for e in self.entries if e.status == status)


def fmt_clock(s: float) -> str:
    """Seconds as ``m:ss.s`` (the playback clock)."""
    s = max(0.0, float(s))
    m, sec = divmod(s, 60)
    return f"{int(m)}:{sec:04.1f}"
