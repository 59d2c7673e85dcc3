"""Connects the app's recordings and analyses to the store: a recording made in the Record
view (or recovered) is filed under its patient's visit of today, and every analysis of a
file in the store is saved with the model that made it. Views read the store through
:attr:`StoreHook.store` and refresh on ``changed``."""

from __future__ import annotations

import traceback

from PySide6.QtCore import QObject, Signal

from lungapp.errors import LungappError


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
        context.recordingFinished.connect(self.file_recording)
        context.analysisFinished.connect(self.save_result)

    @property
    def store(self):
        """The open store, or None (``error`` says why) when it cannot be opened."""
        if self._store is None and not self.error:
            from lungapp.store import Store

            try:
                self._store = Store()
            except LungappError as exc:
                self.error = str(exc)
        return self._store

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

        return self._write(lambda s: file_recording(s, path), f"could not file {path} in the store")

    def save_result(self, path: str, prediction) -> str | None:
        from lungapp.store.recorded import save_result

        model = self.active_model()
        if model is None or not hasattr(prediction, "to_dict"):
            return None
        return self._write(lambda s: save_result(s, path, prediction.to_dict(), model),
                           f"could not save the result of {path} in the store")

    def _write(self, fn, what: str):
        store = self.store
        if store is None:
            return None
        try:
            out = fn(store)
        except Exception as exc:  # noqa: BLE001 - the store must never break recording
            traceback.print_exc()
            self.message.emit(f"{what}: {exc}")
            return None
        if out is not None:
            self.changed.emit()
        return out

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
