"""Results in the store: which model made them, and analysing recordings into the store."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from lungapp.errors import LungappError
from lungapp.store.db import ModelId, Store


def model_id(predictor) -> ModelId:
    """The identity of a loaded :class:`~lungapp.inference.predictor.Predictor`: the card's
    name and version and the sha256 of its ``card.json`` (which records the ONNX files'
    hashes, so a model retrained under the same name gets another id)."""
    from lungapp.inference.card import card_path

    # The card as loaded (Predictor.card_sha256); read now only for other predictors.
    digest = getattr(predictor, "card_sha256", "") or hashlib.sha256(
        card_path(predictor.model_dir).read_bytes()).hexdigest()
    return ModelId(predictor.name, predictor.version, digest)


def analyse(store: Store, uids: list[str], predictor,
            progress: Callable[[int, int, str, str | None], None] | None = None) -> dict[str, str]:
    """Run ``predictor`` on each recording and store its result; returns ``{uid: problem}``
    for the recordings that could not be analysed (missing file, unreadable audio)."""
    mid = model_id(predictor)
    problems: dict[str, str] = {}
    for i, uid in enumerate(uids, 1):
        path = ""
        try:  # a recording deleted meanwhile (delete-patient beside it) is one problem, not the end
            path = store.recording(uid)["path"]
            store.add_result(uid, predictor.predict_file(path).to_dict(), mid)
            problem = None
        except LungappError as exc:
            problem = problems[uid] = str(exc) if path else f"recording {uid}: {exc.problem}"
        if progress:
            progress(i, len(uids), path, problem)
    return problems
