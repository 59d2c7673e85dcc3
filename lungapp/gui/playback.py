"""Playback of one recording through sounddevice, with a position the GUI can follow.

The audio callback (PortAudio's thread) only copies samples and advances an integer
position; a 30 Hz QTimer on the GUI thread reads that position and emits
``positionChanged``. Speed is tape-style: the stream runs at ``rate * speed``, so 0.5x
is half as fast and an octave lower, which keeps every sample (nothing is invented or
dropped) — the usual way auscultation trainers slow sounds down.

Whether an output device exists is checked in a worker (importing sounddevice
initialises PortAudio, which can take a moment); until then, or when there is none,
``available`` is False and ``unavailable_reason`` says why.
"""

from __future__ import annotations

import os

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from lungapp.errors import LungappError
from lungapp.gui.workers import run_task

SPEEDS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


def output_latency() -> str:
    """PortAudio's suggested output latency for playback: "low" unless
    LUNGAPP_PLAYBACK_LATENCY says "high". PortAudio's own default for output streams is
    "high" (large buffers, for music players); a reviewer pressing Space wants to hear
    the sound at once, and buffers sized in frames last longest at 8 kHz, the rate of
    most stethoscope recordings (benchmarks/bench_playback.py measures it)."""
    return "high" if os.environ.get("LUNGAPP_PLAYBACK_LATENCY", "").lower() == "high" else "low"


def _probe_output(task):
    """Name of the default output device, or raise with the reason there is none."""
    try:
        import sounddevice as sd
    except OSError as exc:  # PortAudio library missing
        raise LungappError(f"audio library unavailable ({exc})") from None
    from lungapp.audio.devices import PA_LOCK

    try:
        with PA_LOCK:  # not while the Record view re-initialises PortAudio (devices.rescan)
            info = sd.query_devices(kind="output")
    except Exception as exc:  # noqa: BLE001 - sounddevice raises several kinds
        raise LungappError(f"no audio output device ({exc})") from None
    if not info or info.get("max_output_channels", 0) < 1:
        raise LungappError("no audio output device")
    return str(info.get("name", "default output"))


