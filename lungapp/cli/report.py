"""``lungapp report ID [--visit N] --out FILE.pdf``: a visit's report as a PDF."""

from __future__ import annotations

import argparse

from lungapp.cli.common import EXIT_OK

HELP = "write a patient's visit report (body map, results, spectrograms) as a PDF"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("identifier", metavar="ID")
    p.add_argument("--visit", type=int, metavar="N", help="visit number, 1 = first (default: the latest)")
    p.add_argument("--out", required=True, metavar="FILE.pdf")
    p.add_argument("--model", metavar="DIR", help="the model results are compared with (default: the active one)")


def run(args) -> int:
    from lungapp.report.content import gather
    from lungapp.store import Store

    active, cfg = _active_model(args.model)
    with Store() as store:
        data = gather(store, args.identifier, args.visit, active)
    from lungapp.report.pdf import ensure_app, write_report

    ensure_app()
    out = write_report(data, args.out, cfg)
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

