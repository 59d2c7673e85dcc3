"""``lungapp report ID [--visit N] --out FILE.pdf [--overwrite]``: a visit's report as a PDF
(an existing file is replaced only with ``--overwrite``)."""

from __future__ import annotations

import argparse

from lungapp.cli.common import EXIT_OK

HELP = "write a patient's visit report (body map, results, spectrograms) as a PDF"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("identifier", metavar="ID")
    p.add_argument("--visit", type=int, metavar="N", help="visit number, 1 = first (default: the latest)")
    p.add_argument("--out", required=True, metavar="FILE.pdf",
                   help="a new file (an existing one is replaced only with --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--model", metavar="DIR", help="the model results are compared with (default: the active one)")


def run(args) -> int:
    from lungapp.fsutil import check_output_file
    from lungapp.report.content import gather
    from lungapp.store import Store

    check_output_file(args.out, overwrite=args.overwrite)  # before the model and the store load
    active, cfg = _active_model(args.model)
    with Store() as store:
        data = gather(store, args.identifier, args.visit, active)
    from lungapp.report.pdf import ensure_app, write_report

    ensure_app()
    out = write_report(data, args.out, cfg, overwrite=args.overwrite)
    print(f"wrote {out}")
    return EXIT_OK


def _active_model(model_dir):
    """(ModelId, SpectrogramConfig) of the model (None, None when no model can be loaded:
    the report is still written, with the default spectrogram)."""
    from lungapp.errors import LungappError

    try:
        from lungapp.inference.predictor import Predictor
        from lungapp.store.analysis import model_id

        predictor = Predictor.load(model_dir)
    except LungappError:
        return None, None
    return model_id(predictor), predictor.card.features.spectrogram

