"""Ensemble size against window step, at equal prediction cost: the cross-validated figures
of every subset of the bundled model's kept members (packaging/bundled_members) at the
members' own window step and at twice it, from their out-of-fold files.

    python benchmarks/ensemble_steps.py [--members DIR | RUN:OOF RUN:OOF ...] [--data DIR]

The prediction cost of an ensemble is its number of model calls per recording: members x
windows. For a 15-s recording with 2-s windows that is 27 windows per member at a 0.5-s
step and 14 at 1 s, so 2 members at 0.5 s cost what 4 do at 1 s. Each row is computed as
lungapp.model.combine computes an ensemble's card (the members' out-of-fold window outputs
averaged, then pooled; the threshold and the four-class rule chosen on them, the rule's
adoption checked on the first member's folds). The table gives, per subset size and step,
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
    base_step = cards[0].features.hop_s
    rows = []
    for step in (base_step, 2 * base_step):
        for k in range(1, len(members) + 1):
            reports = []
            for subset in itertools.combinations(range(len(members)), k):
                try:
                    report, fc, _ = ensemble_report([members[i] for i in subset], hop_s=step,
                                                    cards=[cards[i] for i in subset],
                                                    arrays=[arrays[i] for i in subset])
                except LungappError as exc:
                    print(f"ensemble_steps: {exc}", file=sys.stderr)
                    return 2
                reports.append(report)
            n_win = len(window_starts(int(args.seconds * fc.rate), fc))
            fcs = [r["four_class"] for r in reports]
            rows.append((k, step, k * n_win, len(reports),
                         _span([r["overall"]["auc"] for r in reports]),
                         _span([r["overall"]["score"] for r in reports]),
                         _span([f["score"] for f in fcs]), _span([f["nested_score"] for f in fcs]),
                         _adopted(fcs)))
            print(f"  {k} member(s) at {step:g} s: done", file=sys.stderr, flush=True)
    names = ", ".join(Path(d).name for d, _ in members)
    print(f"members: {names}; model calls for a {args.seconds:g}-s recording; mean (range) over "
          "the subsets of each size\n")
    head = ("members", "step (s)", "model calls", "subsets", "AUC", "score", "four-class",
            "four-class nested", "rule adopted")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in sorted(rows, key=lambda r: (r[2], r[0])):
        print("| " + " | ".join(str(v) if not isinstance(v, float) else f"{v:g}" for v in r) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
