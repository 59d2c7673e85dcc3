"""`lungapp record` finds what a killed recording left (X.wav.partial) and names it;
`lungapp record --recover` repairs it with the recorder's own recovery."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[3]
RATE = 16000


def _lungapp(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "lungapp", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _killed_partial(folder: Path, seconds: float = 2.0) -> Path:
    """What SIGKILL leaves mid-recording: samples on disk, a header still saying 0 frames."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / "visit.wav"
    sf.write(final, (0.1 * np.sin(np.arange(int(seconds * RATE)) / 5)).astype(np.float32), RATE,
             subtype="PCM_16")
    data = bytearray(final.read_bytes())
    data[40:44] = b"\x00\x00\x00\x00"  # the data chunk's size, written only at the end
    partial = final.with_name("visit.wav.partial")
    partial.write_bytes(bytes(data))
    final.unlink()
    final.with_suffix(".json").write_text(json.dumps({"record_annotation": "", "sample_rate": RATE,
                                                      "site": "Trachea", "status": "recording"}))
    return partial


def test_next_record_names_the_partial_and_recover_repairs_it(tmp_path):
    partial = _killed_partial(tmp_path / "recs")
    # a new recording into the same folder (it may fail here for want of a device:
    # the notice comes first either way)
    proc = _lungapp("record", "--seconds", "0.2", "--out", str(tmp_path / "recs" / "next.wav"))
    assert f"{partial}: an interrupted recording (about" in proc.stderr
    assert f"lungapp record --recover {partial}" in proc.stderr
    proc = _lungapp("record", "--recover", str(tmp_path / "recs" / "visit.wav"))
    assert proc.returncode == 0, proc.stderr
    final = tmp_path / "recs" / "visit.wav"
    assert proc.stdout.strip() == str(final) and not partial.exists()
    assert sf.info(final).frames == 2 * RATE
    assert json.loads(final.with_suffix(".json").read_text())["status"] == "recovered"
    again = _lungapp("record", "--recover", str(tmp_path / "recs"))
    assert again.returncode == 0 and "no interrupted recordings" in again.stderr


@pytest.mark.slow
@pytest.mark.audio
@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_record_killed_outright_is_found_and_recovered(pulse_sink, tmp_path):
    out = tmp_path / "killed.wav"
    proc = subprocess.Popen([sys.executable, "-m", "lungapp", "record", "--rate", str(RATE),
                             "--out", str(out), "--progress"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        for line in proc.stdout:
            if json.loads(line).get("flushed_frames", 0) > RATE // 2:
                break
            assert time.monotonic() < deadline, "nothing flushed in 60 s"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()
    partial = tmp_path / "killed.wav.partial"
    assert partial.exists() and not out.exists()
    mention = _lungapp("record", "--seconds", "0.3", "--rate", str(RATE),
                       "--out", str(tmp_path / "second.wav"))
    assert f"{partial}: an interrupted recording" in mention.stderr
    rec = _lungapp("record", "--recover", str(partial))
    assert rec.returncode == 0 and rec.stdout.strip() == str(out), rec.stderr
    assert sf.info(out).frames >= RATE // 2
