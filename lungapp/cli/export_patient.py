"""``lungapp export-patient ID --out DIR``: a folder with a patient's audio, sidecars and records."""

from __future__ import annotations

import argparse

from lungapp.cli.common import EXIT_OK

HELP = "export a patient: their audio, sidecars and a JSON of their records, into a new folder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("identifier", metavar="ID")
    p.add_argument("--out", required=True, metavar="DIR", help="a new (or empty) folder")


def run(args) -> int:
    from lungapp.store import Store
    from lungapp.store.db import patient_identifier
    from lungapp.store.manage import export_patient

    gone: list[str] = []
    with Store() as store:
        out = export_patient(store, args.identifier, args.out, missing=gone)
    print(f"exported patient {patient_identifier(args.identifier)} to {out}"
          + (f"; {len(gone)} recording(s) without audio (file missing, listed in records.json)" if gone else ""))
    for path in gone:
        print(f"  file missing: {path}")
    return EXIT_OK
