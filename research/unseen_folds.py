"""Is a labelled folder of the training patients' other recordings (SPRSound intra_test)
over-called because the model saw those patients, or because the recordings differ?

The run must be a fold-model ensemble (``lungapp train ... --artifact ensemble --oof
FILE``): its fold models ``fold1.keras`` ... and its out-of-fold file, which says in which
fold each patient was held out. Every recording of FOLDER is predicted by each fold model
and decided at the run's threshold (the app's rule, on the calibrated scale its card
stores). Printed, on FOLDER's recordings of patients the run trained on:

- ``unseen``: each recording judged by the one fold model that never saw its patient, as the
  run's out-of-fold predictions were;
- ``seen``: each recording judged by each of the other fold models, which trained on its
  patient (every pair of recording and model counted);
- ``ensemble``: the run's ensemble of all fold models (what it would ship);

against the run's own out-of-fold figures on its training folder (from its card).

    .venv/bin/python research/unseen_folds.py RUNDIR OOF.npz [FOLDER] [--layout sprsound]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

FIGURES = ("n", "auc", "sensitivity", "specificity", "score")


def fold_of_patients(oof: Path) -> dict[str, int]:
    """{patient id: the 1-based fold it was held out in} from a run's out-of-fold file."""
    from lungapp.errors import LungappError

    z = np.load(oof)
    if "patient" not in z.files or "fold" not in z.files:
        raise LungappError("not an out-of-fold file with patient ids and folds", oof)
    out: dict[str, int] = {}
    for p, f in zip(z["patient"].tolist(), z["fold"].tolist()):
        if p and out.setdefault(p, int(f)) != int(f):
            raise LungappError(f"patient {p} is in folds {out[p]} and {f}: not patient-grouped", oof)
    if not out:
        raise LungappError("the out-of-fold file names no patients", oof)
    return out


def fold_predictors(run: Path) -> list:
    """A Keras-runtime predictor of each fold model of the run, in fold order."""
    from lungapp.errors import LungappError
    from lungapp.inference.card import load_card
    from lungapp.inference.predictor import Predictor, load_keras_model

    card = load_card(run)
    files = [f"fold{k}.keras" for k in range(1, len(card.model_files) + 1)]
    if list(card.model_files) != files or len(card.member_groups()) != 1:
        raise LungappError("not a fold-model ensemble (lungapp train --artifact ensemble)", run)
    return [Predictor(run, card, load_keras_model(run / f), runtime="keras", runtime_note="fold model")
            for f in files]


def figures(y: list[int], p: list[float], threshold: float) -> dict:
    from lungapp.evaluation.metrics import binary_metrics

    m = binary_metrics(y, p, threshold)
    return {k: None if isinstance(m[k], float) and math.isnan(m[k]) else m[k] for k in FIGURES}


def split_by_fold(rows_by_model: list[list[dict]], folds: dict[str, int], threshold: float) -> dict:
    """{"unseen": figures, "seen": figures, "unknown": n}: ``rows_by_model[k - 1]`` is fold
    model k's evaluate_folder rows, in the same recording order for every model."""
    unseen_y, unseen_p, seen_y, seen_p = [], [], [], []
    unknown = 0
    for i, row in enumerate(rows_by_model[0]):
        fold = folds.get(row["patient"])
        if fold is None:
            unknown += 1
            continue
        y = int(row["truth"] == "abnormal")
        for k, rows in enumerate(rows_by_model, start=1):
            assert rows[i]["file"] == row["file"]
            if k == fold:
                unseen_y.append(y)
                unseen_p.append(rows[i]["abnormal_probability"])
            else:
                seen_y.append(y)
                seen_p.append(rows[i]["abnormal_probability"])
    return {"unseen": figures(unseen_y, unseen_p, threshold),
            "seen": figures(seen_y, seen_p, threshold), "unknown": unknown}


def run_check(run: Path, oof: Path, folder: Path, layout: str | None) -> dict:
    from lungapp.evaluation.folder import evaluate_folder
    from lungapp.inference.predictor import Predictor

    folds = fold_of_patients(oof)
    preds = fold_predictors(run)
    card = preds[0].card
    rows = [evaluate_folder(folder, p, layout=layout)["recordings"] for p in preds]
    out = split_by_fold(rows, folds, card.threshold)
    ens = evaluate_folder(folder, Predictor.load(run), layout=layout)
    out["ensemble"] = {k: ens[k] for k in FIGURES}
    o = card.metrics.overall
    out["out of fold (train)"] = {"n": o.n, "auc": o.auc, "sensitivity": o.sensitivity,
                                  "specificity": o.specificity, "score": o.score}
    return out


def _f(v) -> str:
    return "n/a" if v is None else (str(v) if isinstance(v, int) else f"{v:.3f}")


def table(res: dict) -> str:
    lines = ["| judged by | n | AUC | sens | spec | score |", "|---|---|---|---|---|---|"]
    for name in ("out of fold (train)", "unseen", "seen", "ensemble"):
        s = res[name]
        lines.append(f"| {name} | " + " | ".join(_f(s[k]) for k in FIGURES) + " |")
    return "\n".join(lines) + f"\n\n{res['unknown']} recordings of patients the run did not train on left out."


def main(argv: list[str] | None = None) -> int:
    from lungapp.errors import LungappError

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("oof", type=Path)
    ap.add_argument("folder", type=Path, nargs="?",
                    default=ROOT.parent / "shared" / "data" / "sprsound" / "intra_test")
    ap.add_argument("--layout", default=None)
    a = ap.parse_args(argv)
    try:
        res = run_check(a.run, a.oof, a.folder, a.layout)
    except LungappError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(table(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
