"""Ensemble size against window step, at equal prediction cost: the cross-validated figures
of every subset of the bundled model's kept members (packaging/bundled_members) at the
members' own window steps and at twice them, from their out-of-fold files.

    python benchmarks/ensemble_steps.py [--members DIR | RUN:OOF RUN:OOF ...] [--data DIR]

The prediction cost of an ensemble is its model work per recording: for each member, its
windows times its window length, counted in calls on windows of the shortest length (a
4-s window costs what two 2-s ones do). For a 15-s recording with 2-s windows that is 27
windows per member at a 0.5-s step and 14 at 1 s, so 2 members at 0.5 s cost what 4 do at
1 s; a member with 4-s windows every 2 s costs 7 x 2 = 14. Each row is computed as
lungapp.model.combine computes an ensemble's card (members reading the same windows
averaged window by window, member groups with other windows pooled and averaged; the
threshold and the four-class rule chosen on them, the rule's adoption checked on the first
member's folds). The table gives, per make-up (members of each window length) and step,
the mean and the range over the subsets; the last column counts the subsets whose checks
adopted the per-flag thresholds or a class pooling instead of the most probable class.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lungapp.errors import LungappError  # noqa: E402
from lungapp.model.card import load_card  # noqa: E402
from lungapp.model.combine import (check_members, ensemble_report, kept_runs, load_oofs,  # noqa: E402
                                   parse_member)
from lungapp.model.features import window_starts  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "sprsound" / "train"
MEMBERS = ROOT / "packaging" / "bundled_members"


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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="*", metavar="RUN:OOF",
                    help="members (default: the kept members of the bundled model)")
    ap.add_argument("--members", type=Path, default=MEMBERS, help="folder of kept members (seedN/)")
    ap.add_argument("--data", type=Path, default=DATA,
                    help="the members' data folder (for out-of-fold files without labels)")
    ap.add_argument("--seconds", type=float, default=15.0, help="recording length for the cost column")
    args = ap.parse_args(argv)
    try:
        members = [parse_member(s) for s in args.runs]
    except ValueError as exc:
        ap.error(str(exc))
    members = members or kept_runs(args.members)
    if not members:
        print(f"no members: none given and none kept in {args.members}", file=sys.stderr)
        return 2
    data = args.data if args.data.is_dir() else None
    try:  # every card and out-of-fold file (and the data folder) read once
        cards = [load_card(Path(d)) for d, _ in members]
        check_members(cards, [Path(d) for d, _ in members], one_model=False)
        arrays = load_oofs(members, cards, data)
    except LungappError as exc:
        print(f"ensemble_steps: {exc}", file=sys.stderr)
        return 2
    lengths = sorted({c.features.window_s for c in cards})
    rows: dict = {}
    for factor in (1, 2):
        for k in range(1, len(members) + 1):
            for subset in itertools.combinations(range(len(members)), k):
                sub = [cards[i] for i in subset]
                hops = {w: factor * min(c.features.hop_s for c in cards if c.features.window_s == w)
                        for w in lengths}
                try:
                    report, fcs = ensemble_report([members[i] for i in subset], hop_s=hops,
                                                  cards=sub, arrays=[arrays[i] for i in subset])
                except LungappError as exc:
                    print(f"ensemble_steps: {exc}", file=sys.stderr)
                    return 2
                make_up = " + ".join(f"{n} x {w:g} s" for w in lengths
                                     if (n := sum(1 for c in sub if c.features.window_s == w)))
                steps = ", ".join(f"{fc.hop_s:g}" for fc in dict.fromkeys(
                    sorted(fcs, key=lambda f: f.window_s)))
                cost = sum(len(window_starts(int(args.seconds * fc.rate), fc)) * fc.window_s / lengths[0]
                           for fc in fcs)
                rows.setdefault((make_up, steps, round(cost)), []).append(report)
        print(f"  steps x{factor}: done", file=sys.stderr, flush=True)
    table = []
    for (make_up, steps, cost), reports in rows.items():
        fcs = [r["four_class"] for r in reports]
        table.append((make_up, steps, cost, len(reports),
                      _span([r["overall"]["auc"] for r in reports]),
                      _span([r["overall"]["score"] for r in reports]),
                      _span([f["score"] for f in fcs]), _span([f["nested_score"] for f in fcs]),
                      _adopted(fcs)))
    names = ", ".join(Path(d).name for d, _ in members)
    print(f"members: {names}; model cost for a {args.seconds:g}-s recording in calls on "
          f"{lengths[0]:g}-s windows; mean (range) over the subsets of each make-up\n")
    head = ("members", "step (s)", "model cost", "subsets", "AUC", "score", "four-class",
            "four-class nested", "rule adopted")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in sorted(table, key=lambda r: (r[2], r[0])):
        print("| " + " | ".join(str(v) if not isinstance(v, float) else f"{v:g}" for v in r) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
