"""A one-thread prefetcher: make the next training batches while the model trains.

Augmentation is NumPy/SciPy work that releases the GIL, and a Keras training step spends
most of its time in TensorFlow kernels that release it too, so preparing batch b+1 in a
thread while batch b trains overlaps the two. The producer is an ordinary iterator; its
items come out in the order it made them, so results are the same as calling it inline.
"""

from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator

_DONE = object()


class Prefetcher:
    """Run ``iterable`` in a daemon thread, keeping up to ``depth`` items ready.

    :meth:`next` returns the next item, re-raises an exception the producer raised (with
    its traceback), and raises ``StopIteration`` after the last item. :meth:`close` stops
    the producer (it may be blocked on a full queue) and waits for the thread; call it
    when the consumer stops early (early stopping, cancel, an error).
    """

    def __init__(self, iterable: Iterable, depth: int = 4):
        if depth < 1:
            raise ValueError("depth must be >= 1")
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._run, args=(iter(iterable),),
                                        name="lungapp-batches", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, it: Iterator) -> None:
        try:
            for item in it:
                if not self._put((True, item)):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            self._put((False, exc))
            return
        self._put((True, _DONE))

    def next(self):
        if self._finished:
            raise StopIteration
        ok, item = self._q.get()
        if not ok:
            self._finished = True
            raise item
        if item is _DONE:
            self._finished = True
            raise StopIteration
        return item

    def __iter__(self):
        return self

    __next__ = next

    def close(self) -> None:
        self._stop.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self._q.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=5.0)
        self._finished = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
