"""Check a model folder on collections and devices it was not trained on, and record the
figures in its card (``external_checks``) and its MODEL_CARD.md.

Collections: SPRSound intra_test (other recordings of the training children, same
hospital and device) and the ICBHI 2017 subset (adults and children, four devices), all of
it and each device alone. For each: the binary scores at the card's threshold, the
four-class score, the quality check's refusals and warnings, how many recordings the input
profile calls unlike the training recordings, the calibration there (ECE, reliability bins)
and, for comparison only, the threshold that would have maximised the score on it
(:func:`lungapp.evaluation.folder.evaluate_folder` does the work).

    .venv/bin/python research/external_checks.py [--model resources/model] [--data ../shared/data]
                                                 [--write]

Without ``--write`` it prints the table and changes nothing.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMAND = "python research/external_checks.py --write"


def device_folders(icbhi: Path, tmp: Path) -> dict[str, Path]:
    """One folder of symbolic links per ICBHI device (the manifest's ``device`` column)."""
    icbhi = icbhi.resolve()  # the links must not depend on the working folder
    out: dict[str, Path] = {}
    with open(icbhi / "manifest.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            d = out.setdefault(row["device"], tmp / row["device"].replace(" ", "_"))
            d.mkdir(exist_ok=True)
            stem = Path(row["file"]).stem
            for ext in (".wav", ".txt"):
                src = (icbhi / "audio_and_txt" / stem).with_suffix(ext)
                (d / src.name).symlink_to(src)
    return out


def check(name: str, folder: Path, predictor, layout: str | None) -> dict:
    """The card's ExternalCheck fields for one labelled folder."""
    from lungapp.evaluation.folder import evaluate_folder

    r = evaluate_folder(folder, predictor, layout=layout)
    gate = r["quality_gate"]["others"]
    return {"name": name, "command": COMMAND, "n": r["n"], "n_abnormal": r["n_abnormal"],
            "n_normal": r["n_normal"], "auc": r["auc"], "sensitivity": r["sensitivity"],
            "specificity": r["specificity"], "score": r["score"],
            "four_class_score": (r.get("multiclass") or {}).get("score"),
            "refused": gate["flagged"], "warned": gate["warned"],
            "ece": r["calibration"]["ece"], "reliability": r["calibration"]["bins"],
            "unfamiliar": (r.get("unfamiliar") or {}).get("n"),
            "best_threshold": r["best_threshold"],
            **{k: r["intervals"][k] for k in ("auc_ci95", "score_ci95", "resampled", "n_groups")}}


def run_checks(model: Path, data: Path) -> list[dict]:
    from lungapp.inference.predictor import Predictor

    predictor = Predictor.load(model)
    checks = []
    intra = data / "sprsound" / "intra_test"
    if intra.is_dir():
        checks.append(check("SPRSound intra_test", intra, predictor, "sprsound"))
    icbhi = data / "icbhi_subset"
    if icbhi.is_dir():
        checks.append(check("ICBHI subset, all devices", icbhi / "audio_and_txt", predictor, "icbhi"))
        with tempfile.TemporaryDirectory() as tmp:
            for device, folder in sorted(device_folders(icbhi, Path(tmp)).items()):
                checks.append(check(f"ICBHI {device}", folder, predictor, "icbhi"))
    return checks


def main(argv: list[str] | None = None) -> int:
    from lungapp.inference.card import load_card, write_card
    from lungapp.training.card_text import card_markdown, interval_text

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(ROOT / "resources" / "model"))
    ap.add_argument("--data", default=str(ROOT / ".." / "shared" / "data"))
    ap.add_argument("--write", action="store_true", help="record the checks in the model's card")
    args = ap.parse_args(argv)
    model = Path(args.model)
    checks = run_checks(model, Path(args.data).resolve())
    if not checks:
        print(f"no collections found under {args.data}", file=sys.stderr)
        return 2
    f = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    print("| data | n (abn/norm) | patients | AUC (95 % interval) | sens | spec | score (95 % interval) "
          "| 4-class | refused | warned | unlike training | ECE | best t |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for c in checks:
        print(f"| {c['name']} | {c['n']} ({c['n_abnormal']}/{c['n_normal']}) | {c['n_groups']} | "
              f"{f(c['auc'])}{interval_text(c['auc_ci95'])} | "
              f"{f(c['sensitivity'])} | {f(c['specificity'])} | {f(c['score'])}{interval_text(c['score_ci95'])} | "
              f"{f(c['four_class_score'])} | {c['refused']} | {c['warned']} | "
              f"{'n/a' if c['unfamiliar'] is None else c['unfamiliar']} | {f(c['ece'])} | "
              f"{f(c['best_threshold'])} |")
    if args.write:
        card = dataclasses.replace(load_card(model), external_checks=checks)
        write_card(model, card)
        (model / "MODEL_CARD.md").write_text(card_markdown(card))
        print(f"recorded in {model / 'card.json'} and MODEL_CARD.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
