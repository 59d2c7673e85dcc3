"""Live capture from an input device into a :class:`~lungapp.audio.ringbuffer.RingBuffer`.

The PortAudio callback does nothing but count overflows and copy the chosen channel
into the ring; everything else (writing the file, the live view) reads the ring from
other threads. A device that stops delivering audio (unplugged, driver error) is
detected by :meth:`Capture.failure` so the recorder can stop and keep what it has.
"""

from __future__ import annotations

import math
import threading
import time

from lungapp.audio.devices import (
    PA_LOCK,
    DeviceError,
    DeviceInfo,
    _sd,
    abandon,
    choose_rate,
    current,
    find_device,
    released,
)
from lungapp.audio.ringbuffer import RingBuffer

# No callback for this long while running = the device is gone. Generous: on a busy
# machine a sound server may pause a few seconds, and stopping a recording for a
# pause would be worse than the pause. A device that really fails usually ends the
# stream at once (finished_callback / inactive stream), which is detected immediately.
STALL_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 2.0  # how long stopping a stream may take before it is left behind
# The first block may take a while (sound servers, Bluetooth, USB wake-up).
FIRST_BLOCK_TIMEOUT_S = 15.0
BLOCK_S = 0.020
_CLOSING = threading.Lock()  # a stop's end and the decision to leave it behind, one at a time


def default_blocksize(rate: int) -> int:
    """The power of two nearest to BLOCK_S seconds at ``rate`` (1024 at 44.1/48 kHz)."""
    return 1 << max(6, round(math.log2(rate * BLOCK_S)))


class Capture:
    """An input stream on ``device`` (a DeviceInfo, index, name or None for the
    default) at ``rate`` Hz (None: :func:`~lungapp.audio.devices.choose_rate`),
    recording channel ``channel`` (0-based) as mono float32, in blocks of ``blocksize``
    frames (None: :func:`default_blocksize`; 0: whatever the host API prefers).

    ``ring_seconds`` sizes the ring: a reader may fall that far behind before losing
    audio. Use as a context manager or call :meth:`start` / :meth:`stop`.
    """

    def __init__(self, device=None, rate: int | None = None, channel: int = 0,
                 ring_seconds: float = 30.0, blocksize: int | None = None, latency="high"):
        with PA_LOCK:  # not while PortAudio is being re-initialised (devices.rescan)
            dev = device if isinstance(device, DeviceInfo) else find_device(device)
            self._check_channel(dev, channel)
            if isinstance(device, DeviceInfo):
                # A DeviceInfo from an earlier listing is looked up again by name and host
                # API: a device re-scan (devices.rescan) may have renumbered the devices.
                dev = current(dev)
                self._check_channel(dev, channel)
            self.device: DeviceInfo = dev
            self.channel = int(channel)
            # At least two channels of a device that has them: asked for one, a host API
            # (PulseAudio) mixes every channel into it, and channel 1 would hold channel 2 too.
            self.channels = max(self.channel + 1, min(2, dev.max_input_channels))
            self.rate = choose_rate(self.device, rate, channels=self.channels)
        self.ring = RingBuffer(int(ring_seconds * self.rate), channels=1)
        self.overflows = 0     # callbacks flagged input_overflow (audio lost by the driver)
        self.callbacks = 0
        self._last_callback = 0.0
        self._stream = None
        self._stopping = False
        self._finished = False
        # Blocks of ~20 ms (a power of two): a callback 50 times a second instead of
        # whatever small blocks the host API prefers (PulseAudio: ~9 ms), which halves
        # the capture's CPU; the live view smooths the bursts (ScrollClock).
        self._blocksize = default_blocksize(self.rate) if blocksize is None else int(blocksize)
        self._latency = latency

    @staticmethod
    def _check_channel(device: DeviceInfo, channel: int) -> None:
        if not 0 <= channel < device.max_input_channels:
            raise DeviceError(f"device {device.index} ({device.name}) has "
                              f"{device.max_input_channels} input channel(s); "
                              f"channel {channel + 1} does not exist")

    # --- the real-time part: keep it tiny -------------------------------------------------
    def _callback(self, indata, frames, time_info, status):
        if status.input_overflow:
            self.overflows += 1
        self.ring.write(indata[:, self.channel])
        self.callbacks += 1
        self._last_callback = time.monotonic()

    def _on_finished(self):
        self._finished = True

    # --- control ------------------------------------------------------------------------
    def start(self) -> Capture:
        sd = _sd()
        try:
            with PA_LOCK:  # not while PortAudio is being re-initialised (devices.rescan)
                self._stream = sd.InputStream(
                    device=self.device.index, channels=self.channels, samplerate=self.rate,
                    dtype="float32", blocksize=self._blocksize, latency=self._latency,
                    callback=self._callback, finished_callback=self._on_finished)
                self._last_callback = time.monotonic()
                self._stream.start()
        except Exception as exc:
            self._stream = None
            raise DeviceError(f"cannot open input device {self.device.index} "
                              f"({self.device.name}) at {self.rate} Hz: {exc}") from None
        return self

    def stop(self) -> None:
        """Stop and close the stream. A device or audio server that no longer answers (a
        hung USB or Bluetooth driver) can block PortAudio's stop for ever: it is given
        STOP_TIMEOUT_S in a thread of its own, then left behind, so the recording that
        waits on this is still saved."""
        self._stopping = True
        stream, self._stream = self._stream, None
        if stream is None:
            return

        done = threading.Event()

        def close() -> None:
            try:
                stream.stop()
            except Exception:
                pass  # the device may already be gone; what was captured is in the ring
            try:
                stream.close()
            except Exception:
                pass
            with _CLOSING:
                done.set()
                released(stream)  # (when it was left behind: it answered after all)

        closer = threading.Thread(target=close, name="lungapp-stream-stop", daemon=True)
        closer.start()
        closer.join(STOP_TIMEOUT_S)
        with _CLOSING:  # a stop that returns just now is not left behind
            if not done.is_set():
                abandon(stream)

    @property
    def running(self) -> bool:
        return self._stream is not None and not self._finished

    def failure(self) -> str | None:
        """None while the device is delivering audio, else why it is not."""
        if self._stopping:
            return None
        name = f"input device {self.device.index} ({self.device.name})"
        if self._finished or (self._stream is not None and not self._stream.active):
            return f"{name} stopped delivering audio (unplugged or failed)"
        limit = STALL_TIMEOUT_S if self.callbacks else FIRST_BLOCK_TIMEOUT_S
        if time.monotonic() - self._last_callback > limit:
            return f"{name} delivered no audio for {limit:g} s (unplugged or failed)"
        return None

    def wait_first_callback(self, timeout: float = 5.0) -> bool:
        """Block until the first block arrived (tests: start playing only then)."""
        end = time.monotonic() + timeout
        while self.callbacks == 0 and time.monotonic() < end:
            time.sleep(0.01)
        return self.callbacks > 0

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
