"""``lungapp evaluate FOLDER``: score a model on a labelled folder."""

from __future__ import annotations

import argparse
import json

from lungapp.cli.common import EXIT_ERROR, EXIT_OK, err, load_predictor
from lungapp.data.readers import LAYOUTS
from lungapp.errors import LungappError

HELP = "score a model on a labelled folder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", metavar="FOLDER")
    p.add_argument("--model", metavar="DIR", help="model folder (default: the active model)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--layout", choices=LAYOUTS, default=None,
                   help="the folder's layout (default: detected from its content)")


def run(args) -> int:
    from lungapp.evaluation.folder import evaluate_folder

    try:
        predictor = load_predictor(args.model)
        res = evaluate_folder(args.folder, predictor, layout=args.layout)
    except LungappError as exc:
        err(str(exc))
        return EXIT_ERROR
    if args.json:
        print(json.dumps(res, indent=2))
        return _status(res)
    f = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    (tn, fp), (fn, tp) = res["confusion"]
    print(f"folder: {res['folder']} ({res['layout']})  model: {res['model']['name']} {res['model']['version']}")
    print(f"scored {res['n']} recordings ({res['n_abnormal']} abnormal, {res['n_normal']} normal); "
          f"skipped {res['n_skipped']} Poor Quality; failed {res['n_failed']}; "
          f"unusable entries {res['n_unusable']}")
    print(f"AUC {f(res['auc'])}  sensitivity {f(res['sensitivity'])}  specificity {f(res['specificity'])}  "
          f"score {f(res['score'])}  accuracy {f(res['accuracy'])}  (threshold {res['threshold']:.3f})")
    iv = res.get("intervals") or {}
    if iv.get("auc_ci95") or iv.get("score_ci95"):
        span = lambda v: "n/a" if not v else f"{v[0]:.3f}-{v[1]:.3f}"  # noqa: E731
        print(f"95 % intervals: AUC {span(iv.get('auc_ci95'))}  score {span(iv.get('score_ci95'))}  "
              f"({iv['n_boot']} resamples of the {iv['n_groups']} {iv['resampled']})")
    print(f"confusion (rows true normal/abnormal, cols predicted): [[{tn}, {fp}], [{fn}, {tp}]]")
    cal = res["calibration"]
    best = res.get("best_threshold")
    print(f"calibration: expected calibration error {f(cal['ece'])}, Brier {f(cal['brier'])}; "
          f"the threshold that would maximise the score here: {f(best)} (score there "
          f"{f(res.get('best_score'))}; the model's: {res['threshold']:.3f})")
    if "multiclass" in res:
        mc = res["multiclass"]
        print(f"4-class score {f(mc['score'])}; confusion rows/cols {mc['classes']}:")
        for c, row in zip(mc["classes"], mc["confusion"]):
            print(f"  {c:<10} {row}")
    gate = res["quality_gate"]
    pq, others = gate["poor_quality"], gate["others"]
    print(f"quality check: refuses {pq['flagged']} and warns on {pq['warned']} of {pq['n']} Poor Quality "
          f"recordings; refuses {others['flagged']} and warns on {others['warned']} of {others['n']} others")
    if "passed" in gate:
        ps = gate["passed"]
        line = (f"  on the {ps['n']} it passes: AUC {f(ps['auc'])}  sensitivity {f(ps['sensitivity'])}  "
                f"specificity {f(ps['specificity'])}  score {f(ps['score'])}")
        if "multiclass" in ps:
            line += f"  4-class score {f(ps['multiclass']['score'])}"
        print(line)
    if "unfamiliar" in res:
        u = res["unfamiliar"]
        print(f"unlike the training recordings (input profile): {u['n']} of the {u['of']} it passes")
        if "familiar" in u:
            fs = u["familiar"]
            print(f"  on the {fs['n']} others: AUC {f(fs['auc'])}  sensitivity {f(fs['sensitivity'])}  "
                  f"specificity {f(fs['specificity'])}  score {f(fs['score'])}")
    for item in res.get("failed", []):
        print(f"failed: {item['file']}: {item['error']}")
    for item in res["unusable"]:
        print(f"unusable: {item['file']}: {item['reason']}")
    for line in res["warnings"]:
        print(f"warning: {line}")
    return _status(res)


def _status(res: dict) -> int:
    """Not 0 when recordings could not be scored (unreadable audio, unusable label files;
    listed in the output): the figures leave them out. Poor Quality recordings, left out
    by the task's rule, are not failures."""
    bad = res["n_failed"] + res["n_unusable"]
    if bad:
        err(f"{bad} file(s) of {res['folder']} could not be scored (listed in the output); "
            "the figures leave them out")
        return EXIT_ERROR
    return EXIT_OK
