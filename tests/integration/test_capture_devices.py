"""Capture through audio servers of the test's own: a stereo input (channel 1 is channel 1,
not both mixed), and a server that stops answering mid-recording (the recording is kept
and the process still ends). Each test starts a private PulseAudio server (its own
socket, so the shared ci_sink and its lock are not touched) and records through ALSA's
``pulse`` device, which PULSE_SERVER points at it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.audio


@pytest.fixture
def private_pulse():
    """Start a PulseAudio server of its own with a null sink ``s2`` (rate, channels) as
    its default source's sink; returns (environment for clients, the server's pid)."""
    if shutil.which("pulseaudio") is None or shutil.which("paplay") is None:
        pytest.skip("PulseAudio is not installed")
    run = Path(tempfile.mkdtemp(prefix="lp-pa-", dir="/tmp"))  # a short socket path
    env = {**os.environ, "PULSE_RUNTIME_PATH": str(run), "PULSE_STATE_PATH": str(run),
           "PULSE_SERVER": f"unix:{run}/native", "PYTHONPATH": str(ROOT)}
    started = []

    def start(rate: int, channels: int) -> tuple[dict, int]:
        subprocess.run(["pulseaudio", "-D", "--exit-idle-time=-1", "-n", "--no-cpu-limit",
                        f"--log-target=file:{run}/log",
                        "-L", f"module-native-protocol-unix socket={run}/native",
                        "-L", f"module-null-sink sink_name=s2 rate={rate} channels={channels}"],
                       env=env, capture_output=True, timeout=30, check=True)
        for _ in range(100):
            if subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        subprocess.run(["pactl", "set-default-source", "s2.monitor"], env=env, check=True, timeout=20)
        pid = int((run / "pid").read_text().split()[0])
        started.append(pid)
        return env, pid

    yield start
    for pid in started:
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    shutil.rmtree(run, ignore_errors=True)


def _record(env: dict, out: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lungapp", "record", "--device", "pulse", "--out", str(out),
                             *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _amplitude(y: np.ndarray, rate: int, hz: float) -> float:
    f = np.fft.rfftfreq(len(y), 1 / rate)
    return float(np.abs(np.fft.rfft(y))[np.argmin(abs(f - hz))] / len(y) * 2)


def test_channel_1_of_a_stereo_input_holds_channel_1_only(private_pulse, tmp_path):
    # One channel asked of a stereo source: PulseAudio mixed both channels into it, so
    # channel 1 held channel 2's sound too (at half level each).
    env, _ = private_pulse(44100, 2)
    rate = 44100
    t = np.arange(4 * rate) / rate
    lr = tmp_path / "lr.wav"
    sf.write(lr, np.stack([0.5 * np.sin(2 * np.pi * 300 * t), 0.5 * np.sin(2 * np.pi * 1000 * t)], 1)
             .astype(np.float32), rate, subtype="PCM_16")
    for channel, own, other in ((1, 300, 1000), (2, 1000, 300)):
        out = tmp_path / f"ch{channel}.wav"
        proc = _record(env, out, "--channel", str(channel), "--seconds", "6")
        time.sleep(2.5)  # the stream is open and delivering (the first callback)
        subprocess.run(["paplay", "--device=s2", str(lr)], env=env, check=True, timeout=30)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        y, r = sf.read(out)
        assert y.ndim == 1
        assert _amplitude(y, r, own) > 0.2, f"channel {channel}"
        assert _amplitude(y, r, other) < 0.02, f"channel {channel} holds the other channel's sound"


def test_a_server_that_stops_answering_keeps_the_recording_and_the_process_ends(private_pulse, tmp_path):
    # The stream's stop was left behind after 2 s, but PortAudio's clean-up at exit then
    # waited on it for ever: the file was saved, and the process never ended (nor on Ctrl-C).
    env, pid = private_pulse(44100, 1)
    out = tmp_path / "hung.wav"
    proc = _record(env, out)
    time.sleep(3.5)
    os.kill(pid, signal.SIGSTOP)            # the audio server hangs, as a stuck driver does
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("lungapp record did not end after its device stopped answering")
    finally:
        os.kill(pid, signal.SIGCONT)
    assert "delivered no audio for 5 s" in err and "kept" in err
    info = sf.info(out)
    assert info.frames > 0.5 * info.samplerate
