"""Prediction latency and memory, ONNX Runtime against the Keras runtime, in one run.

    .venv/bin/python benchmarks/bench_predict.py [--model DIR] [--repeats N]
        [--cold-repeats N] [--runtimes onnx,keras]
    .venv/bin/python benchmarks/bench_predict.py --runtimes onnx:1,onnx:2   # model threads
    git worktree add /tmp/old d2590ba^   # the last commit with the NumPy runtime
    .venv/bin/python benchmarks/bench_predict.py --runtimes onnx,numpy@/tmp/old --repeats 60
    .venv/bin/python benchmarks/bench_predict.py --runtimes onnx,onnx#/tmp/other-model

For each runtime (``LUNGAPP_RUNTIME``, see lungapp/inference/predictor.py):

* warm: one fresh Python process per runtime loads the model (time includes importing
  the runtime: TensorFlow for keras) and warms up with 3 calls; then the processes take
  turns, call by call, timing ``predict_file`` on a 15-s WAV (decode + spectrogram +
  quality gate + model + pooling) and the model call alone, N times each: wall time
  (median, best) and CPU time of the process.
* cold: ``lungapp predict one.wav --format json`` from the shell (Python start, imports,
  model load, first call), median of a few runs; the runtimes alternate run by run so
  both see the same machine load.
* peak RSS: of the warm process after its runs, and of each cold CLI run (wait4).

Goals on the 2-core machine: <= 25 ms warm per 15-s recording, <= 0.4 s cold (onnx). Timings on a
shared machine are noisy: the table gives the load average next to the figures and the
ratio of the two runtimes measured in the same run. The 15-s test recording is generated
(noise + a tone), 8 kHz 16-bit WAV.
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

import numpy as np
import soundfile as sf

WARM_CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from lungapp.inference.predictor import Predictor
pred = Predictor.load(sys.argv[2] or None)
load_s = time.perf_counter() - t0
wav = sys.argv[1]
for _ in range(3):
    pred.predict_file(wav)
from lungapp.audio import load_audio
audio = load_audio(wav, rate=pred.card.features.rate)
Xs = [X for X, _ in pred.member_windows(audio.samples)]
print("READY " + json.dumps({"runtime": pred.runtime, "note": pred.runtime_note, "load_s": load_s,
      "model": f"{pred.card.name} {pred.card.version}", "files": len(pred.card.model_files),
      "windows": " + ".join(str(len(X)) for X in Xs),
      "input_shape": " + ".join(str(list(X.shape[1:])) for X in Xs)}), flush=True)
for line in sys.stdin:
    if line.strip() != "go":
        break
    c0, t0 = time.process_time(), time.perf_counter()
    pred.predict_file(wav)
    f, cf = time.perf_counter() - t0, time.process_time() - c0
    t0 = time.perf_counter()
    for g, X in enumerate(Xs):
        pred.window_outputs(X, g)
    print("RUN " + json.dumps([f, cf, time.perf_counter() - t0]), flush=True)
print("DONE " + json.dumps({"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                            "tf_imported": "tensorflow" in sys.modules}), flush=True)
"""


def _load() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def _expect(proc, tag: str, runtime: str) -> dict | list:
    for line in proc.stdout:
        if line.startswith(tag + " "):
            return json.loads(line[len(tag) + 1:])
    sys.exit(f"warm run ({runtime}) failed: {proc.stderr.read()[-2000:]}")


def _model_of(spec: str, model: str | None) -> str | None:
    """The model folder a runtime spec runs: the one after ``#`` (``onnx#DIR``), else
    ``model``."""
    other = spec.partition("#")[2]
    return str(Path(other).resolve()) if other else model


