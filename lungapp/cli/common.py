"""What every ``lungapp`` command shares: exit statuses, the one-line error, model loading."""

from __future__ import annotations

import sys

EXIT_OK, EXIT_ERROR, EXIT_CANCELLED = 0, 2, 130


def err(msg: str) -> None:
    """Print one line on stderr, the way every command reports a problem."""
    print(f"lungapp: {msg}", file=sys.stderr)


def load_predictor(model_dir):
    """The model in ``model_dir`` (None: the active model), ready to predict. A
    replacement of that folder a killed process left half done is repaired first, and an
    active model whose folder is gone (the bundled one then used) is said on stderr."""
    from lungapp.fsutil import recover_swap
    from lungapp.inference.predictor import Predictor
    from lungapp.inference.registry import missing_active_model

    note = recover_swap(model_dir) if model_dir is not None else missing_active_model()
    if note:
        err(note)
    return Predictor.load(model_dir)
