"""``lungapp reanalyse [ID]``: analyse again, with the active model, every recording whose
results were made by another model (and, with ``--unanalysed``, those never analysed)."""

from __future__ import annotations

import argparse

from lungapp.cli.common import EXIT_ERROR, EXIT_OK, err, load_predictor

HELP = "re-analyse recordings whose results were made by another model than the active one"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("identifier", nargs="?", metavar="ID", help="only this patient (default: everyone)")
    p.add_argument("--unanalysed", action="store_true", help="also recordings without any result")
    p.add_argument("--model", metavar="DIR", help="model folder (default: the active model)")


def run(args) -> int:
    from lungapp.store import Store
    from lungapp.store.analysis import analyse, model_id

    predictor = load_predictor(args.model)
    with Store() as store:
        pid = store.patient(args.identifier)["id"] if args.identifier else None
        uids = [r["uid"] for r in store.stale_recordings(model_id(predictor), pid)]
        if args.unanalysed:
            uids += store.unanalysed_recordings(pid)
        failed = analyse(store, uids, predictor)
    for problem in failed.values():
        err(f"not analysed: {problem}")
    print(f"analysed {len(uids) - len(failed)} recording(s) with {predictor.name} {predictor.version}")
    return EXIT_ERROR if failed else EXIT_OK
