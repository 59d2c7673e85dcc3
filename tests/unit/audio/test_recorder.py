"""The crash-safe recorder: file contents, sidecar, never overwriting, device failure,
header repair, and a recording subprocess killed with SIGKILL then recovered."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

import lungapp
from lungapp import paths
from lungapp.audio import recorder
from lungapp.audio.recorder import (
    RecorderError,
    Recording,
    RecordingSettings,
    find_interrupted,
    recover,
    repair_wav_header,
)
from lungapp.audio.ringbuffer import RingBuffer

ROOT = Path(__file__).resolve().parents[3]
RATE = 48000
Q24 = 1.0 / 2 ** 23  # one PCM_24 step


class FakeSource:
    """Stands in for a Capture: feeds a ring from a thread like a device would and can
    'fail' (be unplugged) after a given number of frames."""

    def __init__(self, ring, signal_, block=480, fail_after=None, realtime=False):
        self.ring, self.signal, self.block = ring, signal_, block
        self.fail_after, self.realtime = fail_after, realtime
        self.overflows = 0
        self.fed = 0
        self.stopped = threading.Event()
        self.t = threading.Thread(target=self._feed, daemon=True)
        self.t.start()

    def _feed(self):
        for i in range(0, len(self.signal), self.block):
            if self.stopped.is_set() or (self.fail_after is not None and self.fed >= self.fail_after):
                return
            b = self.signal[i:i + self.block]
            self.ring.write(b)
            self.fed += len(b)
            if self.realtime:
                time.sleep(len(b) / RATE)

    def failure(self):
        if self.fail_after is not None and self.fed >= self.fail_after:
            return "input device 7 (Test Steth) stopped delivering audio (unplugged or failed)"
        return None

    def stop(self):
        self.stopped.set()
        self.t.join()


def noise(seconds, seed=1):
    return (0.4 * np.random.default_rng(seed).uniform(-1, 1, int(seconds * RATE))).astype(np.float32)


def test_recording_writes_every_frame_and_the_sidecar(lungapp_home):
    x = noise(2.0)
    ring = RingBuffer(RATE * 5)
    src = FakeSource(ring, x)
    rec = Recording(ring, RATE, RecordingSettings(device_name="Test Steth", site="Posterior left",
                                                  patient_id="P 007/x", seconds=len(x) / RATE,
                                                  channel=1),
                    source=src)
    res = rec.wait(20)
    assert res is not None and res.error is None and res.reason == "duration"
    assert res.path.parent == paths.recordings_dir()
    assert res.path.suffix == ".wav" and res.path.exists()
    assert not rec.partial_path.exists()
    y, rate = sf.read(res.path, dtype="float32")
    assert rate == RATE and len(y) == len(x)
    assert np.max(np.abs(y - x)) <= Q24
    meta = json.loads(res.sidecar.read_text())
    assert res.sidecar == res.path.with_suffix(".json")
    assert meta["record_annotation"] == "" and meta["event_annotation"] == []
    assert meta["device"] == "Test Steth" and meta["sample_rate"] == RATE
    assert meta["site"] == "Posterior left" and meta["patient_id"] == "P 007/x"
    assert meta["input_channel"] == 2 and "channel" not in meta  # 1-based, as users choose it
    assert meta["app_version"] == lungapp.__version__
    assert meta["start_time"].endswith("Z")
    import datetime as dt
    start = dt.datetime.fromisoformat(meta["start_time"].replace("Z", "+00:00"))
    assert abs((dt.datetime.now(dt.UTC) - start).total_seconds()) < 60
    assert meta["status"] == "complete" and meta["duration_s"] == 2.0
    assert meta["overflows"] == 0 and meta["lost_frames"] == 0
    # privacy: the name carries a random recording id (also in the sidecar), not the patient
    assert "P" not in res.path.stem.replace("_Pl", "") and "007" not in res.path.name
    assert meta["recording_id"] and f"_{meta['recording_id']}_Pl" in res.path.name
    import stat

    # the sidecar is as readable as the audio beside it (not an atomic write's private 0600)
    assert stat.S_IMODE(res.sidecar.stat().st_mode) == stat.S_IMODE(res.path.stat().st_mode)


def test_two_recordings_in_the_same_second_get_different_names():
    rings = [RingBuffer(RATE), RingBuffer(RATE)]
    recs = [Recording(r, RATE, RecordingSettings(site="Trachea", patient_id="A")) for r in rings]
    for r in rings:
        r.write(noise(0.1))
    results = [rec.stop() for rec in recs]
    assert results[0].path != results[1].path
    assert all(r.path.exists() and r.sidecar.exists() for r in results)


def test_an_existing_file_is_never_overwritten(tmp_path):
    out = tmp_path / "mine.wav"
    out.write_bytes(b"precious")
    with pytest.raises(RecorderError, match="mine.wav: already exists; not overwritten"):
        Recording(RingBuffer(100), RATE, RecordingSettings(out=out))
    assert out.read_bytes() == b"precious"
    side = tmp_path / "other.json"
    side.write_text("{}")
    with pytest.raises(RecorderError, match="other.json: already exists"):
        Recording(RingBuffer(100), RATE, RecordingSettings(out=tmp_path / "other.wav"))
    assert side.read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.wav", "other.json"]


def test_stop_keeps_everything_captured_so_far():
    x = noise(1.0)
    ring = RingBuffer(RATE * 5)
    rec = Recording(ring, RATE)
    ring.write(x[:30000])
    time.sleep(0.1)
    ring.write(x[30000:])
    res = rec.stop()
    assert res.reason == "stopped" and res.frames == len(x)
    assert np.max(np.abs(sf.read(res.path, dtype="float32")[0] - x)) <= Q24


def test_device_failure_stops_keeps_the_audio_and_says_so():
    x = noise(3.0)
    ring = RingBuffer(RATE * 5)
    src = FakeSource(ring, x, fail_after=RATE)  # "unplugged" after 1 s
    rec = Recording(ring, RATE, RecordingSettings(device_name="Test Steth"), source=src)
    res = rec.wait(20)
    assert res.reason == "device failed"
    assert "input device 7 (Test Steth) stopped delivering audio" in res.error
    assert res.frames == src.fed == RATE
    y = sf.read(res.path, dtype="float32")[0]
    assert np.max(np.abs(y - x[:RATE])) <= Q24
    meta = json.loads(res.sidecar.read_text())
    assert meta["status"] == "device failed" and "unplugged" in meta["error"]


def test_the_file_on_disk_is_flushed_while_recording():
    """Before stop, the partial file already holds (nearly) everything fed so far."""
    x = noise(3.0)
    ring = RingBuffer(RATE * 5)
    src = FakeSource(ring, x, realtime=True)
    rec = Recording(ring, RATE, RecordingSettings(flush_interval=0.25), source=src)
    deadline = time.monotonic() + 20
    while rec.flushes < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    flushed = rec.frames_flushed  # read before the size: the file can only grow
    on_disk = os.path.getsize(rec.partial_path)
    assert rec.flushes >= 3 and flushed > 0
    assert not rec.finished
    # Everything reported flushed is in the file on disk, header included.
    assert (on_disk - 44) // 3 >= flushed
    res = rec.stop()
    assert res.frames == src.fed


def test_repair_wav_header_from_the_file_size(tmp_path):
    x = noise(0.5)
    path = tmp_path / "broken.wav"
    sf.write(path, x, RATE, subtype="PCM_24")
    raw = bytearray(path.read_bytes())
    data_at = raw.index(b"data") + 8
    raw[4:8] = (8).to_bytes(4, "little")          # what a killed libsndfile leaves
    raw[data_at - 4:data_at] = bytes(4)
    raw += b"\x01\x02"                             # a half-written last frame
    path.write_bytes(bytes(raw))
    assert repair_wav_header(path) == len(x)
    with wave.open(str(path)) as w:               # an independent, strict reader
        assert w.getnframes() == len(x) and w.getframerate() == RATE
    assert np.max(np.abs(sf.read(path, dtype="float32")[0] - x)) <= Q24
    bad = tmp_path / "nowav.wav.partial"
    bad.write_bytes(b"not a wav at all")
    with pytest.raises(RecorderError, match="nowav.wav.partial: not a WAV file"):
        recover(bad)


def test_repair_leaves_a_complete_header_alone(tmp_path):
    """A properly closed WAV with a chunk after the audio: that chunk is not audio."""
    x = noise(0.1)
    path = tmp_path / "done.wav"
    sf.write(path, x, RATE, subtype="PCM_24")
    before = path.read_bytes()
    extra = b"LIST" + (4).to_bytes(4, "little") + b"INFO"
    raw = bytearray(before + extra)
    raw[4:8] = (len(raw) - 8).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    assert repair_wav_header(path) == len(x)
    assert path.read_bytes() == bytes(raw)


def test_find_interrupted_skips_recordings_in_progress():
    ring = RingBuffer(RATE)
    rec = Recording(ring, RATE)
    assert find_interrupted() == []
    rec.stop()
    assert find_interrupted() == []


def _start_recorder_subprocess(out: Path, env: dict):
    return subprocess.Popen(
        [sys.executable, "-m", "lungapp.cli.record", "--rate", str(RATE), "--out", str(out),
         "--progress", "--site", "Trachea", "--patient-id", "K1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


@pytest.mark.audio
@pytest.mark.slow
def test_sigkill_mid_recording_then_recover_keeps_audio_up_to_the_last_flush(
        pulse_sink, tmp_path, lungapp_home):
    from capture_helpers import aligned_correlation, make_signal, paplay  # noqa: PLC0415

    played = np.tile(make_signal(), 2)  # 5.2 s
    wav = tmp_path / "played.wav"
    sf.write(wav, played, RATE, subtype="FLOAT")
    folder = paths.ensure(paths.recordings_dir())
    out = folder / "killed.wav"
    proc = _start_recorder_subprocess(out, dict(os.environ))
    player = None
    flushed = 0
    try:
        deadline = time.monotonic() + 60
        after_player = 0
        for line in proc.stdout:
            msg = json.loads(line)
            if "flushed_frames" in msg:
                if msg["flushed_frames"] > 0 and player is None:
                    player = paplay(wav, pulse_sink, wait=False)
                # Once paplay has drained the whole signal into the sink, two more
                # flushes (>= 1 s) so the capture latency is behind us, then kill.
                if player is not None and player.poll() is not None:
                    after_player += 1
                    if after_player >= 3:
                        flushed = msg["flushed_frames"]
                        # In progress: it must not be offered for recovery.
                        assert find_interrupted() == []
                        os.kill(proc.pid, signal.SIGKILL)
                        break
            assert time.monotonic() < deadline, "recorder did not finish the scenario in 60 s"
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        if player is not None:
            player.wait(30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    assert flushed > 0
    assert not out.exists()
    found = find_interrupted()
    assert found == [folder / "killed.wav.partial"]
    got = recover(found[0])
    assert got == out and out.exists() and not found[0].exists()
    assert find_interrupted() == []
    with wave.open(str(out)) as w:  # the header is right for a strict reader too
        frames = w.getnframes()
    assert frames >= flushed, f"recovered {frames} frames, {flushed} were flushed before the kill"
    assert frames <= flushed + 2 * RATE
    assert player.returncode == 0
    y = sf.read(out, dtype="float32")[0]
    # The whole played signal is in the recovered file.
    corr, lag = aligned_correlation(played, y)
    assert corr >= 0.99, f"correlation {corr:.4f} at lag {lag}"
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["status"] == "recovered" and meta["site"] == "Trachea" and meta["patient_id"] == "K1"
    assert meta["duration_s"] == round(frames / RATE, 3)


@pytest.mark.slow
@pytest.mark.audio
def test_cli_records_a_fixed_duration(pulse_sink, tmp_path):
    out = tmp_path / "cli.wav"
    proc = subprocess.run([sys.executable, "-m", "lungapp.cli.record", "--seconds", "1.5",
                           "--rate", str(RATE), "--out", str(out)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    info = sf.info(out)
    assert info.samplerate == RATE and info.frames == int(1.5 * RATE)
    again = subprocess.run([sys.executable, "-m", "lungapp.cli.record", "--seconds", "1",
                            "--out", str(out)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert again.returncode == 1
    assert again.stderr.strip() == f"lungapp record: {out}: already exists; not overwritten"




def test_every_site_has_a_file_name_code():
    assert set(recorder.SITE_CODES) == set(recorder.SITES)


@pytest.mark.slow
@pytest.mark.audio
def test_a_stream_that_dies_mid_recording_stops_it_and_keeps_the_audio(unplug_sink, tmp_path):
    """The capture device vanishes mid-recording (its PulseAudio source is unloaded, as a
    USB stethoscope's is when pulled out): the recording stops by itself, keeps every
    captured frame and says which device failed."""
    from lungapp.audio.capture import Capture

    cap = Capture(None, rate=RATE).start()
    rec = None
    try:
        assert cap.wait_first_callback(10.0)
        rec = Recording(cap.ring, cap.rate,
                        RecordingSettings(out=tmp_path / "died.wav", device_name=cap.device.name),
                        source=cap)
        time.sleep(1.0)
        unplug_sink()
        res = rec.wait(30)
    finally:  # never leave a stream or a writer behind to hang the test process's exit
        if rec is not None and rec.result is None:
            try:
                rec.stop(10)
            except RecorderError:
                pass  # the assertion below says what went wrong
        cap.stop()
    assert res is not None and res.reason == "device failed"
    assert f"input device {cap.device.index} ({cap.device.name}) stopped delivering audio" in res.error
    assert res.frames == cap.ring.written > 0.5 * RATE
    assert sf.info(res.path).frames == res.frames
    meta = json.loads(res.sidecar.read_text())
    assert meta["status"] == "device failed" and meta["duration_s"] == round(res.frames / RATE, 3)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 3000), st.integers(0, 5), st.sampled_from([0, 8, 0xFFFFFFFF, 123]),
       st.sampled_from([0, 0xFFFFFFFF]))
def test_repair_any_killed_wav(tmp_path_factory, n, tail, riff_size, data_size):
    """Whatever sizes the header claims and however the last frame was cut, the repaired
    file holds exactly the complete frames, for libsndfile and for Python's wave."""
    folder = tmp_path_factory.mktemp("repair")
    x = (0.5 * np.sin(np.arange(n) * 0.01)).astype(np.float32)
    path = folder / "k.wav.partial"
    with open(path, "xb") as f, sf.SoundFile(f, "w", RATE, 1, format="WAV", subtype="PCM_24") as snd:
        snd.write(x)
    raw = bytearray(path.read_bytes())
    d = raw.index(b"data") + 8
    del raw[d + 3 * n:]  # a killed writer has not written the closing pad byte
    raw[4:8] = riff_size.to_bytes(4, "little")
    raw[d - 4:d] = data_size.to_bytes(4, "little")
    raw += bytes(range(1, tail + 1))  # part of a frame that was being written
    path.write_bytes(bytes(raw))
    assert repair_wav_header(path) == n + tail // 3
    with wave.open(str(path)) as w:
        assert w.getnframes() == n + tail // 3
    y = sf.read(path, dtype="float32")[0]
    assert len(y) == n + tail // 3 and np.max(np.abs(y[:n] - x), initial=0) <= Q24


@pytest.mark.audio
def test_lungapp_record_lists_devices_through_the_main_cli(pulse_sink):
    proc = subprocess.run([sys.executable, "-m", "lungapp", "record", "--list-devices"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("\t") for line in proc.stdout.strip().splitlines()]
    assert rows and all(len(r) == 5 for r in rows)
    assert any(r[1].startswith("*") for r in rows)  # the default input is marked
    bad = subprocess.run([sys.executable, "-m", "lungapp", "record", "--device", "no such device",
                          "--seconds", "1"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == ["lungapp record: no input device named like 'no such device'"]
