"""Prediction latency: warm (in-process, after warm-up) and cold (`lungapp predict` from
the shell, including Python start, TensorFlow import and model load).

    .venv/bin/python benchmarks/bench_predict.py [--model DIR] [--repeats N]

Goals on the 2-core machine: <= 50 ms warm per 15-s recording, <= 6 s cold.
Prints a table; the 15-s test recording is generated (noise + a tone), 8 kHz 16-bit WAV.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="model folder (default: the active model)")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--cold-repeats", type=int, default=3)
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    t = np.arange(15 * 8000) / 8000
    x = (0.05 * rng.normal(size=t.size) + 0.1 * np.sin(2 * np.pi * 400 * t)).astype(np.float32)
    tmp = Path(tempfile.mkdtemp())
    wav = tmp / "one.wav"
    sf.write(wav, x, 8000, subtype="PCM_16")

    from lungapp.model.inference import Predictor

    t0 = time.perf_counter()
    pred = Predictor.load(args.model)
    load_s = time.perf_counter() - t0
    for _ in range(3):
        pred.predict_file(wav)
    warm_file, warm_model = [], []
    from lungapp.audio import load_audio
    from lungapp.model.features import windows_from_samples

    audio = load_audio(wav, rate=pred.card.features.rate)
    X, _ = windows_from_samples(audio.samples, pred.card.features)
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        pred.predict_file(wav)
        warm_file.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        pred.window_outputs(X)
        warm_model.append(time.perf_counter() - t0)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    cmd = [str(Path(sys.executable).with_name("lungapp")), "predict", str(wav), "--format", "json"]
    if args.model:
        cmd += ["--model", args.model]
    cold = []
    for _ in range(args.cold_repeats):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
        cold.append(time.perf_counter() - t0)
        if r.returncode != 0:
            sys.exit(f"cold run failed: {r.stderr.strip()}")

    print(f"model: {pred.card.name} {pred.card.version} at {pred.model_dir} "
          f"({len(pred.card.model_files)} file(s), {len(X)} windows of {pred.card.features.input_shape})")
    print(f"{'measure':<46} {'median':>10} {'min':>10} {'goal':>8}")
    rows = [
        ("model load (in-process, incl. TF import)", [load_s], None),
        ("warm: predict_file, 15-s 8 kHz WAV", warm_file, 0.050),
        ("warm: model call only (all windows)", warm_model, None),
        ("cold: `lungapp predict one.wav` from shell", cold, 6.0),
    ]
    for name, vals, goal in rows:
        g = f"<= {goal * 1000:.0f} ms" if goal and goal < 1 else (f"<= {goal:.0f} s" if goal else "")
        unit = (lambda v: f"{v * 1000:.1f} ms") if max(vals) < 1 else (lambda v: f"{v:.2f} s")
        print(f"{name:<46} {unit(statistics.median(vals)):>10} {unit(min(vals)):>10} {g:>8}")
    print(f"peak RSS of this process: {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
