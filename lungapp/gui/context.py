"""The one object the views share: settings, the active model and the analysis queue.

Created once by the main window and handed to every view (``RecordView(context)``,
``ReviewView(context)``...). Views talk to each other only through its signals:

* ``modelStateChanged(state, message)``: state is ``"loading"``, ``"ready"`` or
  ``"error"``; message is one line for the status bar.
* ``recordingFinished(path)``: the Record view emits it once a recording is safely on
  disk; Review adds the file to its list and analyses it.
* ``analysisStarted(path)``, ``analysisFinished(path, prediction)``,
  ``analysisFailed(path, message)``, ``analysisCancelled(path)``: emitted for every
  analysis requested anywhere through :meth:`request_analysis`.

The model is loaded in a worker after the window is shown (with ONNX Runtime no
TensorFlow is imported at all; with the Keras runtime TensorFlow is imported there);
analyses run one at a time in their own single-thread pool, in request order.
"""

from __future__ import annotations

import os
from collections import deque

from PySide6.QtCore import QObject, QSettings, QThreadPool, Signal

from lungapp import paths
from lungapp.gui.workers import Task, run_task

LOADING, READY, ERROR = "loading", "ready", "error"

# The core's advice in CLI words, and the same advice in the window's words.
_GUI_WORDS = (("(train one with `lungapp train` and install it with `lungapp models install`)",
               "(train one in the Train tab and press Use this model, or choose one in "
               "Analysis > Models…)"),)


def gui_terms(message: str) -> str:
    """``message`` with CLI commands replaced by where the window does the same."""
    for cli, gui in _GUI_WORDS:
        message = message.replace(cli, gui)
    return message


def _load_predictor(task: Task, model_dir):
    # Imported here, in a worker thread: inference imports TensorFlow/Keras only when the
    # model needs the Keras runtime (LUNGAPP_RUNTIME, or a model folder without ONNX files).
    from lungapp.inference.predictor import Predictor

    task.progress(0, 0, "Loading model")
    return Predictor.load(model_dir)


def _predict(task: Task, predictor, path: str):
    """The prediction of ``path``, carrying (as ``file_key``) the file's size and time as
    the analysis read it, or None when the file changed while it was read: a result must
    never be kept for content it was not made of."""
    from lungapp.store.results_cache import file_key

    before = file_key(path)
    prediction = predictor.predict_file(path)
    prediction.file_key = before if file_key(path) == before else None
    return prediction


def _window_settings() -> tuple[QSettings, str]:
    """The window's settings (``lungapp.ini`` in the config folder) and why they cannot be
    saved there, or "". A folder that cannot be made or written (a read-only disk) leaves
    the settings in memory for this session: the app must start all the same."""
    folder = paths.config_dir()
    file = folder / "lungapp.ini"
    problem = ""
    try:
        paths.ensure(folder)
    except OSError as exc:
        problem = exc.strerror or str(exc)
    if not problem and not (os.access(folder, os.W_OK | os.X_OK)
                            and (not file.exists() or os.access(file, os.W_OK))):
        problem = "no permission to write there"
    if problem:
        from lungapp.gui.store_hook import unwritable

        why = unwritable(file) or problem
        problem = f"Settings (window size, recent files...) cannot be saved in {folder}: {why}."
    return QSettings(str(file), QSettings.Format.IniFormat), problem


