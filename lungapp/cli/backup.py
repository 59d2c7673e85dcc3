"""``lungapp backup --out FILE``: a consistent copy of the store, even while the app writes."""

from __future__ import annotations

import argparse

from lungapp.cli.common import EXIT_OK

HELP = "copy the patient store to a new file (consistent while the app runs)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, metavar="FILE", help="a new file (never overwritten)")


def run(args) -> int:
    from lungapp.store import Store
    from lungapp.store.manage import backup

    with Store() as store:
        out = backup(store, args.out)
    print(f"backed up {store.path} to {out}")
    return EXIT_OK