def _env(spec: str) -> dict:
    """The environment of a runtime spec: ``onnx`` or ``keras``, then optionally ``:N``
    (the threads the model calls share, LUNGAPP_THREADS), then optionally ``@TREE``: run the
    lungapp of another source tree (e.g. a worktree of an older commit, to compare with a
    runtime that is gone), then optionally ``#MODEL``: run another model folder than
    --model's. E.g. ``onnx:1``, ``numpy@/tmp/old-lungapp``, ``onnx#/tmp/other-model``."""
    spec = spec.partition("#")[0]
    spec, _, tree = spec.partition("@")
    rt, *opts = spec.split(":")
    env = dict(os.environ, LUNGAPP_RUNTIME=rt, TF_CPP_MIN_LOG_LEVEL="3")
    if tree:
        if not (Path(tree) / "lungapp" / "__init__.py").is_file():
            sys.exit(f"--runtimes: {tree!r} is not a lungapp source tree")
        env["PYTHONPATH"] = env["BENCH_TREE"] = str(Path(tree).resolve())
    for opt in opts:
        if opt.isdigit() and int(opt) >= 1:
            env["LUNGAPP_THREADS"] = opt
        else:
            sys.exit(f"--runtimes: {spec!r}: {opt!r} is not a thread count")
    return env


def run_warm(runtimes: list[str], wav: Path, model: str | None, repeats: int) -> dict:
    """One warm process per runtime, all loaded first; then one call at a time, the
    runtimes taking turns, so they see the same machine load."""
    procs, out = {}, {}
    for rt in runtimes:
        env = _env(rt)
        procs[rt] = subprocess.Popen([sys.executable, "-c", WARM_CHILD, str(wav),
                                      _model_of(rt, model) or ""],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env,
                                     cwd=env.get("BENCH_TREE"))  # python -c puts its cwd first
        out[rt] = _expect(procs[rt], "READY", rt)  # loads one after the other
        out[rt].update(warm_file=[], cpu_file=[], warm_model=[])
    loads = []
    for _ in range(repeats):
        for rt in runtimes:
            loads.append(os.getloadavg()[0])
            procs[rt].stdin.write("go\n")
            procs[rt].stdin.flush()
            f, cf, m = _expect(procs[rt], "RUN", rt)
            out[rt]["warm_file"].append(f)
            out[rt]["cpu_file"].append(cf)
            out[rt]["warm_model"].append(m)
    for rt in runtimes:
        procs[rt].stdin.write("done\n")
        procs[rt].stdin.flush()
        out[rt].update(_expect(procs[rt], "DONE", rt))
        procs[rt].wait(timeout=60)
        out[rt]["warm_load"] = f"{min(loads):.2f}-{max(loads):.2f}"
    return out


