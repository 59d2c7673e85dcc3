"""Native libraries' own lines on stderr (mpg123's "Warning: Xing stream size off...",
PortAudio's raw messages) become the app's messages, naming the file."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lungapp.native_stderr import routed

ROOT = Path(__file__).resolve().parents[3]


def _mp3_with_wrong_xing_size(path: Path) -> Path:
    """A real MP3 (libsndfile's encoder) whose Xing header claims 10x the stream's bytes."""
    x = (0.3 * np.sin(np.arange(8000 * 5) * 0.05)).astype(np.float32)
    try:
        sf.write(path, x, 8000, format="MP3")
    except (sf.LibsndfileError, TypeError, ValueError) as exc:
        pytest.skip(f"this libsndfile cannot write MP3 ({exc})")
    data = bytearray(path.read_bytes())
    i = data.find(b"Xing")
    flags = struct.unpack(">I", data[i + 4: i + 8])[0] if i >= 0 else 0
    if not flags & 2:
        pytest.skip("the MP3 encoder wrote no Xing stream size")
    off = i + 8 + (4 if flags & 1 else 0)
    data[off: off + 4] = struct.pack(">I", 10 * len(data))
    path.write_bytes(bytes(data))
    return path


def test_mp3_decoder_warning_is_one_app_line_naming_the_file(tiny_model_dir, tmp_path):
    mp3 = _mp3_with_wrong_xing_size(tmp_path / "off.mp3")
    proc = subprocess.run([sys.executable, "-m", "lungapp", "predict", str(mp3), "--model",
                           str(tiny_model_dir), "--format", "json"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"lungapp: {mp3}: warning from the MP3 decoder: Xing stream size off by more "
                     "than 1%, fuzzy seeking may be even more fuzzy than by design"], proc.stderr


def test_routed_hands_over_what_native_code_writes_to_fd_2(capfd):
    got = []
    with routed(got.append):
        os.write(2, b"ALSA lib pcm.c:2666:(snd_pcm_open_noupdate) Unknown PCM cards.pcm.rear\n\n")
        os.write(2, b"Expression 'ret' failed in 'src/hostapi/alsa/pa_linux_alsa.c'\n")
    assert got == ["ALSA lib pcm.c:2666:(snd_pcm_open_noupdate) Unknown PCM cards.pcm.rear",
                   "Expression 'ret' failed in 'src/hostapi/alsa/pa_linux_alsa.c'"]
    assert capfd.readouterr().err == ""
    os.write(2, b"after\n")  # fd 2 is back
    assert capfd.readouterr().err == "after\n"


def test_routed_hands_over_the_lines_of_a_call_that_failed(capfd):
    got = []
    with pytest.raises(RuntimeError), routed(got.append), routed(got.append):  # nested too
        os.write(2, b"mpg123: cannot read the stream\n")
        raise RuntimeError("the library gave up")
    assert got == ["mpg123: cannot read the stream"] and capfd.readouterr().err == ""
