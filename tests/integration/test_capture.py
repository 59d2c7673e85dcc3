"""Ring buffer, device selection, and a real capture round trip through PulseAudio.

The round trip plays a known signal (chirp + noise burst) with ``paplay`` into the null
sink ``ci_sink`` while :class:`lungapp.audio.capture.Capture` records its monitor at
48 kHz; the recording must match the signal (correlation >= 0.99 after alignment) with
zero overflows. It needs ``packaging/pulse-null-sink.sh`` (skipped with the reason when
PulseAudio is not installed).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
import time

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from lungapp.audio.ringbuffer import RingBuffer

from capture_helpers import aligned_correlation, make_signal, paplay

RATE = 48000


# --- ring buffer ----------------------------------------------------------------------

def test_ring_reads_back_what_was_written_across_the_wrap():
    ring = RingBuffer(10)
    r = ring.reader()
    ring.write(np.arange(7, dtype=np.float32))
    assert r.read()[:, 0].tolist() == list(range(7))
    ring.write(np.arange(7, 15, dtype=np.float32))  # wraps
    assert r.read()[:, 0].tolist() == list(range(7, 15))
    assert r.lost_frames == 0
    assert ring.latest(4)[:, 0].tolist() == [11, 12, 13, 14]


def test_a_lapped_reader_reports_lost_frames_not_garbage():
    ring = RingBuffer(8)
    r = ring.reader()
    ring.write(np.arange(20, dtype=np.float32))
    out = r.read()[:, 0]
    assert out.tolist() == list(range(12, 20))
    assert r.lost_frames == 12


def test_readers_are_independent_and_max_frames_is_respected():
    ring = RingBuffer(100, channels=2)
    a, b = ring.reader(), ring.reader()
    ring.write(np.arange(20, dtype=np.float32).reshape(10, 2))
    assert a.read(4).shape == (4, 2)
    assert b.read().shape == (10, 2)
    assert a.read()[0].tolist() == [8.0, 9.0]
    assert a.available == 0 and b.available == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=1, max_size=40), st.integers(1, 60))
def test_ring_concatenated_reads_equal_the_written_stream(blocks, capacity):
    ring = RingBuffer(capacity)
    r = ring.reader()
    written, read, lost = [], [], 0
    counter = 0
    for n in blocks:
        block = np.arange(counter, counter + n, dtype=np.float32)
        counter += n
        ring.write(block)
        written.append(block)
        read.append(r.read()[:, 0])
    stream = np.concatenate(written)
    got = np.concatenate(read)
    lost = r.lost_frames
    # Whatever was not lost arrives, in order, unchanged.
    assert lost + len(got) == len(stream)
    kept = np.concatenate([b[max(0, len(b) - capacity):] for b in written])
    assert np.array_equal(got, kept)


def test_ring_under_a_concurrent_writer_never_returns_torn_data():
    """A fast writer thread and a slower reader: every frame the reader returns is
    the right value for its position (no torn or stale copies)."""
    ring = RingBuffer(4096)
    r = ring.reader()
    total = 256 * 1600
    def writer():
        for start in range(0, total, 256):
            ring.write(np.arange(start, start + 256, dtype=np.float32))
    t = threading.Thread(target=writer)
    t.start()
    pos_ok = True
    got = 0
    while t.is_alive() or r.available:
        start_pos, lost_before = r.position, r.lost_frames
        out = r.read()[:, 0]
        first = start_pos + (r.lost_frames - lost_before)
        if len(out) and not np.array_equal(out, np.arange(first, first + len(out), dtype=np.float32)):
            pos_ok = False
            break
        got += len(out)
    t.join()
    assert pos_ok
    assert got + r.lost_frames == total


# --- devices: no PortAudio, no input device ---------------------------------------------

class _NoPortAudio(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes ``import sounddevice`` fail the way it does without libportaudio."""

    def find_spec(self, name, path, target=None):
        if name == "sounddevice":
            return importlib.machinery.ModuleSpec(name, self)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        raise OSError("PortAudio library not found")


