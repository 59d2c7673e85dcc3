"""``lungapp delete-patient ID [--yes]``: delete a patient's rows and the files the app made."""

from __future__ import annotations

import argparse
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
        print(plan.describe())
        for f in plan.delete_files:
            print(f"  delete {f}")
        for f in plan.kept:
            print(f"  keep   {f}")
        if not args.yes and not _confirm():
            err("nothing deleted")
            return EXIT_CANCELLED
        problems = delete_patient(store, plan)
    for p in problems:
        err(f"could not delete {p}")
    print(f"deleted patient {plan.identifier}; kept {len(plan.kept)} imported file(s)")
    return EXIT_ERROR if problems else EXIT_OK


def _confirm() -> bool:
    if not sys.stdin.isatty():
        err("not confirmed: run with --yes to delete without a terminal")
        return False
    return input("Delete? Type 'yes' to confirm: ").strip().lower() == "yes"
