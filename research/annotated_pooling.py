"""How much better would a model rank a labelled folder if it read only the stretches
the annotators marked?

An upper bound, not a method: the app cannot know where annotators would mark events.
SPRSound intra_test's normal recordings hold more stretches that no annotated event covers
than train's, and the model fires on them more (``session_pairs.py``). This script asks how
much of intra_test's shortfall against the 0.85 score target those stretches explain: each
recording of a labelled SPRSound-layout folder is pooled as the app pools a recording (each
member group's windows by the card's pooling, the groups averaged, the card's calibration),
once over all its windows and once over only the windows the annotated events cover by at
least C (or, for contrast, by less than C). A recording with no such window in a member
group keeps all of that group's windows. The whole recording is pooled at once (the app
takes its worst 15-s segment; the two agree on recordings of 15 s or less, most of
SPRSound's).

Printed per selection: AUC, sensitivity, specificity and score at the card's threshold, and
the score-maximising threshold on the folder itself with its score (what no rule fitted
elsewhere can beat).

    .venv/bin/python research/annotated_pooling.py [FOLDER] [--model DIR] [--every N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from session_pairs import event_coverage  # noqa: E402

#: (name, comparison, coverage): windows kept by each selection; None keeps every window
SELECTIONS = (("all windows (the model's)", None, None),
              ("covered under 10 %", "under", 0.1),
              ("covered 10 % or more", "at least", 0.1),
              ("covered 30 % or more", "at least", 0.3),
              ("covered 60 % or more", "at least", 0.6))


def keep_windows(outs: list[np.ndarray], covers: list[np.ndarray], comparison: str | None,
                 coverage: float | None) -> list[np.ndarray]:
    """Each member group's window outputs, only those whose annotated coverage passes the
    selection; a group none of whose windows pass keeps them all."""
    if comparison is None:
        return list(outs)
    kept = []
    for o, c in zip(outs, covers):
        mask = c >= coverage if comparison == "at least" else c < coverage
        kept.append(o[mask] if mask.any() else o)
    return kept


def figures(y: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    """AUC, sensitivity, specificity and score at ``threshold``; the folder's own best
    threshold and its score."""
    from lungapp.evaluation.metrics import binary_metrics, choose_threshold

    m = binary_metrics(y, p, threshold)
    best_t, _ = choose_threshold(y, p)
    return {"n": m["n"], "auc": m["auc"], "sensitivity": m["sensitivity"],
            "specificity": m["specificity"], "score": m["score"], "best_threshold": best_t,
            "best_score": binary_metrics(y, p, best_t)["score"]}


def read_recordings(folder: Path, predictor, every: int = 1) -> list[tuple[int, list, list]]:
    """(abnormal 0/1, each member group's window outputs, each group's windows' annotated
    coverage) of every ``every``-th judged recording of the folder (Poor Quality left out)."""
    from lungapp.audio import load_audio
    from lungapp.data import POOR, read_folder

    examples = [ex for ex in read_folder(folder, "sprsound").examples if ex.label != POOR][::every]
    rate = predictor.card.features.rate
    rows = []
    for ex in examples:
        x = load_audio(ex.path, rate=rate).samples
        spans = [(e.start_s, e.end_s) for e in ex.events]
        outs, covers = [], []
        for g, (X, starts) in enumerate(predictor.member_windows(x)):
            outs.append(predictor.window_outputs(X, g))
            covers.append(event_coverage(starts, predictor.groups[g].features.window_s, spans))
        rows.append((int(ex.label != "Normal"), outs, covers))
    return rows


def run_check(folder: Path, model: Path | None = None, every: int = 1) -> dict[str, dict]:
    from lungapp.inference.predictor import Predictor, pool_members

    pred = Predictor.load(model)
    card = pred.card
    weights = [g.members for g in pred.groups]
    rows = read_recordings(folder, pred, every)
    y = np.array([r[0] for r in rows])
    out = {}
    for name, comparison, coverage in SELECTIONS:
        probs = np.array([pool_members(keep_windows(outs, covers, comparison, coverage), weights, card)
                          for _, outs, covers in rows])
        p = 1.0 - card.calibrate_probs(probs)[:, 0]
        out[name] = figures(y, p, card.threshold)
    return out


def table(res: dict[str, dict]) -> str:
    f = lambda v: f"{v:.3f}"  # noqa: E731
    lines = ["| windows pooled | n | AUC | sens | spec | score | best threshold (score there) |",
             "|---|---|---|---|---|---|---|"]
    for name, r in res.items():
        lines.append(f"| {name} | {r['n']} | {f(r['auc'])} | {f(r['sensitivity'])} | "
                     f"{f(r['specificity'])} | {f(r['score'])} | {f(r['best_threshold'])} "
                     f"({f(r['best_score'])}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", nargs="?",
                    default=str(ROOT / ".." / "shared" / "data" / "sprsound" / "intra_test"))
    ap.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    ap.add_argument("--every", type=int, default=1, help="every N-th recording only (default 1: all)")
    args = ap.parse_args(argv)
    from lungapp.errors import LungappError

    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"{folder}: not a folder", file=sys.stderr)
        return 2
    try:
        res = run_check(folder, Path(args.model) if args.model else None, max(1, args.every))
    except LungappError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(table(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
