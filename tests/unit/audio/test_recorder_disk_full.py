"""The recorder on a disk that fills up (a real 400 KB tmpfs), and with its file deleted
under it: the message says what happened in the user's words, the audio that reached the
disk is published as a readable WAV with a repaired header, and a result never names a file
that does not exist."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import soundfile as sf

from lungapp.audio.recorder import RecorderError, Recording, RecordingSettings, find_interrupted
from lungapp.audio.ringbuffer import RingBuffer

from mount_helpers import tmpfs

RATE = 48000
Q24 = 1.0 / 2 ** 23  # one PCM_24 step
SIZE = "400k"        # 48 kHz PCM_24 mono fills it in about 2.8 s


def noise(seconds: float, seed: int = 4) -> np.ndarray:
    return (0.4 * np.random.default_rng(seed).uniform(-1, 1, int(seconds * RATE))).astype(np.float32)


class Feeder:
    """Feeds ``signal`` into a ring in real time, as a capture would, until stopped."""

    def __init__(self, ring: RingBuffer, signal: np.ndarray, block: int = 960):
        self.ring, self.signal, self.block = ring, signal, block
        self.overflows = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for i in range(0, len(self.signal), self.block):
            if self._stop.is_set():
                return
            self.ring.write(self.signal[i:i + self.block])
            time.sleep(self.block / RATE)

    def failure(self):
        return None

    def stop(self) -> None:
        self._stop.set()


def test_a_full_disk_stops_the_recording_says_so_and_publishes_what_was_written(tmp_path):
    with tmpfs(tmp_path / "small", SIZE) as disk:
        x = noise(8.0)                       # far more than fits
        ring = RingBuffer(RATE * 10)
        src = Feeder(ring, x)
        rec = Recording(ring, RATE, RecordingSettings(out=disk / "r.wav", site="Trachea",
                                                      patient_id="DF-1"), source=src)
        res = rec.wait(30)
        assert res is not None, "the recording did not stop when the disk filled"
        assert res.reason == "disk error"
        # in the user's words, naming where (libsndfile's own error text was empty)
        assert res.error == f"cannot write to {disk}: the disk is full"
        # what reached the disk is published, with a header that says how much there is
        assert res.published and res.path == disk / "r.wav" and res.path.is_file()
        assert not (disk / "r.wav.partial").exists() and find_interrupted(disk) == []
        y, rate = sf.read(res.path, dtype="float32")
        assert rate == RATE and len(y) == res.frames > 2 * RATE
        assert np.max(np.abs(y - x[:len(y)])) <= Q24   # the audio itself, in order, nothing else
        assert res.sidecar == disk / "r.json" and res.sidecar.is_file()


def test_starting_on_a_full_disk_says_the_disk_is_full_and_leaves_nothing(tmp_path):
    with tmpfs(tmp_path / "small", SIZE) as disk:
        with pytest.raises(OSError), open(disk / "filler", "wb") as f:  # fill it up
            f.write(b"\0" * 512 * 1024)
        with pytest.raises(RecorderError, match="cannot start recording: the disk is full"):
            Recording(RingBuffer(RATE), RATE, RecordingSettings(out=disk / "r.wav"))
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_a_recording_deleted_under_the_recorder_is_not_reported_as_kept(tmp_path):
    ring = RingBuffer(RATE * 5)
    rec = Recording(ring, RATE, RecordingSettings(out=tmp_path / "r.wav", site="Trachea"))
    ring.write(noise(1.0))
    deadline = time.monotonic() + 10
    while rec.frames_written < RATE and time.monotonic() < deadline:
        time.sleep(0.02)
    rec.partial_path.unlink()                 # a cleaner, or the user, removed it
    res = rec.stop()
    assert not res.published and not res.path.exists()
    assert res.reason == "disk error"
    assert "No such file or directory" in res.error and "is gone" in res.error
    assert "offered for recovery" not in res.error   # nothing is left to offer
