"""Would LiteRT run the bundled model faster than ONNX Runtime here? (issue #27: "if LiteRT
measures better here, use it instead"). A decision record, not a benchmark of the app.

Converts each bundled member's ``.keras`` file to a ``.tflite`` file with TensorFlow's
converter, then times the members' calls on one 15-s recording's windows (27 windows of
2 s, 12 + 12 of 4 s) with the LiteRT interpreter and with ONNX Runtime (the app's session
options), alternating call by call in one process, at 1 and 2 threads; it also checks that
the two agree. Needs TensorFlow (for the conversion) and the ``ai-edge-litert`` wheel,
which lungapp does not depend on:

    pip install --target /tmp/litpkg ai-edge-litert --no-deps
    .venv/bin/python research/litert_vs_onnx.py --litert /tmp/litpkg [--repeats 60]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def convert(model_dir: Path, files: list[str], out: Path) -> list[Path]:
    import keras
    import tensorflow as tf

    paths = []
    for f in files:
        model = keras.models.load_model(model_dir / f, compile=False, safe_mode=True)
        path = out / (Path(f).stem + ".tflite")
        path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
        paths.append(path)
    return paths


def litert_call(path: Path, shape: tuple, threads: int):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=threads)
    inp = it.get_input_details()[0]["index"]
    it.resize_tensor_input(inp, list(shape))
    it.allocate_tensors()
    out = it.get_output_details()[0]["index"]

    def call(x):
        it.set_tensor(inp, x)
        it.invoke()
        return it.get_tensor(out)
    return call


def onnx_call(path: Path, threads: int):
    import onnxruntime as ort

    from lungapp.inference.runtime import session_options

    opts = session_options()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x})[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--litert", help="folder holding the ai_edge_litert package (pip --target)")
    ap.add_argument("--repeats", type=int, default=60)
    args = ap.parse_args()
    if args.litert:
        sys.path.insert(0, args.litert)
    from lungapp.inference.card import load_card

    model_dir = ROOT / "resources" / "model"
    card = load_card(model_dir)
    fcs = card.member_features or [card.features] * len(card.model_files)
    rng = np.random.default_rng(0)
    xs = [rng.random((27 if fc.window_s == 2.0 else 12, *fc.input_shape), dtype=np.float32) for fc in fcs]
    with tempfile.TemporaryDirectory() as tmp:
        tfl = convert(model_dir, card.model_files, Path(tmp))
        print(f"model: {card.name} {card.version}, windows {' + '.join(str(len(x)) for x in xs)}")
        print("threads  LiteRT median  LiteRT best  ORT median  ORT best  max |difference|")
        for threads in (1, 2):
            lit = [litert_call(p, x.shape, threads) for p, x in zip(tfl, xs)]
            onx = [onnx_call(model_dir / card.onnx[f].file, threads) for f in card.model_files]
            diff = max(float(np.abs(a(x) - b(x)).max()) for a, b, x in zip(lit, onx, xs))
            t_lit, t_onx = [], []
            for _ in range(args.repeats):
                for calls, times in ((lit, t_lit), (onx, t_onx)):
                    t0 = time.perf_counter()
                    for call, x in zip(calls, xs):
                        call(x)
                    times.append(time.perf_counter() - t0)
            print(f"{threads:>7}  {1e3 * np.median(t_lit):>10.1f} ms  {1e3 * min(t_lit):>8.1f} ms  "
                  f"{1e3 * np.median(t_onx):>7.1f} ms  {1e3 * min(t_onx):>5.1f} ms  {diff:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
