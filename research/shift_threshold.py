"""Does a threshold chosen where training's simulated other stethoscope is seen transfer
better than one chosen on the clean out-of-fold predictions?

Training scores each held-out recording twice: as recorded and through a simulated other
device (the card's ``device_shift``: 4 kHz, 100-1500 Hz, -3 dB/octave, 20 dB SNR). Rules, each
the score-maximising threshold (as training chooses it) on the model's kept members'
out-of-fold predictions combined as the model combines them:

- ``clean``: the clean predictions (the card's own rule);
- ``shifted``: the device-shifted ones;
- ``both``: clean and shifted together (each recording twice).

Each threshold then decides SPRSound intra_test and each ICBHI device, uncalibrated, as the
app decides; printed: the out-of-fold figures at it, and AUC, sensitivity, specificity, score,
four-class score and the threshold that would have maximised the score there.

    .venv/bin/python research/shift_threshold.py [--model resources/model] [--data ../shared/data]

The model must be an ensemble of runs kept in research/bundled_members whose out-of-fold
files hold the device-shifted predictions (the bundled model is).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pooling_transfer import folders, kept_members, with_rule  # noqa: E402

RULES = ("clean", "shifted", "both")


def rule_thresholds(y: np.ndarray, p_clean: np.ndarray, p_shift: np.ndarray) -> dict[str, float]:
    """{rule: the score-maximising threshold} of the three rules."""
    from lungapp.evaluation.metrics import choose_threshold

    return {"clean": choose_threshold(y, p_clean)[0], "shifted": choose_threshold(y, p_shift)[0],
            "both": choose_threshold(np.concatenate([y, y]), np.concatenate([p_clean, p_shift]))[0]}


def oof_rules(model: Path, train: Path) -> tuple[dict[str, float], dict[str, dict]]:
    """(thresholds, clean out-of-fold metrics at each) of the rules."""
    from lungapp.errors import LungappError
    from lungapp.evaluation.metrics import binary_metrics
    from lungapp.training.combine import ensemble_oof

    ens = ensemble_oof(kept_members(model), data_root=train)
    if ens.shifted is None:
        raise LungappError("the kept runs' out-of-fold files hold no device-shifted predictions", model)
    y = np.asarray(ens.data.y)
    p_clean, p_shift = 1 - ens.data.probs[:, 0], 1 - ens.shifted[:, 0]
    ts = rule_thresholds(y, p_clean, p_shift)
    return ts, {r: binary_metrics(y, p_clean, t) for r, t in ts.items()}


def at_threshold(rows: list[dict], card, threshold: float) -> dict:
    """Binary and four-class figures of evaluate_folder's rows (of an uncalibrated
    predictor) decided at ``threshold``, and the best threshold there."""
    from lungapp.evaluation.metrics import binary_metrics, choose_threshold, multiclass_metrics

    c = dataclasses.replace(card, threshold=threshold, calibration=None)
    y = [int(r["truth"] == "abnormal") for r in rows]
    p = [r["abnormal_probability"] for r in rows]
    m = binary_metrics(y, p, threshold)
    named = [(r["class"], c.decide_class([r["probabilities"][k] for k in c.classes], r["abnormal_probability"]))
             for r in rows if r["class"] is not None]
    four = (multiclass_metrics([t for t, _ in named], [d for _, d in named], c.classes)["score"]
            if named and len(c.classes) > 2 else float("nan"))
    best = choose_threshold(y, p)[0] if len(set(y)) == 2 else float("nan")
    return {"auc": m["auc"], "sensitivity": m["sensitivity"], "specificity": m["specificity"],
            "score": m["score"], "four_class": four, "best_threshold": best}


def _f(v) -> str:
    return "n/a" if v is None or v != v else f"{v:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=ROOT / "resources" / "model")
    ap.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data")
    args = ap.parse_args(argv)
    from lungapp.errors import LungappError
    from lungapp.evaluation.folder import evaluate_folder
    from lungapp.inference.predictor import Predictor

    train = (args.data / "sprsound" / "train").resolve()
    if not train.is_dir():
        print(f"no SPRSound train under {args.data}", file=sys.stderr)
        return 1
    try:
        ts, oof = oof_rules(args.model, train)
        predictor = Predictor.load(args.model)
        if predictor.card.pooling != "mean":
            raise LungappError("the model does not pool its windows by their mean", args.model)
        raw = with_rule(predictor, "mean", ts["clean"])  # uncalibrated, the rules' scale
        print("| rule | threshold | out of fold: sens / spec / score | data | AUC | sens | spec | score "
              "| four-class | best threshold there |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        with tempfile.TemporaryDirectory() as tmp:
            for name, folder, layout in folders(args.data, Path(tmp)):
                rows = evaluate_folder(folder, raw, layout=layout)["recordings"]
                for rule in RULES:
                    o, r = oof[rule], at_threshold(rows, raw.card, ts[rule])
                    print(f"| {rule} | {ts[rule]:.3f} | {o['sensitivity']:.3f} / {o['specificity']:.3f} / "
                          f"{o['score']:.3f} | {name} | {_f(r['auc'])} | {_f(r['sensitivity'])} "
                          f"| {_f(r['specificity'])} | {_f(r['score'])} | {_f(r['four_class'])} "
                          f"| {_f(r['best_threshold'])} |", flush=True)
    except LungappError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
