"""Keep freed working memory for reuse between predictions (glibc only).

A prediction allocates and frees the same few arrays every time: the spectrogram's frame
matrix and FFT (about 4 MB each for a 15-s recording), the network's patch matrices (up to
8 MB). glibc serves blocks above its mmap threshold (128 KB, raised dynamically up to
32 MB) with fresh ``mmap`` pages and gives them back on ``free``; the next prediction then
pays a page fault for every 4 KB it touches again. Under a hypervisor those faults are
slow: on the 2-core development VM a 15-s recording's spectrogram took 14 ms with fresh
pages against 7 ms with reused ones, and the network's call 25 ms against 17 ms
(``benchmarks/bench_predict.py --runtimes numpy,numpy:untuned``).

:func:`keep_freed_memory` sets a fixed mmap threshold of :data:`MMAP_THRESHOLD` and a trim
threshold of :data:`TRIM_THRESHOLD` with ``mallopt``, so such blocks come from the heap and
stay mapped when freed. The cost is that up to TRIM_THRESHOLD of freed memory at the top of
the heap stays with the process; peak memory is unchanged. Blocks larger than
MMAP_THRESHOLD (a long recording's samples) are still mapped and unmapped as before.

It does nothing on other C libraries (macOS, Windows, musl), when ``LUNGAPP_MALLOC_TUNE=0``,
or when the user tunes glibc's allocator through its own environment variables
(``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, ``GLIBC_TUNABLES``).
"""

from __future__ import annotations

import ctypes
import os
import platform
import threading

#: Blocks of up to this size come from the heap (the largest working array of a 15-s
#: prediction is about 8 MB; an hour-long recording's 8 kHz samples are over 100 MB).
MMAP_THRESHOLD = 32 << 20
#: Freed memory at the top of the heap is kept up to this size.
TRIM_THRESHOLD = 64 << 20

_M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
_M_MMAP_THRESHOLD = -3
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")

_lock = threading.Lock()
_state: str | None = None


def keep_freed_memory() -> str:
    """Tune glibc's allocator once per process; returns what was done, one of ``"tuned"``,
    ``"off"`` (LUNGAPP_MALLOC_TUNE=0), ``"user"`` (the user's own glibc settings are
    kept), ``"unsupported"`` (not glibc, or mallopt refused)."""
    global _state
    with _lock:
        if _state is None:
            _state = _tune()
        return _state


def _tune() -> str:
    if os.environ.get("LUNGAPP_MALLOC_TUNE", "").strip() == "0":
        return "off"
    if any(os.environ.get(name) for name in _USER_SETTINGS):
        return "user"
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return "unsupported"
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return "unsupported"
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success (either call also turns off glibc's dynamic threshold).
    if mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) != 1:
        return "unsupported"
    if mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1:
        return "unsupported"
    return "tuned"
