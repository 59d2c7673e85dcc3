"""The annotation workspace inside the Review view: the regions layer on the plots, the labels
panel beside them, and the glue to the view (open/close with the selected recording, play an
event, suggest regions from the model's result)."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut

from lungapp.annotation.folder import describe, label_states
from lungapp.gui.annotation_layer import AnnotationLayer
from lungapp.gui.event_list import EventPanel
from lungapp.gui.labels_actions import LabelsMenu
from lungapp.gui.listening_bar import ListeningBar
from lungapp.gui.plots import _abnormal_threshold
from lungapp.gui.workers import run_task


class ReviewAnnotation(QObject):
    """Owns ``layer`` (an AnnotationLayer on ``view.plots``) and ``panel`` (an EventPanel)."""

    def __init__(self, view):
        super().__init__(view)
        self.view = view
        self.layer = AnnotationLayer(view.plots, view.settings, view)
        self.panel = EventPanel(self.layer)
        self.listening = ListeningBar()
        self.menu = LabelsMenu(view)
        self.panel.more.setMenu(self.menu)
        self.shortcuts = self.layer.install_shortcuts(view)
        self.panel.playRequested.connect(self.play)
        self.panel.suggestRequested.connect(self.suggest)
        self.layer.message.connect(lambda text, ms: view.statusMessage.emit(text, ms))
        self._connect_list()
        self._connect_listening()

    # --- the list of recordings: label states, progress, filter, moving through it ---------
    def _connect_list(self) -> None:
        model = self.view.model
        self._filter_timer = QTimer(self)
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(200)
        self._filter_timer.timeout.connect(self.apply_filter)
        model.rowsInserted.connect(lambda _p, first, last: self._read_states(first, last))
        model.layoutChanged.connect(self.apply_filter)
        self.layer.changed.connect(self._doc_changed)
        # Each annotator has their own labels: the list shows the new one's.
        self.layer.annotatorChanged.connect(lambda: self._read_states(0, model.rowCount() - 1))
        self.panel.show_filter.currentIndexChanged.connect(lambda _i: self.apply_filter())
        self.panel.result_filter.currentIndexChanged.connect(lambda _i: self.apply_filter())
        model.dataChanged.connect(lambda *_: self._filter_soon())
        for key, slot in (("PgDown", lambda: self.step(1)), ("PgUp", lambda: self.step(-1)),
                          ("Shift+PgDown", lambda: self.step(1, "unlabelled"))):
            sc = QShortcut(QKeySequence(key), self.view)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(slot)
            self.shortcuts.append(sc)

    def reread_state(self, path: str) -> None:
        """Read ``path``'s label state again (a relocated file: its sidecar is another)."""
        row = self.view.model.row_of(path)
        if row >= 0:
            self._read_states(row, row)

    def _read_states(self, first: int, last: int) -> None:
        paths = [e.path for e in self.view.model.entries[first:last + 1]]
        run_task(label_states, paths, self.layer.annotator(), name="read label states",
                 on_finished=self._states_read, on_failed=self._states_failed)

    def _states_read(self, results) -> None:
        self.view.model.update_many([(p, {"labels": state}) for p, state in results])
        self._update_progress()
        self.apply_filter()

    def _states_failed(self, message: str, _exc) -> None:
        # Said, not silent: an empty Labels column would look like states still being read.
        self.view.statusMessage.emit(f"Label states not read: {message}", 10000)

    def _doc_changed(self) -> None:
        doc, sidecar = self.layer.doc, self.layer.sidecar
        if doc is None:
            return
        self.view.model.update(str(sidecar.audio), labels=describe(sidecar))
        self._update_progress()

    def _update_progress(self) -> None:
        entries = self.view.model.entries
        n = sum(1 for e in entries if e.labels is not None and e.labels[0] in ("labelled", "reviewed"))
        self.panel.progress.setText(f"{n} of {len(entries)} labelled")

    def _filter_soon(self) -> None:
        """Re-filter once after a burst of row changes (results arriving), not per change."""
        if self.panel.result_filter.currentIndex() or self.panel.show_filter.currentIndex():
            self._filter_timer.start()

    def apply_filter(self) -> None:
        """Hide the rows not in the chosen label state or with another result (the open
        recording stays shown)."""
        want = self.panel.show_filter.currentText()
        result = self.panel.result_filter.currentText()
        for row, e in enumerate(self.view.model.entries):
            state = e.labels[0] if e.labels is not None else ""
            decision = e.prediction.decision if e.prediction is not None else "not analysed"
            hide = ((want != "all" and state != want) or (result != "any result" and decision != result))
            self.view.table.setRowHidden(row, hide and e.path != self.view.current_path)

    def step(self, direction: int, state: str | None = None) -> str | None:
        """Select the next (``direction`` 1) or previous (-1) shown recording, or the next one
        in label ``state``; returns its path (None: there is none)."""
        entries, table = self.view.model.entries, self.view.table
        here = self.view.model.row_of(self.view.current_path) if self.view.current_path else -1
        rows = range(here + 1, len(entries)) if direction > 0 else range(here - 1, -1, -1)
        for row in rows:
            e = entries[row]
            if not table.isRowHidden(row) and (state is None or (e.labels or ("",))[0] == state):
                self.view.select(e.path)
                return e.path
        self.view.statusMessage.emit("No more recordings that way", 3000)
        return None

    def open(self, path: str) -> None:
        self.layer.open(path)

    def close(self) -> None:
        self.layer.close()

    def play(self, start_s: float, end_s: float, loop: bool = False) -> None:
        """Play one event: from its start to its end (again and again with ``loop``)."""
        self.view.player.play_range(start_s, end_s, loop)

    # --- listening aids ------------------------------------------------------------------
    def _connect_listening(self) -> None:
        bar, player = self.listening, self.view.player
        bar.bandChanged.connect(self._set_band)
        bar.gainChanged.connect(player.set_gain_db)
        bar.playSelection.connect(self.play_selection)
        # A click on the plot plays the whole recording again (Play and Space: ReviewView._play_pause).
        self.view.plots.seekRequested.connect(lambda _s: player.clear_range())
        sc = QShortcut(QKeySequence("P"), self.view)  # not Return: the note field needs it
        sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        sc.activated.connect(lambda: self.play_selection(bar.loop.isChecked()))
        self.shortcuts.append(sc)

    def _set_band(self, low: float, high: float) -> None:
        try:
            self.view.player.set_band(None if high <= 0 else (low, high))
        except ValueError as err:
            self.view.statusMessage.emit(f"Band-pass not applied: {err}", 8000)

    def play_selection(self, loop: bool = False) -> bool:
        """Play the selected region (once, or looped); False when none is selected."""
        layer = self.layer
        if layer.doc is None or layer.selected == -1:
            self.view.statusMessage.emit("Select a region first (click it or its row)", 4000)
            return False
        r = layer.doc.region(layer.selected)
        self.play(r.start_s, r.end_s, loop)
        return True

    def suggest(self) -> int:
        """Draft regions from the selected recording's result (analysed first if need be)."""
        view = self.view
        entry = view.model.entry(view.current_path) if view.current_path else None
        prediction = getattr(entry, "prediction", None)
        if prediction is None:
            view.statusMessage.emit("Analyse the recording first: suggestions come from its "
                                    "result", 6000)
            return 0
        quality = getattr(prediction, "quality", None)
        if quality is not None and not quality.ok:
            view.statusMessage.emit(f"No suggestions: the recording could not be judged "
                                    f"({quality.reason})", 6000)
            return 0
        if self.layer.read_only_reason() is not None:  # nothing can be added: say why, once
            view.statusMessage.emit(self.layer.read_only_reason(), 10000)
            return 0
        threshold = getattr(prediction, "threshold", None)
        if threshold is None:
            p = view.ctx.predictor()
            threshold = p.card.threshold if p is not None else 0.5
        n = self.layer.suggest(list(getattr(prediction, "windows", []) or []),
                               _abnormal_threshold(threshold),
                               getattr(quality, "noisy_ranges", ()) or ())
        view.statusMessage.emit(f"{n} suggested region(s): accept (A), edit or delete each", 6000)
        return n
