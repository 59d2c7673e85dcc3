"""Recording benchmark (not CI): a long recording with the live view's processing on.

    .venv/bin/python benchmarks/bench_record.py [--minutes 10] [--device N] [--rate 48000]
                                                [--no-draw] [--play] [--keep]

Records from the input device (default: the system default; in CI-like setups the
PulseAudio null sink's monitor, see packaging/pulse-null-sink.sh) through the real
capture -> ring buffer -> writer thread -> WAV path, while the main thread runs the
Record view's frame loop at 33 fps: LiveMonitor.update() (streaming spectrogram,
waveform envelope, level) and, unless --no-draw, the real pyqtgraph LiveSpectrogram
widget (offscreen Qt platform when there is no display). --play loops band-limited
noise into the ci_sink with paplay so the spectrogram has content.

Prints, per minute: input overflows, frames lost by the writer, CPU share of this
process (% of one core), resident memory, timer ticks and redraws per second (a tick
redraws only when audio arrived, as in the Record view); then the cost per
frame of the streaming spectrogram against recomputing scipy.signal.spectrogram over
the whole visible window every frame, as a ratio.

Goals (issue 6): 0 overflows, <= 15 % of one core at 48 kHz, memory flat.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FRAME_S = 0.030


def rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # peak, not current


def start_player(rate: int, tmp: Path):
    if shutil.which("paplay") is None:
        print("(--play ignored: paplay not found)")
        return None
    import soundfile as sf
    from scipy.signal import butter, sosfilt

    rng = np.random.default_rng(0)
    n = rate * 20
    sos = butter(4, [100, 1500], btype="band", fs=rate, output="sos")
    x = sosfilt(sos, rng.standard_normal(n))
    x = (0.5 * x / np.max(np.abs(x))).astype(np.float32)
    wav = tmp / "noise.wav"
    sf.write(wav, x, rate, subtype="FLOAT")
    # A shell loop so the noise keeps playing for the whole run, and stops by itself if
    # this process dies without cleaning up (a crash must not leave noise in ci_sink).
    return subprocess.Popen(["sh", "-c", f"while kill -0 {os.getpid()} 2>/dev/null; "
                             f"do paplay --device=ci_sink '{wav}'; done"], start_new_session=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--device", default=None)
    ap.add_argument("--rate", type=int, default=48000)
    ap.add_argument("--no-draw", action="store_true", help="skip the Qt widget redraw")
    ap.add_argument("--play", action="store_true", help="loop noise into ci_sink with paplay")
    ap.add_argument("--keep", action="store_true", help="keep the recording (printed path)")
    ap.add_argument("--report-every", type=float, default=60.0, help="seconds per table row")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench_record_"))
    os.environ.setdefault("LUNGAPP_HOME", str(tmp / "home"))
    from lungapp.audio.live import LiveMonitor
    from lungapp.audio.recorder import start_recording

    widget = app = None
    if not args.no_draw:
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        from PySide6.QtWidgets import QApplication

        from lungapp.gui.live_spectrogram import LiveSpectrogram

        app = QApplication.instance() or QApplication([])
        widget = LiveSpectrogram()
        widget.resize(1000, 500)
        widget.show()

    player = start_player(args.rate, tmp) if args.play else None
    cap, rec = start_recording(args.device, rate=args.rate, seconds=None)
    mon = LiveMonitor(cap.ring, cap.rate)
    if widget is not None:
        widget.attach(mon)
    cap.wait_first_callback(5.0)
    print(f"device: {cap.device.label}; rate {cap.rate} Hz; file {rec.partial_path}")
    print(f"live view: {mon.cfg.win_length}-sample window, hop {mon.cfg.hop_length}, "
          f"{mon.n_cols} columns x {mon.n_bins} bins ({mon.seconds:g} s visible); "
          f"draw={'on' if widget else 'off'}")
    print()
    hdr = f"{'minute':>6} {'overflows':>9} {'lost':>6} {'CPU %':>6} {'RSS MB':>7} {'ticks/s':>7} {'draws/s':>7} {'update ms':>9}"
    print(hdr)
    print("-" * len(hdr))

    total = args.minutes * 60
    t0 = time.monotonic()
    cpu0 = time.process_time()
    row_t, row_cpu, row_frames, row_drawn = t0, cpu0, 0, 0
    frames = 0
    drawn = 0
    update_s = []
    row_update = 0.0
    next_frame = t0
    rss_rows = []
    try:
        while True:
            now = time.monotonic()
            if now - t0 >= total or rec.finished:
                break
            a = time.perf_counter()
            got = mon.update()
            b = time.perf_counter()
            if widget is not None:
                if got:  # as the Record view: redraw only when audio arrived
                    widget.refresh()
                    drawn += 1
                app.processEvents()
            if got:
                update_s.append(b - a)
            row_update += b - a
            frames += 1
            row_frames += 1
            if now - row_t >= args.report_every:
                cpu = time.process_time()
                rss = rss_mb()
                rss_rows.append(rss)
                print(f"{(now - t0) / 60:6.1f} {cap.overflows:9d} {rec.lost_frames + mon.lost_frames:6d} "
                      f"{100 * (cpu - row_cpu) / (now - row_t):6.1f} {rss:7.1f} "
                      f"{row_frames / (now - row_t):7.1f} {(drawn - row_drawn) / (now - row_t):7.1f} "
                      f"{1000 * row_update / max(1, row_frames):9.3f}",
                      flush=True)
                row_t, row_cpu, row_frames, row_update, row_drawn = now, cpu, 0, 0.0, drawn
            next_frame += FRAME_S
            delay = next_frame - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_frame = time.monotonic()
        if row_frames and time.monotonic() - row_t > 1.0:  # the last, partial row
            now = time.monotonic()
            cpu = time.process_time()
            print(f"{(now - t0) / 60:6.1f} {cap.overflows:9d} {rec.lost_frames + mon.lost_frames:6d} "
                  f"{100 * (cpu - row_cpu) / (now - row_t):6.1f} {rss_mb():7.1f} "
                  f"{row_frames / (now - row_t):7.1f} {(drawn - row_drawn) / (now - row_t):7.1f} "
                  f"{1000 * row_update / max(1, row_frames):9.3f}", flush=True)
    finally:
        wall = time.monotonic() - t0
        cpu_all = time.process_time() - cpu0
        result = rec.stop()
        if player is not None:
            os.killpg(player.pid, 15)
            player.wait()

    print("-" * len(hdr))
    print(f"total: {wall / 60:.1f} min, {result.frames / result.rate:.1f} s written, "
          f"overflows {result.overflows}, lost frames {result.lost_frames}, "
          f"CPU {100 * cpu_all / wall:.1f} % of one core, {frames / wall:.1f} frames/s "
          f"({drawn / wall:.1f} redraws/s with new audio), "
          f"RSS first/last row {rss_rows[0] if rss_rows else rss_mb():.1f}/{rss_mb():.1f} MB"
          + (f", ended: {result.reason} {result.error}" if result.error else ""))

    # Streaming vs recomputing the visible window every frame, on the last audio.
    from scipy.signal import spectrogram as sp_spectrogram

    cfg = mon.cfg
    visible = cap.ring.latest(int(mon.seconds * cap.rate))[:, 0].astype(np.float64)
    reps = 30
    a = time.perf_counter()
    for _ in range(reps):
        sp_spectrogram(visible, fs=cfg.rate, window=cfg.window, nperseg=cfg.win_length,
                       noverlap=cfg.win_length - cfg.hop_length, nfft=cfg.n_fft,
                       detrend=False, scaling="spectrum", mode="psd")
    recompute = (time.perf_counter() - a) / reps
    stream = float(np.median(update_s)) if update_s else float("nan")
    print()
    print(f"{'per frame':<44} {'ms':>8}")
    print(f"{'streaming (LiveMonitor.update with audio, median)':<44} {1000 * stream:8.3f}")
    print(f"{'recompute scipy.signal.spectrogram, 10 s':<44} {1000 * recompute:8.3f}")
    print(f"{'ratio recompute / streaming':<44} {recompute / stream:8.1f}x")
    if args.keep:
        print(f"recording kept: {result.path}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    if widget is not None:
        # PySide6 6.12 + pyqtgraph 0.14 crash in interpreter finalisation once a plot
        # has been shown (bool_dealloc refcount error): the results are printed, so
        # leave without running the finalisers.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
