"""``lungapp info``: versions, the active model and its runtime, where files are written."""

from __future__ import annotations

import argparse
import json
import sys

import lungapp
from lungapp.cli.common import EXIT_OK, err
from lungapp.errors import LungappError

HELP = "versions, active model, data and settings paths"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")


def run(args) -> int:
    from lungapp import paths
    from lungapp.inference import registry
    from lungapp.inference.card import load_card

    info = {"lungapp": lungapp.__version__, "python": sys.version.split()[0], "paths": paths.all_paths()}
    vers = {}
    for mod in ("numpy", "scipy", "soundfile", "sounddevice", "sklearn", "onnxruntime", "keras",
                "tensorflow", "PySide6", "pyqtgraph"):
        vers[mod] = module_version(mod)
    info["libraries"] = vers
    note = registry.missing_active_model()  # the bundled model standing in, or unreadable settings
    if note:
        err(note)
        info["model_note"] = note
    try:
        d = registry.active_model_dir()
        card = load_card(d)
        info["model"] = {"path": str(d), "name": card.name, "version": card.version, "task": card.task,
                         "classes": card.classes, "threshold": card.threshold,
                         "metrics": card.metrics.overall.to_dict() if card.metrics.overall else {}}
        runtime, note = runtime_of(d)
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
                                                 " (ONNX Runtime, no TensorFlow needed)"
                                                 if m["runtime"] == "onnx" else ""))
        for k, v in info["paths"].items():
            print(f"{k + ':':<11} {v}")
    return EXIT_OK


def runtime_of(model_dir) -> tuple[str, str]:
    """("onnx" | "keras" | "none", why): the runtime the model would run on (checks the
    card and its ONNX files' hashes, never imports TensorFlow); see
    lungapp.inference.predictor.planned_runtime."""
    from lungapp.inference.predictor import planned_runtime

    try:
        return planned_runtime(model_dir)
    except LungappError as exc:  # e.g. a bad LUNGAPP_RUNTIME value
        return "none", exc.problem


def module_version(mod: str) -> str:
    """Version from package metadata: no heavy import (TensorFlow takes seconds)."""
    from importlib import metadata

    dist = {"sklearn": "scikit-learn", "PySide6": "PySide6-Essentials", "tensorflow": "tensorflow-cpu"}
    for name in (dist.get(mod, mod), mod):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"
