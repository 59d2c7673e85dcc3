"""Recompute the out-of-fold predictions of a finished ensemble run (one model per fold)
and write them as `lungapp train --oof` would have.

    .venv/bin/python research/oof_from_folds.py RUNDIR [FOLDER] --out FILE.npz [--device-shift]

RUNDIR holds fold1.keras .. foldK.keras and the card of a `lungapp train` run made with
`--artifact ensemble` (the default); FOLDER is the labelled folder it was trained on
(default SPRSound train). The recordings, features and patient-grouped folds are rebuilt
from the card's options (same seed, same splitter); each recording is scored by the fold
model that did not see it, run by Keras in safe mode. The script checks the rebuilt folds
against the card (fold sizes) and prints each fold's AUC next to the card's, so a run
whose folds cannot be rebuilt is refused rather than mislabelled. --device-shift also
scores the device-shifted recordings (window_out_shift), as training's check does; its
noise is seeded by each file's path as given, so pass FOLDER as the run was given it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from lungapp.data import read_folder
from lungapp.inference.card import load_card
from lungapp.inference.features import FeatureConfig
from lungapp.inference.predictor import load_keras_model
from lungapp.training.dataset import extract_features, output_spec, task_label
from lungapp.training.oof import auc_or_nan, pool_probs, save_oof
from lungapp.training.recipes import TrainOptions
from lungapp.training.splits import make_folds
from lungapp.vocabulary import BINARY_CLASSES, FOUR_CLASSES

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("folder", nargs="?", default=str(ROOT.parent / "shared/data/sprsound/train"))
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--device-shift", action="store_true", help="also score device-shifted copies")
    args = ap.parse_args(argv)

    card = load_card(args.run)
    raw = json.loads((args.run / "card.json").read_text())
    o = dict(raw["training"]["options"])
    o["features"] = FeatureConfig.from_dict(o["features"]) if isinstance(o["features"], dict) else o["features"]
    preset = o.pop("preset")
    opts = TrainOptions.from_preset(preset, **{k: v for k, v in o.items() if k != "name"})
    opts.device_shift = args.device_shift
    cv = raw["training"]["cv"]
    files = sorted(card.model_files)
    if len(files) != cv["k"]:
        sys.exit(f"{args.run}: {len(files)} model files for {cv['k']} folds; an ensemble run is needed")

    classes = BINARY_CLASSES if opts.task == "binary" else FOUR_CLASSES
    spec = output_spec(opts.task, classes, opts.outputs)
    ds = read_folder(args.folder)
    usable = [e for e in ds.examples if task_label(e.label, opts.task) is not None]
    recs, bad = extract_features(usable, opts.task, classes, opts, progress=lambda e: None,
                                 should_stop=lambda: False, root=ds.root)
    labels = [r.label for r in recs]
    patients = [r.patient for r in recs]
    folds = make_folds(labels, patients, opts.folds, opts.seed)
    sizes = [len(t) for t in folds.test]
    expected = [f["n_test"] for f in cv["folds"]]
    if sizes != expected:
        sys.exit(f"rebuilt fold sizes {sizes} differ from the card's {expected}: not the same folds")

    y = np.array([0 if lab == classes[0] else 1 for lab in labels])
    probs = np.zeros((len(recs), len(classes)))
    windows: list = [None] * len(recs)
    shifted: list = [None] * len(recs)
    print(f"{len(recs)} recordings, folds {sizes}; fold AUC rebuilt vs card:")
    for i, name in enumerate(files):
        model = load_keras_model(args.run / name)
        te = folds.test[i]
        for j in te:
            w = np.asarray(model.predict(recs[j].X.astype(np.float32), verbose=0), dtype=np.float64)
            windows[j] = w
            probs[j] = pool_probs(w, opts.pooling, spec)
            if args.device_shift:
                shifted[j] = np.asarray(model.predict(recs[j].X_shift.astype(np.float32), verbose=0),
                                        dtype=np.float64)
        print(f"  fold {i + 1} ({name}): {auc_or_nan(y[te], 1 - probs[te, 0]):.4f} vs {cv['folds'][i]['auc']:.4f}")
    print(f"overall AUC {auc_or_nan(y, 1 - probs[:, 0]):.4f} (card {card.metrics.overall.auc:.4f})")
    if args.device_shift:
        p_shift = np.array([1 - pool_probs(w, opts.pooling, spec)[0] for w in shifted])
        print(f"device-shifted AUC {auc_or_nan(y, p_shift):.4f}")
    save_oof(args.out, recs, ds.root, folds.fold_of(), classes, spec, probs, windows,
             shifted if args.device_shift else None)
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
