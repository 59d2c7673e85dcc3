"""The Review view's list of recordings: a Qt table model (file, duration, status,
result, folder) sorted on raw values (seconds, probabilities), not strings.

A result remembers the model that made it (``Prediction.model``); the list knows the
active model (:meth:`FileListModel.set_current_model`), so a result made by another model
is shown as stale ("old model") and "Analyse all" analyses it again."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from lungapp.gui import theme

COLUMNS = ("File", "Duration", "Status", "Result", "Folder", "Labels")
FILE_COL, DURATION_COL, STATUS_COL, RESULT_COL, FOLDER_COL, LABELS_COL = range(len(COLUMNS))
LABELS_COLUMN = LABELS_COL
PATH_ROLE = Qt.ItemDataRole.UserRole + 2

# status values
NEW, QUEUED, ANALYSING, DONE, ERROR, CANCELLED = ("", "queued", "analysing", "done",
                                                  "error", "cancelled")
MISSING = "missing"   # a listed file moved or deleted since (right-click: relocate)
STALE = "old model"   # shown in the Status column for a result of another model
STALE_FG = "#8a8a8a"


def model_key(model: dict | None) -> tuple[str, str, str, str] | None:
    """What identifies the model that made a result: name, version, folder (two trained
    models may share a name and version) and its card's digest (a model retrained into the
    same folder under the same name; results from before the digest was kept have "", which
    matches any: see ``results_cache.same_model``)."""
    if not model:
        return None
    path = str(model.get("path") or "")
    return (str(model.get("name", "")), str(model.get("version", "")),
            os.path.realpath(path) if path else "", str(model.get("card", "")))


def model_text(model: dict | None) -> str:
    """``name version`` of a Prediction's model dict ("" when unknown)."""
    if not model:
        return ""
    return f"{model.get('name', '')} {model.get('version', '')}".strip()



