"""The ``lungapp`` command: no arguments opens the GUI; a subcommand is the CLI.

One module per command (``lungapp/cli/NAME.py``), each with ``HELP``,
``add_arguments(parser)`` and ``run(args) -> exit status``. The CLI is a first-class front
end to the core (no Qt is imported unless the GUI is started).

Errors: a problem the user can act on (:class:`~lungapp.errors.LungappError`) prints one
line naming the file and the problem, exit status 2. Any other exception that escapes a
command prints one line too (the file, when the error names one, and the problem), exit
status 1, and no traceback; ``--debug`` (anywhere on the command line) shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

import lungapp
from lungapp.cli.common import EXIT_CANCELLED, EXIT_ERROR, EXIT_OK, err
from lungapp.errors import LungappError

#: Exit status of an unexpected error (not a LungappError) escaping a command.
EXIT_UNEXPECTED = 1

#: Command name -> module under lungapp.cli, in the order ``--help`` lists them.
COMMANDS = {
    "predict": "predict",
    "evaluate": "evaluate",
    "info": "info",
    "models": "models",
    "recalibrate": "recalibrate",
    "train": "train",
    "record": "record",
    "labels": "labels",
    "import": "import_folder",
    "patients": "patients",
    "edit-patient": "edit_patient",
    "report": "report",
    "export-patient": "export_patient",
    "delete-patient": "delete_patient",
    "backup": "backup",
    "relocate": "relocate",
    "reanalyse": "reanalyse",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lungapp",
        description="Lung auscultation: record, review and analyse lung sounds with a local model. "
                    "With no command, opens the app (files given open in Review). "
                    "Decision support only; not a diagnostic device.")
    parser.add_argument("--version", action="version", version=f"lungapp {lungapp.__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an unexpected error (anywhere on the line)")
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
    if argv and argv[0] == "--smoke-test":  # hidden: packaging/smoke.sh checks the window
        return gui_main(argv)
    if not argv or argv[0] == "--" or (argv[0] not in COMMANDS and os.path.exists(argv[0])):
        return gui_main(argv)  # files to open (after --, any name: lungapp -- -3dB.flac)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    _names_as_given()
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
    except Exception as exc:  # the one rule: no traceback unless asked for
        if debug:
            raise
        err(unexpected_error_line(exc))
        return EXIT_UNEXPECTED


def _names_as_given() -> None:
    """File names that are not UTF-8 reach Python as lone surrogates (from argv and
    os.walk); a UTF-8 stdout writes them back as the bytes they were, rather than stopping
    a table half-printed (Python does so itself only in the C and POSIX locales)."""
    out = sys.stdout
    if (getattr(out, "encoding", "") or "").lower().replace("-", "") == "utf8" and hasattr(out, "reconfigure"):
        try:
            out.reconfigure(errors="surrogateescape")
        except (AttributeError, ValueError, OSError):  # a stand-in stream: left as it is
            pass


def unexpected_error_line(exc: BaseException) -> str:
    """One line for an unexpected exception: the file it names (OSError) and the problem."""
    if isinstance(exc, OSError) and exc.filename is not None:
        problem = exc.strerror or type(exc).__name__
        return f"{exc.filename}: {problem} (run with --debug for the details)"
    text = str(exc).splitlines()[0][:300] if str(exc) else ""
    problem = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return f"unexpected error: {problem} (run with --debug for the traceback)"
