"""GUI responsiveness: cold start to a visible window, to the first result on a 15-s
file, and the longest GUI-thread stall during "Analyse all" over 100 files.

    .venv/bin/python benchmarks/bench_gui.py [--model DIR] [--repeats 3] [--files 100]
        [--runtimes onnx,keras]

Needs a display (X11/Wayland, Xvfb, or QT_QPA_PLATFORM=offscreen). Every measurement
runs in a fresh Python process (cold: interpreter start, imports, first paint).

* start -> window: from launching the process to the main window's first paint
  (the same code path as ``lungapp``: create_application + create_window).
* start -> first result: the same process opened with one 15-s recording; until the
  Review view has its analysis (includes the model load, and with the Keras runtime the
  TensorFlow import, which begin only after the first paint).
* runtimes: each measurement is made for every ``--runtimes`` value (LUNGAPP_RUNTIME:
  onnx, keras, auto), one column each, runs alternating between runtimes so they see
  the same machine load; the 1-min load average is printed with each column.
* CPU time: the child's process_time() (all its threads) at those moments; on a busy
  machine wall time includes waiting for the CPU, CPU time does not (interpreter
  start-up before Python runs is not included).
* stall: a 10 ms QTimer on the GUI thread records when it fires; the longest gap between
  two ticks while "Analyse all" runs over N 15-s recordings is the longest time the GUI
  could not react (goal <= 100 ms).

Goals (issue 5): window <= 1.5 s, first result <= 5 s, stall <= 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD_START = r"""
import json, sys, time
from PySide6.QtCore import QTimer
from lungapp.gui.app import create_application, create_window
t_launch = float(sys.argv[1])
files = sys.argv[2:]
app = create_application([])
win = create_window(files)
out = {}
def painted():
    out["window_s"] = time.time() - t_launch
    out["window_cpu_s"] = time.process_time()
    out["tf_at_window"] = any(m in sys.modules for m in ("tensorflow", "keras"))
    if not files:
        app.quit()
def ready(state, msg):
    if state != "loading":
        out["model_s"] = time.time() - t_launch
        out["model_cpu_s"] = time.process_time()
        out["model_state"] = state + ": " + msg
def result(path, pred):
    out["result_s"] = time.time() - t_launch
    out["result_cpu_s"] = time.process_time()
    out["label"] = pred.label
    out["tf_at_result"] = "tensorflow" in sys.modules
    p = win.ctx.predictor()
    out["runtime"] = getattr(p, "runtime", "?")
    app.quit()
def failed(path, msg):
    out["error"] = msg
    app.quit()
win.firstPainted.connect(painted)
win.ctx.modelStateChanged.connect(ready)
win.ctx.analysisFinished.connect(result)
win.ctx.analysisFailed.connect(failed)
QTimer.singleShot(180000, app.quit)
app.exec()
print("BENCH " + json.dumps(out))
"""

CHILD_STALL = r"""
import json, sys, time
from PySide6.QtCore import QTimer
from lungapp.gui.app import create_application, create_window
folder = sys.argv[1]
app = create_application([])
win = create_window([])
view = win.review
view.auto_analyse.setChecked(False)
ticks = []
probe = QTimer()
probe.setInterval(10)
probe.timeout.connect(lambda: ticks.append(time.perf_counter()))
out = {}
def go():
    if view.model.rowCount() < n_files or win.ctx.model_state() == "loading":
        QTimer.singleShot(50, go)
        return
    # let the selected file's display load settle, then measure an idle baseline (the
    # machine's own scheduling delays), then Analyse all
    QTimer.singleShot(1500, baseline)
def gaps_ms():
    g = sorted(b - a for a, b in zip(ticks, ticks[1:]))
    return 1000 * g[-1], 1000 * g[int(0.99 * (len(g) - 1))]
def baseline():
    probe.start()
    QTimer.singleShot(5000, end_baseline)
def end_baseline():
    probe.stop()
    out["idle_max_gap_ms"], out["idle_p99_gap_ms"] = gaps_ms()
    ticks.clear()
    start()
