"""The annotation workspace inside the Review view: the regions layer on the plots, the labels
panel beside them, and the glue to the view (open/close with the selected recording, play an
event, suggest regions from the model's result)."""

from __future__ import annotations

from PySide6.QtCore import QObject

from lungapp.gui.annotation_layer import AnnotationLayer
from lungapp.gui.event_list import EventPanel
from lungapp.gui.plots import _abnormal_threshold


class ReviewAnnotation(QObject):
    """Owns ``layer`` (an AnnotationLayer on ``view.plots``) and ``panel`` (an EventPanel)."""

    def __init__(self, view):
        super().__init__(view)
        self.view = view
        self.layer = AnnotationLayer(view.plots, view.settings, view)
        self.panel = EventPanel(self.layer)
        self.shortcuts = self.layer.install_shortcuts(view)
        self._stop_at: float | None = None
        self.panel.playRequested.connect(self.play)
        self.panel.suggestRequested.connect(self.suggest)
        self.layer.message.connect(lambda text, ms: view.statusMessage.emit(text, ms))
        view.player.positionChanged.connect(self._position)

    def open(self, path: str) -> None:
        self.layer.open(path)

    def close(self) -> None:
        self.layer.close()

    def play(self, start_s: float, end_s: float) -> None:
        """Play one event: from its start, stopping at its end."""
        player = self.view.player
        player.pause()
        player.seek(start_s)
        self._stop_at = end_s
        player.play()

    def _position(self, seconds: float) -> None:
        if self._stop_at is not None and seconds >= self._stop_at:
            self._stop_at = None
            self.view.player.pause()

    def suggest(self) -> int:
        """Draft regions from the selected recording's result (analysed first if need be)."""
        view = self.view
        entry = view.model.entry(view.current_path) if view.current_path else None
        prediction = getattr(entry, "prediction", None)
        if prediction is None:
            view.statusMessage.emit("Analyse the recording first: suggestions come from its "
                                    "result", 6000)
            return 0
        threshold = getattr(prediction, "threshold", None)
        if threshold is None:
            p = view.ctx.predictor()
            threshold = p.card.threshold if p is not None else 0.5
        n = self.layer.suggest(list(getattr(prediction, "windows", []) or []),
                               _abnormal_threshold(threshold))
        view.statusMessage.emit(f"{n} suggested region(s): accept (A), edit or delete each", 6000)
        return n
