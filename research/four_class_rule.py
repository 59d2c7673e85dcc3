"""Four-class decision rules of a [CAS, DAS]-flag model on a labelled folder: the most
probable abnormal class (what the bundled model uses) against the per-flag thresholds that
training tried (``metrics.four_class.flag_rule_check.thresholds`` in the card).

    python research/four_class_rule.py [../shared/data/sprsound/intra_test] [--model DIR]

Prints both four-class scores and the gain of the flag rule, with a 95 % interval from a
paired bootstrap over patients (lungapp.training.oof.paired_score_gain). Poor Quality
recordings are skipped, as in `lungapp evaluate`. The binary decision (threshold) is the
card's in both rules, so only the abnormal recordings' classes can differ.

Then a ceiling, for comparison only: the best four-class score any pair of per-flag
thresholds (0.02-0.98 in steps of 0.04, and 1) reaches on the folder itself, at the card's
threshold and at the folder's own score-maximising one. No rule fitted elsewhere can do
better than that with this model's outputs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lungapp.data import POOR, read_folder
from lungapp.evaluation.metrics import choose_threshold, multiclass_metrics
from lungapp.inference.card import decide_class
from lungapp.inference.predictor import Predictor
from lungapp.training.oof import paired_score_gain

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", nargs="?", default=str(ROOT.parent / "shared/data/sprsound/intra_test"))
    ap.add_argument("--model", default=None, help="model folder (default: the active model)")
    args = ap.parse_args(argv)

    pred = Predictor.load(args.model)
    card = pred.card
    chk = (card.metrics.four_class.flag_rule_check if card.metrics.four_class else None)
    if not chk:
        print(f"{args.model or 'the active model'}: its card has no per-flag thresholds to compare "
              "(not a four-class model with [CAS, DAS] flags)", file=sys.stderr)
        return 2
    ft = chk["thresholds"]
    labels, by_flags, by_argmax, patients, outs = [], [], [], [], []
    for ex in read_folder(args.folder).examples:
        if ex.label == POOR or ex.label not in card.classes:
            continue
        r = pred.predict_file(ex.path)
        probs = [r.probabilities[c] for c in card.classes]
        labels.append(ex.label)
        patients.append(ex.patient if ex.patient is not None else ex.path)
        by_flags.append(decide_class(probs, card.classes, r.abnormal_probability, card.threshold, ft))
        by_argmax.append(decide_class(probs, card.classes, r.abnormal_probability, card.threshold))
        outs.append((probs, r.abnormal_probability))
    g = paired_score_gain(labels, by_flags, by_argmax, card.classes, patients)
    print(f"folder: {args.folder}  recordings: {len(labels)}  patients: {len(set(patients))}")
    print(f"per-flag thresholds from training: CAS {ft['CAS']:.3f}, DAS {ft['DAS']:.3f}"
          f" (adopted in the card: {'yes' if card.flag_thresholds else 'no'})")
    print("| rule | four-class score |\n|---|---|")
    print(f"| most probable abnormal class | {g['score_b']:.3f} |")
    print(f"| per-flag thresholds | {g['score_a']:.3f} |")
    lo, hi = g["ci95"]
    print(f"gain of the per-flag thresholds: {g['gain']:+.3f} (95 % interval {lo:+.3f} to {hi:+.3f}, "
          f"bootstrap over {g['resampled']})")
    print(ceiling(labels, outs, card))
    return 0


def ceiling(labels: list[str], outs: list[tuple[list[float], float]], card) -> str:
    """The best four-class score of per-flag thresholds chosen on these recordings
    themselves, at the card's threshold and at the recordings' own best one."""
    own, _ = choose_threshold([lab != card.classes[0] for lab in labels], [p for _, p in outs])
    grid = [round(0.02 + 0.04 * i, 2) for i in range(25)] + [1.0]
    lines = ["| binary threshold | best per-flag thresholds on this folder (CAS, DAS) | four-class score |",
             "|---|---|---|"]
    for name, t in ((f"the card's ({card.threshold:.3f})", card.threshold),
                    (f"this folder's best ({own:.3f})", own)):
        best = max((multiclass_metrics(labels, [decide_class(pr, card.classes, p, t, {"CAS": tc, "DAS": td})
                                                for pr, p in outs], card.classes)["score"], tc, td)
                   for tc in grid for td in grid)
        lines.append(f"| {name} | {best[1]:.2f}, {best[2]:.2f} | {best[0]:.3f} |")
    return "ceiling (chosen on the folder itself, for comparison only):\n" + "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