def test_missing_portaudio_is_one_clear_error(monkeypatch, capsys):
    from lungapp.audio import devices
    from lungapp.cli import record as record_cli

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_NoPortAudio()] + sys.meta_path)
    ok, why = devices.portaudio_status()
    assert not ok and "PortAudio library not available" in why
    with pytest.raises(devices.DeviceError, match="recording is disabled"):
        devices.list_input_devices()
    assert record_cli.main(["--seconds", "1", "--out", "x.wav"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lungapp record: ") and "PortAudio" in err[0]


def test_no_input_device_is_one_clear_error(monkeypatch, capsys, tmp_path):
    sd = pytest.importorskip("sounddevice")
    from lungapp.audio import devices
    from lungapp.cli import record as record_cli

    outputs_only = [{"name": "speakers", "index": 0, "hostapi": 0, "max_input_channels": 0,
                     "max_output_channels": 2, "default_samplerate": 48000.0}]
    monkeypatch.setattr(sd, "query_devices", lambda *a, **k: outputs_only if not a and not k
                        else (_ for _ in ()).throw(sd.PortAudioError("no default input")))
    assert devices.list_input_devices() == []
    with pytest.raises(devices.DeviceError, match="no audio input device found"):
        devices.default_input_device()
    out = tmp_path / "r.wav"
    assert record_cli.main(["--seconds", "1", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["lungapp record: no audio input device found (connect a stethoscope or microphone)"]
    assert not out.exists() and not list(tmp_path.iterdir())


def test_choose_rate_prefers_the_device_default_and_refuses_exotic_low_rates(monkeypatch):
    from lungapp.audio import devices

    supported = {44100, 48000}
    monkeypatch.setattr(devices, "rate_supported", lambda d, r, c=1: r in supported)
    dev = devices.DeviceInfo(3, "steth", "ALSA", 2, 44100.0)
    assert devices.choose_rate(dev) == 44100
    odd = devices.DeviceInfo(4, "weird", "ALSA", 1, 4000.0)  # a 4 kHz default is not used
    assert devices.choose_rate(odd) == 48000
    with pytest.raises(devices.DeviceError, match="refusing to capture at 4000 Hz"):
        devices.choose_rate(dev, 4000)
    with pytest.raises(devices.DeviceError, match="does not support 96000 Hz"):
        devices.choose_rate(dev, 96000)
    supported.clear()
    with pytest.raises(devices.DeviceError, match="supports none of the rates"):
        devices.choose_rate(dev)


def test_capture_rejects_a_channel_the_device_does_not_have():
    from lungapp.audio.capture import Capture
    from lungapp.audio.devices import DeviceError, DeviceInfo

    with pytest.raises(DeviceError, match="has 1 input channel.*channel 2 does not exist"):
        Capture(DeviceInfo(0, "mono steth", "ALSA", 1, 48000.0), rate=48000, channel=1)


# --- the real round trip ------------------------------------------------------------------

@pytest.mark.audio
@pytest.mark.slow
def test_round_trip_through_the_pulseaudio_null_sink(pulse_sink, tmp_path):
    from lungapp.audio.capture import Capture
    from lungapp.audio.devices import list_input_devices

    played = make_signal()
    wav = tmp_path / "played.wav"
    sf.write(wav, played, RATE, subtype="FLOAT")
    assert list_input_devices(), "PulseAudio is running but PortAudio lists no input device"
    cap = Capture(None, rate=RATE, channel=0)
    assert cap.rate == RATE
    reader = cap.ring.reader(from_now=False)
    chunks = []
    with cap:
        assert cap.wait_first_callback(5.0), "no audio callback within 5 s"
        paplay(wav, pulse_sink)
        time.sleep(0.5)
        assert cap.failure() is None
        chunks.append(reader.read()[:, 0])
    chunks.append(reader.read()[:, 0])
    recorded = np.concatenate(chunks)
    assert len(recorded) >= len(played)
    corr, lag = aligned_correlation(played, recorded)
    assert corr >= 0.99, f"correlation {corr:.4f} at lag {lag}"
    assert cap.overflows == 0
    assert reader.lost_frames == 0


# --- devices that come, go and stall --------------------------------------------------------

class _FakeStream:
    def __init__(self, active=True):
        self.active = active

    def stop(self):
        pass

    def close(self):
        pass


def _capture_without_a_device(monkeypatch, dev):
    from lungapp.audio import capture as capmod

    monkeypatch.setattr(capmod, "current", lambda d: d)
    monkeypatch.setattr(capmod, "choose_rate", lambda d, r=None, channels=1: 48000)
    return capmod.Capture(dev, rate=48000)


def test_a_stream_that_stalls_or_ends_is_reported_as_a_failed_device(monkeypatch):
    from lungapp.audio.capture import STALL_TIMEOUT_S
    from lungapp.audio.devices import DeviceInfo

    cap = _capture_without_a_device(monkeypatch, DeviceInfo(5, "USB Steth", "ALSA", 1, 48000.0))
    cap._stream = _FakeStream(active=True)
    cap.callbacks = 100
    cap._last_callback = time.monotonic()
    assert cap.failure() is None
    cap._last_callback = time.monotonic() - STALL_TIMEOUT_S - 1  # no audio for > 5 s
    assert cap.failure() == (f"input device 5 (USB Steth) delivered no audio for "
                             f"{STALL_TIMEOUT_S:g} s (unplugged or failed)")
    cap._last_callback = time.monotonic()
    cap._stream.active = False  # the driver ended the stream
    assert cap.failure() == "input device 5 (USB Steth) stopped delivering audio (unplugged or failed)"
    cap.stop()
    assert cap.failure() is None  # stopped on purpose is not a failure


def test_capture_finds_a_device_again_by_name_and_host_api(monkeypatch):
    """After a re-scan PortAudio may number devices differently: a DeviceInfo from the
    picker is looked up again by name and host API."""
    from lungapp.audio import capture as capmod
    from lungapp.audio import devices

    now_listed = [devices.DeviceInfo(0, "USB Steth", "JACK", 2, 48000.0),
                  devices.DeviceInfo(3, "USB Steth", "ALSA", 2, 48000.0)]
    monkeypatch.setattr(devices, "list_input_devices", lambda: list(now_listed))
    monkeypatch.setattr(capmod, "choose_rate", lambda d, r=None, channels=1: 48000)
    picked = devices.DeviceInfo(1, "USB Steth", "ALSA", 2, 48000.0)  # index from the last scan
    assert capmod.Capture(picked, rate=48000, channel=1).device.index == 3
    now_listed.pop()
    with pytest.raises(devices.DeviceError, match="'USB Steth' \\(ALSA\\) is no longer connected"):
        capmod.Capture(picked, rate=48000)


def test_rescan_reinitialises_portaudio_only_when_no_stream_is_open(monkeypatch):
    sd = pytest.importorskip("sounddevice")
    from lungapp.audio import devices

    calls = []
    monkeypatch.setattr(sd, "_initialized", 1)

    def terminate():
        calls.append("terminate")
        sd._initialized -= 1

    def initialize():
        calls.append("initialize")
        sd._initialized += 1

    monkeypatch.setattr(sd, "_terminate", terminate)
    monkeypatch.setattr(sd, "_initialize", initialize)
    monkeypatch.setattr(devices, "open_streams", lambda: 1)  # e.g. Review is playing
    assert devices.rescan() is False and calls == []
    monkeypatch.setattr(devices, "open_streams", lambda: 0)
    assert devices.rescan() is True and calls == ["terminate", "initialize"]
    assert sd._initialized == 1


@pytest.mark.audio
def test_open_streams_sees_a_real_stream_and_rescan_waits_for_it(pulse_sink):
    sd = pytest.importorskip("sounddevice")
    from lungapp.audio import devices

    assert devices.rescan() is True  # nothing open: PortAudio re-initialised
    assert devices.list_input_devices(), "no input device after the re-scan"
    stream = sd.InputStream(channels=1, samplerate=RATE)
    try:
        assert devices.open_streams() >= 1
        assert devices.rescan() is False  # would close it
        assert not stream.closed
    finally:
        stream.close()
    assert devices.open_streams() == 0
    assert devices.rescan() is True
