"""Scratch arrays kept per thread and reused from call to call.

Why: a prediction's frame spectra are a few hundred kB to a few MB at a time. Allocated
afresh on every call, arrays of that size come from (and go back to) the operating system,
and every call pays a page fault for each 4 kB page it touches: on the 2-core guest this
made the quality check take twice its arithmetic (about 900 faults for a 15-s recording;
docs/benchmarks.md#prediction). Reusing the same memory costs one allocation per thread.
"""

from __future__ import annotations

import threading

import numpy as np

_local = threading.local()


def scratch(key: str, rows: int, shape: tuple[int, ...], dtype) -> np.ndarray:
    """The first ``rows`` rows of this thread's scratch array ``key``, an array of
    ``(at least rows, *shape)`` of ``dtype`` (grown when a call needs more rows). Its
    contents are whatever the last user left: write before reading. Valid until the
    same thread asks for ``key`` again."""
    arrays = _local.__dict__.setdefault("arrays", {})
    a = arrays.get(key)
    if a is None or a.shape[1:] != tuple(shape) or a.dtype != np.dtype(dtype) or len(a) < rows:
        a = arrays[key] = np.empty((rows, *shape), dtype=dtype)
    return a[:rows]
