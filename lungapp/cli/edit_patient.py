"""``lungapp edit-patient ID [--name N] [--birth-year Y] [--sex S]``: add a patient or
change their details."""

from __future__ import annotations

import argparse
import datetime as _dt
import json

from lungapp.cli.common import EXIT_OK
from lungapp.errors import LungappError

HELP = "add a patient to the store, or change their name, birth year or sex"
SEXES = ("female", "male", "other", "")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("identifier", metavar="ID")
    p.add_argument("--name")
    p.add_argument("--birth-year", type=int, metavar="YYYY")
    p.add_argument("--sex", choices=SEXES)


def run(args) -> int:
    from lungapp.store import Store
    from lungapp.store.db import patient_identifier
    from lungapp.store.manage import patient_record

    fields = {k: v for k, v in (("name", args.name), ("birth_year", args.birth_year), ("sex", args.sex))
              if v is not None}
    if "birth_year" in fields and not 1880 <= fields["birth_year"] <= _dt.date.today().year:
        raise LungappError(f"birth year {fields['birth_year']} is not plausible")
    identifier = patient_identifier(args.identifier)  # " P1 " is P1; "" is refused
    with Store() as store:
        store.check()  # a damaged database is said, not written to
        with store.transaction():  # all or nothing: never a patient half made
            store.ensure_patient(identifier)
            if fields:
                store.update_patient(identifier, **fields)
            record = patient_record(store, identifier)
    print(json.dumps({k: record[k] for k in ("identifier", "name", "birth_year", "sex")}))
    return EXIT_OK