def start():
    out["t0"] = time.perf_counter()
    probe.start()
    view.analyse_all()
def finished(done, total):
    probe.stop()
    t1 = time.perf_counter()
    mx, p99 = gaps_ms()
    out.update(files=total, seconds=t1 - out.pop("t0"), max_gap_ms=mx, p99_gap_ms=p99,
               ticks=len(ticks),
               done=sum(e.status == "done" for e in view.model.entries),
               errors=sum(e.status == "error" for e in view.model.entries))
    app.quit()
n_files = int(sys.argv[2])
view.batchFinished.connect(finished)
win.open_paths([folder])
QTimer.singleShot(100, go)
QTimer.singleShot(900000, app.quit)
app.exec()
print("BENCH " + json.dumps(out))
"""


def _run(code: str, args: list[str], env: dict) -> dict:
    t = time.time()
    argv = args(t) if callable(args) else args
    proc = subprocess.run([sys.executable, "-c", code, *argv],
                          env=env, capture_output=True, text=True, timeout=1200)
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH "):
            return json.loads(line[6:])
    raise RuntimeError(f"benchmark child failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")


def _write_recordings(folder: Path, n: int) -> list[Path]:
    import soundfile as sf

    from lungapp.synth import KINDS, generate

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"rec{i:03d}.wav"
        sf.write(p, generate(KINDS[i % len(KINDS)], 15.0, 8000, seed=i), 8000, subtype="PCM_16")
        paths.append(p)
    return paths


def _parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model folder (default: the active model)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--runtimes", default="onnx,keras",
                    help="comma-separated LUNGAPP_RUNTIME values, one column each (default onnx,keras)")
    return ap.parse_args()


def _child_env(args) -> dict:
    """The children's environment: the model, a display (or offscreen), a fresh
    LUNGAPP_HOME (no restored window state)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if args.model:
        env["LUNGAPP_MODEL"] = str(Path(args.model).resolve())
    if not any(env.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")):
        env["QT_QPA_PLATFORM"] = "offscreen"
    env["LUNGAPP_HOME"] = tempfile.mkdtemp(prefix="bench_gui_home_")
    return env


def _measure_starts(args, env: dict, runtimes: list[str], one: Path):
    """Cold starts, alternating runtimes (so every runtime sees the same machine load):
    returns ({runtime: measurements}, notes, model name)."""
    notes = set()
    m = {rt: {"windows": [], "results": [], "model_s": [], "cpu_window": [], "cpu_result": [],
              "load": [], "runtime_used": set(), "tf_at_result": set()} for rt in runtimes}
    model_name = ""
    for _ in range(args.repeats):
        for rt in runtimes:
            e = dict(env, LUNGAPP_RUNTIME=rt)
            d = m[rt]
            d["load"].append(os.getloadavg()[0])
            r = _run(CHILD_START, lambda t: [repr(t)], e)
            d["windows"].append(r["window_s"])
            d["cpu_window"].append(r["window_cpu_s"])
            if r.get("tf_at_window"):
                notes.add(f"{rt}: TensorFlow was imported before the first paint!")
            r = _run(CHILD_START, lambda t: [repr(t), str(one)], e)
            if "error" in r:
                raise SystemExit(f"analysis failed ({rt}): {r['error']}")
            d["results"].append(r["result_s"])
            d["cpu_result"].append(r["result_cpu_s"])
            d["model_s"].append(r.get("model_s", float("nan")))
            d["runtime_used"].add(r.get("runtime", "?"))
            d["tf_at_result"].add(bool(r.get("tf_at_result")))
            model_name = r.get("model_state", "").split(" · ")[0].replace("ready: Model: ", "")
    return m, notes, model_name


def _med(v):
    return statistics.median(v)


def _column(d: dict) -> list[str]:
    """One runtime's column of the table, from its measurements ``d``."""
    s = d["stall"]
    return [
        f"{_med(d['windows']):.2f} s", f"{_med(d['cpu_window']):.2f} s", f"{_med(d['model_s']):.2f} s",
        f"{_med(d['results']):.2f} s", f"{min(d['results']):.2f}-{max(d['results']):.2f} s",
        f"{_med(d['cpu_result']):.2f} s",
        "yes" if any(d["tf_at_result"]) else "no",
        f"{s['max_gap_ms']:.0f} ms", f"{s['p99_gap_ms']:.0f} ms", f"{s['idle_max_gap_ms']:.0f} ms",
        f"{s['seconds']:.1f} s", f"{s['done']}/{s['files']}",
        f"{min(d['load']):.1f}-{max(d['load']):.1f}", f"{d['load_stall']:.1f}",
    ]


def _row_names(files: int) -> list[tuple[str, str]]:
    """(measure, goal) of each row, in _column's order."""
    return [
        ("cold start -> window painted (median)", "<= 1.5 s"),
        ("  CPU time by then (this process)", ""),
        ("cold start -> model ready (median)", ""),
        ("cold start -> first result, 15-s file (median)", "<= 5 s"),
        ("  first result, min-max", ""),
        ("  CPU time by then (all threads)", ""),
        ("  TensorFlow imported by then", ""),
        (f"Analyse all {files} x 15 s: longest GUI stall", "<= 100 ms"),
        ("  p99 gap of the 10 ms probe", ""),
        ("  idle GUI, same probe, 5 s (baseline)", ""),
        (f"Analyse all {files} x 15 s: total", ""),
        ("  files done", ""),
        ("load avg (1 min) during start runs", ""),
        ("load avg (1 min) at the Analyse-all run", ""),
    ]


def _add_ratio_column(hdr: list, rows: list, m: dict, runtimes: list[str]) -> None:
    """With two runtimes: a column of second/first for the timed rows."""
    a, b = runtimes
    hdr.insert(3, f"{b}/{a}")
    for i, r in enumerate(rows):
        ratio = ""
        if i in (0, 2, 3, 7, 10):
            key = {0: "windows", 2: "model_s", 3: "results"}.get(i)
            va = _med(m[a][key]) if key else (m[a]["stall"]["max_gap_ms"] if i == 7 else m[a]["stall"]["seconds"])
            vb = _med(m[b][key]) if key else (m[b]["stall"]["max_gap_ms"] if i == 7 else m[b]["stall"]["seconds"])
            ratio = f"{vb / va:.1f}x" if va > 0 else ""
        r.insert(3, ratio)


def _print_table(hdr: list, rows: list) -> None:
    w = [max(len(str(r[i])) for r in [hdr, *rows]) for i in range(len(hdr))]
    print("  ".join(h.ljust(n) for h, n in zip(hdr, w)))
    print("  ".join("-" * n for n in w))
    for r in rows:
        print("  ".join(str(c).ljust(n) for c, n in zip(r, w)))


def main() -> int:
    args = _parse_args()
    env = _child_env(args)
    tmp = Path(tempfile.mkdtemp(prefix="bench_gui_"))
    one = _write_recordings(tmp / "one", 1)[0]
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    m, notes, model_name = _measure_starts(args, env, runtimes, one)

    many = tmp / "many"
    _write_recordings(many, args.files)
    for rt in runtimes:
        m[rt]["load_stall"] = os.getloadavg()[0]
        m[rt]["stall"] = _run(CHILD_STALL, [str(many), str(args.files)], dict(env, LUNGAPP_RUNTIME=rt))

    cols = {rt: _column(m[rt]) for rt in runtimes}
    print(f"bench_gui  model: {model_name}  platform: {env.get('QT_QPA_PLATFORM') or 'xcb'}"
          f"  cpus: {os.cpu_count()}  repeats: {args.repeats}")
    for rt in runtimes:
        print(f"  LUNGAPP_RUNTIME={rt}: runtime used {', '.join(sorted(m[rt]['runtime_used']))}")
    hdr = ["measure", *runtimes, "goal"]
    rows = [[n, *[cols[rt][i] for rt in runtimes], g]
            for i, (n, g) in enumerate(_row_names(args.files))]
    if len(runtimes) == 2:
        _add_ratio_column(hdr, rows, m, runtimes)
    _print_table(hdr, rows)
    for n in sorted(notes):
        print("NOTE:", n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
