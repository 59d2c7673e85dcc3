"""Connects the app's recordings and analyses to the store: a recording made in the Record
view (or recovered) is filed under its patient's visit of today, and every analysis of a
file in the store is saved with the model that made it. Views read the store through
:attr:`StoreHook.store` and refresh on ``changed``.

When the store cannot be opened (a file that is not a store, a read-only folder...) the
app goes on without it: ``message`` says so once, naming the file and why (a read-only
folder is named as such), and every recording that could not be filed is said, naming
its file. Problems the window should hear of at start (settings that cannot be saved)
are said in the same line."""

from __future__ import annotations

import os
import sqlite3
import traceback
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from lungapp.errors import LungappError

#: What a store operation may raise when the database itself is the problem: the store's
#: own errors, and SQLite's where they are not (yet) converted into them.
STORE_ERRORS = (LungappError, sqlite3.DatabaseError)


def unwritable(path: str | os.PathLike) -> str | None:
    """Why ``path`` (a file, existing or not) cannot be written: its folder is on a
    read-only file system, or not writable, or the file itself is read-only; None when
    nothing of the kind is found."""
    path = Path(path)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:  # the folder would be made here
        folder = folder.parent
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return f"the folder {folder} is on a read-only file system"
    except OSError:
        pass
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"the folder {folder} is read-only (no permission to write there)"
    if path.exists() and not os.access(path, os.W_OK):
        return f"the file {path} is read-only"
    return None


def open_problem(exc: BaseException, path: str | os.PathLike) -> str:
    """One line: why the store at ``path`` could not be opened (``exc``), naming the file,
    and a read-only location as such."""
    text = str(exc) or type(exc).__name__
    if str(path) not in text:
        text = f"{path}: {text}"
    ro = unwritable(path)
    return f"{text} — {ro}" if ro else text


_DAMAGED = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def store_problem(exc: BaseException, path: str | os.PathLike) -> str:
    """One line for an error a store operation raised: the store's own errors as they are
    (they name the file); SQLite's naming the database file, with how to recover a damaged
    one (a backup) and a read-only location named as such."""
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, sqlite3.DatabaseError):
        return text
    if str(path) not in text:
        text = f"{path}: {text}"
    code = getattr(exc, "sqlite_errorcode", None)
    damaged = (code & 0xFF if isinstance(code, int) else None) in _DAMAGED or type(exc) is sqlite3.DatabaseError
    if damaged and "backup" not in text:
        text += (" — the database is damaged: to recover, close lungapp, move this file aside and copy a "
                 "backup (made with `lungapp backup`) in its place")
    ro = None if damaged else unwritable(path)
    return f"{text} — {ro}" if ro else text


class StoreHook(QObject):
    changed = Signal()
    message = Signal(str)   # one line for the status bar

    def __init__(self, context, parent: QObject | None = None):
        super().__init__(parent)
        self.ctx = context
        self._store = None
        self._model_key = None
        self._model_id = None
        self.error = ""
        self._said = ""   # the last problem said of opening the store (each is said once)
        #: recordings that could not be filed, with why: said again once their result is shown
        self._unfiled: dict[str, str] = {}
        self._problem = ""   # what the last write could not do, or ""
        context.recordingFinished.connect(self.file_recording)
        context.analysisFinished.connect(self.save_result)
        # Said once the window listens (it connects ``message`` after making the views).
        self._startup: list[str] = []
        problem = getattr(context, "settings_problem", "")
        if problem:
            self._startup.append(problem)
        QTimer.singleShot(0, self, self._say_startup)

    @property
    def store(self):
        """The open store, or None (``error`` says why) when it cannot be opened."""
        if self._store is None and not self.error:
            self._open()
        return self._store

    def reopen(self):
        """Try again to open a store that could not be opened (the user may have put a
        backup in place or freed the disk); the store, or None."""
        if self._store is None:
            self.error = ""
        return self.store

    def _open(self) -> None:
        from lungapp import paths
        from lungapp.store import Store

        try:
            self._store = Store()
        except (*STORE_ERRORS, OSError) as exc:
            self.error = open_problem(exc, paths.database_path())
            if self.error != self._said:
                self._said = self.error
                line = (f"The patient store cannot be opened: {self.error}. Recordings are saved "
                        "but not filed under their patients.")
                if self._startup is not None:
                    self._startup.append(line)
                else:
                    self.message.emit(line)

    def _say_startup(self) -> None:
        lines, self._startup = self._startup, None
        if lines:
            self.message.emit(" ".join(lines))

    def active_model(self):
        """The ModelId of the loaded model (None while none is loaded)."""
        predictor = self.ctx.predictor()
        if predictor is None or not hasattr(predictor, "model_dir"):
            return None
        if self._model_key is not predictor:
            from lungapp.store.analysis import model_id

            try:
                self._model_id = model_id(predictor)
            except OSError:
                self._model_id = None
            self._model_key = predictor
        return self._model_id

    def file_recording(self, path: str) -> str | None:
        from lungapp.store.recorded import file_recording

        if self.reopen() is None:  # a recording is worth another try at opening the store
            self._unfiled[path] = self.error
            self.message.emit(f"{path} was saved but not filed in the patient store: {self.error}")
            return None
        out = self._write(lambda s: file_recording(s, path), f"could not file {path} in the store")
        if self._problem:
            self._unfiled[path] = self._problem
        return out

    def save_result(self, path: str, prediction) -> str | None:
        from lungapp.store.recorded import save_result

        if path in self._unfiled:  # said again: the result shown in the status bar hid it
            self.message.emit(f"{path} is not filed in the patient store, and neither is its result: "
                              f"{self._unfiled.pop(path)}")
            return None
        model = self.active_model()
        if model is None or not hasattr(prediction, "to_dict"):
            return None
        # Without a store this is said once (when opening failed), not for every analysis.
        return self._write(lambda s: save_result(s, path, prediction.to_dict(), model),
                           f"could not save the result of {path} in the store")

    def _write(self, fn, what: str):
        self._problem = ""
        store = self.store
        if store is None:
            return None
        try:
            out = fn(store)
        except Exception as exc:  # noqa: BLE001 - the store must never break recording
            if not isinstance(exc, STORE_ERRORS):  # a bug: its traceback too
                traceback.print_exc()
            self._problem = store_problem(exc, store.path)
            self.message.emit(f"{what}: {self._problem}")
            return None
        if out is not None:
            self.changed.emit()
        return out

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
