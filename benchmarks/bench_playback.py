"""Review playback: how long from pressing Space to hearing the recording, and where the
time goes.

    .venv/bin/python benchmarks/bench_playback.py [--repeats 5] [--latency high|low]

Needs a display (Xvfb or QT_QPA_PLATFORM=offscreen) and an audio output (e.g. the
PulseAudio null sink of packaging/pulse-null-sink.sh). Opens a 15-s recording in Review,
then presses Space (a real key event on the file list) ``--repeats`` times, pausing in
between, and prints per press:

* space -> playing: until the Player says it plays (the output stream is open and started);
* space -> heard: until the playback position, which the Player corrects by the output's
  latency, first moves past 0: the moment the first sample reaches the speaker;
* the output latency PortAudio reports for the stream.

``--latency`` sets LUNGAPP_PLAYBACK_LATENCY for the run, to compare PortAudio's "high"
(its default for output: large buffers) with "low".
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--latency", choices=("high", "low"), default=None)
    return ap.parse_args()


def _recording(folder: Path) -> Path:
    import numpy as np
    import soundfile as sf

    rate = 8000
    t = np.arange(15 * rate) / rate
    path = folder / "bench_playback.wav"
    sf.write(path, (0.2 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), rate)
    return path


def measure(repeats: int) -> list[dict]:
    from PySide6.QtCore import QElapsedTimer, Qt
    from PySide6.QtTest import QTest

    from lungapp.gui.app import create_application, create_window

    app = create_application([])
    with tempfile.TemporaryDirectory() as tmp:
        path = _recording(Path(tmp))
        win = create_window([str(path)], load_model=False)
        win.show()
        view = win.review
        deadline = time.monotonic() + 30
        while (not view.player.has_audio or not view.player.available) and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.01)
        if not view.player.available:
            sys.exit(f"no audio output: {view.player.unavailable_reason}")
        rows = []
        clock = QElapsedTimer()
        marks: dict = {}
        view.player.playingChanged.connect(lambda on: on and marks.setdefault("playing", clock.nsecsElapsed()))
        view.player.positionChanged.connect(
            lambda s: s > 0 and "playing" in marks and marks.setdefault("heard", clock.nsecsElapsed()))
        for _ in range(repeats):
            view.player.seek(0.0)
            marks.clear()
            view.table.setFocus()
            clock.start()
            QTest.keyClick(view.table, Qt.Key.Key_Space)
            end = time.monotonic() + 5
            while "heard" not in marks and time.monotonic() < end:
                app.processEvents()
                time.sleep(0.001)
            stream = view.player._stream
            rows.append({"playing_s": marks.get("playing", float("nan")) / 1e9,
                         "heard_s": marks.get("heard", float("nan")) / 1e9,
                         "latency_s": float(stream.latency) if stream is not None else float("nan")})
            view.player.pause()
            for _ in range(20):
                app.processEvents()
                time.sleep(0.01)
        win.close()
    return rows


def main() -> int:
    args = _parse_args()
    if args.latency:
        os.environ["LUNGAPP_PLAYBACK_LATENCY"] = args.latency
    rows = measure(args.repeats)
    print(f"playback start, {len(rows)} presses of Space "
          f"(latency setting: {os.environ.get('LUNGAPP_PLAYBACK_LATENCY', 'default')})")
    print(f"{'press':>5} {'space->playing':>15} {'space->heard':>13} {'output latency':>15}")
    for i, r in enumerate(rows, 1):
        print(f"{i:>5} {r['playing_s'] * 1000:>12.0f} ms {r['heard_s'] * 1000:>10.0f} ms "
              f"{r['latency_s'] * 1000:>12.0f} ms")
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    print(f"{'median':>5} {med['playing_s'] * 1000:>12.0f} ms {med['heard_s'] * 1000:>10.0f} ms "
          f"{med['latency_s'] * 1000:>12.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
