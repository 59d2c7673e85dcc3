"""The `lungapp` command: no arguments opens the GUI; a subcommand is the CLI.

The CLI is a first-class front end to the core (no Qt is imported unless the GUI is
started). User errors print one clear line on stderr and exit with status 2; nothing a
user can cause prints a traceback.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import io
import json
import os
import sys
from pathlib import Path

import lungapp
from lungapp.errors import LungappError

EXIT_OK, EXIT_ERROR, EXIT_CANCELLED = 0, 2, 130

#: Subcommands whose arguments live in their own module: add_arguments(p), run(args).
_MODULE_COMMANDS = {
    "train": ("lungapp.model.train_cli", "train a model with patient-grouped k-fold cross-validation"),
    "record": ("lungapp.audio.record_cli", "record from an input device to a file (headless)"),
}


def _err(msg: str) -> None:
    print(f"lungapp: {msg}", file=sys.stderr)


# --- predict ---------------------------------------------------------------------------

def _collect_inputs(paths: list[str], extensions: tuple[str, ...]) -> list[tuple[str, str | None]]:
    """Expand files and folders (recursively) into (file, problem) pairs, in order."""
    out: list[tuple[str, str | None]] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = sorted(str(f) for f in path.rglob("*")
                           if f.is_file() and f.suffix.lower() in extensions and not f.name.startswith("."))
            if not found:
                out.append((p, f"no audio files ({', '.join(extensions)}) in this folder"))
            out.extend((f, None) for f in found)
        else:
            out.append((p, None))
    return out


def _load_predictor(model_dir):
    from lungapp.model.inference import Predictor

    return Predictor.load(model_dir)


def cmd_predict(args) -> int:
    try:
        predictor = _load_predictor(args.model)
    except LungappError as exc:
        _err(str(exc))
        return EXIT_ERROR
    from lungapp.audio import AUDIO_EXTENSIONS

    exts = (".png", ".jpg", ".jpeg") if predictor.card.input_kind == "image" else AUDIO_EXTENSIONS
    results = []
    for f, problem in _collect_inputs(args.paths, exts):
        if problem:
            results.append({"file": f, "error": problem})
            continue
        try:
            results.append(predictor.predict_file(f).to_dict())
        except LungappError as exc:
            results.append({"file": f, "error": exc.problem})
    if not results:
        _err("nothing to analyse")
        return EXIT_ERROR
    _print_predictions(results, args.format, predictor.card.classes)
    return EXIT_ERROR if any("error" in r for r in results) else EXIT_OK


def _print_predictions(results: list[dict], fmt: str, classes: list[str]) -> None:
    if fmt == "json":
        json.dump(results, sys.stdout, indent=2)
        print()
        return
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["file", "duration_s", "label", "decision", "abnormal_probability",
                    *[f"p_{c}" for c in classes], "quality", "error"])
        for r in results:
            if "error" in r:
                w.writerow([r["file"], "", "", "", "", *[""] * len(classes), "", r["error"]])
            else:
                q = r.get("quality") or {}
                w.writerow([r["file"], r["duration_s"], r["label"], r["decision"],
                            f"{r['abnormal_probability']:.4f}",
                            *[f"{r['probabilities'][c]:.4f}" for c in classes],
                            q.get("reason", ""), ""])
        sys.stdout.write(buf.getvalue())
        return
    width = min(60, max(len("file"), *(len(r["file"]) for r in results)))
    print(f"{'file':<{width}}  {'dur (s)':>7}  {'p(abnormal)':>11}  result")
    for r in results:
        name = r["file"] if len(r["file"]) <= width else "..." + r["file"][-(width - 3):]
        if "error" in r:
            print(f"{name:<{width}}  {'':>7}  {'':>11}  ERROR: {r['error']}")
        else:
            print(f"{name:<{width}}  {r['duration_s']:>7.1f}  {r['abnormal_probability']:>11.3f}  {r['label']}")
    m = next((r["model"] for r in results if "model" in r), None)
    if m:
        print(f"model: {m['name']} {m['version']} (decision threshold "
              f"{next(r['threshold'] for r in results if 'threshold' in r):.3f}); "
              "decision support only, not a diagnostic device")


# --- evaluate --------------------------------------------------------------------------

def evaluate_folder(folder, predictor, progress=None) -> dict:
    """Predict every recording of a labelled folder and score the binary decision (and
    the classes, for multi-class models). Poor Quality recordings are not scored.

    The scores cover every readable recording, whatever the quality
    gate says; ``quality_gate`` says what the app would show instead: how many Poor Quality
    recordings the gate flags, how many of the others it refuses, and the same scores
    on the recordings it passes (those the app gives a result for)."""
    from lungapp.data import POOR, binary_label, read_folder
    from lungapp.model.metrics import binary_metrics, json_safe, multiclass_metrics

    ds = read_folder(folder)
    card = predictor.card
    four_class = len(card.classes) > 2
    y, p, true_cls, pred_cls, passed, failed = [], [], [], [], [], []
    poor_flagged = n_skipped = 0
    examples = ds.examples
    for i, ex in enumerate(examples):
        if progress:
            progress(i, len(examples))
        try:
            pred = predictor.predict_file(ex.path)
        except LungappError as exc:
            failed.append({"file": ex.path, "error": exc.problem})
            continue
        if ex.label == POOR:
            n_skipped += 1
            poor_flagged += pred.decision == "poor quality"
            continue
        y.append(1 if binary_label(ex.label) == "abnormal" else 0)
        p.append(pred.abnormal_probability)
        passed.append(pred.decision != "poor quality")
        if four_class and ex.label in card.classes:
            true_cls.append(ex.label)
            pred_cls.append(card.decide_class([pred.probabilities[c] for c in card.classes],
                                              pred.abnormal_probability))
        else:
            true_cls.append(None)
            pred_cls.append(None)
    if not y:
        raise LungappError("no scorable recordings (all were Poor Quality or failed)", folder)

    def scores(keep) -> dict:
        res = binary_metrics([v for v, k in zip(y, keep) if k], [v for v, k in zip(p, keep) if k],
                             card.threshold)
        pairs = [(t, d) for t, d, k in zip(true_cls, pred_cls, keep) if k and t is not None]
        if pairs:
            mc = multiclass_metrics([t for t, _ in pairs], [d for _, d in pairs], card.classes)
            res["per_class"] = mc["per_class"]
            res["multiclass"] = {"classes": mc["classes"], "confusion": mc["confusion"],
                                 "score": mc["score"], "sensitivity": mc["sensitivity"],
                                 "specificity": mc["specificity"]}
        return res

    out = {"folder": str(folder), "layout": ds.layout, **scores([True] * len(y)),
           "n_skipped": n_skipped, "n_failed": len(failed),
           "n_quality_gated": passed.count(False),
           "model": {"name": card.name, "version": card.version}}
    gate = {"poor_quality": {"n": n_skipped, "flagged": poor_flagged},
            "others": {"n": len(y), "flagged": passed.count(False)}}
    if any(passed):
        passed_scores = scores(passed)
        passed_scores.pop("per_class", None)
        gate["passed"] = passed_scores
    out["quality_gate"] = gate
    if failed:
        out["failed"] = failed
    out["note"] = ("metrics use the model's probabilities for every readable recording; "
                   "n_quality_gated recordings would be shown as 'poor quality' in the app, "
                   "quality_gate.passed scores the others")
    return json_safe(out)


def cmd_evaluate(args) -> int:
    try:
        predictor = _load_predictor(args.model)
        res = evaluate_folder(args.folder, predictor)
    except LungappError as exc:
        _err(str(exc))
        return EXIT_ERROR
    if args.json:
        print(json.dumps(res, indent=2))
        return EXIT_OK
    f = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    (tn, fp), (fn, tp) = res["confusion"]
    print(f"folder: {res['folder']} ({res['layout']})  model: {res['model']['name']} {res['model']['version']}")
    print(f"scored {res['n']} recordings ({res['n_abnormal']} abnormal, {res['n_normal']} normal); "
          f"skipped {res['n_skipped']} Poor Quality; failed {res['n_failed']}")
    print(f"AUC {f(res['auc'])}  sensitivity {f(res['sensitivity'])}  specificity {f(res['specificity'])}  "
          f"score {f(res['score'])}  accuracy {f(res['accuracy'])}  (threshold {res['threshold']:.3f})")
    print(f"confusion (rows true normal/abnormal, cols predicted): [[{tn}, {fp}], [{fn}, {tp}]]")
    if "multiclass" in res:
        mc = res["multiclass"]
        print(f"4-class score {f(mc['score'])}; confusion rows/cols {mc['classes']}:")
        for c, row in zip(mc["classes"], mc["confusion"]):
            print(f"  {c:<10} {row}")
    gate = res["quality_gate"]
    print(f"quality gate: flags {gate['poor_quality']['flagged']} of {gate['poor_quality']['n']} "
          f"Poor Quality recordings and {gate['others']['flagged']} of {gate['others']['n']} others")
    if "passed" in gate:
        ps = gate["passed"]
        line = (f"  on the {ps['n']} it passes: AUC {f(ps['auc'])}  sensitivity {f(ps['sensitivity'])}  "
                f"specificity {f(ps['specificity'])}  score {f(ps['score'])}")
        if "multiclass" in ps:
            line += f"  4-class score {f(ps['multiclass']['score'])}"
        print(line)
    for item in res.get("failed", []):
        print(f"failed: {item['file']}: {item['error']}")
    return EXIT_OK


# --- info / models ----------------------------------------------------------------------

def cmd_info(args) -> int:
    from lungapp import paths
    from lungapp.model import registry
    from lungapp.model.card import load_card

    info = {"lungapp": lungapp.__version__, "python": sys.version.split()[0], "paths": paths.all_paths()}
    vers = {}
    for mod in ("numpy", "scipy", "soundfile", "sounddevice", "sklearn", "keras", "tensorflow",
                "PySide6", "pyqtgraph"):
        vers[mod] = _module_version(mod)
    info["libraries"] = vers
    try:
        d = registry.active_model_dir()
        card = load_card(d)
        info["model"] = {"path": str(d), "name": card.name, "version": card.version, "task": card.task,
                         "classes": card.classes, "threshold": card.threshold,
                         "metrics": card.metrics.get("summary", {})}
        runtime, note = _runtime_of(d)
        info["model"]["runtime"] = runtime
        if note:
            info["model"]["runtime_note"] = note
    except LungappError as exc:
        info["model"] = {"error": str(exc)}
    info["installed_models"] = [str(p) for p in registry.installed_models()]
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"lungapp {info['lungapp']} (Python {info['python']})")
        print("libraries: " + ", ".join(f"{k} {v}" for k, v in vers.items()))
        m = info["model"]
        if "error" in m:
            print(f"model: {m['error']}")
        else:
            print(f"model: {m['name']} {m['version']} ({m['task']}: {', '.join(m['classes'])}; "
                  f"threshold {m['threshold']:.3f}) at {m['path']}")
            print(f"runtime: {m['runtime']}" + (f" ({m['runtime_note']})" if m.get("runtime_note") else
                                                 " (no TensorFlow needed)" if m["runtime"] == "numpy" else ""))
        for k, v in info["paths"].items():
            print(f"{k + ':':<11} {v}")
    return EXIT_OK


def _runtime_of(model_dir) -> tuple[str, str]:
    """("numpy" | "keras" | "none", why): the runtime the model would run on (reads the
    model files, never imports TensorFlow); see lungapp.model.inference."""
    from lungapp.model.inference import planned_runtime

    try:
        return planned_runtime(model_dir)
    except LungappError as exc:  # e.g. a bad LUNGAPP_RUNTIME value
        return "none", exc.problem


def _module_version(mod: str) -> str:
    """Version from package metadata: no heavy import (TensorFlow takes seconds)."""
    from importlib import metadata

    dist = {"sklearn": "scikit-learn", "PySide6": "PySide6-Essentials", "tensorflow": "tensorflow-cpu"}
    for name in (dist.get(mod, mod), mod):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def cmd_models(args) -> int:
    from lungapp.model import registry
    from lungapp.model.card import load_card

    try:
        if args.action == "install":
            target = registry.install_model(args.path)
            print(f"installed {target}")
            if args.use:
                registry.set_active_model(target)
                print("it is now the active model")
        elif args.action == "use":
            registry.set_active_model(None if args.path in ("bundled", "default") else args.path)
            print(f"active model: {registry.active_model_dir()}")
        else:
            try:
                active = registry.active_model_dir().resolve()
            except LungappError:
                active = None
            rows = ([registry.bundled_model_dir()] if registry.bundled_model_dir() else []) + registry.installed_models()
            if not rows:
                print("no models (the bundled model is missing and none is installed)")
            for d in rows:
                mark = "*" if active and d.resolve() == active else " "
                try:
                    c = load_card(d)
                    runtime, _ = _runtime_of(d)
                    print(f"{mark} {c.name} {c.version} ({c.task}, runtime {runtime}) {d}")
                except LungappError as exc:
                    print(f"{mark} INVALID {d}: {exc.problem}")
    except LungappError as exc:
        _err(str(exc))
        return EXIT_ERROR
    return EXIT_OK


# --- entry points ------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lungapp",
        description="Lung auscultation: record, review and analyse lung sounds with a local model. "
                    "With no command, opens the app (files given open in Review). "
                    "Decision support only; not a diagnostic device.")
    parser.add_argument("--version", action="version", version=f"lungapp {lungapp.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("predict", help="analyse recordings (files or folders, recursively)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--model", metavar="DIR", help="model folder (default: the active model)")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="score a model on a labelled folder")
    p.add_argument("folder", metavar="FOLDER")
    p.add_argument("--model", metavar="DIR", help="model folder (default: the active model)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("info", help="versions, active model, data and settings paths")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("models", help="list, install or choose models")
    p.add_argument("action", choices=("list", "install", "use"), nargs="?", default="list")
    p.add_argument("path", nargs="?", help="model folder (install/use); 'bundled' to return to it")
    p.add_argument("--use", action="store_true", help="with install: make it the active model")
    p.set_defaults(func=cmd_models)

    for name, (module, help_text) in _MODULE_COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:  # e.g. PortAudio missing for `record`
            p.set_defaults(func=_unavailable(name, exc))
            continue
        mod.add_arguments(p)
        p.set_defaults(func=mod.run)
    return parser


def _unavailable(name, exc):
    def run(args):
        _err(f"`{name}` is unavailable: {exc}")
        return EXIT_ERROR
    return run


def gui_main(argv: list[str] | None = None) -> int:
    from lungapp.gui.app import main as app_main

    return app_main(list(sys.argv[1:] if argv is None else argv))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"predict", "evaluate", "info", "models", *_MODULE_COMMANDS}
    if not argv or (argv[0] not in commands and not argv[0].startswith("-")
                    and os.path.exists(argv[0])):
        return gui_main(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    if not getattr(args, "func", None):
        build_parser().print_help()
        return EXIT_OK
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        _err("cancelled")
        return EXIT_CANCELLED
    except LungappError as exc:
        _err(str(exc))
        return EXIT_ERROR
    except BrokenPipeError:
        return EXIT_OK
