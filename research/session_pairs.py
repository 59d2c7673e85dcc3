"""Are SPRSound intra_test's normal recordings over-called because of the model, or because
they differ from the recordings the model learnt from, even in the same child's session?

SPRSound numbers every recording (``PATIENT_AGE_GENDER_LOCATION_NUMBER``) in the order it was
made, and intra_test holds other recordings of train's children. So most intra_test normal
recordings have a normal train recording of the same child a few numbers away: made in the
same sitting, with the same stethoscope. This script pairs each intra_test normal recording
with the nearest normal train recording of its child and judges both by the *same* model: the
fold model of a fold-model run (``lungapp train ... --artifact ensemble --oof FILE``) that
never saw the child (the train recording's prediction is its out-of-fold one). Printed:

- per pair group (all pairs; at most ``--session`` numbers apart, "same sitting"; further):
  how many of each side the run's threshold calls abnormal, the median abnormal probability
  (calibrated, as the app shows it), how often the intra_test side scores higher, and the
  mean number of annotated respiratory events per recording on each side;
- every window of those normal recordings by how much of it the annotators' events cover
  (none, part, most): the share of windows, and how many have a CAS or DAS output above 0.5
  (the fold model's raw outputs).

    .venv/bin/python research/session_pairs.py RUNDIR OOF.npz [--data ../shared/data/sprsound]
                                               [--session 2]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from unseen_folds import fold_of_patients, fold_predictors  # noqa: E402

#: coverage bands of a window by annotated events: (name, low, high), low inclusive
COVERAGE_BANDS = (("no event (under 10 %)", 0.0, 0.1), ("part (10-60 %)", 0.1, 0.6),
                  ("most (60 % or more)", 0.6, 1.01))


def recording_number(meta: dict) -> int | None:
    """The recording number the SPRSound reader found in a file name (``Example.meta``),
    or None."""
    try:
        return int(meta["number"])
    except (KeyError, TypeError, ValueError):
        return None


def event_coverage(starts: np.ndarray, window_s: float, events) -> np.ndarray:
    """The share of each window [start, start + window_s) covered by the union of the
    events ((start_s, end_s) pairs)."""
    spans = sorted((float(a), float(b)) for a, b in events if b > a)
    merged: list[list[float]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    out = np.zeros(len(starts))
    for i, s in enumerate(np.asarray(starts, dtype=float)):
        e = s + window_s
        out[i] = sum(max(0.0, min(e, b) - max(s, a)) for a, b in merged) / window_s
    return out


@dataclass
class Side:
    """One normal recording of a pair: its recording number, calibrated abnormal probability,
    annotated event count, and per window the max of the raw CAS/DAS outputs and the share
    of the window the events cover."""

    number: int
    prob: float
    n_events: int
    window_flag: np.ndarray
    window_cover: np.ndarray


def pair_up(intra: dict[str, list[Side]], train: dict[str, list[Side]]) -> list[tuple[Side, Side]]:
    """Each intra_test normal recording with the nearest (by recording number) normal train
    recording of the same patient; patients with none in train are left out."""
    pairs = []
    for patient, sides in intra.items():
        cands = train.get(patient, [])
        for s in sides:
            if cands:
                pairs.append((s, min(cands, key=lambda t: (abs(t.number - s.number), t.number))))
    return pairs


def pair_rows(pairs: list[tuple[Side, Side]], threshold: float, session: int) -> list[tuple]:
    """Rows (group, n, intra called abnormal, train called abnormal, intra median prob,
    train median prob, share of pairs with the intra side higher, intra mean events, train
    mean events) for all pairs, those at most ``session`` apart and those further."""
    groups = (("all pairs", lambda d: True), (f"same sitting (at most {session} apart)",
                                              lambda d: d <= session),
              (f"further apart (over {session})", lambda d: d > session))
    rows = []
    for name, keep in groups:
        sel = [(a, b) for a, b in pairs if keep(abs(a.number - b.number))]
        if not sel:
            rows.append((name, 0, 0, 0, float("nan"), float("nan"), float("nan"), float("nan"),
                         float("nan")))
            continue
        pa = np.array([a.prob for a, _ in sel])
        pb = np.array([b.prob for _, b in sel])
        rows.append((name, len(sel), int((pa >= threshold).sum()), int((pb >= threshold).sum()),
                     float(np.median(pa)), float(np.median(pb)), float(np.mean(pa > pb)),
                     float(np.mean([a.n_events for a, _ in sel])),
                     float(np.mean([b.n_events for _, b in sel]))))
    return rows


def coverage_rows(sides: list[Side]) -> list[tuple]:
    """Rows (band, windows, share of all windows, windows with a flag above 0.5, their share)."""
    flag = np.concatenate([s.window_flag for s in sides]) if sides else np.zeros(0)
    cover = np.concatenate([s.window_cover for s in sides]) if sides else np.zeros(0)
    rows = []
    for name, lo, hi in COVERAGE_BANDS:
        m = (cover >= lo) & (cover < hi)
        n = int(m.sum())
        above = int((flag[m] > 0.5).sum())
        rows.append((name, n, n / len(flag) if len(flag) else float("nan"), above,
                     above / n if n else float("nan")))
    return rows


def _events(ex) -> tuple[int, list[tuple[float, float]]]:
    return len(ex.events), [(e.start_s, e.end_s) for e in ex.events]


def train_sides(oof: Path, train: Path, card) -> dict[str, list[Side]]:
    """The normal train recordings' sides, from the run's out-of-fold file."""
    from lungapp.data import read_folder
    from lungapp.errors import LungappError

    z = np.load(oof, allow_pickle=False)
    need = {"path", "patient", "label", "probs", "window_out", "offsets", "starts"}
    if not need <= set(z.files):
        raise LungappError("not an out-of-fold file with window outputs (lungapp train --oof)", oof)
    examples = {Path(e.path).name: e for e in read_folder(train, "sprsound").examples}
    probs = 1 - card.calibrate_probs(z["probs"])[:, 0]
    out: dict[str, list[Side]] = {}
    for i, (path, patient, label) in enumerate(zip(z["path"].tolist(), z["patient"].tolist(),
                                                   z["label"].tolist())):
        ex = examples.get(Path(path).name)
        number = recording_number(ex.meta) if ex is not None else None
        if label != "Normal" or number is None:
            continue
        n, spans = _events(ex)
        a, b = int(z["offsets"][i]), int(z["offsets"][i + 1])
        out.setdefault(patient, []).append(Side(
            number, float(probs[i]), n, z["window_out"][a:b].max(axis=1),
            event_coverage(z["starts"][a:b], card.features.window_s, spans)))
    return out


def intra_sides(folder: Path, preds: list, folds: dict[str, int]) -> dict[str, list[Side]]:
    """The folder's normal recordings of the run's patients, each judged by the fold model
    that never saw the patient."""
    from lungapp.audio import load_audio
    from lungapp.data import read_folder

    out: dict[str, list[Side]] = {}
    for ex in read_folder(folder, "sprsound").examples:
        fold = folds.get(ex.patient)
        number = recording_number(ex.meta)
        if ex.label != "Normal" or fold is None or number is None:
            continue
        pred = preds[fold - 1]
        fc = pred.groups[0].features
        x = load_audio(ex.path, rate=fc.rate).samples
        (X, starts), = pred.member_windows(x)
        n, spans = _events(ex)
        out.setdefault(ex.patient, []).append(Side(
            number, float(pred.predict_audio(x, fc.rate, ex.path).abnormal_probability), n,
            pred.window_outputs(X).max(axis=1), event_coverage(starts, fc.window_s, spans)))
    return out


def run_check(run: Path, oof: Path, data: Path, session: int = 2) -> dict:
    folds = fold_of_patients(oof)
    preds = fold_predictors(run)
    card = preds[0].card
    intra = intra_sides(data / "intra_test", preds, folds)
    train = train_sides(oof, data / "train", card)
    pairs = pair_up(intra, train)
    return {"threshold": card.threshold, "pairs": pair_rows(pairs, card.threshold, session),
            "coverage intra_test": coverage_rows([a for a, _ in pairs]),
            "coverage train": coverage_rows([b for _, b in pairs])}


def _f(v) -> str:
    return "n/a" if isinstance(v, float) and np.isnan(v) else (f"{v:.3f}" if isinstance(v, float) else str(v))


def tables(res: dict) -> str:
    lines = [f"Normal recordings paired by child, both judged by the fold model that never saw "
             f"the child; threshold {res['threshold']:.3f} (calibrated)", "",
             "| pairs | n | intra_test called abnormal | train called abnormal | intra_test median "
             "prob | train median prob | intra_test higher | intra_test events per recording | "
             "train events per recording |", "|---|---|---|---|---|---|---|---|---|"]
    for r in res["pairs"]:
        n = r[1]
        lines.append(f"| {r[0]} | {n} | {r[2]}/{n} | {r[3]}/{n} | " + " | ".join(_f(v) for v in r[4:]) + " |")
    for name in ("coverage intra_test", "coverage train"):
        side = name.split()[1]
        lines += ["", f"Windows of the paired {side} normal recordings by annotated-event coverage", "",
                  "| covered by events | windows | share | CAS or DAS output > 0.5 | share |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r[0]} | {r[1]} | {_f(r[2])} | {r[3]} | {_f(r[4])} |" for r in res[name]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from lungapp.errors import LungappError

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("oof", type=Path)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "sprsound")
    ap.add_argument("--session", type=int, default=2,
                    help="pairs at most this many recording numbers apart count as one sitting")
    a = ap.parse_args(argv)
    if not (a.data / "intra_test").is_dir() or not (a.data / "train").is_dir():
        print(f"no SPRSound train and intra_test under {a.data}", file=sys.stderr)
        return 1
    try:
        res = run_check(a.run, a.oof, a.data, a.session)
    except LungappError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(tables(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
