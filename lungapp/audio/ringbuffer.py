"""A preallocated single-writer, many-reader ring buffer of audio frames.

The PortAudio callback is the one writer: :meth:`RingBuffer.write` only copies the
block into a preallocated array and then advances a counter, so it never allocates,
locks or waits. Each consumer (the file writer thread, the live view) holds its own
:class:`RingReader` with its own position; the writer never waits for a reader. A
reader that falls more than ``capacity`` frames behind has lost data, and says so
(:attr:`RingReader.lost_frames`) instead of silently returning overwritten samples.

The idea is Friture's ``ringbuffer.py`` (one growing offset, readers copy out what
they need). Written by hand because no maintained library offers a lock-free SPSC
buffer of numpy frames for a PortAudio callback.

Thread safety relies on CPython: ``self._written`` is a Python int rebound in a single
bytecode store, after the samples are in place, so a reader that sees a new value also
sees the samples. The writer announces the block it is about to copy in
(``_reserved``) and a reader re-checks that after copying, so a writer that laps it
during the copy is detected and the overwritten frames are dropped (seqlock style).
"""

from __future__ import annotations

import numpy as np


class RingBuffer:
    """``capacity`` frames of ``channels`` float32 samples.

    Positions are absolute frame counts since the buffer was created (or reset), so a
    reader can tell exactly how many frames it has missed.
    """

    def __init__(self, capacity: int, channels: int = 1, dtype=np.float32):
        if capacity < 1 or channels < 1:
            raise ValueError(f"capacity and channels must be >= 1 (got {capacity}, {channels})")
        self.capacity = int(capacity)
        self.channels = int(channels)
        self._data = np.zeros((self.capacity, self.channels), dtype=dtype)
        self._written = 0  # total frames ever written; only the writer rebinds it
        # End of the block being copied in right now: slots of frames older than
        # ``_reserved - capacity`` may already hold new samples.
        self._reserved = 0

    @property
    def written(self) -> int:
        """Total frames written since creation."""
        return self._written

    def write(self, block: np.ndarray) -> None:
        """Copy ``block`` (shape ``(n,)`` for mono or ``(n, channels)``) into the ring.

        Safe to call from a real-time audio callback: no allocation beyond numpy's view
        objects, no locks. A block longer than the capacity keeps its last frames only.
        """
        n = block.shape[0]
        if n == 0:
            return
        if block.ndim == 1:
            block = block.reshape(n, 1)
        start = self._written
        if n > self.capacity:
            block = block[n - self.capacity:]
            start += n - self.capacity
            n = self.capacity
        self._reserved = start + n  # announce the overwrite before doing it
        i = start % self.capacity
        first = min(n, self.capacity - i)
        self._data[i:i + first] = block[:first]
        if first < n:
            self._data[: n - first] = block[first:]
        self._written = start + n  # publish only once the samples are in place

    def reader(self, from_now: bool = True) -> RingReader:
        """A new reader positioned at the newest frame (``from_now``) or the oldest kept."""
        pos = self._written if from_now else max(0, self._written - self.capacity)
        return RingReader(self, pos)

    def latest(self, n: int) -> np.ndarray:
        """A copy of the newest ``min(n, written, capacity)`` frames, shape ``(k, channels)``.

        For displays that only want "the last n samples"; may be slightly torn if the
        writer laps during the copy, which a display tolerates.
        """
        end = self._written
        n = int(min(n, end, self.capacity))
        return self._copy(end - n, end)

    def _copy(self, start: int, end: int) -> np.ndarray:
        n = end - start
        out = np.empty((n, self.channels), dtype=self._data.dtype)
        if n == 0:
            return out
        i = start % self.capacity
        first = min(n, self.capacity - i)
        out[:first] = self._data[i:i + first]
        if first < n:
            out[first:] = self._data[: n - first]
        return out


class RingReader:
    """One consumer's position in a :class:`RingBuffer`."""

    def __init__(self, ring: RingBuffer, position: int):
        self.ring = ring
        self.position = position
        self.lost_frames = 0  # frames overwritten before this reader got to them

    @property
    def available(self) -> int:
        return self.ring.written - self.position

    def read(self, max_frames: int | None = None) -> np.ndarray:
        """Copy out the frames not yet read (at most ``max_frames``), oldest first.

        Returns an array of shape ``(n, channels)``; ``n`` may be 0. If the writer has
        overwritten frames this reader had not read, they are skipped and added to
        :attr:`lost_frames`.
        """
        ring = self.ring
        end = ring.written
        oldest = end - ring.capacity
        if self.position < oldest:
            self.lost_frames += oldest - self.position
            self.position = oldest
        if max_frames is not None:
            end = min(end, self.position + int(max_frames))
        out = ring._copy(self.position, end)
        # The writer may have lapped us during the copy: drop what it overwrote (or was
        # overwriting: it announces a block in ``_reserved`` before copying it in).
        oldest_now = ring._reserved - ring.capacity
        if oldest_now > self.position:
            bad = min(oldest_now - self.position, len(out))
            self.lost_frames += bad
            out = out[bad:]
        self.position = end
        return out
