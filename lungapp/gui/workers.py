"""Background work for the GUI: anything that may take more than a few milliseconds
(TensorFlow import, model loading, decoding, spectrograms, inference, folder scans)
runs here, never on the GUI thread.

A :class:`Task` wraps a plain function ``fn(task, *args)`` that runs in a
``QThreadPool``. The function may call ``task.progress(done, total, text)`` and should
check ``task.cancelled`` between steps; it returns a result or raises. Results and
errors come back to the GUI thread through Qt signals (queued connections), so slots
may touch widgets.

Why QRunnable + a QObject for signals (not QThread subclasses): one pool bounds the
number of threads on a small machine, and a task that is cancelled before it starts
costs nothing.
"""

from __future__ import annotations

import threading
import traceback

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from lungapp.errors import LungappError


class TaskSignals(QObject):
    """Signals of one :class:`Task` (a QRunnable cannot carry signals itself)."""

    progress = Signal(int, int, str)      # done, total, text
    partial = Signal(object)              # an intermediate result (e.g. a batch of rows)
    finished = Signal(object)             # the function's return value
    failed = Signal(str, object)          # one-line message, the exception
    cancelled = Signal()
    done = Signal()                       # always last, whatever happened


class Task(QRunnable):
    """One unit of background work. Create with :func:`run_task`."""

    def __init__(self, fn, *args, name: str = "", **kwargs):
        super().__init__()
        self.setAutoDelete(False)  # the Python object owns itself; avoids double delete
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.name = name or getattr(fn, "__name__", "task")
        self.signals = TaskSignals()
        self._cancel = threading.Event()
        self.is_done = False

    # --- API for the function running in the worker ---------------------------------
    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def progress(self, done: int, total: int, text: str = "") -> None:
        self.signals.progress.emit(int(done), int(total), str(text))

    def emit_partial(self, obj) -> None:
        self.signals.partial.emit(obj)

    # --- API for the GUI ------------------------------------------------------------
    def cancel(self) -> None:
        self._cancel.set()

    def run(self) -> None:  # QRunnable entry point, in a pool thread
        try:
            if self.cancelled:
                self.signals.cancelled.emit()
                return
            result = self.fn(self, *self.args, **self.kwargs)
            if self.cancelled:
                self.signals.cancelled.emit()
            else:
                self.signals.finished.emit(result)
        except LungappError as exc:
            self.signals.failed.emit(str(exc), exc)
        except Exception as exc:  # noqa: BLE001 - a worker must never take the app down
            # An unexpected error is still shown as one line; the traceback goes to stderr
            # for bug reports.
            traceback.print_exc()
            self.signals.failed.emit(f"{type(exc).__name__}: {exc}", exc)
        finally:
            self.is_done = True
            self.signals.done.emit()


# Tasks that are still referenced by nobody else must stay alive until they are done.
_live: set[Task] = set()


def _forget(task: Task) -> None:
    _live.discard(task)


# run_task's callbacks: ``on_<signal>`` for each of these TaskSignals.
CALLBACKS = ("finished", "failed", "progress", "partial", "cancelled", "done")


def _while_alive(owner: QObject, task: Task, slot):
    """``slot``, called only while ``owner``'s C++ object exists. A lambda connected to a
    task's signal is not tied to the widget it touches, so without this a task that ends
    after its view was closed would call into deleted widgets; the task is cancelled instead."""
    def guarded(*args):
        if shiboken6.isValid(owner):
            slot(*args)
        else:
            task.cancel()
    return guarded


def run_task(fn, *args, pool: QThreadPool | None = None, name: str = "", owner: QObject | None = None,
             **callbacks) -> Task:
    """Start ``fn(task, *args)`` in ``pool`` (default: the global pool) and connect the
    GUI-thread ``callbacks``, given by name: ``on_finished(result)``,
    ``on_failed(message, exc)``, ``on_progress(done, total, text)``, ``on_partial(obj)``,
    ``on_cancelled()``, ``on_done()``. With ``owner`` (the widget the callbacks touch), the
    callbacks are skipped once it has been deleted. Returns the task (keep it to cancel)."""
    task = Task(fn, *args, name=name)
    s = task.signals
    for key, slot in callbacks.items():
        signal_name = key.removeprefix("on_")
        if not key.startswith("on_") or signal_name not in CALLBACKS:
            raise TypeError(f"run_task() got an unexpected keyword argument {key!r}")
        if slot:
            getattr(s, signal_name).connect(slot if owner is None else _while_alive(owner, task, slot))
    s.done.connect(lambda t=task: _forget(t))
    _live.add(task)
    (pool or QThreadPool.globalInstance()).start(task)
    return task


def wait_until(cond, timeout_s: float, poll_ms: int = 50) -> bool:
    """Run the Qt event loop until ``cond()`` is true or ``timeout_s`` has passed; return
    ``cond()``. For scripts that drive the app (screenshots, benchmarks): the window keeps
    painting and workers keep reporting while they wait."""
    from PySide6.QtCore import QEventLoop, QTimer

    if cond():
        return True
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(poll_ms)
    timer.timeout.connect(lambda: cond() and loop.quit())
    timer.start()
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    timer.stop()
    return bool(cond())


def wait_all(timeout_ms: int = 5000) -> bool:
    """Wait for the global pool (used on quit and in tests)."""
    return QThreadPool.globalInstance().waitForDone(timeout_ms)
