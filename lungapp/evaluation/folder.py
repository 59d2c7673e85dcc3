"""Score a model on a labelled folder: every recording predicted, the binary decision and
(for four-class models) the classes scored, and what the quality gate would show.

Used by ``lungapp evaluate`` and by anything else that wants the same figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lungapp.errors import LungappError
from lungapp.evaluation.calibration import reliability

NOTE = ("metrics use the model's probabilities for every readable recording; "
        "n_quality_gated recordings would be shown as 'poor quality' in the app, "
        "quality_gate.passed scores the others")


@dataclass
class _Scored:
    """Per-recording outcomes of the scorable (not Poor Quality) recordings, in order."""

    y: list[int] = field(default_factory=list)             # 1 = abnormal (truth)
    p: list[float] = field(default_factory=list)           # abnormal probability
    true_cls: list[str | None] = field(default_factory=list)
    pred_cls: list[str | None] = field(default_factory=list)
    passed: list[bool] = field(default_factory=list)       # the quality gate gave a result
    files: list[str] = field(default_factory=list)
    quality: list[str] = field(default_factory=list)       # "ok", "warn" or "refused"
    probs: list[dict] = field(default_factory=list)        # class probabilities
    patients: list[str | None] = field(default_factory=list)
    warned: int = 0                                        # ... with a "noisy" warning
    unfamiliar: list[bool] = field(default_factory=list)   # unlike the training recordings
    failed: list[dict] = field(default_factory=list)       # {"file", "error"}
    n_poor: int = 0
    poor_flagged: int = 0
    poor_warned: int = 0


def evaluate_folder(folder, predictor, progress=None, layout: str | None = None) -> dict:
    """Predict every recording of a labelled folder and score the binary decision (and
    the classes, for multi-class models). Poor Quality recordings are not scored.

    The scores cover every readable recording, whatever the quality gate says;
    ``quality_gate`` says what the app would show instead: how many Poor Quality
    recordings the gate flags, how many of the others it refuses, and the same scores
    on the recordings it passes (those the app gives a result for).
    ``unusable`` lists the folder's entries the reader could not use, with the reason;
    ``failed`` the recordings that could not be analysed. ``progress(i, n)`` is called
    before each recording. ``layout``: the folder's layout (None: detected). Raises
    LungappError when the folder cannot be read or nothing in it can be scored."""
    from lungapp.data import read_folder
    from lungapp.evaluation.metrics import json_safe

    ds = read_folder(folder, layout)
    card = predictor.card
    s = _predict_all(ds.examples, predictor, progress)
    if not s.y:
        raise LungappError("no scorable recordings (all were Poor Quality or failed)", folder)
    out = {"folder": str(folder), "layout": ds.layout, **_scores(s, card, [True] * len(s.y)),
           "n_skipped": s.n_poor, "n_failed": len(s.failed), "n_unusable": len(ds.problems),
           "n_quality_gated": s.passed.count(False),
           "model": {"name": card.name, "version": card.version, "path": str(predictor.model_dir),
                     "card": predictor.card_digest},   # as predict's results name it
           "quality_gate": _gate_report(s, card),
           **_unfamiliar_report(s, card),
           "calibration": reliability(s.y, s.p),
           "intervals": _intervals(s, card),
           **_best(s),
           "recordings": _recordings(s, card)}
    if s.failed:
        out["failed"] = s.failed
    # Entries the reader could not use (malformed labels, missing files, duplicate rows):
    # listed, never dropped without a word.
    out["unusable"] = [{"file": f, "reason": why} for f, why in ds.problems]
    out["warnings"] = list(ds.warnings) + _training_overlap(folder, card)
    out["note"] = NOTE
    return json_safe(out)


def _training_overlap(folder, card) -> list[str]:
    """A warning when ``folder`` is, holds or lies in the folder the model was trained on
    (its card says which): the figures are then the model's own training recordings'."""
    data = card.training.data if card.training else None
    trained = getattr(data, "folder", None)
    if not trained:
        return []
    here, there = Path(folder).resolve(), Path(trained).expanduser().resolve()
    if not (here == there or here.is_relative_to(there) or there.is_relative_to(here)):
        return []
    return [f"{folder}: the model was trained on {trained}; these figures are on (some of) its own "
            "training recordings and overstate how it does on recordings it never saw"]


def _predict_all(examples, predictor, progress) -> _Scored:
    from lungapp.data import POOR, binary_label

    card = predictor.card
    four_class = len(card.classes) > 2
    s = _Scored()
    for i, ex in enumerate(examples):
        if progress:
            progress(i, len(examples))
        try:
            pred = predictor.predict_file(ex.path)
        except LungappError as exc:
            s.failed.append({"file": ex.path, "error": exc.problem})
            continue
        warned = pred.quality is not None and getattr(pred.quality, "level", "") == "warn"
        if ex.label == POOR:
            s.n_poor += 1
            s.poor_flagged += pred.decision == "poor quality"
            s.poor_warned += warned
            continue
        s.warned += warned
        s.files.append(str(ex.path))
        s.probs.append(dict(pred.probabilities))
        s.patients.append(ex.patient)
        s.quality.append("refused" if pred.decision == "poor quality" else "warn" if warned else "ok")
        s.y.append(1 if binary_label(ex.label) == "abnormal" else 0)
        s.p.append(pred.abnormal_probability)
        s.passed.append(pred.decision != "poor quality")
        s.unfamiliar.append(getattr(pred, "unfamiliar", None) is not None)
        named = four_class and ex.label in card.classes
        s.true_cls.append(ex.label if named else None)
        s.pred_cls.append(card.decide_class([pred.probabilities[c] for c in card.classes],
                                            pred.abnormal_probability) if named else None)
    return s


def _intervals(s: _Scored, card) -> dict:
    """95 % intervals of the AUC and the score, resampling patients whole where the folder
    names them (:func:`lungapp.evaluation.metrics.bootstrap_intervals`)."""
    from lungapp.evaluation.metrics import bootstrap_intervals

    groups = s.patients if any(g is not None for g in s.patients) else None
    return bootstrap_intervals(s.y, s.p, card.threshold, groups)


def _best(s: _Scored) -> dict:
    """The threshold that would maximise the score on these recordings, and that score: for
    judging how far the model's own threshold is from it, and how much any threshold could
    give here, never for choosing a threshold here."""
    from lungapp.evaluation.metrics import binary_metrics, choose_threshold

    if len(set(s.y)) != 2:
        return {"best_threshold": None, "best_score": None}
    t = choose_threshold(s.y, s.p)[0]
    return {"best_threshold": t, "best_score": binary_metrics(s.y, s.p, t)["score"]}


def _recordings(s: _Scored, card) -> list[dict]:
    """One row per scored recording: its file, truth, abnormal probability, the binary
    decision at the model's threshold, the class named (four-class models) and the quality
    verdict, for finding which recordings a model gets wrong."""
    return [{"file": f, "patient": g, "truth": "abnormal" if y else "normal", "class": t,
             "abnormal_probability": p, "decision": "abnormal" if p >= card.threshold else "normal",
             "predicted_class": c, "probabilities": pr, "quality": q, "unfamiliar": u}
            for f, g, y, t, p, c, pr, q, u in zip(s.files, s.patients, s.y, s.true_cls, s.p,
                                                  s.pred_cls, s.probs, s.quality, s.unfamiliar)]


def _scores(s: _Scored, card, keep: list[bool]) -> dict:
    """Binary metrics (and the four-class ones, where the classes are known) of the
    recordings with ``keep`` true."""
    from lungapp.evaluation.metrics import binary_metrics, multiclass_metrics

    res = binary_metrics([v for v, k in zip(s.y, keep) if k], [v for v, k in zip(s.p, keep) if k],
                         card.threshold)
    pairs = [(t, d) for t, d, k in zip(s.true_cls, s.pred_cls, keep) if k and t is not None]
    if pairs:
        mc = multiclass_metrics([t for t, _ in pairs], [d for _, d in pairs], card.classes)
        res["per_class"] = mc["per_class"]
        res["multiclass"] = {k: mc[k] for k in ("classes", "confusion", "score", "sensitivity",
                                                 "specificity")}
    return res


def _unfamiliar_report(s: _Scored, card) -> dict:
    """``unfamiliar``: how many recordings the card's input profile calls unlike the
    training recordings (of those the quality gate passed), and the scores on the others;
    absent when the card has no profile."""
    if getattr(card, "input_profile", None) is None:
        return {}
    out = {"n": sum(s.unfamiliar), "of": s.passed.count(True)}
    familiar = [p and not u for p, u in zip(s.passed, s.unfamiliar)]
    if any(familiar):
        scores = _scores(s, card, familiar)
        scores.pop("per_class", None)
        out["familiar"] = scores
    return {"unfamiliar": out}


def _gate_report(s: _Scored, card) -> dict:
    gate = {"poor_quality": {"n": s.n_poor, "flagged": s.poor_flagged, "warned": s.poor_warned},
            "others": {"n": len(s.y), "flagged": s.passed.count(False), "warned": s.warned}}
    if any(s.passed):
        passed = _scores(s, card, s.passed)
        passed.pop("per_class", None)
        gate["passed"] = passed
    return gate
