"""Annotation on a long recording: pan and zoom frame times on a 10-minute recording with and
without regions, and the cost of one edit (add a region: command, autosave, redraw) on it
compared with a 15-s recording, both in a 10-s view.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/bench_annotation.py
        [--minutes 10] [--regions 300] [--frames 60]

A frame: set the plots' time range, then repaint the plot widget synchronously
(``viewport().repaint()``) and wait for it; the time is what a user waits between a wheel step
or a drag step and the new picture. Pan: a 10-s view stepped by 1 s; zoom: the view width
stepped between the whole recording and 2 s. Goal (issue 31): no pan frame over 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _write(path: Path, seconds: float, rate: int = 8000) -> Path:
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    breath = 0.5 * (1 + np.sin(2 * np.pi * t / 3.5))
    sf.write(path, (0.1 * breath * rng.standard_normal(len(t))).astype(np.float32), rate,
             subtype="PCM_16")
    return path


def _regions_sidecar(path: Path, n: int, seconds: float) -> None:
    types = ("Normal", "Wheeze", "Fine Crackle", "Coarse Crackle", "Rhonchi")
    starts = np.linspace(0.2, seconds - 1.5, n) if n else []
    events = [{"start": int(s * 1000), "end": int(s * 1000) + 1200, "type": types[i % 5]}
              for i, s in enumerate(starts)]
    path.with_suffix(".json").write_text(json.dumps({"record_annotation": "CAS",
                                                     "event_annotation": events}))


def _stats(ms: list[float]) -> str:
    a = np.array(ms)
    return (f"{len(a):>6} {np.median(a):>9.1f} {np.percentile(a, 95):>9.1f} {a.max():>9.1f}")


class Bench:
    def __init__(self, win, app):
        self.win, self.app, self.view = win, app, win.review

    def open(self, path: Path) -> None:
        from lungapp.gui.workers import wait_until

        self.view.select(str(path)) if self.view.model.row_of(str(path)) >= 0 else \
            self.win.open_paths([str(path)])
        ok = wait_until(lambda: self.view.plots.has_image() and self.view.annotation.layer.doc is not None
                        and str(self.view.annotation.layer.sidecar.audio) == str(path), 120)
        if not ok:
            raise SystemExit(f"bench_annotation: {path} was not displayed")
        wait_until(lambda: False, 0.5)  # layout settles

    def frame(self, lo: float, hi: float) -> float:
        t0 = time.perf_counter()
        self.view.plots.wave.setXRange(lo, hi, padding=0)
        self.view.plots.glw.viewport().repaint()
        self.app.processEvents()
        return (time.perf_counter() - t0) * 1000

    def pan(self, frames: int) -> list[float]:
        end = self.view.plots.duration
        self.frame(0, 10)  # untimed: from the opening view to the first 10 s is a zoom, not a pan step
        return [self.frame(s, s + 10) for s in 1 + np.arange(frames) % max(1, end - 11)]

    def zoom(self, frames: int) -> list[float]:
        end = self.view.plots.duration
        widths = np.geomspace(end, 2.0, frames // 2).tolist()
        widths += widths[::-1]
        return [self.frame(end / 2 - w / 2, end / 2 + w / 2) for w in widths]

    def edits(self, n: int = 20) -> tuple[list[float], list[float]]:
        """Each edit's time (add a region, autosave, redraw, repaint) and, of it, the autosave's."""
        layer, out, saves = self.view.annotation.layer, [], []
        end = self.view.plots.duration
        sidecar = layer.sidecar
        save = sidecar.save

        def timed_save():
            t = time.perf_counter()
            try:
                return save()
            finally:
                saves.append((time.perf_counter() - t) * 1000)

        sidecar.save = timed_save
        try:
            for i in range(n):
                at = end * (i + 0.5) / (n + 1)
                self.frame(max(0.0, at - 5), max(0.0, at - 5) + min(10.0, end))  # a 10-s view, untimed
                t0 = time.perf_counter()
                layer.add(at, at + 0.3, "Wheeze")
                self.view.plots.glw.viewport().repaint()
                out.append((time.perf_counter() - t0) * 1000)
        finally:
            del sidecar.save
        return out, saves


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--regions", type=int, default=300, help="regions on the long recording")
    ap.add_argument("--frames", type=int, default=60)
    args = ap.parse_args()
    os.environ["LUNGAPP_HOME"] = tempfile.mkdtemp(prefix="lungapp_bench_")
    if not any(os.environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    import lungapp
    from lungapp.gui.app import create_application, create_window

    # The code measured (PYTHONPATH), so runs of two branches can be told apart in one window.
    print(f"load average (1 min) {os.getloadavg()[0]:.2f}; code {Path(lungapp.__file__).parent.parent}")

    app = create_application([])
    win = create_window([], load_model=False)
    win.resize(1440, 860)
    win.show()
    win.review.auto_analyse.setChecked(False)
    tmp = Path(tempfile.mkdtemp())
    long_s = args.minutes * 60
    cases = [("long, no regions", _write(tmp / "long_bare.wav", long_s), 0),
             (f"long, {args.regions} regions", _write(tmp / "long.wav", long_s), args.regions),
             ("15 s, 5 regions", _write(tmp / "short.wav", 15.0), 5)]
    bench = Bench(win, app)
    print(f"recording of {args.minutes:g} min at 8 kHz; frame = set range + synchronous repaint (ms)")
    print(f"{'case':<28} {'what':<10} {'frames':>6} {'median':>9} {'p95':>9} {'max':>9}")
    for name, path, n in cases:
        _regions_sidecar(path, n, long_s if "long" in name else 15.0)
        bench.open(path)
        rows = [] if "15 s" in name else [("pan", bench.pan(args.frames)), ("zoom", bench.zoom(args.frames))]
        if n:
            edits, saves = bench.edits()
            rows += [("edit", edits), ("  autosave", saves)]
        for what, ms in rows:
            print(f"{name:<28} {what:<10} {_stats(ms)}")
    print(f"median of all: {statistics.median([bench.frame(0, 10) for _ in range(5)]):.1f} ms per 10-s view")
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
