"""Restoring the Review list at start: how long the GUI thread spends listing N remembered
files and showing their cached results, and again when the model becomes ready.

    .venv/bin/python benchmarks/bench_review_restore.py [--files 0,200,2000] [--repeats 3]
        [--model DIR]   (a model folder; default: the tiny test model, built in seconds)

Needs a display (Xvfb, or QT_QPA_PLATFORM=offscreen). Each size runs in a fresh
LUNGAPP_HOME: N short WAV files, each with a cached result of the tiny test model's shape
(a real Prediction of the first file, copied), and the list saved as the app saves it on
close. Then, in this process:

* window: constructing and showing the main window (which lists the remembered files;
  up to 32 rows' results are looked up at once, more in a worker); the 0-file row is the
  window alone (the first row also pays the imports: put 0 first);
* all results: from the start until every row shows its result;
* longest stall: the longest gap between two ticks of a 10 ms GUI-thread timer in the
  first 1.5 s (or until all results are shown), first paint included (the 0-file row);
* model ready: the GUI thread's time in set_predictor (the cached results are another
  model's, so every row is looked up again, in the worker).

Goal: the window no slower with a long list; results within a second or two; stalls no
longer than the first paint's own.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def _setup(home: Path, n: int, model_dir: Path) -> None:
    import numpy as np
    import soundfile as sf

    from lungapp.inference.predictor import Predictor
    from lungapp.store.results_cache import ResultsCache

    folder = home / "recs"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = folder / f"r{i:05d}.wav"
        sf.write(p, (0.1 * rng.standard_normal(8000 * 3)).astype(np.float32), 8000)
        paths.append(str(p))
    if not paths:
        return
    d = Predictor.load(model_dir).predict_file(paths[0]).to_dict()
    d["model"] = {**d["model"], "path": "/elsewhere/old-model"}   # another model's results
    cache = ResultsCache()
    with cache.conn:
        cache.conn.execute("BEGIN")
        for p in paths:
            cache.put(p, d)
    cache.save_list(paths)
    cache.close()


def _measure(n: int, model_dir: Path) -> dict:
    from PySide6.QtCore import QTimer

    from lungapp.gui import workers
    from lungapp.gui.main_window import MainWindow
    from lungapp.inference.predictor import Predictor

    predictor = Predictor.load(model_dir)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LUNGAPP_HOME"] = tmp
        _setup(Path(tmp), n, model_dir)
        t0 = time.perf_counter()
        win = MainWindow()
        win.show()
        t1 = time.perf_counter()
        ticks = [t1]
        timer = QTimer()
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
        timer.start(10)
        entries = win.review.model.entries
        workers.wait_until(lambda: all(e.prediction is not None for e in entries), 60, poll_ms=5)
        t2 = time.perf_counter()
        # At least 1.5 s of ticks in every row: the 0-file row's stall is the window's own
        # first paint, the baseline for the others.
        workers.wait_until(lambda: time.perf_counter() - t1 > 1.5, 5, poll_ms=5)
        timer.stop()
        restored = sum(e.prediction is not None for e in entries)
        t_set = time.perf_counter()
        win.ctx.set_predictor(predictor)
        t3 = time.perf_counter()
        workers.wait_all(10000)
        win.close()
        workers.wait_all(10000)
    stall = max((b - a for a, b in zip(ticks, ticks[1:])), default=0.0)
    return {"window_s": t1 - t0, "filled_s": t2 - t0, "stall_ms": stall * 1000, "ready_s": t3 - t_set,
            "restored": restored}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", default="0,200,2000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", help="model folder (default: build tests/tiny_model.py's)")
    args = ap.parse_args()
    from PySide6.QtWidgets import QApplication

    from tiny_model import build_tiny_model

    _app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as mtmp:
        model_dir = Path(args.model) if args.model else build_tiny_model(Path(mtmp) / "tiny")
        cols = ("window_s", "filled_s", "stall_ms", "ready_s")
        print(f"{'files':>6} {'restored':>9} {'window (s)':>11} {'all results (s)':>16} "
              f"{'longest stall (ms)':>19} {'model ready (s)':>16}")
        for n in (int(x) for x in args.files.split(",")):
            runs = [_measure(n, model_dir) for _ in range(args.repeats)]
            m = {k: statistics.median(r[k] for r in runs) for k in cols}
            print(f"{n:>6} {runs[0]['restored']:>9} {m['window_s']:>11.3f} {m['filled_s']:>16.3f} "
                  f"{m['stall_ms']:>19.0f} {m['ready_s']:>16.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
