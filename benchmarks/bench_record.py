"""Recording benchmark (not CI): a long recording in the real app with the live view on.

    xvfb-run -a -s "-screen 0 1600x1000x24" \\
        .venv/bin/python benchmarks/bench_record.py [--minutes 10] [--device N] [--rate 48000]
                                                    [--play] [--no-model] [--no-draw] [--keep]

Default: the whole app (main window, Record tab, the bundled model loaded as at a normal
start) records from the input device (default: the system default; in CI-like setups
the PulseAudio null sink's monitor, see packaging/pulse-null-sink.sh) at ``--rate``
through the real capture -> ring buffer -> writer thread -> WAV path, while the Record
view's own QTimer drives the live view (LiveMonitor.update, the scrolling spectrogram
and waveform, the level meter). Needs a display (X server or Xvfb, as above); without
one it uses Qt's offscreen platform. --no-draw runs the data side only (no Qt): the
LiveMonitor at 33 frames/s. --play loops band-limited noise with a 400 Hz tone into
ci_sink with paplay so the pictures have content.

CPU share is this process's CPU time (user + sys, all threads: time.process_time) over
wall time, so it means the same on a loaded machine; the 1-minute load average is
printed beside it, and the X server's CPU (another process) separately when it is an
Xvfb this process can see.

Prints, per row: input overflows, frames lost, CPU % of one core, resident memory, the
load average, timer ticks/s, frames/s (times the spectrogram was actually painted),
spectrogram columns coloured per painted frame, the mean cost of LiveMonitor.update
and of the widget's refresh per tick, and how far the picture runs behind the audio
received (the ScrollClock's delay). Then totals (RSS at start / middle / end) and the
cost of the streaming spectrogram against recomputing scipy.signal.spectrogram over the
visible window every frame, as a ratio.

Goals (issue 6): 0 overflows, <= 15 % of one core at 48 kHz, >= 30 frames/s, memory flat.
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

FRAME_S = 0.030  # the --no-draw loop; the app uses record_view.FRAME_MS


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


def load1() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def xserver_pid() -> int | None:
    """The Xvfb serving $DISPLAY, if it is one this process can see."""
    disp = os.environ.get("DISPLAY", "")
    if not disp.startswith(":"):
        return None
    num = disp[1:].split(".")[0]
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            args = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"Xvfb") and f":{num}".encode() in args:
            return int(d.name)
    return None


def proc_cpu_s(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def noise_signal(rate: int, seconds: float = 20.0) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    rng = np.random.default_rng(0)
    n = int(rate * seconds)
    sos = butter(4, [100, 1500], btype="band", fs=rate, output="sos")
    x = sosfilt(sos, rng.standard_normal(n))
    x = x / np.max(np.abs(x)) + 0.3 * np.sin(2 * np.pi * 400 * np.arange(n) / rate)
    return (0.5 * x / np.max(np.abs(x))).astype(np.float32)


def start_player(rate: int, tmp: Path):
    if shutil.which("paplay") is None:
        print("(--play ignored: paplay not found)")
        return None
    import soundfile as sf

    wav = tmp / "noise.wav"
    sf.write(wav, noise_signal(rate), rate, subtype="FLOAT")
    # A shell loop so the noise keeps playing for the whole run, and stops by itself if
    # this process dies without cleaning up (a crash must not leave noise in ci_sink).
    return subprocess.Popen(["sh", "-c", f"while kill -0 {os.getpid()} 2>/dev/null; "
                             f"do paplay --device=ci_sink '{wav}'; done"], start_new_session=True)


class Rows:
    """The per-row table; ``sample()`` returns a dict of the counters to difference."""

    HDR = (f"{'minute':>6} {'overflows':>9} {'lost':>6} {'CPU %':>6} {'RSS MB':>7} {'load1':>5} "
           f"{'ticks/s':>7} {'frames/s':>8} {'cols/fr':>7} {'update ms':>9} {'refresh ms':>10} "
           f"{'delay ms':>8}")

    def __init__(self, sample, t0: float):
        self.sample = sample
        self.t0 = t0
        self.prev = sample()
        self.first = self.prev
        self.rss: list[float] = []
        self.loads: list[float] = []

    def row(self) -> None:
        s = self.sample()
        p = self.prev
        dt = s["wall"] - p["wall"]
        if dt <= 0.5:
            return
        ticks = s["ticks"] - p["ticks"]
        frames = s["frames"] - p["frames"]
        rss, ld = rss_mb(), load1()
        self.rss.append(rss)
        self.loads.append(ld)
        print(f"{(s['wall'] - self.t0) / 60:6.1f} {s['overflows']:9d} {s['lost']:6d} "
              f"{100 * (s['cpu'] - p['cpu']) / dt:6.1f} {rss:7.1f} {ld:5.2f} "
              f"{ticks / dt:7.1f} {frames / dt:8.1f} "
              f"{(s['cols'] - p['cols']) / max(1, frames):7.2f} "
              f"{1000 * (s['update_s'] - p['update_s']) / max(1, ticks):9.3f} "
              f"{1000 * (s['refresh_s'] - p['refresh_s']) / max(1, ticks):10.3f} "
              f"{1000 * s['delay'] if s['delay'] is not None else float('nan'):8.0f}", flush=True)
        self.prev = s


def timed(fn, store: list, key: int = 0):
    """Wrap ``fn`` so its wall time accumulates in store[key] (and its calls in store[key+1])."""
    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            store[key] += time.perf_counter() - t
            store[key + 1] += 1
    return wrapper


def _wait(cond, timeout_s, what) -> None:
    from lungapp.gui.workers import wait_until

    if not wait_until(cond, timeout_s):
        raise SystemExit(f"bench_record: timed out waiting for {what}")


def _app_recording(args):
    """The whole app (main window, Record tab) recording "until stopped" from
    ``args.device`` at ``args.rate``; returns (application, window, Record view)."""
    if not any(os.environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from lungapp.audio.devices import find_device, same_device
    from lungapp.gui.app import create_application, create_window

    app = create_application([])
    win = create_window([], load_model=not args.no_model)
    win.resize(1440, 860)
    view = win.record
    if not hasattr(view, "capture_rate"):
        raise SystemExit(f"bench_record: the Record view is unavailable: {win.record_error}")
    win.tabs.setCurrentWidget(view)
    _wait(lambda: view.record_button.isEnabled(), 30, "the device list")
    if not args.no_model:
        _wait(lambda: win.ctx.model_state() != "loading", 300, "the model to load")
        print(f"model: {win.ctx.model_state()} {win.ctx.model_message()}")
    if args.device is not None:
        want = find_device(args.device)
        idx = next(i for i, d in enumerate(view.devices) if same_device(d, want.name, want.hostapi))
        view.device_combo.setCurrentIndex(idx)
    view.duration_combo.setCurrentText("Until stopped")
    view.capture_rate = args.rate
    view.start()
    _wait(lambda: view.state == "recording" or view.state == "idle", 60, "the recording to start")
    if view.state != "recording":
        raise SystemExit(f"bench_record: could not start: {view.status.text()}")
    return app, win, view


def _instrument(mon, live) -> tuple[list, list[float]]:
    """Time LiveMonitor.update and the widget's refresh as the view calls them; returns
    (acc = [update s, updates, refresh s, refreshes], durations of updates that got audio)."""
    acc = [0.0, 0, 0.0, 0]
    update_with_audio: list[float] = []
    orig_update = mon.update

    def update():
        t = time.perf_counter()
        n = orig_update()
        dt = time.perf_counter() - t
        acc[0] += dt
        acc[1] += 1
        if n:
            update_with_audio.append(dt)
        return n

    mon.update = update
    live.refresh = timed(live.refresh, acc, 2)
    return acc, update_with_audio


def run_app(args, tmp: Path):
    """The whole app recording; returns (rows, result, monitor, ring, update times, totals)."""
    from PySide6.QtCore import QTimer

    app, win, view = _app_recording(args)
    cap, rec, mon, live = view.capture, view.recording, view.monitor, view.live
    cap.wait_first_callback(5.0)
    acc, update_with_audio = _instrument(mon, live)
    print(f"device: {cap.device.label}; rate {cap.rate} Hz; file {rec.partial_path}")
    print(f"live view: {mon.cfg.win_length}-sample window, hop {mon.cfg.hop_length}, "
          f"{mon.n_cols} columns x {mon.n_bins} bins ({mon.seconds:g} s visible); "
          f"platform {app.platformName()}, window {win.width()}x{win.height()}, "
          f"spectrogram {live.width()}x{live.height()} px")
    xpid = xserver_pid()

    def sample():
        return {"wall": time.monotonic(), "cpu": time.process_time(), "ticks": acc[1],
                "frames": live.frames_drawn, "cols": live.image.columns_written,
                "update_s": acc[0], "refresh_s": acc[2], "overflows": cap.overflows,
                "lost": rec.lost_frames + mon.lost_frames, "x": proc_cpu_s(xpid),
                "delay": live.clock.delay_s}

    t0 = time.monotonic()
    print()
    print(Rows.HDR)
    print("-" * len(Rows.HDR))
    rows = Rows(sample, t0)
    reporter = QTimer()
    reporter.timeout.connect(rows.row)
    reporter.start(int(args.report_every * 1000))
    _wait(lambda: time.monotonic() - t0 >= args.minutes * 60 or view.state != "recording",
          args.minutes * 60 + 30, "the end of the run")
    reporter.stop()
    rows.row()  # the last, partial row
    end = sample()
    view.stop()
    _wait(lambda: view.last_result is not None, 60, "the recording to be saved")
    return rows, view.last_result, mon, cap.ring, update_with_audio, _totals(rows.first, end)


def _totals(first: dict, end: dict) -> dict:
    """What changed between two samples (wall, CPU, ticks, frames, columns, X server CPU)."""
    return {"wall": end["wall"] - first["wall"], "cpu": end["cpu"] - first["cpu"],
            "ticks": end["ticks"] - first["ticks"],
            "frames": end["frames"] - first["frames"],
            "cols": end["cols"] - first["cols"],
            "x_cpu": (end["x"] - first["x"]) if end["x"] is not None
            and first["x"] is not None else None}


def run_core(args, tmp: Path):
    """The data side only (no Qt): LiveMonitor.update every 30 ms while recording."""
    from lungapp.audio.live import LiveMonitor
    from lungapp.audio.recorder import RecordingSettings, start_recording

    cap, rec = start_recording(args.device, RecordingSettings(rate=args.rate))
    mon = LiveMonitor(cap.ring, cap.rate)
    cap.wait_first_callback(5.0)
    print(f"device: {cap.device.label}; rate {cap.rate} Hz; file {rec.partial_path}; draw off")
    acc = [0.0, 0]
    update_with_audio: list[float] = []

    def sample():
        return {"wall": time.monotonic(), "cpu": time.process_time(), "ticks": acc[1],
                "frames": 0, "cols": mon.columns_total, "update_s": acc[0], "refresh_s": 0.0,
                "overflows": cap.overflows, "lost": rec.lost_frames + mon.lost_frames, "x": None,
                "delay": None}

    t0 = time.monotonic()
    print()
    print(Rows.HDR)
    print("-" * len(Rows.HDR))
    rows = Rows(sample, t0)
    next_frame = next_row = t0
    try:
        while time.monotonic() - t0 < args.minutes * 60 and not rec.finished:
            a = time.perf_counter()
            n = mon.update()
            dt = time.perf_counter() - a
            acc[0] += dt
            acc[1] += 1
            if n:
                update_with_audio.append(dt)
            now = time.monotonic()
            if now - next_row >= args.report_every:
                rows.row()
                next_row = now
            next_frame += FRAME_S
            delay = next_frame - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_frame = time.monotonic()
        rows.row()
    finally:
        end = sample()
        result = rec.stop()
    totals = {"wall": end["wall"] - rows.first["wall"], "cpu": end["cpu"] - rows.first["cpu"],
              "ticks": end["ticks"] - rows.first["ticks"], "frames": 0, "cols": 0, "x_cpu": None}
    return rows, result, mon, cap.ring, update_with_audio, totals


def streaming_vs_recompute(mon, ring, update_with_audio: list[float]) -> None:
    """Per frame: the live view's streaming work against recomputing the visible window
    with scipy.signal.spectrogram, on the last recorded audio."""
    from scipy.signal import spectrogram as sp_spectrogram

    from lungapp.dsp.spectrogram import StreamingSpectrogram

    cfg = mon.cfg
    visible = ring.latest(int(mon.seconds * cfg.rate))[:, 0].astype(np.float64)
    if len(visible) < cfg.rate:
        print("(not enough audio for the streaming vs recompute comparison)")
        return
    per_frame = int(round(cfg.rate * 0.0333))  # one 33 ms frame of audio
    reps = 30
    recompute = []
    for _ in range(reps):
        t = time.perf_counter()
        sp_spectrogram(visible, fs=cfg.rate, window=cfg.window, nperseg=cfg.win_length,
                       noverlap=cfg.win_length - cfg.hop_length, nfft=cfg.n_fft,
                       detrend=False, scaling="spectrum", mode="psd")
        recompute.append(time.perf_counter() - t)
    s = StreamingSpectrogram(cfg)
    push = []
    for i in range(0, len(visible) - per_frame, per_frame):
        t = time.perf_counter()
        s.push(visible[i:i + per_frame])
        push.append(time.perf_counter() - t)
    rec_ms = 1000 * float(np.median(recompute))
    push_ms = 1000 * float(np.median(push))
    upd_ms = 1000 * float(np.median(update_with_audio)) if update_with_audio else float("nan")
    print()
    print(f"{'per frame (33 ms of audio at ' + str(cfg.rate) + ' Hz), median':<58} {'ms':>8}")
    print(f"{'StreamingSpectrogram.push (the new samples only)':<58} {push_ms:8.3f}")
    print(f"{'LiveMonitor.update in the run (spectrogram+envelope+level)':<58} {upd_ms:8.3f}")
    print(f"{'recompute scipy.signal.spectrogram over the visible ' + format(mon.seconds, 'g') + ' s':<58} "
          f"{rec_ms:8.3f}")
    print(f"{'ratio recompute / streaming push':<58} {rec_ms / push_ms:7.1f}x")
    print(f"{'ratio recompute / LiveMonitor.update':<58} {rec_ms / upd_ms:7.1f}x")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--device", default=None, help="input device index or name (default: "
                    "the system default)")
    ap.add_argument("--rate", type=int, default=48000)
    ap.add_argument("--no-draw", action="store_true", help="the data side only, no Qt")
    ap.add_argument("--no-model", action="store_true", help="do not load the model (app mode)")
    ap.add_argument("--play", action="store_true", help="loop noise into ci_sink with paplay")
    ap.add_argument("--keep", action="store_true", help="keep the recording (printed path)")
    ap.add_argument("--report-every", type=float, default=60.0, help="seconds per table row")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench_record_"))
    os.environ["LUNGAPP_HOME"] = str(tmp / "home")
    print(f"bench_record: {' '.join(sys.argv[1:])}; {os.cpu_count()} CPUs; "
          f"load average at start {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    player = start_player(args.rate, tmp) if args.play else None
    try:
        run = run_core if args.no_draw else run_app
        rows, result, mon, ring, upd, totals = run(args, tmp)
    finally:
        if player is not None:
            os.killpg(player.pid, 15)
            player.wait()

    print("-" * len(Rows.HDR))
    wall = totals["wall"]
    rss = rows.rss or [rss_mb()]
    mid = rss[(len(rss) - 1) // 2]
    print(f"total: {wall / 60:.1f} min recording, {result.frames / result.rate:.1f} s written, "
          f"overflows {result.overflows}, lost frames {result.lost_frames}"
          + (f", ended: {result.reason} {result.error}" if result.error else ""))
    print(f"CPU {100 * totals['cpu'] / wall:.1f} % of one core (this process, user+sys over "
          f"wall time); load average (1 min) during the run {min(rows.loads or [load1()]):.2f}"
          f"..{max(rows.loads or [load1()]):.2f}, mean {np.mean(rows.loads or [load1()]):.2f}")
    if not args.no_draw:
        print(f"frames/s {totals['frames'] / wall:.1f} painted ({totals['ticks'] / wall:.1f} "
              f"timer ticks/s), {totals['cols'] / max(1, totals['frames']):.2f} columns "
              "coloured per painted frame")
        if totals["x_cpu"] is not None:
            print(f"X server (Xvfb, another process) CPU {100 * totals['x_cpu'] / wall:.1f} % of one core")
    print(f"RSS start/middle/end {rss[0]:.1f}/{mid:.1f}/{rss[-1]:.1f} MB")
    streaming_vs_recompute(mon, ring, upd)
    if args.keep:
        print(f"recording kept: {result.path}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    if not args.no_draw:
        # PySide6 + pyqtgraph can crash in interpreter finalisation once a plot has been
        # shown, and the app would now analyse the recording: the results are printed,
        # so leave without running the finalisers.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
