"""Score a model on a labelled folder: every recording predicted, the binary decision and
(for four-class models) the classes scored, and what the quality gate would show.

Used by ``lungapp evaluate`` and by anything else that wants the same figures."""

from __future__ import annotations

from lungapp.errors import LungappError


def evaluate_folder(folder, predictor, progress=None) -> dict:
    """Predict every recording of a labelled folder and score the binary decision (and
    the classes, for multi-class models). Poor Quality recordings are not scored.

    The scores cover every readable recording, whatever the quality
    gate says; ``quality_gate`` says what the app would show instead: how many Poor Quality
    recordings the gate flags, how many of the others it refuses, and the same scores
    on the recordings it passes (those the app gives a result for)."""
    from lungapp.data import POOR, binary_label, read_folder
    from lungapp.evaluation.metrics import binary_metrics, json_safe, multiclass_metrics

    ds = read_folder(folder)
    card = predictor.card
    four_class = len(card.classes) > 2
    y, p, true_cls, pred_cls, passed, failed = [], [], [], [], [], []
    poor_flagged = n_skipped = 0
    examples = ds.examples
    for i, ex in enumerate(examples):
        if progress:
            progress(i, len(examples))
        try:
            pred = predictor.predict_file(ex.path)
        except LungappError as exc:
            failed.append({"file": ex.path, "error": exc.problem})
            continue
        if ex.label == POOR:
            n_skipped += 1
            poor_flagged += pred.decision == "poor quality"
            continue
        y.append(1 if binary_label(ex.label) == "abnormal" else 0)
        p.append(pred.abnormal_probability)
        passed.append(pred.decision != "poor quality")
        if four_class and ex.label in card.classes:
            true_cls.append(ex.label)
            pred_cls.append(card.decide_class([pred.probabilities[c] for c in card.classes],
                                              pred.abnormal_probability))
        else:
            true_cls.append(None)
            pred_cls.append(None)
    if not y:
        raise LungappError("no scorable recordings (all were Poor Quality or failed)", folder)

    def scores(keep) -> dict:
        res = binary_metrics([v for v, k in zip(y, keep) if k], [v for v, k in zip(p, keep) if k],
                             card.threshold)
        pairs = [(t, d) for t, d, k in zip(true_cls, pred_cls, keep) if k and t is not None]
        if pairs:
            mc = multiclass_metrics([t for t, _ in pairs], [d for _, d in pairs], card.classes)
            res["per_class"] = mc["per_class"]
            res["multiclass"] = {"classes": mc["classes"], "confusion": mc["confusion"],
                                 "score": mc["score"], "sensitivity": mc["sensitivity"],
                                 "specificity": mc["specificity"]}
        return res

    out = {"folder": str(folder), "layout": ds.layout, **scores([True] * len(y)),
           "n_skipped": n_skipped, "n_failed": len(failed),
           "n_quality_gated": passed.count(False),
           "model": {"name": card.name, "version": card.version}}
    gate = {"poor_quality": {"n": n_skipped, "flagged": poor_flagged},
            "others": {"n": len(y), "flagged": passed.count(False)}}
    if any(passed):
        passed_scores = scores(passed)
        passed_scores.pop("per_class", None)
        gate["passed"] = passed_scores
    out["quality_gate"] = gate
    if failed:
        out["failed"] = failed
    out["note"] = ("metrics use the model's probabilities for every readable recording; "
                   "n_quality_gated recordings would be shown as 'poor quality' in the app, "
                   "quality_gate.passed scores the others")
    return json_safe(out)
