"""How many labelled recordings of a clinic's own device does ``lungapp recalibrate`` need?

For each labelled folder the model scores every recording once (the app's own evaluation,
:func:`lungapp.evaluation.folder.evaluate_folder`). Then, many times over, it draws whole
patients until it holds N recordings with at least ``MIN_PER_CLASS`` of each class (what
``recalibrate`` requires), chooses the threshold on them as ``recalibrate`` does
(:func:`lungapp.evaluation.metrics.choose_threshold`), and scores the folder's *other*
patients at that threshold and at the model's own. The table gives, per N, the mean score
of both on the held-out patients, the 5-95 % range of the recalibrated one, and how often
it was at least as good as the model's own threshold.

It also scores two rules for offering the recalibrated threshold: ``recalibrate``'s own held-out
check on the drawn recordings (:func:`lungapp.evaluation.recalibrate.held_out_check`, 3
patient-grouped folds) runs on the drawn recordings, and the recalibrated threshold is
offered when its gain there is above zero ("any gain") or when the lower end of the gain's
90 % interval over the drawn patients is ("confirmed gain"); otherwise, or when the draw
holds too few patients of a class to fold, the model's own threshold is kept. Columns per
rule: how often it offered the new threshold, its mean score on the rest, and how often
that was at least the model's own.

    .venv/bin/python research/recalibration_size.py [--model resources/model] [--draws 200]
        [--sizes 12,20,30,50,100] [--data ../shared/data]

Folders: SPRSound intra_test and the ICBHI subset's Littmann 3200 and Meditron recordings
(the devices with both classes and enough recordings).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "research"))

from external_checks import device_folders  # noqa: E402


def scored(folder: Path, predictor, layout: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(truth 0/1, abnormal probability as the app shows it, patient) of every scored recording."""
    from lungapp.evaluation.folder import evaluate_folder

    rows = evaluate_folder(folder, predictor, layout=layout)["recordings"]
    y = np.array([r["truth"] == "abnormal" for r in rows], dtype=int)
    p = np.array([r["abnormal_probability"] for r in rows], dtype=float)
    g = np.array([str(r["patient"] or r["file"]) for r in rows])
    return y, p, g


def _score(y: np.ndarray, p: np.ndarray, t: float) -> float:
    from lungapp.evaluation.metrics import binary_metrics

    return float(binary_metrics(y, p, t)["score"])


def draw(y: np.ndarray, g: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray | None:
    """A mask of whole patients, drawn in random order until it holds ``n`` recordings
    with enough of each class; None if the folder cannot give that with patients left over
    holding both classes."""
    from lungapp.evaluation.recalibrate import MIN_PER_CLASS

    take = np.zeros(len(y), dtype=bool)
    for patient in rng.permutation(np.unique(g)):
        take |= g == patient
        if take.sum() >= n and min(y[take].sum(), (1 - y[take]).sum()) >= MIN_PER_CLASS:
            rest = y[~take]
            return take if len(rest) and 0 < rest.sum() < len(rest) else None
    return None


def offers(y: np.ndarray, p: np.ndarray, g: np.ndarray, own_t: float) -> tuple[bool, bool]:
    """Would the recalibrated threshold be offered for these recordings, (by any held-out
    gain, as ``recalibrate`` and the Models dialog decide; by a gain whose 90 % interval
    over patients lies above zero)?"""
    from lungapp.errors import LungappError
    from lungapp.evaluation.recalibrate import held_out_check

    try:
        c = held_out_check(y, p, p, own_t, list(g))
    except LungappError:  # too few patients of a class to hold any out: refused, own kept
        return False, False
    return bool(c.after["score"] > c.before["score"]), bool(c.gain_lo > 0)


RULES = ("any gain", "confirmed gain")


def curve(y, p, g, own_t: float, sizes, draws: int, seed: int = 0) -> list[dict]:
    from lungapp.evaluation.metrics import choose_threshold

    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        own, new, offered = [], [], []
        for _ in range(draws):
            take = draw(y, g, n, rng)
            if take is None:
                continue
            t, _ = choose_threshold(y[take], p[take])
            own.append(_score(y[~take], p[~take], own_t))
            new.append(_score(y[~take], p[~take], t))
            offered.append(offers(y[take], p[take], g[take], own_t))
        if not new:
            rows.append({"n": n, "draws": 0})
            continue
        own, new, offered = np.array(own), np.array(new), np.array(offered)
        row = {"n": n, "draws": len(new), "own": own.mean(), "new": new.mean(),
               "new_lo": np.percentile(new, 5), "new_hi": np.percentile(new, 95),
               "at_least": float(np.mean(new >= own)), "rules": {}}
        for i, rule in enumerate(RULES):
            chosen = np.where(offered[:, i], new, own)
            row["rules"][rule] = {"offered": float(offered[:, i].mean()), "score": chosen.mean(),
                                  "at_least": float(np.mean(chosen >= own))}
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    from lungapp.inference.predictor import Predictor

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(ROOT / "resources" / "model"))
    ap.add_argument("--data", default=str(ROOT / ".." / "shared" / "data"))
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--sizes", default="12,16,20,30,50,100")
    args = ap.parse_args(argv)
    data = Path(args.data).resolve()
    predictor = Predictor.load(Path(args.model))
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"model {args.model}, threshold {predictor.card.threshold:.3f}, {args.draws} draws per size")
    print("| data | N drawn | draws | own threshold, rest | recalibrated, rest | 5-95 % | "
          "recalibrated >= own | " + " | ".join(f"{r}: offered / rest / >= own" for r in RULES) + " |")
    print("|---|---|---|---|---|---|---|" + "---|" * len(RULES))
    with tempfile.TemporaryDirectory() as tmp:
        devices = device_folders(data / "icbhi_subset", Path(tmp))
        folders = [("SPRSound intra_test", data / "sprsound" / "intra_test", "sprsound"),
                   ("ICBHI Litt3200", devices["Litt3200"], "icbhi"),
                   ("ICBHI Meditron", devices["Meditron"], "icbhi")]
        for name, folder, layout in folders:
            y, p, g = scored(folder, predictor, layout)
            for r in curve(y, p, g, predictor.card.threshold, sizes, args.draws):
                if not r["draws"]:
                    print(f"| {name} ({len(y)}) | {r['n']} | 0 | too few recordings left | | | |"
                          + " |" * len(RULES))
                    continue
                rules = " | ".join(f"{100 * v['offered']:.0f} % / {v['score']:.3f} / {100 * v['at_least']:.0f} %"
                                   for v in r["rules"].values())
                print(f"| {name} ({len(y)}) | {r['n']} | {r['draws']} | {r['own']:.3f} | {r['new']:.3f} | "
                      f"{r['new_lo']:.3f}-{r['new_hi']:.3f} | {100 * r['at_least']:.0f} % | {rules} |",
                      flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
