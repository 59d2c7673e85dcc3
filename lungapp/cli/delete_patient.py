"""``lungapp delete-patient ID [--yes]``: delete a patient's rows and the files the app made."""

from __future__ import annotations

import argparse
import os
import sys

from lungapp.cli.common import EXIT_CANCELLED, EXIT_ERROR, EXIT_OK, err

HELP = "delete a patient: their records and the recordings the app made (imported files are kept)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("identifier", metavar="ID")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def run(args) -> int:
    from lungapp.store import Store
    from lungapp.store.manage import delete_patient, plan_deletion

    with Store() as store:
        plan = plan_deletion(store, args.identifier)
        _say(plan.describe())
        for f in plan.delete_files:
            _say(f"  delete {f}")
        for f in plan.kept:
            _say(f"  keep   {f}")
        if not args.yes and not _confirm():
            err("nothing deleted")
            return EXIT_CANCELLED
        problems = delete_patient(store, plan)
    for p in problems:
        err(f"could not delete {p}")
    _say(f"deleted patient {plan.identifier}; kept {len(plan.kept)} imported file(s)")
    return EXIT_ERROR if problems else EXIT_OK


def _say(line: str) -> None:
    """Print ``line``; a reader that went away (``| head -1``) does not stop the deletion
    asked for with --yes: the rest of the listing goes nowhere."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _confirm() -> bool:
    if not sys.stdin.isatty():
        err("not confirmed: run with --yes to delete without a terminal")
        return False
    return input("Delete? Type 'yes' to confirm: ").strip().lower() == "yes"
