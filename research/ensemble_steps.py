"""Ensemble size against window step, at equal prediction cost: the cross-validated figures
of every subset of the bundled model's kept members (research/bundled_members) at the
members' own window steps and at twice them, from their out-of-fold files.

    python research/ensemble_steps.py [--members DIR | RUN:OOF RUN:OOF ...] [--data DIR]
        [--make-up 2=2,4=2] [--including NAME ...] [--class-pooling RULE] [--own-steps] [--each]

The prediction cost of an ensemble is its model work per recording: for each member, its
windows times its window length, counted in calls on windows of the shortest length (a
4-s window costs what two 2-s ones do). For a 15-s recording with 2-s windows that is 27
windows per member at a 0.5-s step and 14 at 1 s, so 2 members at 0.5 s cost what 4 do at
1 s; a member with 4-s windows every 2 s costs 7 x 2 = 14. Each row is computed as
lungapp.training.combine computes an ensemble's card (members reading the same windows
averaged window by window, member groups with other windows pooled and averaged; the
threshold and the four-class rule chosen on them, the rule's adoption checked on the first
member's folds). The table gives, per make-up (members of each window length) and step,
the mean and the range over the subsets; the last column counts the subsets whose checks
adopted the per-flag thresholds or a class pooling instead of the most probable class.

A recipe's seed-to-seed spread (how reliably a make-up meets the targets, not one lucky
draw): ``--make-up 2=2,4=2`` keeps only the subsets with that many runs of each window
length (s), ``--including NAME`` only those holding at least one of the named runs (a
folder name, e.g. runs trained after a check was written down), ``--class-pooling RULE``
names the four classes by RULE in every subset (as ``combine --class-pooling`` does) and
``--each`` prints one row per subset, then how many subsets reach each target (AUC, score,
strict four-class).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

from lungapp.errors import LungappError
from lungapp.inference.card import load_card
from lungapp.inference.features import window_starts
from lungapp.training.combine import add_run_arguments, check_members, ensemble_report, load_oofs, runs_from_arguments
from lungapp.vocabulary import CLASS_POOLINGS

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "sprsound" / "train"
MEMBERS = ROOT / "research" / "bundled_members"


def _span(values: list[float]) -> str:
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.4f}"
    return f"{mean:.4f} ({min(values):.4f}-{max(values):.4f})"


def _adopted(four_class: list[dict]) -> str:
    """How many subsets' checks adopted the per-flag thresholds or a class pooling instead
    of the most probable class."""
    n = {key: sum(1 for f in four_class if (f.get(key) or {}).get("adopted"))
         for key in ("flag_rule_check", "class_pooling_check")}
    return f"flags {n['flag_rule_check']}, pooling {n['class_pooling_check']}"


#: The bundled model's targets (issue 4): out-of-fold AUC, score, strict four-class score.
TARGETS = {"AUC": 0.93, "score": 0.85, "four-class nested": 0.75}


def parse_make_up(text: str) -> dict[float, int]:
    """``"2=2,4=2"`` -> {2.0: 2, 4.0: 2} (runs per window length); ValueError."""
    out: dict[float, int] = {}
    for part in text.split(","):
        length, sep, count = part.partition("=")
        try:
            if not sep or float(length) <= 0 or int(count) < 1:
                raise ValueError
            out[float(length)] = int(count)
        except ValueError:
            raise ValueError(f"--make-up {text!r}: give WINDOW=RUNS for each window length, "
                             "e.g. 2=2,4=2") from None
    return out


def _subsets(cards, names, make_up, including):
    """Every subset of the members (indices), filtered by make-up and required runs."""
    for k in range(1, len(cards) + 1):
        for subset in itertools.combinations(range(len(cards)), k):
            if make_up is not None:
                counts: dict[float, int] = {}
                for i in subset:
                    counts[cards[i].features.window_s] = counts.get(cards[i].features.window_s, 0) + 1
                if counts != make_up:
                    continue
            if including and not any(names[i] in including for i in subset):
                continue
            yield subset


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(ap, MEMBERS, DATA)
    ap.add_argument("--seconds", type=float, default=15.0, help="recording length for the cost column")
    ap.add_argument("--make-up", help="only subsets with these runs per window length, e.g. 2=2,4=2")
    ap.add_argument("--including", nargs="+", default=[], metavar="NAME",
                    help="only subsets holding at least one of these runs (folder names)")
    ap.add_argument("--class-pooling", choices=CLASS_POOLINGS,
                    help="name the four classes by this rule in every subset (fixed by the recipe)")
    ap.add_argument("--own-steps", action="store_true", help="only the runs' own window steps")
    ap.add_argument("--each", action="store_true",
                    help="one row per subset, then how many subsets reach each target")
    return ap


def _score_subsets(args, members, cards, arrays, make_up) -> list[tuple]:
    """(runs, make-up, steps, cost, report) of each subset the filters keep, at each step
    factor; LungappError from a subset that cannot be combined."""
    names = [Path(d).name for d, _ in members]
    lengths = sorted({c.features.window_s for c in cards})
    each: list[tuple] = []
    for factor in ((1,) if args.own_steps else (1, 2)):
        for subset in _subsets(cards, names, make_up, set(args.including)):
            sub = [cards[i] for i in subset]
            hops = {w: factor * min(c.features.hop_s for c in cards if c.features.window_s == w)
                    for w in lengths}
            report, fcs = ensemble_report([members[i] for i in subset], hop_s=hops,
                                          cards=sub, arrays=[arrays[i] for i in subset],
                                          class_pooling=args.class_pooling)
            make_up_words = " + ".join(f"{n} x {w:g} s" for w in lengths
                                     if (n := sum(1 for c in sub if c.features.window_s == w)))
            steps = ", ".join(f"{fc.hop_s:g}" for fc in dict.fromkeys(
                sorted(fcs, key=lambda f: f.window_s)))
            cost = sum(len(window_starts(int(args.seconds * fc.rate), fc)) * fc.window_s / lengths[0]
                       for fc in fcs)
            each.append((" + ".join(names[i] for i in subset), make_up_words, steps, round(cost),
                         report))
        print(f"  steps x{factor}: done", file=sys.stderr, flush=True)
    return each


def _print_table(each: list[tuple], names: list[str], seconds: float, shortest: float, rule: str) -> int:
    """One row per make-up and step: the mean (range) of each figure over its subsets."""
    rows: dict = {}
    for _, make_up_words, steps, cost, report in each:
        rows.setdefault((make_up_words, steps, cost), []).append(report)
    table = []
    for (make_up_words, steps, cost), reports in rows.items():
        fcs = [r["four_class"] for r in reports]
        table.append((make_up_words, steps, cost, len(reports),
                      _span([r["overall"]["auc"] for r in reports]),
                      _span([r["overall"]["score"] for r in reports]),
                      _span([f["score"] for f in fcs]), _span([f["nested_score"] for f in fcs]),
                      _adopted(fcs)))
    print(f"members: {', '.join(names)}; model cost for a {seconds:g}-s recording in calls on "
          f"{shortest:g}-s windows; mean (range) over the subsets of each make-up{rule}\n")
    head = ("members", "step (s)", "model cost", "subsets", "AUC", "score", "four-class",
            "four-class nested", "rule adopted")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in sorted(table, key=lambda r: (r[2], r[0])):
        print("| " + " | ".join(str(v) if not isinstance(v, float) else f"{v:g}" for v in r) + " |")
    return 0


def main(argv=None) -> int:
    ap = _parser()
    args = ap.parse_args(argv)
    members = runs_from_arguments(ap, args)
    try:
        make_up = parse_make_up(args.make_up) if args.make_up else None
    except ValueError as exc:
        ap.error(str(exc))
    if not members:
        print(f"no members: none given and none kept in {args.members}", file=sys.stderr)
        return 2
    data = args.data if args.data.is_dir() else None
    names = [Path(d).name for d, _ in members]
    try:  # every card and out-of-fold file (and the data folder) read once
        cards = [load_card(Path(d)) for d, _ in members]
        check_members(cards, [Path(d) for d, _ in members], one_model=False)
        arrays = load_oofs(members, cards, data)
        unknown = sorted(set(args.including) - set(names))
        if unknown:
            raise LungappError(f"--including {', '.join(unknown)}: not among the members "
                               f"({', '.join(names)})")
        each = _score_subsets(args, members, cards, arrays, make_up)
    except LungappError as exc:
        print(f"ensemble_steps: {exc}", file=sys.stderr)
        return 2
    if not each:
        print("ensemble_steps: no subset of the members has that make-up"
              + (" and holds a run given to --including" if args.including else ""), file=sys.stderr)
        return 2
    rule = (f"; four classes named by {args.class_pooling}, fixed" if args.class_pooling else "")
    if args.each:
        return _print_each(each, rule)
    return _print_table(each, names, args.seconds, min(c.features.window_s for c in cards), rule)


def _print_each(each: list[tuple], rule: str) -> int:
    """One row per subset, then how many reach each target (and the mean and range)."""
    head = ("members", "step (s)", "AUC", "score", "four-class", "four-class nested")
    print(f"one row per subset{rule}\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    got: dict[str, list[float]] = {k: [] for k in TARGETS}
    for names, _, steps, _, report in each:
        o, f = report["overall"], report["four_class"]
        got["AUC"].append(o["auc"])
        got["score"].append(o["score"])
        got["four-class nested"].append(f["nested_score"])
        print(f"| {names} | {steps} | {o['auc']:.4f} | {o['score']:.4f} | {f['score']:.4f} | "
              f"{f['nested_score']:.4f} |")
    print()
    for key, target in TARGETS.items():
        values = got[key]
        print(f"{key} >= {target:g}: {sum(v >= target for v in values)} of {len(values)} subsets "
              f"(mean {_span(values)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