def judged(prediction) -> bool:
    """Whether a prediction's probabilities mean anything: not for a recording the quality
    check refused (level "refuse": silence, heavy clipping), as ``predict`` leaves them out."""
    return getattr(getattr(prediction, "quality", None), "level", None) != "refuse"

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

    @property
    def folder(self) -> str:
        return os.path.dirname(self.path)

    def is_stale(self, current_model: tuple | None) -> bool:
        """True when the result was made by a model other than ``current_model``
        (a :func:`model_key`; None: no model is active, nothing is called stale)."""
        from lungapp.store.results_cache import same_model

        p = self.prediction
        if p is None or current_model is None:
            return False
        made_by = model_key(getattr(p, "model", None))
        return made_by is None or not same_model(made_by, current_model)

    def result_text(self) -> str:
        """The label with what its percentage means: "CAS · abnormal 62 %" (the
        percentage is the probability of any adventitious sound, not of the label)."""
        if self.status == ERROR:
            return self.error
        p = self.prediction
        if p is None:
            return ""
        ab = p.abnormal_probability
        if ab is None or p.decision == "poor quality":
            return p.label
        # A noisy recording's result says so in the list too (its tooltip says where).
        noisy = " · noisy" if getattr(getattr(p, "quality", None), "level", "") == "warn" else ""
        if p.label.lower() == "abnormal":
            return f"{p.label} · {ab * 100:.0f} %{noisy}"
        return f"{p.label} · abnormal {ab * 100:.0f} %{noisy}"

    def duration_text(self) -> str:
        """The duration, and the header's when the file is truncated."""
        text = fmt_duration(self.duration_s)
        declared = self.extra.get("declared_duration_s")
        if declared and text:
            return f"{text} of {fmt_duration(declared)} ⚠"
        return f"{text} ⚠" if text and self.extra.get("truncated") else text

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
        # Rows are found by the file's real path, so one file reached by two paths (a
        # folder opened through a symbolic link, and the store's real path from the
        # Patients tab) is listed once, under the path it was first listed by.
        self._index: dict[str, int] = {}      # real path -> row
        self._keys: dict[str, str] = {}       # a listed entry's path -> its real path
        self.current_model: tuple | None = None   # model_key() of the active model

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
            return self._display(e, col)
        if role == PATH_ROLE:
            return e.path
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(e, col)
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._foreground(e, col)
        if role == Qt.ItemDataRole.BackgroundRole and col == RESULT_COL and e.prediction is not None:
            if e.is_stale(self.current_model):
                return None  # no verdict colour for an answer that is no longer current
            bg = theme.DECISION_STYLE.get(e.prediction.decision, (None,))[0]
            if bg:
                return QBrush(QColor(bg))
        if role == Qt.ItemDataRole.TextAlignmentRole and col == DURATION_COL:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _display(self, e: Entry, col: int) -> str:
        if e.status == MISSING and col == RESULT_COL:
            return "file moved or deleted"
        status = STALE if e.status == DONE and e.is_stale(self.current_model) else e.status
        return (e.name, e.duration_text(), status, e.result_text(), e.folder, e.labels_text())[col]

    def _tooltip(self, e: Entry, col: int) -> str | None:
        if e.status == MISSING:
            return f"{e.path} is missing: right-click to relocate it or remove it from the list"
        if col in (FILE_COL, FOLDER_COL):
            return e.path
        if col == LABELS_COL and e.labels is not None:
            return e.labels[1] if e.labels[0] == "unreadable" else e.labels_text()
        if e.status == ERROR:
            return e.error
        if col == DURATION_COL and e.extra.get("truncated"):
            return e.extra["truncated"]
        if col in (STATUS_COL, RESULT_COL) and e.prediction is not None:
            return self._result_tooltip(e)
        return None

    def _result_tooltip(self, e: Entry) -> str:
        p = e.prediction
        q = getattr(p, "quality", None)
        lines = [] if not judged(p) else ["Class probabilities: " + ", ".join(
            f"{k} {v * 100:.0f} %" for k, v in p.probabilities.items())]
        if q is not None and q.level != "good":
            lines.append(f"Quality: {q.reason}")
        if getattr(p, "unfamiliar", None) is not None:
            lines.append("Unlike the recordings the model was trained on: interpret with care.")
        made_by = model_text(getattr(p, "model", None))
        if made_by:
            lines.append(f"Model: {made_by}")
        if e.is_stale(self.current_model):
            lines.append(f"Made by another model than the active one ({self.current_model[0]} "
                         f"{self.current_model[1]}): Analyse all analyses it again.")
        return "\n".join(lines)

    def _foreground(self, e: Entry, col: int):
        if e.status == MISSING:
            return QBrush(QColor("#a03000"))
        if e.status == ERROR and col in (STATUS_COL, RESULT_COL):
            return QBrush(QColor("#a03000"))
        if col in (STATUS_COL, RESULT_COL) and e.is_stale(self.current_model):
            return QBrush(QColor(STALE_FG))
        if col == DURATION_COL and e.extra.get("truncated"):
            return QBrush(QColor("#a03000"))
        return None

    # --- the active model -------------------------------------------------------------
    def set_current_model(self, key: tuple | None) -> int:
        """Set the active model's :func:`model_key`; results of other models become
        stale. Returns how many results are stale now."""
        self.current_model = key
        if self.entries:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.entries) - 1, len(COLUMNS) - 1))
        return len(self.stale())

    def stale(self) -> list[str]:
        """Paths whose result was made by another model than the active one."""
        return [e.path for e in self.entries
                if e.is_stale(self.current_model) and e.status not in (QUEUED, ANALYSING, MISSING)]

    # --- entries --------------------------------------------------------------------
    def add(self, paths: list[str]) -> list[str]:
        """Append files not already listed; returns the new ones."""
        new = []
        seen = set(self._index)
        for p in paths:
            p = os.path.abspath(os.fspath(p))
            key = self._key(p)
            if key not in seen:
                seen.add(key)
                new.append((p, key))
        if not new:
            return []
        first = len(self.entries)
        self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
        for p, key in new:
            self._index[key] = len(self.entries)
            self._keys[p] = key
            self.entries.append(Entry(p))
        self.endInsertRows()
        return [p for p, _ in new]

    def _key(self, path) -> str:
        p = os.path.abspath(os.fspath(path))
        key = self._keys.get(p)
        return key if key is not None else os.path.realpath(p)

    def _reindex(self) -> None:
        self._index = {self._keys[e.path]: i for i, e in enumerate(self.entries)}

    def clear(self) -> None:
        self.beginResetModel()
        self.entries, self._index, self._keys = [], {}, {}
        self.endResetModel()

    def row_of(self, path: str) -> int:
        return self._index.get(self._key(path), -1)

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
        if column == DURATION_COL:
            return e.duration_s if e.duration_s is not None else -1.0
        if column == STATUS_COL:
            return e.status
        if column == FOLDER_COL:
            return e.folder.lower()
        if column == RESULT_COL:
            p = e.prediction
            if p is not None and p.abnormal_probability is not None and judged(p):
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
        self._reindex()
        self.changePersistentIndexList(old, [self.index(self.row_of(p), c) for p, c in where])
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
        """Paths, in list order, with no result of the active model (none, or a stale
        one) that are not queued or analysing now."""
        return [e.path for e in self.entries
                if (e.prediction is None or e.is_stale(self.current_model))
                and e.status not in (QUEUED, ANALYSING, MISSING)]

    def relocate(self, old: str, new: str) -> bool:
        """Point ``old``'s row at ``new`` (a missing file found again); False when ``old``
        is not listed or ``new`` already is."""
        r, new = self.row_of(old), os.path.abspath(new)
        key = self._key(new)
        if r < 0 or key in self._index:
            return False
        gone = self.entries[r].path
        del self._index[self._keys.pop(gone)]
        self.entries[r] = Entry(new)
        self._index[key], self._keys[new] = r, key
        self.dataChanged.emit(self.index(r, 0), self.index(r, len(COLUMNS) - 1))
        return True

    def remove(self, paths: list[str]) -> list[str]:
        """Take ``paths`` off the list (the files stay on disk); returns those removed."""
        rows = {self.row_of(p) for p in paths} - {-1}
        gone = [self.entries[r].path for r in rows]
        if not gone:
            return []
        if len(gone) == len(self.entries):
            self.clear()
            return sorted(gone)
        # Row by row from the end, so the selection of the rows that stay is kept; the
        # index is right before each endRemoveRows (views react to it at once).
        for r in sorted(rows, reverse=True):
            self.beginRemoveRows(QModelIndex(), r, r)
            del self._keys[self.entries[r].path]
            del self.entries[r]
            self._reindex()
            self.endRemoveRows()
        return sorted(gone)

    def count(self, status: str) -> int:
        """How many entries have ``status``."""
        return sum(1 for e in self.entries if e.status == status)


def fmt_clock(s: float) -> str:
    """Seconds as ``m:ss.s`` (the playback clock)."""
    s = max(0.0, float(s))
    m, sec = divmod(s, 60)
    return f"{int(m)}:{sec:04.1f}"
