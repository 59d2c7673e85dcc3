"""``lungapp patients [SEARCH] [--json]``: the patients in the store."""

from __future__ import annotations

import argparse
import json

from lungapp.cli.common import EXIT_OK

HELP = "list the patients in the store (search by identifier or name)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("search", nargs="?", default="", help="part of an identifier or name")
    p.add_argument("--json", action="store_true")


def patient_rows(store, search: str = "") -> list[dict]:
    """One summary per patient: identifier, name, birth year, sex, visits (number, date,
    recordings, missing files), recordings, and the worst decision of their latest results."""
    out = []
    for p in store.find_patients(search):
        visits = []
        for v in store.visits(p["id"]):
            recs = store.recordings(v["id"])
            visits.append({"number": v["number"], "date": v["date"], "clinician": v["clinician"],
                           "recordings": len(recs), "missing": sum(r["missing"] for r in recs)})
        out.append({"identifier": p["identifier"], "name": p["name"], "birth_year": p["birth_year"],
                    "sex": p["sex"], "visits": visits, "recordings": sum(v["recordings"] for v in visits)})
    return out


def run(args) -> int:
    from lungapp.store import Store

    with Store() as store:
        rows = patient_rows(store, args.search)
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    print(f"{'patient':<14} {'name':<20} {'visits':>6} {'recordings':>10}  last visit")
    for r in rows:
        last = r["visits"][-1]["date"] if r["visits"] else "-"
        print(f"{r['identifier']:<14} {r['name'][:20]:<20} {len(r['visits']):>6} {r['recordings']:>10}  {last}")
    print(f"{len(rows)} patient(s)")
    return EXIT_OK
