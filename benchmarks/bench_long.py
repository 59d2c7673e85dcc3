"""Time and peak memory of ``predict`` on long recordings: 1 min, 10 min and 2 h.

    .venv/bin/python benchmarks/bench_long.py [--lengths 60,600,7200] [--model DIR]
        [--code DIR]

Writes 48 kHz 16-bit mono WAVs of each length in a temporary folder (noise with a
breathing-like envelope, written block by block), then runs ``predict_file`` on each in a
fresh Python process and prints a table: the file's size, wall time, time per minute of
audio (linear growth keeps it flat), the process's peak RSS (VmHWM) and, for comparison,
its RSS after importing and loading the model. One 10-s call warms the model up first.
``--code DIR`` runs another checkout's lungapp (e.g. the main branch before the change)
for a "before" row. The goal (issue #30): peak memory <= 500 MB for any length, time
growing linearly.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
RATE = 48_000

CHILD = r"""
import json, sys, time
import lungapp
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith(("VmHWM", "VmRSS")):
            yield line.split()[0][:-1], int(line.split()[1]) / 1024
from lungapp.inference.predictor import Predictor
pred = Predictor.load(sys.argv[2] or None)
loaded = dict(hwm())["VmRSS"]
import numpy as np
pred.predict_audio(np.random.default_rng(0).normal(0, 0.1, 80000).astype("float32"), 8000)  # warm-up
t0 = time.perf_counter()
r = pred.predict_file(sys.argv[1])
wall = time.perf_counter() - t0
print(json.dumps({"code": lungapp.__file__, "wall_s": wall, "peak_mb": dict(hwm())["VmHWM"], "loaded_mb": loaded,
                  "decision": r.decision, "windows": len(r.windows)}))
"""


def write_wav(path: Path, seconds: int, seed: int = 0) -> None:
    """A 48 kHz 16-bit mono WAV of ``seconds``: noise shaped by a 0.3-Hz breathing
    envelope, written a minute at a time (never the whole signal in memory)."""
    rng = np.random.default_rng(seed)
    with sf.SoundFile(path, "w", RATE, 1, subtype="PCM_16") as f:
        for t0 in range(0, seconds, 60):
            n = min(60, seconds - t0) * RATE
            t = t0 + np.arange(n) / RATE
            env = 0.05 + 0.2 * np.sin(2 * np.pi * 0.3 * t) ** 2
            f.write((rng.standard_normal(n) * env).clip(-1, 1).astype(np.float32))


def run(wav: Path, model: str, code: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code)}
    # cwd: python -c puts the working folder first on sys.path, before PYTHONPATH.
    out = subprocess.run([sys.executable, "-c", CHILD, str(wav), model], env=env, cwd=wav.parent,
                         capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", default="60,600,7200", help="seconds, comma-separated")
    ap.add_argument("--model", default="", help="model folder (default: the active model)")
    ap.add_argument("--code", type=Path, default=ROOT, help="checkout whose lungapp runs")
    a = ap.parse_args()
    print(f"lungapp from {a.code.resolve()}; {os.cpu_count()} cores; load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"{'length':>8} {'file MB':>8} {'wall s':>8} {'s per min':>10} {'peak RSS MB':>12} "
          f"{'after load MB':>14} {'windows':>8}  decision")
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in (int(s) for s in a.lengths.split(",")):
            wav = Path(tmp) / f"long_{seconds}s.wav"
            write_wav(wav, seconds)
            r = run(wav, a.model, a.code)
            size = wav.stat().st_size / 2**20
            wav.unlink()
            if "error" not in r and not r["code"].startswith(str(a.code.resolve())):
                r = {"error": f"ran {r['code']}, not {a.code}"}
            if "error" in r:
                print(f"{seconds:>7}s {size:>8.0f}  ERROR: {r['error']}")
                continue
            print(f"{seconds:>7}s {size:>8.0f} {r['wall_s']:>8.1f} {60 * r['wall_s'] / seconds:>10.2f} "
                  f"{r['peak_mb']:>12.0f} {r['loaded_mb']:>14.0f} {r['windows']:>8}  {r['decision']}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
