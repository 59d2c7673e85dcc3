"""Leave-one-device-out and leave-one-dataset-out training on SPRSound + the ICBHI subset.

Each run trains one model folder with ``lungapp train`` (patient-grouped folds, the
``recommended`` recipe unless told otherwise, its fold models as the artifact; with
``--init-from bundled``, fine-tuned from the bundled model) on a combination of
collections, then checks it with the app's own evaluation
(:func:`research.external_checks.check`) on what the run never saw:

- ``sprsound``: SPRSound train only; checked on each ICBHI device and on intra_test (the
  same recipe without ICBHI: the baseline of every other row);
- ``no-DEVICE``: SPRSound train + the ICBHI recordings of every other device; checked on
  DEVICE's recordings (leave one device out) and on intra_test;
- ``icbhi``: the ICBHI subset only; checked on intra_test (leave the dataset out).

The combined training folder is built of symbolic links in SPRSound's layout (ICBHI's
cycle files become SPRSound-style JSON sidecars through ``lungapp labels export``), so
nothing is copied. Results go to ``OUT/results.json`` as each run finishes (a rerun skips
the runs already there); ``--table`` prints them.

    .venv/bin/python research/leave_device_out.py --out /tmp/lodo [--runs sprsound,no-Meditron,...]
                                                  [--preset recommended] [--folds 2] [--table]
                                                  [--init-from bundled] [--real-noise]
                                                  [--icbhi-copies K]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "research"))

from external_checks import check, device_folders  # noqa: E402

DEVICES = ("Meditron", "Litt3200", "AKGC417L", "LittC2SE")


def _link_sprsound(src: Path, dst: Path) -> None:
    """SPRSound ``src`` (audio + JSON pairs) as links in ``dst``."""
    dst.mkdir(parents=True)
    for f in sorted(src.iterdir()):
        if f.suffix in (".json", ".flac", ".wav"):
            (dst / f.name).symlink_to(f.resolve())


def _link_icbhi(device_folder: Path, dst: Path, copies: int = 1) -> None:
    """One ICBHI device's recordings as links with SPRSound-style sidecars in ``dst``.

    ``copies`` > 1: each recording is linked that many times (``NAME_copyK``, same patient,
    so every copy falls in the recording's fold), so training draws ICBHI's windows that
    many times as often as SPRSound's."""
    from lungapp.annotation.formats import export_labels

    export_labels(device_folder, "sprsound", dst)
    for wav in sorted(device_folder.glob("*.wav")):
        (dst / wav.name).symlink_to(wav.resolve())
        for k in range(2, copies + 1):
            (dst / f"{wav.stem}_copy{k}.wav").symlink_to(wav.resolve())
            (dst / f"{wav.stem}_copy{k}.json").symlink_to((dst / wav.stem).with_suffix(".json").resolve())


def plan(names: list[str]) -> list[dict]:
    """The runs named: what each trains on and what it is checked on."""
    runs = []
    for name in names:
        if name == "sprsound":
            runs.append({"name": name, "train": {"sprsound": True, "devices": []},
                         "checks": ["intra_test", *DEVICES]})
        elif name == "icbhi":
            runs.append({"name": name, "train": {"sprsound": False, "devices": list(DEVICES)},
                         "checks": ["intra_test"]})
        elif name.startswith("no-") and name[3:] in DEVICES:
            left = name[3:]
            runs.append({"name": name, "train": {"sprsound": True,
                                                 "devices": [d for d in DEVICES if d != left]},
                         "checks": [left, "intra_test"]})
        else:
            raise SystemExit(f"unknown run {name!r}: sprsound, icbhi or no-DEVICE ({', '.join(DEVICES)})")
    return runs


def train_run(run: dict, data: Path, devices: dict[str, Path], work: Path, args) -> dict:
    """Build the run's training folder, train it with ``lungapp train`` (the command users
    run), and return the card's cross-validation."""
    folder = work / f"data-{run['name']}"
    if run["train"]["sprsound"]:
        _link_sprsound(data / "sprsound" / "train", folder / "sprsound")
    for d in run["train"]["devices"]:
        _link_icbhi(devices[d], folder / "icbhi" / d, args.icbhi_copies)
    out = Path(args.out) / run["name"]
    argv = [sys.executable, "-m", "lungapp", "train", str(folder), "--out", str(out), "--layout", "sprsound",
            "--preset", args.preset, "--task", "4class", "--folds", str(args.folds), "--seed", str(args.seed),
            "--oof", str(Path(args.out) / f"{run['name']}.oof.npz"), "--overwrite", "--progress", "none"]
    if args.epochs:
        argv += ["--epochs", str(args.epochs)]
    if args.init_from:
        argv += ["--init-from", args.init_from]
    if args.real_noise:
        argv += ["--real-noise"]
    t0 = time.time()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    card = json.loads((out / "card.json").read_text())
    o = card["metrics"]["overall"]
    return {"minutes": round((time.time() - t0) / 60, 1), "n": o["n"], "auc": o["auc"],
            "sensitivity": o["sensitivity"], "specificity": o["specificity"], "score": o["score"],
            "four_class_score": card["metrics"].get("four_class", {}).get("score")}


def check_run(run: dict, data: Path, devices: dict[str, Path], out: Path) -> dict:
    from lungapp.inference.predictor import Predictor

    predictor = Predictor.load(out / run["name"])
    res = {}
    for name in run["checks"]:
        if name == "intra_test":
            res[name] = check("SPRSound intra_test", data / "sprsound" / "intra_test", predictor, "sprsound")
        else:
            res[name] = check(f"ICBHI {name}", devices[name], predictor, "icbhi")
    return res


def table(results: dict) -> str:
    from lungapp.training.card_text import interval_text  # results recorded before intervals have none

    f = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    lines = ["| run | CV n | CV AUC | CV score | CV 4-class | min | checked on | n (abn/norm) | AUC | "
             "sens | spec | score | 4-class | refused | warned | ECE |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        cv = r["cv"]
        first = True
        for c in r["checks"].values():
            head = (f"| {name} | {cv['n']} | {f(cv['auc'])} | {f(cv['score'])} | {f(cv['four_class_score'])} | "
                    f"{cv['minutes']} |" if first else "| | | | | | |")
            first = False
            lines.append(f"{head} {c['name']} | {c['n']} ({c['n_abnormal']}/{c['n_normal']}) | "
                         f"{f(c['auc'])}{interval_text(c.get('auc_ci95'))} | "
                         f"{f(c['sensitivity'])} | {f(c['specificity'])} | "
                         f"{f(c['score'])}{interval_text(c.get('score_ci95'))} | "
                         f"{f(c['four_class_score'])} | {c['refused']} | {c['warned']} | {f(c['ece'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="work folder: model folders and results.json")
    ap.add_argument("--data", default=str(ROOT / ".." / "shared" / "data"))
    ap.add_argument("--runs", default="sprsound," + ",".join(f"no-{d}" for d in DEVICES) + ",icbhi")
    ap.add_argument("--preset", default="recommended")
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=None, help="(default: the preset's)")
    ap.add_argument("--init-from", default=None,
                    help="fine-tune from this model (bundled, or a model folder) instead of training from scratch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--real-noise", action="store_true",
                    help="train with `lungapp train --real-noise` (the added noise from SPRSound "
                         "train's Poor Quality recordings)")
    ap.add_argument("--icbhi-copies", type=int, default=1,
                    help="link each ICBHI training recording this many times (same patient, same "
                         "fold): training draws ICBHI's windows that many times as often")
    ap.add_argument("--table", action="store_true", help="print the results so far and stop")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    if args.table:
        print(table(results))
        return 0
    data = Path(args.data).resolve()
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        devices = device_folders(data / "icbhi_subset", Path(tmp))
        for run in plan([r for r in args.runs.split(",") if r]):
            if run["name"] in results:
                continue
            print(f"{time.strftime('%H:%M:%S')} training {run['name']}", flush=True)
            cv = train_run(run, data, devices, Path(tmp), args)
            results[run["name"]] = {"train": run["train"], "cv": cv, "preset": args.preset,
                                    "folds": args.folds, "seed": args.seed, "init_from": args.init_from,
                                    "icbhi_copies": args.icbhi_copies,
                                    "checks": check_run(run, data, devices, out)}
            path.write_text(json.dumps(results, indent=1))
            print(table({run["name"]: results[run["name"]]}), flush=True)
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
