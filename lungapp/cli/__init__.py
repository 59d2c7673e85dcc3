"""The ``lungapp`` command: no arguments opens the GUI; a subcommand is the CLI.

One module per command (``lungapp/cli/NAME.py``), each with ``HELP``,
``add_arguments(parser)`` and ``run(args) -> exit status``. The CLI is a first-class front
end to the core (no Qt is imported unless the GUI is started). User errors print one clear
line on stderr; nothing a user can cause prints a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

import lungapp
from lungapp.cli.common import EXIT_CANCELLED, EXIT_ERROR, EXIT_OK, err
from lungapp.errors import LungappError

#: Command name -> module under lungapp.cli, in the order ``--help`` lists them.
COMMANDS = {
    "predict": "predict",
    "evaluate": "evaluate",
    "info": "info",
    "models": "models",
    "train": "train",
    "record": "record",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lungapp",
        description="Lung auscultation: record, review and analyse lung sounds with a local model. "
                    "With no command, opens the app (files given open in Review). "
                    "Decision support only; not a diagnostic device.")
    parser.add_argument("--version", action="version", version=f"lungapp {lungapp.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        try:
            mod = importlib.import_module(f"lungapp.cli.{module}")
        except ImportError as exc:  # e.g. PortAudio missing for `record`
            p = sub.add_parser(name, help=f"(unavailable: {exc})")
            p.set_defaults(func=_unavailable(name, exc))
            continue
        p = sub.add_parser(name, help=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(func=mod.run)
    return parser


def _unavailable(name, exc):
    def run(args):
        err(f"`{name}` is unavailable: {exc}")
        return EXIT_ERROR
    return run


def gui_main(argv: list[str] | None = None) -> int:
    from lungapp.gui.app import main as app_main

    return app_main(list(sys.argv[1:] if argv is None else argv))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and not argv[0].startswith("-")
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
        err("cancelled")
        return EXIT_CANCELLED
    except LungappError as exc:
        err(str(exc))
        return EXIT_ERROR
    except BrokenPipeError:
        return EXIT_OK
