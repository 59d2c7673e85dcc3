"""Where a model's decisions go wrong by the child's age: on SPRSound intra_test (the
model's own predictions) and on SPRSound train (the kept members' out-of-fold
predictions, combined as the bundled model combines them), per age band: the normal
recordings and how many were called abnormal (false positives), the abnormal recordings and
how many were found (sensitivity). A second table splits the normal recordings by how many
of the same child's *other* recordings in train are abnormal (none, 1-2, 3 or more): does the
model call a normal recording abnormal because it has learnt the child, not the sound?

SPRSound names each recording PATIENT_AGE_GENDER_LOCATION_NUMBER, with the age in years.

    .venv/bin/python research/errors_by_age.py [--model resources/model] [--data ../shared/data]
                                               [--bands 3,6,10] [--no-train]

The train rows need the bundled model's members kept in research/bundled_members (their
names are in the model's card); --no-train skips them (for a model made of other runs).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def age_of(name: str) -> float | None:
    """The age in years in a SPRSound file name, or None when the name does not hold one."""
    parts = Path(name).stem.split("_")
    try:
        return float(parts[1]) if len(parts) >= 5 else None
    except ValueError:
        return None


def band_names(edges: list[float]) -> list[str]:
    lows = [0.0, *edges]
    return ([f"under {edges[0]:g}"] + [f"{a:g}-{b:g}" for a, b in zip(lows[1:], edges[1:])]
            + [f"{edges[-1]:g} and over"])


def table(ages, truth, called, patients, edges: list[float]) -> list[tuple]:
    """Rows (band, normal n, false positives, "their patients of the band's patients with a
    normal recording", abnormal n, found) per age
    band; ``truth`` and ``called`` are 0/1 (abnormal)."""
    ages, truth, called = (np.asarray(a, dtype=float) for a in (ages, truth, called))
    patients = np.asarray(patients)
    band = np.digitize(ages, edges)
    rows = []
    for i, name in enumerate(band_names(edges)):
        m = band == i
        norm, abn = m & (truth == 0), m & (truth == 1)
        fp = norm & (called == 1)
        rows.append((name, int(norm.sum()), int(fp.sum()),
                     f"{len(set(patients[fp]))} of {len(set(patients[norm]))}",
                     int(abn.sum()), int((called[abn] == 1).sum())))
    return rows


def _share(k: int, n: int) -> str:
    return f"{k}/{n} ({k / n:.0%})" if n else "-"


def _markdown(title: str, header: list[str], rows: list[list]) -> None:
    print(f"\n{title}\n")
    for cells in [header, ["---"] * len(header), *rows]:
        print("| " + " | ".join(str(c) for c in cells) + " |")


def print_table(title: str, rows: list[tuple]) -> None:
    tot = [sum(r[i] for r in rows) for i in (1, 2, 4, 5)]
    _markdown(title, ["age (years)", "normal", "called abnormal (false positives)", "their patients",
                      "abnormal", "found (sensitivity)"],
              [[name, nn, _share(fp, nn), pat, na, _share(tp, na)] for name, nn, fp, pat, na, tp in rows]
              + [["all", tot[0], _share(tot[1], tot[0]), "", tot[2], _share(tot[3], tot[2])]])


HISTORY_GROUPS = (("none", 0, 0), ("1-2", 1, 2), ("3 or more", 3, 10**9))


def history_table(truth, called, prob, others_abnormal) -> list[tuple]:
    """Rows (group, normal n, false positives, median abnormal probability) of the normal
    recordings, grouped by ``others_abnormal``: how many of the child's other recordings in
    train are abnormal."""
    truth, called, prob, k = (np.asarray(a, dtype=float) for a in (truth, called, prob, others_abnormal))
    rows = []
    for name, lo, hi in HISTORY_GROUPS:
        m = (truth == 0) & (k >= lo) & (k <= hi)
        rows.append((name, int(m.sum()), int((called[m] == 1).sum()),
                     float(np.median(prob[m])) if m.any() else float("nan")))
    return rows


def print_history(title: str, rows: list[tuple]) -> None:
    _markdown(title, ["the child's other recordings in train: abnormal", "normal", "called abnormal",
                      "median abnormal probability"],
              [[name, n, _share(fp, n), f"{med:.3f}"] for name, n, fp, med in rows])


def abnormal_counts(folder: Path) -> dict[str, int]:
    """Per patient, how many of its recordings in a SPRSound folder are labelled abnormal
    (CAS, DAS or CAS & DAS)."""
    from lungapp.data import read_folder

    counts: dict[str, int] = {}
    for e in read_folder(folder, "sprsound").examples:
        if e.patient:
            counts[e.patient] = counts.get(e.patient, 0) + (e.label in ("CAS", "DAS", "CAS & DAS"))
    return counts


def intra_test_rows(model: Path, folder: Path, edges: list[float],
                    train: Path | None = None) -> tuple[list[tuple], list[tuple] | None]:
    """The age table of intra_test, and (given the train folder) its history table."""
    from lungapp.evaluation.folder import evaluate_folder
    from lungapp.inference.predictor import Predictor

    r = evaluate_folder(folder, Predictor.load(model), layout="sprsound")
    recs = [x for x in r["recordings"] if age_of(x["file"]) is not None]
    truth = [x["truth"] == "abnormal" for x in recs]
    called = [x["decision"] == "abnormal" for x in recs]
    ages = table([age_of(x["file"]) for x in recs], truth, called, [x["patient"] for x in recs], edges)
    if train is None:
        return ages, None
    counts = abnormal_counts(train)
    return ages, history_table(truth, called, [x["abnormal_probability"] for x in recs],
                               [counts.get(x["patient"], 0) for x in recs])


def train_rows(model: Path, folder: Path, edges: list[float], history: bool = False):
    """The members' out-of-fold predictions on train, combined as the model combines them,
    decided at the model's threshold: the age table (and, with ``history``, also the history
    table, each recording's own label left out of its child's count)."""
    from lungapp.errors import LungappError
    from lungapp.inference.card import load_card
    from lungapp.training.combine import ensemble_oof, kept_members_of, load_oofs

    card = load_card(model)
    members = kept_members_of(card, ROOT / "research" / "bundled_members")
    if len(members) < 2:
        raise LungappError("the model is not an ensemble of kept members; use --no-train", model)
    cards = [load_card(d) for d, _ in members]
    arrays = load_oofs(members, cards, folder)
    ens = ensemble_oof(members, data_root=folder, cards=cards, arrays=arrays)
    # as the app decides: the pooled probabilities calibrated, then the card's threshold
    prob = 1 - card.calibrate_probs(ens.data.probs)[:, 0]
    called = prob >= card.threshold
    files = [str(p) for p in arrays[0]["path"]]
    keep = [i for i, f in enumerate(files) if age_of(f) is not None]
    patients = [str(p) for p in arrays[0]["patient"]]
    ages = table([age_of(files[i]) for i in keep], ens.data.y[keep], called[keep],
                 [patients[i] for i in keep], edges)
    if not history:
        return ages
    counts: dict[str, int] = {}
    for p, y in zip(patients, ens.data.y):
        counts[p] = counts.get(p, 0) + int(y)
    others = [counts[p] - int(y) for p, y in zip(patients, ens.data.y)]
    return ages, history_table(ens.data.y, called, prob, others)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=ROOT / "resources" / "model")
    ap.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data")
    ap.add_argument("--bands", default="3,6,10", help="upper edges of the age bands, in years")
    ap.add_argument("--no-train", action="store_true", help="only intra_test")
    args = ap.parse_args(argv)
    from lungapp.errors import LungappError

    try:
        edges = sorted(float(v) for v in args.bands.split(","))
    except ValueError:
        ap.error(f"--bands: not a list of numbers: {args.bands}")
    sprsound = args.data / "sprsound"
    if not (sprsound / "intra_test").is_dir():
        print(f"no SPRSound intra_test under {args.data}", file=sys.stderr)
        return 1
    try:
        train = (sprsound / "train").resolve() if (sprsound / "train").is_dir() else None
        ages, history = intra_test_rows(args.model, sprsound / "intra_test", edges, train)
        print_table(f"SPRSound intra_test, {args.model} at its threshold", ages)
        if history is not None:
            print_history("SPRSound intra_test, normal recordings by the child's recordings in train",
                          history)
        if not args.no_train and train is not None:
            ages, history = train_rows(args.model, train, edges, history=True)
            print_table("SPRSound train, the members' out-of-fold predictions at the same threshold",
                        ages)
            print_history("SPRSound train out of fold, normal recordings by the child's other "
                          "recordings", history)
    except LungappError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