def run_cold(runtime: str, wav: Path, model: str | None) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one `lungapp predict` run."""
    cmd = [sys.executable, "-m", "lungapp", "predict", str(wav), "--format", "json"]
    model = _model_of(runtime, model)
    if model:
        cmd += ["--model", model]
    env = _env(runtime)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=env.get("BENCH_TREE"))
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            err.seek(0)
            sys.exit(f"cold run ({runtime}) failed: {err.read().decode(errors='replace')[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model folder (default: the active model)")
    ap.add_argument("--repeats", type=int, default=20, help="warm calls per runtime")
    ap.add_argument("--cold-repeats", type=int, default=3, help="cold CLI runs per runtime")
    ap.add_argument("--runtimes", default="onnx,keras",
                    help="comma-separated LUNGAPP_RUNTIME values (default onnx,keras); "
                         "onnx:N runs the model calls on N threads (LUNGAPP_THREADS); "
                         "onnx#DIR runs the model folder DIR instead of --model's")
    args = ap.parse_args()
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]

    rng = np.random.default_rng(0)
    t = np.arange(15 * 8000) / 8000
    x = (0.05 * rng.normal(size=t.size) + 0.1 * np.sin(2 * np.pi * 400 * t)).astype(np.float32)
    tmp = Path(tempfile.mkdtemp())
    wav = tmp / "one.wav"
    sf.write(wav, x, 8000, subtype="PCM_16")
    model = str(Path(args.model).resolve()) if args.model else None

    load_start = _load()
    warm = run_warm(runtimes, wav, model, args.repeats)
    cold = {rt: [] for rt in runtimes}
    cold_rss = {rt: [] for rt in runtimes}
    cold_load = []
    for _ in range(args.cold_repeats):
        for rt in runtimes:  # alternate: both runtimes see the same load
            cold_load.append(os.getloadavg()[0])
            s, rss = run_cold(rt, wav, model)
            cold[rt].append(s)
            cold_rss[rt].append(rss)
    load_end = _load()

    any_w = next(iter(warm.values()))
    print(f"model: {any_w['model']} ({any_w['files']} file(s), {any_w['windows']} windows of "
          f"{any_w['input_shape']}) on a 15-s 8 kHz WAV; cpus: {os.cpu_count()}")
    print(f"load average (1/5/15 min): at start {load_start}, at end {load_end}")
    for rt in runtimes:
        w = warm[rt]
        print(f"  {rt}: runtime used {w['runtime']!r}{' (' + w['note'] + ')' if w['note'] else ''}, "
              f"TensorFlow imported: {'yes' if w['tf_imported'] else 'no'}")
    print(f"  warm runs (runtimes taking turns call by call): load (1 min) {w['warm_load']}")
    print(f"  cold runs: load (1 min) {min(cold_load):.2f}-{max(cold_load):.2f}")

    def ms(v):
        return f"{v * 1000:.1f} ms"

    def sec(v):
        return f"{v:.2f} s"

    rows = [
        ("model load in a fresh process (incl. imports)", lambda w, rt: w["load_s"], sec, None, ""),
        (f"warm predict_file, median of {args.repeats}", lambda w, rt: statistics.median(w["warm_file"]),
         ms, "<= 25 ms", ""),
        (f"warm predict_file, best of {args.repeats}", lambda w, rt: min(w["warm_file"]), ms, None, ""),
        ("warm predict_file, CPU time (median)", lambda w, rt: statistics.median(w["cpu_file"]), ms, None,
         "all threads"),
        ("warm model call only (all windows), median", lambda w, rt: statistics.median(w["warm_model"]),
         ms, None, ""),
        (f"cold `lungapp predict one.wav`, median of {args.cold_repeats}",
         lambda w, rt: statistics.median(cold[rt]), sec, "<= 0.4 s", ""),
        ("cold `lungapp predict`, best", lambda w, rt: min(cold[rt]), sec, None, ""),
        ("peak RSS, warm process", lambda w, rt: w["rss_mb"], lambda v: f"{v:.0f} MB", None, ""),
        ("peak RSS, cold CLI (median)", lambda w, rt: statistics.median(cold_rss[rt]),
         lambda v: f"{v:.0f} MB", None, ""),
    ]
    ratio_hdr = f"{runtimes[1]}/{runtimes[0]}" if len(runtimes) == 2 else ""
    hdr = ["measure", *runtimes, *([ratio_hdr] if ratio_hdr else []), "goal"]
    table = []
    for name, get, fmt, goal, _ in rows:
        vals = [get(warm[rt], rt) for rt in runtimes]
        line = [name, *[fmt(v) for v in vals]]
        if ratio_hdr:
            line.append(f"{vals[1] / vals[0]:.1f}x" if vals[0] > 0 else "")
        line.append(goal or "")
        table.append(line)
    widths = [max(len(r[i]) for r in [hdr, *table]) for i in range(len(hdr))]
    print("  ".join(h.ljust(n) if i == 0 else h.rjust(n) for i, (h, n) in enumerate(zip(hdr, widths))))
    print("  ".join("-" * n for n in widths))
    for r in table:
        print("  ".join(c.ljust(n) if i == 0 else c.rjust(n) for i, (c, n) in enumerate(zip(r, widths))))


if __name__ == "__main__":
    main()
