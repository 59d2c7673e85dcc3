"""``lungapp import FOLDER``: add a folder of recordings to the store (files stay in place)."""

from __future__ import annotations

import argparse

from lungapp.cli.common import EXIT_ERROR, EXIT_OK, err, load_predictor

HELP = "add a folder of recordings to the patient store (SPRSound/ICBHI names give the patient)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", metavar="FOLDER")
    p.add_argument("--patient", metavar="ID", help="file everything under this patient "
                   "(default: the patient number in SPRSound or ICBHI file names)")
    p.add_argument("--clinician", default="", help="the clinician named on the new visit(s)")
    p.add_argument("--analyse", action="store_true", help="run the model on each imported recording")
    p.add_argument("--model", metavar="DIR", help="model folder for --analyse (default: the active model)")


def run(args) -> int:
    from lungapp.cli.common import EXIT_CANCELLED
    from lungapp.store import Store
    from lungapp.store.analysis import analyse
    from lungapp.store.importer import ImportReport, import_folder

    predictor = load_predictor(args.model) if args.analyse else None  # fail before importing
    with Store() as store:
        report = ImportReport()
        try:
            import_folder(store, args.folder, args.patient, args.clinician, report)
        except KeyboardInterrupt:
            err(f"cancelled: {len(report.added)} recording(s) were filed before it; import the "
                "folder again to add the rest (today they join the same visit)")
            return EXIT_CANCELLED
        for f, why in report.skipped:
            err(f"{f}: skipped: {why}")
        for f, why in report.notes:
            err(f"{f}: {why}")
        print(f"imported {len(report.added)} recording(s) of {len(report.patients)} patient(s); "
              f"{len(report.skipped)} skipped")
        failed = analyse(store, report.added, predictor) if predictor else {}
        for problem in failed.values():
            err(f"not analysed: {problem}")
        if predictor:
            print(f"analysed {len(report.added) - len(failed)} recording(s) with {predictor.name} "
                  f"{predictor.version}")
    return EXIT_ERROR if (not report.added and report.skipped) or failed else EXIT_OK
