"""Training benchmark: windows per second per architecture, and full k-fold runs.

    # windows/s in training for each architecture (random inputs of each preset's shape)
    python benchmarks/bench_train.py speed

    # the table from finished runs (e.g. made by `lungapp train` directly)
    python benchmarks/bench_train.py table seed=/tmp/seed recommended=/tmp/rec

    # ensemble vs single fold models of a trained model on intra_test (artifact choice)
    python benchmarks/bench_train.py artifact /tmp/bench_train/model_recommended

    # full 4-fold runs of the presets on SPRSound train (slow: run under nice, in the background)
    nice -n 10 python benchmarks/bench_train.py runs --presets seed recommended \
        --data ../shared/data/sprsound/train --work /tmp/bench_train

Each run is a real ``lungapp train`` subprocess (``--progress json``); the table reports
the out-of-fold metrics at the threshold chosen on out-of-fold predictions, the per-fold
mean +- sd, the device-shift drop and the wall time. Results are also written as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = (ROOT / ".." / "shared" / "data" / "sprsound" / "train").resolve()


def speed(batches: int = 20, archs=None) -> list[dict]:
    """Training windows/s of each architecture (``archs``: names, default all): the seed
    CNN on the seed preset's input, the others on the recommended preset's."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np

    from lungapp.training.archs import ARCHS, build
    from lungapp.training.recipes import PRESETS

    rows = []
    cases = []
    for arch in archs or ARCHS:
        if arch == "seed_cnn":
            cases.append((arch, PRESETS["seed"]["features"].input_shape, 16))
        else:
            big = arch in ("inception_v3", "resnet50")
            cases.append((arch, PRESETS["recommended"]["features"].input_shape, 32 if big else 64))
    for arch, shape, bs in cases:
        keras.utils.set_random_seed(0)
        model, info = build(arch, shape, 2)
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        rng = np.random.default_rng(0)
        x = rng.random((bs, *shape), dtype=np.float32)
        y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, bs)]
        for _ in range(3):
            model.train_on_batch(x, y)
        n = max(3, batches // 4 if arch in ("inception_v3", "resnet50") else batches)
        t = time.perf_counter()
        for _ in range(n):
            model.train_on_batch(x, y)
        dt = time.perf_counter() - t
        rows.append({"arch": arch, "input": "x".join(map(str, shape)), "batch": bs,
                     "params": model.count_params(), "windows_per_s": n * bs / dt})
        print(f"{arch:13s} input {rows[-1]['input']:10s} batch {bs:3d} params {model.count_params():>10,d}"
              f"  {rows[-1]['windows_per_s']:8.1f} windows/s", flush=True)
    return rows


def run_preset(preset: str, data: Path, work: Path, extra: list[str]) -> dict:
    out = work / f"model_{preset}"
    log = work / f"{preset}.jsonl"
    cmd = [sys.executable, "-m", "lungapp.cli.train", str(data), "--out", str(out),
           "--preset", preset, "--progress", "json", "--overwrite", *extra]
    t = time.perf_counter()
    with open(log, "w") as f, open(work / f"{preset}.stderr", "w") as err:
        rc = subprocess.call(cmd, stdout=f, stderr=err, cwd=ROOT)
    wall = time.perf_counter() - t
    with open(log) as lines:
        events = [json.loads(line) for line in lines if line.strip()]
    done = next((e for e in events if e["event"] == "done"), None)
    if done is None:
        err = next((e for e in events if e["event"] == "error"), {"message": f"exit {rc}"})
        return {"preset": preset, "error": err["message"], "wall_s": wall}
    return {**from_card(preset, out), "wall_s": wall}


def from_card(preset: str, out: Path) -> dict:
    """A table row from a finished ``lungapp train`` output folder (its card)."""
    card = json.loads((out / "card.json").read_text())
    m = card["metrics"]
    return {"preset": preset, "wall_s": card["training"]["wall_s"],
            "done": {"metrics": m["overall"], "mean_sd": m["mean_sd"],
                     "device_shift_drop": (m.get("device_shift") or {}).get("drop"),
                     "four_class_score": (m.get("four_class") or {}).get("score")},
            "task": card["task"], "options": card["training"]["options"],
            "file_list_sha256": card["training"]["data"]["file_list_sha256"],
            "folds": [f["n_test"] for f in card["training"]["cv"]["folds"]],
            "nested": m["nested_threshold"]["mean_sd"],
            "pooling_auc": m["pooling_auc"],
            "windows_per_s": [f.get("windows_per_s") for f in card["training"]["cv"]["folds"]],
            "best_epochs": [f.get("best_epoch") for f in card["training"]["cv"]["folds"]],
            "n": card["training"]["data"]["n_recordings"],
            "n_patients": card["training"]["data"]["n_patients"]}


def artifact(model_dir: Path, data: Path) -> list[dict]:
    """Ensemble vs each single fold model on another labelled folder (e.g. intra_test).

    This is the measurement behind the card's artifact choice. SPRSound's intra_test holds
    other recordings of train's children, so absolute figures are optimistic; the
    comparison between one member and the ensemble is what it is for."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np

    from lungapp.audio import load_audio
    from lungapp.data import read_folder
    from lungapp.evaluation.metrics import binary_metrics
    from lungapp.inference.card import load_card
    from lungapp.inference.features import windows_from_samples
    from lungapp.inference.predictor import load_keras_model, pool_recording
    from lungapp.training.dataset import task_label

    card = load_card(model_dir)
    fc = card.features
    models = [load_keras_model(model_dir / f) for f in card.model_files]
    ds = read_folder(data)
    ys, outs = [], []
    for ex in ds.examples:
        lab = task_label(ex.label, card.task)
        if lab is None:
            continue
        X, _ = windows_from_samples(load_audio(ex.path, rate=fc.rate).samples, fc)
        outs.append([np.asarray(m(X, training=False), dtype=np.float64) for m in models])
        ys.append(0 if lab == card.classes[0] else 1)
    y = np.array(ys)
    rows = []
    for i, name in enumerate(card.model_files):
        p = np.array([1 - pool_recording(o[i], card)[0] for o in outs])
        rows.append({"model": name, **binary_metrics(y, p, card.threshold)})
    p = np.array([1 - pool_recording(np.mean(o, axis=0), card)[0] for o in outs])
    rows.append({"model": "ensemble (" + " + ".join(card.model_files) + ")",
                 **binary_metrics(y, p, card.threshold)})
    print(f"{model_dir} on {data} ({len(y)} recordings; threshold {card.threshold:.3f} from the card)")
    print("| model | AUC | sensitivity | specificity | score |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {fmt(r['auc'])} | {fmt(r['sensitivity'])} | {fmt(r['specificity'])} | "
              f"{fmt(r['score'])} |")
    return rows


def fmt(v, d=3):
    return "-" if v is None else f"{v:.{d}f}"


def table(results: list[dict]) -> str:
    lines = ["| preset | score | sensitivity | specificity | AUC | score per fold (mean +- sd) | "
             "AUC per fold | 4-class score | device-shift AUC drop | wall time |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['preset']} | failed: {r['error']} | | | | | | | | {r['wall_s'] / 60:.1f} min |")
            continue
        m, ms = r["done"]["metrics"], r["done"]["mean_sd"]
        drop = (r["done"].get("device_shift_drop") or {}).get("auc")
        lines.append(
            f"| {r['preset']} | {fmt(m['score'])} | {fmt(m['sensitivity'])} | {fmt(m['specificity'])} | "
            f"{fmt(m['auc'])} | {fmt(ms['score']['mean'])} +- {fmt(ms['score']['sd'])} | "
            f"{fmt(ms['auc']['mean'])} +- {fmt(ms['auc']['sd'])} | "
            f"{fmt(r['done'].get('four_class_score'))} | {fmt(drop)} | {r['wall_s'] / 60:.1f} min |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("speed")
    sp.add_argument("--batches", type=int, default=20)
    sp.add_argument("--archs", nargs="+", default=None, help="architectures (default: all)")
    rp = sub.add_parser("runs")
    rp.add_argument("--presets", nargs="+", default=["seed", "recommended"])
    rp.add_argument("--data", type=Path, default=DEFAULT_DATA)
    rp.add_argument("--work", type=Path, default=Path("/tmp/bench_train"))
    rp.add_argument("--folds", default="4")
    rp.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                    help="further lungapp train options for every run")
    tp = sub.add_parser("table", help="the table from finished runs' output folders")
    tp.add_argument("runs", nargs="+", help="NAME=FOLDER (a `lungapp train --out` folder)")
    ar = sub.add_parser("artifact", help="ensemble vs single fold models on another folder")
    ar.add_argument("model", type=Path)
    ar.add_argument("--data", type=Path, default=DEFAULT_DATA.parent / "intra_test")
    args = ap.parse_args(argv)
    if args.cmd == "artifact":
        artifact(args.model, args.data)
        return 0
    if args.cmd == "table":
        rows = [from_card(name, Path(folder)) for name, folder in
                (item.split("=", 1) for item in args.runs)]
        same = len({(r["file_list_sha256"], tuple(r["folds"]), r["options"]["seed"],
                     r["task"]) for r in rows}) == 1
        print(table(rows))
        print(f"same data, task, seed and fold sizes: {'yes' if same else 'NO'}")
        return 0
    if args.cmd == "speed":
        speed(args.batches, args.archs)
        return 0
    if not args.data.is_dir():
        print(f"{args.data}: data folder not found", file=sys.stderr)
        return 2
    args.work.mkdir(parents=True, exist_ok=True)
    results = []
    for preset in args.presets:
        print(f"running --preset {preset} on {args.data} ...", flush=True)
        results.append(run_preset(preset, args.data, args.work, ["--folds", args.folds, *args.extra]))
        (args.work / "results.json").write_text(json.dumps(results, indent=1))
        print(table(results), flush=True)
    print()
    print(f"same patient-grouped folds (seed {0}, k={args.folds}) of {args.data}; "
          f"{os.cpu_count()} CPU cores")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
