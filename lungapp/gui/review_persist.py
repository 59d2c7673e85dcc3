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

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QFileDialog

from lungapp.errors import LungappError
from lungapp.gui import file_list as fl
from lungapp.gui.context import READY
from lungapp.gui.workers import run_task
from lungapp.store.results_cache import ResultsCache, known_results

RESTORED = "restored"   # Entry.extra key: where a result shown without analysing came from
SYNC_ROWS = 32          # up to this many rows are looked up at once, more in a worker
BATCH = 200             # rows per batch from the worker
SAVE_DELAY_MS = 1000    # the list is saved this long after its last change


def _look_up(task, paths: list[str], active, active_model: dict | None, use_store: bool) -> list:
    """Known results of ``paths`` (in batches through ``task``; without a task, all
    returned at once)."""
    found, out = [], []
    cancelled = (lambda: task.cancelled) if task is not None else (lambda: False)
    for item in known_results(paths, active=active, active_model=active_model, use_store=use_store,
                              cancelled=cancelled):
        (found if task is not None else out).append(item)
        if len(found) >= BATCH:
            task.emit_partial(found)
            found = []
    if found:
        task.emit_partial(found)
    return out


class ReviewPersistence(QObject):
    def __init__(self, review, hook, parent: QObject | None = None):
        super().__init__(parent or review)
        self.review, self.hook, self.ctx = review, hook, review.ctx
        # A problem opening the cache is said by restore(), once the status bar listens.
        self.cache, self.problem = ResultsCache.open_or_reset()
        self.ctx.analysisFinished.connect(self.remember_result)
        self.ctx.modelStateChanged.connect(self._model_state)
        review.model.rowsInserted.connect(self._rows_added)
        review.files.relocateRequested.connect(self.relocate_dialog)
        # The list is saved on close, and also a moment after each change: a crash or a
        # killed app does not lose it.
        self.save_timer = QTimer(self)
        self.save_timer.setSingleShot(True)
        self.save_timer.setInterval(SAVE_DELAY_MS)
        self.save_timer.timeout.connect(self.save)
        for signal in (review.model.rowsInserted, review.model.rowsRemoved, review.model.modelReset):
            signal.connect(self.save_timer.start)
        self._confirmed: tuple[str, str, str] | None = None
        review.annotation.layer.changed.connect(self._record_label_changed)

    # --- an annotator's record label, confirmed in the store ------------------------------
    def _record_label_changed(self) -> None:
        """The record label an annotator set (and saved) on a recording in the store is their
        confirmed label there too: the Patients view, Compare and the PDF showed the label
        from import time after it was changed here. Clearing the label withdraws it."""
        from lungapp.store.recorded import confirm_label

        layer = self.review.annotation.layer
        doc = layer.doc
        if doc is None or layer.sidecar is None or layer.save_error or layer.read_only_reason():
            return
        key = (str(layer.sidecar.audio), doc.record_label or "", doc.record_author or "")
        if key == self._confirmed or not key[2]:
            return
        store = self.hook.store
        if store is None:
            return
        try:
            if confirm_label(store, *key, (doc.record_time or None) if key[1] else None) is not None:
                self.hook.changed.emit()
        except (LungappError, sqlite3.Error) as exc:  # tried again at the next change
            self.review.statusMessage.emit(f"{key[0]}: the label was saved but not recorded in the "
                                           f"patient store ({exc})", 10000)
            return
        self._confirmed = key

    # --- the list -------------------------------------------------------------------
    def restore(self) -> int:
        """List the files open at the last close again; returns how many are missing."""
        if self.problem:
            self.review.statusMessage.emit(self.problem, 15000)
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
        self.save_timer.stop()
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
        """Cache a new result in full: of a file the store does not hold, the result; of
        one it holds (the store hook saves it there), the details the store does not keep."""
        e = self.review.model.entry(path)
        if e is not None:
            e.extra.pop(RESTORED, None)   # a live result now: never replaced by a restored one
        if self.cache is None or not hasattr(prediction, "to_dict"):
            return
        key = getattr(prediction, "file_key", ())  # the file as the analysis read it
        if key is None:  # it changed while it was analysed: keep nothing for it
            return
        try:
            self.cache.put(path, prediction.to_dict(), key=key or None)
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
        """Once the model is known: the store's results (the store tells the active
        model's apart), and for cached ones of another model the active one's if cached."""
        if state in (READY, "error"):
            current = self.review.model.current_model   # the view set it just before
            self.fill([e for e in self.review.model.entries
                       if (e.prediction is None and e.status == fl.NEW)
                       or e.extra.get(RESTORED) == "store"
                       or (e.extra.get(RESTORED) == "cache" and e.is_stale(current))])

    def fill(self, entries) -> None:
        """Show the known result of each entry (store, else cache). A few rows at once
        (a file opened, relocated); more in a worker, so a long list does not hold up
        the window (the rows fill in batches)."""
        paths = [e.path for e in entries if e.status not in (fl.QUEUED, fl.ANALYSING, fl.MISSING)]
        if not paths or self.cache is None:
            return
        state = self.ctx.model_state()
        args = (paths, self._active_id(state), self._active_model_dict(), state in (READY, "error"))
        if len(paths) <= SYNC_ROWS:
            try:
                self._apply(list(_look_up(None, *args)))
            except sqlite3.Error:
                traceback.print_exc()
            return
        run_task(_look_up, *args, name="restore review results", owner=self.review, on_partial=self._apply,
                 on_failed=lambda msg, exc: self.review.statusMessage.emit(msg, 8000))

    def _apply(self, found: list) -> None:
        """Results found; a row analysed meanwhile keeps its new result."""
        changes = []
        for path, prediction, source in found:
            e = self.review.model.entry(path)
            unanalysed = e is not None and e.prediction is None and e.status in (fl.NEW, fl.CANCELLED)
            if not (unanalysed or (e is not None and e.extra.get(RESTORED))):
                continue
            e.extra[RESTORED] = source
            changes.append((path, {"prediction": prediction, "status": fl.DONE, "error": ""}))
        self.review.model.update_many(changes)
        current = self.review.current_path
        if current in {p for p, _ in changes}:
            self.review.show_known_result(current)

    def _active_id(self, state: str):
        """The store's id of the active model (None until one is loaded)."""
        return self.hook.active_model() if state == READY else None

    def _active_model_dict(self) -> dict | None:
        p = self.ctx.predictor()
        if p is None:
            return None
        return {"name": p.card.name, "version": p.card.version, "path": str(getattr(p, "model_dir", "")),
                "card": getattr(p, "card_digest", "")}

    # --- relocating a missing file ---------------------------------------------------------
    def relocate_dialog(self, old: str) -> None:
        start = os.path.dirname(old) if os.path.isdir(os.path.dirname(old)) else self.review.last_folder()
        new, _ = QFileDialog.getOpenFileName(self.review, f"Where is {os.path.basename(old)} now?", start)
        if new:
            self.relocate(old, new)

    def relocate(self, old: str, new: str) -> bool:
        """Point ``old``'s row (and its store row and cached results) at ``new``."""
        new = os.path.abspath(new)
        model = self.review.model
        if not os.path.isfile(new) or model.entry(new) is not None or model.entry(old) is None:
            self.review.statusMessage.emit(f"{new}: not relocated (no such file, or already listed)", 8000)
            return False
        row = self._stored(old)
        if row is not None:
            try:  # first: the store refuses another recording's file, or one that is not audio
                self.hook.store.relocate(row["uid"], new)
            except LungappError as exc:
                self.review.statusMessage.emit(str(exc), 8000)
                return False
        model.relocate(old, new)
        if self.cache is not None:
            self.cache.move(old, new)
        self.fill([self.review.model.entry(new)])
        self.review.file_relocated(old, new)
        self.save_timer.start()
        return True
