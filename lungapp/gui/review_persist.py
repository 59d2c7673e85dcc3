"""The Review list survives a restart: the open list is saved on close and listed again on
start, and every listed file shows the result it already has without being analysed again.

Where a result comes from (:mod:`lungapp.store.results_cache` says why):

* a recording in the store: the store's newest result, the active model's first (the
  store names the model; a result of another model is shown as "old model");
* any other file: the results cache (path + size + modification time + model), written
  here after each analysis of a file the store does not hold.

A remembered file moved or deleted meanwhile is listed as missing (no dialog); its row's
context menu relocates it (in the store and the cache too) or removes it.
"""

from __future__ import annotations

import os
import sqlite3
import traceback

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog

from lungapp.gui import file_list as fl
from lungapp.gui.context import READY
from lungapp.store.results_cache import ResultsCache, prediction_from_dict, prediction_from_store

RESTORED = "restored"   # Entry.extra key: where a result shown without analysing came from


class ReviewPersistence(QObject):
    def __init__(self, review, hook, parent: QObject | None = None):
        super().__init__(parent or review)
        self.review, self.hook, self.ctx = review, hook, review.ctx
        self.cache = self._open_cache()
        self.ctx.analysisFinished.connect(self.remember_result)
        self.ctx.modelStateChanged.connect(self._model_state)
        review.model.rowsInserted.connect(self._rows_added)
        review.files.relocateRequested.connect(self.relocate_dialog)

    def _open_cache(self) -> ResultsCache | None:
        try:
            return ResultsCache()
        except (OSError, sqlite3.Error) as exc:  # no cache: the list just starts empty
            self.review.statusMessage.emit(f"Review results cache unavailable: {exc}", 10000)
            return None

    # --- the list -------------------------------------------------------------------
    def restore(self) -> int:
        """List the files open at the last close again; returns how many are missing."""
        if self.cache is None:
            return 0
        remembered = self.cache.open_list()
        missing = [p for p in remembered if not os.path.isfile(p)]
        if remembered:
            self.review.list_remembered(remembered, missing)
        if missing:
            self.review.statusMessage.emit(
                f"{len(missing)} file(s) of the list were moved or deleted (marked missing: "
                "right-click to relocate or remove)", 12000)
        return len(missing)

    def save(self) -> None:
        if self.cache is None:
            return
        try:
            self.cache.save_list(self.review.model.paths())
        except sqlite3.Error:  # closing must always succeed; the list is only a convenience
            traceback.print_exc()

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
            self.cache = None

    # --- results ----------------------------------------------------------------------
    def remember_result(self, path: str, prediction) -> None:
        """Cache a new result of a file the store does not hold (the store hook keeps
        those it holds)."""
        if self.cache is None or not hasattr(prediction, "to_dict") or self._stored(path) is not None:
            return
        try:
            self.cache.put(path, prediction.to_dict())
        except sqlite3.Error:
            traceback.print_exc()

    def _stored(self, path: str):
        store = self.hook.store
        try:
            return None if store is None else store.recording_by_path(path)
        except sqlite3.Error:
            return None

    def _rows_added(self, _parent, first: int, last: int) -> None:
        self.fill(self.review.model.entries[first:last + 1])

    def _model_state(self, state: str, _message: str) -> None:
        if state in (READY, "error"):
            self.fill([e for e in self.review.model.entries if e.extra.get(RESTORED)
                       or (e.prediction is None and e.status == fl.NEW)])

    def fill(self, entries) -> int:
        """Show the known result of each entry (store, else cache); returns how many."""
        changes = []
        for e in entries:
            if e.status in (fl.QUEUED, fl.ANALYSING, fl.MISSING) or not os.path.isfile(e.path):
                continue
            found = self._known(e.path)
            if found is not None:
                changes.append((e.path, {"prediction": found[0], "status": fl.DONE, "error": ""}))
                e.extra[RESTORED] = found[1]
        self.review.model.update_many(changes)
        current = self.review.current_path
        if current in {p for p, _ in changes}:
            self.review.show_known_result(current)
        return len(changes)

    def _known(self, path: str) -> tuple[object, str] | None:
        row = self._stored(path)
        if row is not None:
            try:
                return self._from_store(row)
            except sqlite3.Error:
                return None
        if self.cache is None or not os.path.isfile(path):
            return None
        try:
            d = self.cache.get(path, prefer_model=self._active_model_dict())
        except sqlite3.Error:
            return None
        return None if d is None else (prediction_from_dict(d), "cache")

    def _from_store(self, row) -> tuple[object, str] | None:
        """The store's result of a recording, once the model state is known (before, the
        store cannot tell whether a result is the active model's)."""
        state = self.ctx.model_state()
        if state not in (READY, "error"):
            return None
        active = self.hook.active_model() if state == READY else None
        result = self.hook.store.latest_result(row["uid"], active)
        if result is None:
            return None
        current = active is not None and not result.get("stale")
        model_dir = str(self.ctx.predictor().model_dir) if current else ""
        return prediction_from_store(result, dict(row), model_dir), "store"

    def _active_model_dict(self) -> dict | None:
        p = self.ctx.predictor()
        if p is None:
            return None
        return {"name": p.card.name, "version": p.card.version, "path": str(getattr(p, "model_dir", ""))}

    # --- relocating a missing file ---------------------------------------------------------
    def relocate_dialog(self, old: str) -> None:
        start = os.path.dirname(old) if os.path.isdir(os.path.dirname(old)) else self.review.last_folder()
        new, _ = QFileDialog.getOpenFileName(self.review, f"Where is {os.path.basename(old)} now?", start)
        if new:
            self.relocate(old, new)

    def relocate(self, old: str, new: str) -> bool:
        """Point ``old``'s row (and its store row and cached results) at ``new``."""
        new = os.path.abspath(new)
        if not os.path.isfile(new) or not self.review.model.relocate(old, new):
            self.review.statusMessage.emit(f"{new}: not relocated (no such file, or already listed)", 8000)
            return False
        row = self._stored(old)
        if row is not None:
            self.hook.store.relocate(row["uid"], new)
        if self.cache is not None:
            self.cache.move(old, new)
        self.fill([self.review.model.entry(new)])
        self.review.file_relocated(old, new)
        return True
