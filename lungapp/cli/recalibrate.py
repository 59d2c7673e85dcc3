"""``lungapp recalibrate FOLDER --out DIR``: a model's threshold and calibration chosen
again on a clinic's own labelled recordings (no training; see
:mod:`lungapp.evaluation.recalibrate`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lungapp.cli.common import EXIT_ERROR, EXIT_OK, err, load_predictor
from lungapp.data.readers import LAYOUTS
from lungapp.errors import LungappError

HELP = "choose a model's threshold again on your own stethoscope's labelled recordings"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", metavar="FOLDER", help="labelled recordings of your own device")
    p.add_argument("--out", required=True, metavar="DIR", help="the recalibrated model folder to create")
    p.add_argument("--model", metavar="DIR", help="model folder (default: the active model)")
    p.add_argument("--folds", type=int, default=3, help="patient-grouped folds of the check (default 3)")
    p.add_argument("--layout", choices=LAYOUTS, default=None,
                   help="the folder's layout (default: detected from its content)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing model folder at --out (the old one is kept beside it)")


def run(args) -> int:
    from lungapp.evaluation.recalibrate import recalibrate, write_recalibrated
    from lungapp.fsutil import check_output_dir

    if args.folds < 2:
        err(f"--folds {args.folds}: the check needs at least 2 folds")
        return EXIT_ERROR
    try:
        check_output_dir(args.out, data_dirs=[Path(args.folder)], overwrite=args.overwrite, report=err)
        predictor = load_predictor(args.model)
        rec = recalibrate(args.folder, predictor, folds=args.folds, layout=args.layout)
        active = _active_dir()
        replaced = write_recalibrated(predictor.model_dir, rec, args.out)
    except LungappError as exc:
        err(str(exc))
        return EXIT_ERROR
    print(rec.summary())
    card = rec.card
    if replaced is not None:
        err(f"the model folder that was at {args.out} is kept at {replaced}")
    if active is not None and Path(args.out).resolve() == active:
        # It replaced the active model's folder: the app now runs the recalibrated card.
        print(f"wrote {args.out}: threshold {card.threshold:.3f} on the recalibrated probability "
              f"(the model's own: {predictor.card.threshold:.3f}); it was the active model's folder, "
              "so the recalibrated model is now the one in use")
        return _status(rec)
    print(f"wrote {args.out}: threshold {card.threshold:.3f} on the recalibrated probability "
          f"(the model's own: {predictor.card.threshold:.3f}); use it with "
          f"`lungapp models install {args.out} --use`")
    return _status(rec)


def _status(rec) -> int:
    """Not 0 when recordings or label files of the folder could not be used (listed in
    the summary): the recalibration was made without them."""
    if rec.n_failed:
        err(f"{rec.n_failed} file(s) of {rec.folder} could not be used (listed above); "
            "the recalibration was made without them")
        return EXIT_ERROR
    return EXIT_OK


def _active_dir() -> Path | None:
    from lungapp.inference.registry import active_model_dir

    try:
        return active_model_dir().resolve()
    except LungappError:
        return None