class Player(QObject):
    positionChanged = Signal(float)       # seconds into the recording
    playingChanged = Signal(bool)
    availabilityChanged = Signal(bool, str)   # available, device name or reason
    error = Signal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.available = False
        self.unavailable_reason = "checking the audio output…"
        self.device_name = ""
        self._samples = np.zeros(0, dtype=np.float32)
        self._rate = 0
        self._pos = 0            # next sample the callback will write (file samples)
        self._speed = 1.0
        self._stream = None
        self._ended = False
        self._timer = QTimer(self)
        self._timer.setInterval(33)
        self._timer.timeout.connect(self._tick)
        self._probe = None
        self._raw = self._samples    # as decoded; _samples is what is heard (band-passed)
        self._band: tuple[float, float] | None = None
        self._gain = 1.0
        self._range: tuple[int, int] | None = None  # play only these samples (a selection)
        self._loop = False

    # --- device --------------------------------------------------------------------
    def probe_device(self) -> None:
        self._probe = run_task(_probe_output, name="probe audio output",
                               on_finished=self._probe_ok, on_failed=self._probe_failed)

    def _probe_ok(self, name: str) -> None:
        self.available, self.device_name, self.unavailable_reason = True, name, ""
        self.availabilityChanged.emit(True, name)

    def _probe_failed(self, message: str, exc) -> None:
        self.available, self.unavailable_reason = False, message
        self.availabilityChanged.emit(False, message)

    # --- content -------------------------------------------------------------------
    def set_audio(self, samples: np.ndarray, rate: int) -> None:
        """Replace what is played (stops playback, position back to 0)."""
        self.stop()
        self._raw = np.ascontiguousarray(samples, dtype=np.float32)
        self._rate = int(rate)
        self._range = None
        try:
            self._samples = self._filtered()
        except ValueError as err:  # a band this recording's rate cannot take: heard as recorded
            self._samples = self._raw
            self.error.emit(f"Band-pass not applied to this recording: {err}")
        self._pos = 0
        self.positionChanged.emit(0.0)

    def clear(self) -> None:
        self.set_audio(np.zeros(0, dtype=np.float32), 0)

    @property
    def duration(self) -> float:
        return len(self._samples) / self._rate if self._rate else 0.0

    @property
    def has_audio(self) -> bool:
        return len(self._samples) > 0 and self._rate > 0

    @property
    def playing(self) -> bool:
        return self._stream is not None

    @property
    def speed(self) -> float:
        return self._speed

    def position(self) -> float:
        """Seconds into the recording of the sample being heard now (latency-corrected)."""
        if not self._rate:
            return 0.0
        pos = self._pos
        if self._stream is not None:
            try:
                latency = float(self._stream.latency)
            except Exception:  # noqa: BLE001 - stream closing under us
                latency = 0.0
            pos -= latency * self._rate * self._speed
        return float(min(max(pos, 0), len(self._samples))) / self._rate

    # --- control -------------------------------------------------------------------
    def toggle(self) -> None:
        self.pause() if self.playing else self.play()

    def play(self) -> bool:
        if self.playing or not self.has_audio:
            return self.playing
        if not self.available:
            self.error.emit(f"Playback unavailable: {self.unavailable_reason}")
            return False
        start, end = self._range if self._range is not None else (0, len(self._samples))
        if not start <= self._pos < end:
            self._pos = start
        import sounddevice as sd  # already imported by the probe

        self._ended = False
        from lungapp.audio.devices import PA_LOCK

        try:
            with PA_LOCK:  # not while the Record view re-initialises PortAudio
                stream = sd.OutputStream(samplerate=self._rate * self._speed, channels=1,
                                         dtype="float32", callback=self._callback,
                                         latency=output_latency(),
                                         finished_callback=self._on_stream_finished)
                stream.start()
        except Exception as exc:  # noqa: BLE001 - PortAudioError and friends
            self.error.emit(f"Playback failed: {exc}")
            return False
        self._stream = stream
        self._timer.start()
        self.playingChanged.emit(True)
        return True

    def pause(self) -> None:
        """Stop the sound and keep the position."""
        if self._stream is None:
            return
        heard = self.position()
        self._close_stream()
        self._pos = int(round(heard * self._rate))
        self.positionChanged.emit(self.position())
        self.playingChanged.emit(False)

    def stop(self) -> None:
        was = self._stream is not None
        self._close_stream()
        if was:
            self.playingChanged.emit(False)

    def seek(self, seconds: float) -> None:
        if not self._rate:
            return
        self._pos = int(np.clip(seconds, 0.0, self.duration) * self._rate)
        self.positionChanged.emit(self.position())

    def seek_by(self, seconds: float) -> None:
        """Move the position by ``seconds`` (negative: back), playing or not."""
        self.seek(self.position() + seconds)

    def set_speed(self, speed: float) -> None:
        if speed == self._speed:
            return
        if self.playing:
            self.pause()
            self._speed = float(speed)
            self.play()
        else:
            self._speed = float(speed)

    # --- listening aids ---------------------------------------------------------------
    def set_band(self, band: tuple[float, float] | None) -> None:
        """Band-pass what is heard to ``band`` (Hz), or play it as recorded (None). Raises
        ValueError for a range with nothing left at this recording's rate."""
        old = self._band
        self._band = band
        try:
            self._samples = self._filtered()
        except ValueError:
            self._band = old
            raise

    def _filtered(self) -> np.ndarray:
        if self._band is None or not self._rate or not len(self._raw):
            return self._raw
        from lungapp.dsp.listening import band_pass

        return band_pass(self._raw, self._rate, *self._band)

    def set_gain_db(self, db: float) -> None:
        from lungapp.dsp.listening import gain_factor

        self._gain = gain_factor(db)

    def play_range(self, start_s: float, end_s: float, loop: bool = False) -> bool:
        """Play only ``start_s``-``end_s`` (looping it with ``loop``) until :meth:`clear_range`."""
        if not self._rate:
            return False
        self.pause()
        a = int(np.clip(start_s, 0.0, self.duration) * self._rate)
        b = int(np.clip(end_s, 0.0, self.duration) * self._rate)
        self._range, self._loop = (a, max(b, a + 1)), loop
        self._pos = a
        return self.play()

    def clear_range(self) -> None:
        self._range, self._loop = None, False

    # --- internals -----------------------------------------------------------------
    def _callback(self, outdata, frames, time_info, status):  # PortAudio thread
        import sounddevice as sd

        start, end = self._range if self._range is not None else (0, len(self._samples))
        pos, written = self._pos, 0
        while written < frames:
            chunk = self._samples[pos:min(pos + frames - written, end)]
            n = len(chunk)
            outdata[written:written + n, 0] = np.clip(chunk * self._gain, -1.0, 1.0)
            written, pos = written + n, pos + n
            if pos >= end and self._loop:
                pos = start
            elif n == 0 or pos >= end:
                break
        self._pos = pos
        if written < frames:
            outdata[written:, 0] = 0.0
            raise sd.CallbackStop

    def _on_stream_finished(self):  # PortAudio thread
        self._ended = True

    def _close_stream(self) -> None:
        self._timer.stop()
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.abort()
                stream.close()
            except Exception:  # noqa: BLE001 - device gone: nothing left to close
                pass

    def _tick(self) -> None:
        if self._ended and self._stream is not None:
            self._close_stream()
            self._pos = self._range[1] if self._range is not None else len(self._samples)
            self.positionChanged.emit(self._pos / self._rate if self._rate else 0.0)
            self.playingChanged.emit(False)
            return
        self.positionChanged.emit(self.position())
