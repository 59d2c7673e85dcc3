"""Table model folders side by side from their cards: a regenerated model next to the
committed one, or runs next to each other.

    python research/compare_cards.py [NAME=]DIR [[NAME=]DIR ...]

e.g. after ``research/make_bundled_model.py --work runs/regen --out runs/regen_model``:

    python research/compare_cards.py committed=resources/model regenerated=runs/regen_model \\
        runs/regen/bundled_seed0 runs/regen/bundled-4s_seed0 runs/regen/bundled-4s_seed1

Prints one markdown row per folder (NAME defaults to the folder's name), from card.json
only (nothing is recomputed): out-of-fold AUC, sensitivity, specificity, score, the stored
threshold, the confusion matrix, the four-class score, the per-fold AUCs, the device-shift
AUC and drop, and the model files' count and size. Exit status 2 with a message naming the
folder when one is not a model folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lungapp.errors import LungappError
from lungapp.inference.card import load_card

HEADER = ["model", "AUC", "sens", "spec", "score", "threshold", "confusion [[TN,FP],[FN,TP]]",
          "four-class score", "fold AUCs", "device-shift AUC", "size"]


def row(folder) -> list[str]:
    folder = Path(folder)
    card = load_card(folder)
    m = card.metrics
    o = m.overall
    if o is None:
        raise KeyError("overall")
    four = m.four_class.score if m.four_class else None
    shift = m.device_shift if m.device_shift and m.device_shift.shifted else None
    size = sum((folder / f).stat().st_size for f in card.model_files) / 1e6
    return [f"{o.auc:.4f}", f"{o.sensitivity:.3f}", f"{o.specificity:.3f}", f"{o.score:.3f}",
            f"{card.threshold:.3f}", str(o.confusion), "-" if four is None else f"{four:.3f}",
            " / ".join(f"{f['auc']:.3f}" for f in m.per_fold or []) or "-",
            f"{shift.shifted.auc:.3f} (drop {shift.drop['auc']:.3f})" if shift else "-",
            f"{len(card.model_files)} files, {size:.2f} MB"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or any(a.startswith("-") for a in argv):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    rows = []
    for arg in argv:
        name, sep, path = arg.partition("=")
        if not sep:
            name, path = Path(arg).name, arg
        try:
            rows.append([name, *row(path)])
        except (LungappError, OSError, KeyError, TypeError) as e:
            print(f"{path}: not a model folder with cross-validated metrics ({e})", file=sys.stderr)
            return 2
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
