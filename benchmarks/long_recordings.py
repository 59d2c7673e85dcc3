"""Does a long recording still show its abnormal stretch? Concatenations of real recordings.

    .venv/bin/python benchmarks/long_recordings.py [--data ../shared/data/sprsound/intra_test]
        [--model DIR] [--cases 40] [--long-cases 10] [--long-s 300]

From SPRSound intra_test, for each abnormal recording (CAS, DAS, CAS & DAS; up to
``--cases``), the same child's normal recordings (any child's when the child has none)
are put around it: about 20 s before and 20 s after (a ~55-s recording), and, for the
first ``--long-cases``, about ``--long-s`` / 2 before and after (a recording of minutes).
Normal-only recordings of the same lengths check the other side: false flags.

Each is analysed once; its window outputs are pooled two ways:

* before: the whole recording pooled by the card's rule (``Predictor.segment_s = 0``);
  an abnormal stretch counts as found when the recording is called abnormal;
* after: segments of about the training length (``lungapp.inference.segments``); found
  when a flagged stretch overlaps the abnormal recording's span ("worst on it": the most
  abnormal segment overlaps it, so the place shown first is the right one).

It prints one table per length (found / flagged normal-only) and how many of the
abnormal recordings the model calls abnormal on their own (the most that can be found).
A second table checks the borderline margin on every intra_test recording alone: the
verdict's accuracy inside and outside the margin around the threshold. Missing data
folder: a message and exit 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "sprsound" / "intra_test"
ABNORMAL = ("CAS", "DAS", "CAS & DAS")


def read_folder(folder: Path) -> list[tuple[Path, str, str]]:
    """(flac, label, patient) of every labelled recording in an SPRSound folder."""
    out = []
    for js in sorted(folder.glob("*.json")):
        flac = js.with_suffix(".flac")
        if flac.is_file():
            label = json.loads(js.read_text())["record_annotation"]
            out.append((flac, label, js.name.split("_")[0]))
    return out


def around(centre: np.ndarray, normals: list[np.ndarray], side_s: float, rate: int):
    """(signal, start s, end s): ``centre`` with about ``side_s`` seconds of the
    ``normals`` (cycled) before and after it."""
    pieces, n, i = [], 0, 0
    while n < 2 * side_s * rate:
        x = normals[i % len(normals)]
        pieces.append(x)
        n += len(x)
        i += 1
    half = max(1, len(pieces) // 2)
    before, after = pieces[:half], pieces[half:] or pieces[:1]
    start = sum(map(len, before))
    sig = np.concatenate([*before, centre, *after])
    return sig, start / rate, (start + len(centre)) / rate


def analyse(pred, x: np.ndarray):
    """(whole-recording abnormal probability, flagged segments, the most abnormal
    segment) of a signal at the model's rate, from one run of the model."""
    from lungapp.inference.segments import SEGMENT_S

    windows = pred.member_windows(x)
    outs = [pred.window_outputs(X, g) for g, (X, _) in enumerate(windows)]
    starts = [s for _, s in windows]
    dur = len(x) / pred.card.features.rate
    pred.segment_s = 0
    _, whole = pred.segment_probabilities(dur, outs, starts)
    pred.segment_s = SEGMENT_S
    bounds, segs = pred.segment_probabilities(dur, outs, starts)
    flagged = [(a, b) for (a, b), p in zip(bounds, segs) if 1 - p[0] >= pred.card.threshold]
    return float(1 - whole[0][0]), flagged, tuple(bounds[int(np.argmax(1 - segs[:, 0]))])


def run_length(pred, cases, normals_of, all_normals, side_s: float) -> dict:
    from lungapp.audio import load_audio

    rate, t = pred.card.features.rate, pred.card.threshold
    tally = defaultdict(int)
    for flac, _, patient in cases:
        centre = load_audio(flac, rate=rate).samples
        normals = normals_of.get(patient) or all_normals
        x, a, b = around(centre, normals, side_s, rate)
        whole, flagged, (wa, wb) = analyse(pred, x)
        alone = analyse(pred, centre)[0]
        tally["n"] += 1
        tally["alone"] += alone >= t
        tally["before"] += whole >= t
        tally["after"] += any(fa < b and fb > a for fa, fb in flagged)
        tally["worst_on_it"] += bool(flagged) and wa < b and wb > a
        # The same normals without the abnormal recording: any flag is a false one.
        xn, _, _ = around(np.zeros(0, np.float32), normals, side_s, rate)
        whole_n, flagged_n, _ = analyse(pred, xn)
        tally["normal_before"] += whole_n >= t
        tally["normal_after"] += bool(flagged_n)
        tally["seconds"] += len(x) / rate
    return dict(tally)


def borderline_table(pred, recordings) -> dict:
    from lungapp.inference.segments import borderline_margin

    margin = borderline_margin(pred.card.metrics)
    inside, outside = [], []
    for flac, label, _ in recordings:
        if label not in ("Normal", *ABNORMAL):
            continue
        r = pred.predict_file(flac)
        right = (r.abnormal_probability >= pred.card.threshold) == (label != "Normal")
        (inside if abs(r.abnormal_probability - pred.card.threshold) < margin else outside).append(right)
    return {"margin": margin, "inside": inside, "outside": outside}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--model", default=None)
    ap.add_argument("--cases", type=int, default=40)
    ap.add_argument("--long-cases", type=int, default=10)
    ap.add_argument("--long-s", type=float, default=300.0)
    a = ap.parse_args()
    if not a.data.is_dir():
        print(f"no data folder at {a.data}; nothing to measure")
        return 0
    from lungapp.audio import load_audio
    from lungapp.inference.predictor import Predictor

    pred = Predictor.load(a.model)
    recs = read_folder(a.data)
    rate = pred.card.features.rate
    normals_of = defaultdict(list)
    for flac, label, patient in recs:
        if label == "Normal":
            normals_of[patient].append(load_audio(flac, rate=rate).samples)
    all_normals = [x for xs in normals_of.values() for x in xs][:40]
    abnormal = [r for r in recs if r[1] in ABNORMAL]
    print(f"model {pred.card.name} {pred.card.version}, threshold {pred.card.threshold:.3f}; "
          f"{len(abnormal)} abnormal recordings in {a.data.name}")
    print(f"{'recording':<22} {'n':>4} {'mean s':>7} {'alone':>6} {'found before':>13} "
          f"{'found after':>12} {'worst on it':>12} {'normal-only flagged before':>27} {'after':>6}")
    for name, cases, side in (("normal+abnormal+normal", abnormal[: a.cases], 20.0),
                              (f"~{a.long_s / 60:.0f} min", abnormal[: a.long_cases], a.long_s / 2)):
        t = run_length(pred, cases, normals_of, all_normals, side)
        print(f"{name:<22} {t['n']:>4} {t['seconds'] / t['n']:>7.0f} {t['alone']:>6} "
              f"{t['before']:>13} {t['after']:>12} {t['worst_on_it']:>12} "
              f"{t['normal_before']:>27} {t['normal_after']:>6}",
              flush=True)
    b = borderline_table(pred, recs)
    acc = (lambda v: f"{np.mean(v):.2f}" if v else "-")
    print(f"\nborderline margin {b['margin']:.3f} (2 SD of the card's nested per-fold thresholds); "
          f"intra_test recordings alone:")
    print(f"{'':<10} {'n':>5} {'verdict right':>14}")
    print(f"{'inside':<10} {len(b['inside']):>5} {acc(b['inside']):>14}")
    print(f"{'outside':<10} {len(b['outside']):>5} {acc(b['outside']):>14}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
