"""Does another rule for pooling a recording's windows into its abnormal probability
transfer better than the model's own (the mean)?

For each rule: the threshold that maximises score on the kept members' out-of-fold
predictions of SPRSound train pooled that way (as training chooses it), then SPRSound
intra_test and each ICBHI device decided at it, as the app decides (the worst 15-s
segment), and the threshold that would have maximised the score there. Probabilities are
not calibrated (a calibration is monotone: it changes no decision and no AUC). A recording
whose windows are mostly normal with a few loud or noisy ones scores high under the mean
and low under the median or a lower quantile: if intra_test's over-called normal recordings
were such, a lower quantile would over-call less.

    .venv/bin/python research/pooling_transfer.py [--model resources/model]
        [--rules mean,quantile:0.5,quantile:0.25,quantile:0.75,max] [--data ../shared/data]

The model must be an ensemble of runs kept in research/bundled_members (the bundled model
is); its card names them.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from external_checks import device_folders  # noqa: E402

RULES = "mean,quantile:0.5,quantile:0.25,quantile:0.75,max"


def kept_members(model: Path) -> list[tuple[Path, Path]]:
    """(run folder, out-of-fold file) of each kept run the model's card names."""
    from lungapp.errors import LungappError
    from lungapp.inference.card import load_card
    from lungapp.training.combine import kept_members_of

    runs = kept_members_of(load_card(model), ROOT / "research" / "bundled_members")
    if not runs:
        raise LungappError("the model is not an ensemble of runs kept in research/bundled_members",
                           model)
    return runs


def oof_thresholds(model: Path, train: Path, rules: list[str]) -> dict[str, dict]:
    """Per rule, the out-of-fold metrics at the score-maximising threshold."""
    from lungapp.evaluation.metrics import binary_metrics, choose_threshold
    from lungapp.training.combine import ensemble_oof

    ens = ensemble_oof(kept_members(model), data_root=train, pool_rules=tuple(rules))
    out = {}
    for rule in rules:
        t, _ = choose_threshold(ens.data.y, ens.alt[rule])
        out[rule] = binary_metrics(ens.data.y, ens.alt[rule], t)
    return out


def with_rule(predictor, rule: str, threshold: float):
    """The predictor with its card's pooling and threshold replaced, uncalibrated."""
    from lungapp.inference.predictor import Predictor

    card = dataclasses.replace(predictor.card, pooling=rule, threshold=threshold, calibration=None)
    return Predictor(predictor.model_dir, card, predictor.groups, runtime=predictor.runtime)


def folders(data: Path, tmp: Path) -> list[tuple[str, Path, str]]:
    out = []
    if (data / "sprsound" / "intra_test").is_dir():
        out.append(("SPRSound intra_test", data / "sprsound" / "intra_test", "sprsound"))
    if (data / "icbhi_subset").is_dir():
        for device, folder in sorted(device_folders(data / "icbhi_subset", tmp).items()):
            out.append((f"ICBHI {device}", folder, "icbhi"))
    return out


def _f(v) -> str:
    return "n/a" if v is None or v != v else f"{v:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=ROOT / "resources" / "model")
    ap.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data")
    ap.add_argument("--rules", default=RULES, help="comma-separated pooling rules, as a card names them")
    args = ap.parse_args(argv)
    from lungapp.errors import LungappError
    from lungapp.evaluation.folder import evaluate_folder
    from lungapp.inference.predictor import Predictor
    from lungapp.vocabulary import POOLING_RULE

    rules = [r.strip() for r in args.rules.split(",") if r.strip()]
    bad = [r for r in rules if not POOLING_RULE.match(r)]
    if bad or not rules:
        ap.error(f"--rules: not a pooling rule: {', '.join(bad) if bad else repr(args.rules)}")
    train = (args.data / "sprsound" / "train").resolve()
    if not train.is_dir():
        print(f"no SPRSound train under {args.data}", file=sys.stderr)
        return 1
    try:
        oof = oof_thresholds(args.model, train, rules)
        predictor = Predictor.load(args.model)
        print("| rule | out of fold: AUC / score | threshold | data | AUC | sens | spec | score "
              "| best threshold there |")
        print("|---|---|---|---|---|---|---|---|---|")
        with tempfile.TemporaryDirectory() as tmp:
            for name, folder, layout in folders(args.data, Path(tmp)):
                for rule in rules:
                    o = oof[rule]
                    r = evaluate_folder(folder, with_rule(predictor, rule, o["threshold"]), layout=layout)
                    print(f"| {rule} | {o['auc']:.4f} / {o['score']:.3f} | {o['threshold']:.3f} "
                          f"| {name} | {_f(r['auc'])} | {_f(r['sensitivity'])} "
                          f"| {_f(r['specificity'])} | {_f(r['score'])} "
                          f"| {_f(r['best_threshold'])} |", flush=True)
    except LungappError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