class AppContext(QObject):
    modelStateChanged = Signal(str, str)
    recordingFinished = Signal(str)
    analysisStarted = Signal(str)
    analysisFinished = Signal(str, object)
    analysisFailed = Signal(str, str)
    analysisCancelled = Signal(str)
    queueChanged = Signal(int)   # analyses waiting or running

    def __init__(self, parent: QObject | None = None, settings: QSettings | None = None):
        super().__init__(parent)
        #: Why the window's settings cannot be saved (a read-only folder...), or "". The
        #: app works on without saving them; the store hook says this once at start.
        self.settings_problem = ""
        if settings is None:
            settings, self.settings_problem = _window_settings()
        self.settings = settings
        self._predictor = None
        self._state = LOADING
        self._message = "Model not loaded yet"
        self._model_task: Task | None = None
        self._model_gen = 0
        self._queue: deque[str] = deque()
        self._current: tuple[str, Task] | None = None
        # One analysis at a time: a Keras model is not meant to be called from several
        # threads at once, and this machine has few cores.
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)

    # --- model ---------------------------------------------------------------------
    def predictor(self):
        """The loaded Predictor, or None while loading or after a failure."""
        return self._predictor

    def model_state(self) -> str:
        return self._state

    def model_key(self) -> tuple[str, str, str, str] | None:
        """The loaded model's identity as results carry it (file_list.model_key), or None."""
        from lungapp.gui.file_list import model_key

        p = self._predictor
        if p is None:
            return None
        return model_key({"name": p.card.name, "version": p.card.version,
                          "path": str(getattr(p, "model_dir", "") or ""),
                          "card": getattr(p, "card_digest", "")})

    def model_message(self) -> str:
        return self._message

    def _set_state(self, state: str, message: str) -> None:
        self._state, self._message = state, message
        self.modelStateChanged.emit(state, message)

    def load_model(self, model_dir: str | os.PathLike | None = None) -> Task:
        """(Re)load a model in the background; None = the active model."""
        if self._model_task is not None and not self._model_task.is_done:
            self._model_task.cancel()
        self._predictor = None
        self._set_state(LOADING, "Loading model…")
        self._model_gen += 1
        gen = self._model_gen
        task = run_task(_load_predictor, model_dir, name="load model", owner=self,
                        on_finished=lambda pred, g=gen: self._model_loaded(pred, g),
                        on_failed=lambda msg, exc, g=gen: self._model_failed(msg, g))
        self._model_task = task
        return task

    def set_predictor(self, predictor) -> None:
        """Use an already loaded Predictor (e.g. a model just trained and installed)."""
        if self._model_task is not None and not self._model_task.is_done:
            self._model_task.cancel()
        self._model_gen += 1
        self._model_loaded(predictor, self._model_gen)

    def _model_loaded(self, predictor, gen: int) -> None:
        if gen != self._model_gen:
            return  # a newer load_model() superseded this one
        self._predictor = predictor
        card = predictor.card
        runtime = predictor.runtime_text() if hasattr(predictor, "runtime_text") else ""
        from lungapp.inference.registry import bundled_model_dir, missing_active_model

        bundled = getattr(predictor, "model_dir", None) == bundled_model_dir()
        missing = missing_active_model() if bundled else None  # the bundled one stands in: say so
        self._set_state(READY, f"Model: {card.name} {card.version}" + (f" · {runtime}" if runtime else "")
                        + (f" · WARNING: {missing}" if missing else ""))
        self._pump()

    def _model_failed(self, message: str, gen: int) -> None:
        if gen != self._model_gen:
            return
        self._predictor = None
        self._set_state(ERROR, f"No model: {gui_terms(message)}")
        self._pump()

    # --- analysis queue ------------------------------------------------------------
    def request_analysis(self, path: str) -> None:
        """Queue a background analysis of one file (duplicates of a queued file are
        ignored). Results arrive via analysisFinished / analysisFailed."""
        path = os.fspath(path)
        if path in self._queue:
            return
        self._queue.append(path)
        self.queueChanged.emit(self.pending())
        self._pump()

    def pending(self) -> int:
        return len(self._queue) + (1 if self._current else 0)

    def is_queued(self, path: str) -> bool:
        return path in self._queue or (self._current is not None and self._current[0] == path)

    def cancel_analyses(self, paths_: list[str] | None = None) -> list[str]:
        """Drop queued analyses (all, or those in ``paths_``); the one running finishes.
        Emits analysisCancelled for each dropped file and returns them."""
        if paths_ is None:
            dropped = list(self._queue)
            self._queue.clear()
        else:
            wanted = set(map(os.fspath, paths_))
            dropped = [p for p in self._queue if p in wanted]
            self._queue = deque(p for p in self._queue if p not in wanted)
        for p in dropped:
            self.analysisCancelled.emit(p)
        self.queueChanged.emit(self.pending())
        return dropped

    def _pump(self) -> None:
        if self._current is not None or not self._queue:
            return
        if self._state == LOADING:
            return  # resumes from _model_loaded / _model_failed
        if self._state == ERROR or self._predictor is None:
            failed = list(self._queue)
            self._queue.clear()
            for p in failed:
                self.analysisFailed.emit(p, self._message)
            self.queueChanged.emit(self.pending())
            return
        path = self._queue.popleft()
        task = run_task(_predict, self._predictor, path, pool=self._pool, name="analyse", owner=self,
                        on_finished=lambda pred, p=path: self._analysis_done(p, pred, None),
                        on_failed=lambda msg, exc, p=path: self._analysis_done(p, None, msg))
        self._current = (path, task)
        self.analysisStarted.emit(path)

    def _analysis_done(self, path: str, prediction, message: str | None) -> None:
        self._current = None
        if message is None:
            self.analysisFinished.emit(path, prediction)
        else:
            self.analysisFailed.emit(path, message)
        self.queueChanged.emit(self.pending())
        self._pump()

    # --- shutdown ------------------------------------------------------------------
    def shutdown(self, timeout_ms: int = 3000) -> None:
        """Drop queued work and wait briefly for running work (called on quit)."""
        self._queue.clear()
        if self._model_task is not None:
            self._model_task.cancel()
        self._pool.waitForDone(timeout_ms)
        self.settings.sync()
