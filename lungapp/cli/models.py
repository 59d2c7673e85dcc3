"""``lungapp models``: list, install or choose models."""

from __future__ import annotations

import argparse

from lungapp.cli.common import EXIT_ERROR, EXIT_OK, err
from lungapp.cli.info import runtime_of
from lungapp.errors import LungappError

HELP = "list, install or choose models"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("list", "install", "use"), nargs="?", default="list")
    p.add_argument("path", nargs="?", help="model folder (install/use); 'bundled' to return to it")
    p.add_argument("--use", action="store_true", help="with install: make it the active model")


def run(args) -> int:
    from lungapp.inference import registry
    from lungapp.inference.card import load_card

    try:
        if args.action == "install":
            if not args.path:
                err("models install: name the model folder to install")
                return EXIT_ERROR
            notes: list[str] = []
            target = registry.install_model(args.path, notes=notes)
            for note in notes:
                err(note)
            print(f"installed {target}")
            if args.use:
                registry.set_active_model(target)
                print("it is now the active model")
        elif args.action == "use":
            if not args.path:  # not a silent return to the bundled model
                err("models use: name the model folder (or 'bundled' to return to the bundled model)")
                return EXIT_ERROR
            registry.set_active_model(None if args.path in ("bundled", "default") else args.path)
            print(f"active model: {registry.active_model_dir()}")
        else:
            _list(registry, load_card)
        if args.action in ("use", "list") or args.use:
            note = registry.env_override()
            if note:
                err(note)
    except LungappError as exc:
        err(str(exc))
        return EXIT_ERROR
    return EXIT_OK


def _list(registry, load_card) -> None:
    """Print the bundled model and every folder in the models folder, broken ones flagged."""
    try:
        active = registry.active_model_dir().resolve()
    except LungappError:
        active = None
    bundled = registry.bundled_model_dir()
    rows = ([(bundled, None)] if bundled else []) + registry.model_folders()
    if not rows:
        print("no models (the bundled model is missing and none is installed)")
    for d, problem in rows:
        mark = "*" if active and d.resolve() == active else " "
        if problem is not None:
            print(f"{mark} BROKEN {d}: {problem}")
            continue
        try:
            c = load_card(d)
            runtime, note = runtime_of(d)
            why = f": {note}" if runtime == "none" and note else ""
            print(f"{mark} {c.name} {c.version} ({c.task}, runtime {runtime}) {d}{why}")
        except LungappError as exc:
            print(f"{mark} BROKEN {d}: {exc.problem}")
