"""How well each run's CAS and DAS flags separate recordings, from its out-of-fold file: the
continuous figures behind the four-class score, for comparing recipe changes run by run.

    python research/flag_separation.py [--members DIR | RUN:OOF RUN:OOF ...] [--data DIR]
        [--class-pooling RULE]

Each recording's window flags (at the run's own step) are pooled by RULE (default
quantile:0.75, the bundled recipe's fixed class pooling), and four AUCs are computed:

- CAS in abnormal: among the truly abnormal recordings, the pooled CAS flag against "holds
  CAS" (CAS or CAS & DAS): how well an abnormal recording is named;
- DAS in abnormal: the same for the DAS flag and "holds DAS" (DAS or CAS & DAS);
- CAS vs Normal: the pooled CAS flag, recordings holding CAS against Normal ones;
- DAS vs Normal: the pooled DAS flag, recordings holding DAS against Normal ones.

The four-class score counts thresholded decisions; these AUCs rank every recording, and
show which flag, and which side of it (naming or detecting), a recipe change moves. Each
row is one run; runs with the same seed share their patient folds, so such rows pair.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from lungapp.errors import LungappError
from lungapp.inference.card import load_card
from lungapp.training.combine import add_run_arguments, load_oofs, runs_from_arguments
from lungapp.training.oof import pool_probs
from lungapp.vocabulary import CLASS_POOLINGS

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "sprsound" / "train"
MEMBERS = ROOT / "research" / "bundled_members"
COLUMNS = ("CAS in abnormal", "DAS in abnormal", "CAS vs Normal", "DAS vs Normal")
FLAG_SPEC = ("sigmoid", ["CAS", "DAS"])


def pooled_flags(window_out: np.ndarray, rule: str) -> np.ndarray:
    """A recording's [CAS, DAS] flags (2,) pooled over its window outputs (n, 2) by
    ``rule``, as the app pools them: from the app's recording probabilities of a flag
    model, P(CAS) + P(CAS & DAS) and P(DAS) + P(CAS & DAS)."""
    p = pool_probs(np.asarray(window_out, dtype=np.float64), rule, FLAG_SPEC)
    return np.array([p[1] + p[3], p[2] + p[3]])


def separation(z: dict, rule: str, where=None) -> dict[str, float | None]:
    """The four AUCs (None where a side is empty) of one run's out-of-fold arrays ``z``
    (with labels) for [CAS, DAS] flag outputs, flags pooled by ``rule``."""
    outputs = [str(o) for o in z["outputs"]]
    if outputs != ["CAS", "DAS"]:
        raise LungappError(f"the run's outputs are {outputs}, not the [CAS, DAS] flags", where)
    off = z["offsets"]
    pooled = np.stack([pooled_flags(z["window_out"][off[i]: off[i + 1]], rule)
                       for i in range(len(off) - 1)])
    labels = np.array([str(v) for v in z["label"]])
    normal = labels == "Normal"
    has = {"CAS": np.isin(labels, ["CAS", "CAS & DAS"]), "DAS": np.isin(labels, ["DAS", "CAS & DAS"])}
    out = {}
    for j, flag in enumerate(("CAS", "DAS")):
        abn = ~normal
        out[f"{flag} in abnormal"] = _auc(has[flag][abn], pooled[abn, j])
        vs = has[flag] | normal
        out[f"{flag} vs Normal"] = _auc(has[flag][vs], pooled[vs, j])
    return out


def _auc(y: np.ndarray, p: np.ndarray) -> float | None:
    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(ap, MEMBERS, DATA)
    ap.add_argument("--class-pooling", choices=CLASS_POOLINGS, default="quantile:0.75",
                    help="how a recording's window flags are pooled (default quantile:0.75)")
    args = ap.parse_args(argv)
    members = runs_from_arguments(ap, args)
    if not members:
        print(f"no runs: none given and none kept in {args.members}", file=sys.stderr)
        return 2
    rows = []
    for run, oof in members:
        try:
            card = load_card(run)
            z = load_oofs([(run, oof)], [card], args.data if args.data.is_dir() else None)[0]
            rows.append((run.name, card.features.window_s, separation(z, args.class_pooling, oof)))
        except LungappError as exc:
            print(f"flag_separation: {exc}", file=sys.stderr)
            return 2
    print(f"recordings' flags pooled by {args.class_pooling}; AUC per run (out-of-fold)\n")
    print("| run | window (s) | " + " | ".join(COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for name, window_s, r in rows:
        cells = ["n/a" if r[c] is None else f"{r[c]:.4f}" for c in COLUMNS]
        print(f"| {name} | {window_s:g} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
