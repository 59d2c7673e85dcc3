"""What the recording-quality check (lungapp.inference.quality) does with each label of a
labelled folder: how many recordings it refuses, warns about or calls good, and why.

    python benchmarks/quality_gate.py [../shared/data/sprsound/train] [--every N]

Every recording (or every N-th, in the folder's order) is decoded at the model's rate
(8 kHz), as the app does, and checked with ``quality.assess``. Prints one row per label
(Poor Quality separately: the recordings the experts could not judge), then the refusals'
reasons and the check's median time per recording. ``quality_transfer.py`` measures the
same check on other collections and devices.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import numpy as np

from lungapp.audio import load_audio
from lungapp.data import read_folder
from lungapp.errors import LungappError
from lungapp.inference import quality

ROOT = Path(__file__).resolve().parents[1]
RATE = 8000


def check_folder(folder: Path, every: int = 1) -> tuple[dict[str, collections.Counter], collections.Counter, list]:
    """Check every ``every``-th recording of a labelled folder. Returns the verdict levels
    per label, the refusal reasons per (label, reason), and the check's times in ms.
    Raises LungappError for a folder no reader understands."""
    levels: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    reasons: collections.Counter = collections.Counter()
    times = []
    for ex in read_folder(folder).examples[:: max(1, every)]:
        try:
            x = load_audio(ex.path, rate=RATE).samples
        except LungappError as exc:
            print(f"skipped: {exc}", file=sys.stderr)
            continue
        t0 = time.perf_counter()
        v = quality.assess(x, RATE)
        times.append(1000 * (time.perf_counter() - t0))
        levels[ex.label][v.level] += 1
        if v.level == quality.REFUSE:
            reasons[(ex.label, v.reason.split(" (")[0])] += 1
    return levels, reasons, times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", nargs="?", type=Path, default=ROOT.parent / "shared/data/sprsound/train")
    ap.add_argument("--every", type=int, default=1, help="check every N-th recording (default all)")
    args = ap.parse_args(argv)
    try:
        levels, reasons, times = check_folder(args.folder, args.every)
    except LungappError as exc:
        print(f"quality_gate: {exc}", file=sys.stderr)
        return 2
    if not times:
        print(f"quality_gate: {args.folder}: no readable recording", file=sys.stderr)
        return 2
    print(f"{args.folder}: {len(times)} recordings checked at {RATE} Hz; "
          f"median {np.median(times):.1f} ms per recording\n")
    print("| label | n | refused | warned | good |\n|---|---|---|---|---|")
    for label, c in sorted(levels.items()):
        n = sum(c.values())
        cells = [f"{c[k]} ({c[k] / n:.1%})" for k in (quality.REFUSE, quality.WARN, quality.GOOD)]
        print(f"| {label} | {n} | " + " | ".join(cells) + " |")
    if reasons:
        print("\nrefused:")
        for (label, reason), k in sorted(reasons.items()):
            print(f"  {label:13s} {reason:24s} {k}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
