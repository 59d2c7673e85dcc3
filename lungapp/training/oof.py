"""Out-of-fold evaluation: the cross-validation report and the decision rules chosen on
out-of-fold predictions only.

:func:`evaluate_oof` turns the recordings' out-of-fold probabilities into the card's
report: the threshold (:func:`lungapp.evaluation.metrics.choose_threshold`), per-fold and
nested figures, and for four classes the rule that names an abnormal recording's class
(most probable class, per-flag thresholds, or a class pooling), a rule being adopted only
when its gain survives a paired bootstrap (:func:`paired_score_gain`). :func:`save_oof`
writes the predictions for research. No Keras here (lungapp.training.combine uses it).
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from lungapp.vocabulary import CLASS_POOLINGS, FLAG_OUTPUTS


def pool_probs(window_out: np.ndarray, rule: str, spec=None, class_rule: str = "") -> np.ndarray:
    """Recording class probabilities from window model outputs, exactly as
    :func:`lungapp.inference.predictor.pool_recording` does for a card with this output spec
    (default: softmax), pooling ``rule`` and class pooling ``class_rule``."""
    from lungapp.inference.predictor import pool_recording

    kind, names = (spec[0], spec[1]) if spec is not None else ("softmax", None)
    return pool_recording(window_out, SimpleNamespace(output_kind=kind, pooling=rule, outputs=names,
                                                      class_pooling=class_rule))


def is_flag_spec(spec) -> bool:
    """Whether an output spec is four classes from sigmoid [CAS, DAS] flags, the models the
    flag rule and class pooling apply to."""
    return spec[0] == "sigmoid" and list(spec[1]) == list(FLAG_OUTPUTS["4class"])


def class_pooled_probs(windows: list, rule: str, spec) -> dict[str, np.ndarray] | None:
    """For [CAS, DAS] flag models: each :data:`CLASS_POOLINGS` candidate's recording class
    probabilities (n, 4) from the recordings' window outputs, for
    :func:`evaluate_oof`'s ``class_probs``; None for other models."""
    if not is_flag_spec(spec):
        return None
    return {c: np.stack([pool_probs(w, rule, spec, c) for w in windows]) for c in CLASS_POOLINGS}


def auc_or_nan(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC of scores ``p`` for 0/1 labels ``y``; NaN when ``y`` has one class."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if len(set(y.tolist())) == 2 else float("nan")


def _mean_sd(values):
    v = np.array([x for x in values if x is not None and not math.isnan(x)], dtype=float)
    if not len(v):
        return {"mean": None, "sd": None}
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0}


def _decide(p_abn: np.ndarray, probs: np.ndarray, threshold: float, classes: list[str],
            flag_thresholds: dict | None = None) -> list[str]:
    """Recording labels as inference decides them (:func:`lungapp.inference.card.decide_class`)."""
    from lungapp.inference.card import decide_class

    return [decide_class(pr, classes, pa, threshold, flag_thresholds) for pa, pr in zip(p_abn, probs)]


ARGMAX_RULE = "an abnormal recording gets its most probable abnormal class"
FLAG_RULE = ("an abnormal recording is CAS if its pooled CAS flag reaches t_CAS, DAS if its "
             "DAS flag reaches t_DAS, CAS & DAS if both (neither: the flag nearer its "
             "threshold); t_CAS and t_DAS maximise the four-class score on out-of-fold "
             "predictions")


def class_pooling_rule(rule: str, fixed: bool = False) -> str:
    """The four-class rule's description for class pooling ``rule`` (``fixed``: set by the
    recipe rather than chosen on the out-of-fold predictions)."""
    from lungapp.inference.card import pooling_words

    how = ("fixed by the recipe" if fixed else
           f"chosen among {', '.join(CLASS_POOLINGS)} on out-of-fold predictions")
    return (f"an abnormal recording gets its most probable abnormal class from its CAS and DAS "
            f"flags pooled as {pooling_words(rule)} over its windows ({how})")


def class_pooling_problem(rule: str | None, task: str, flags: bool) -> str | None:
    """Why ``rule`` cannot be a recipe's fixed class pooling (None: it can, or no rule)."""
    if rule and (task != "4class" or not flags or rule not in CLASS_POOLINGS):
        return (f"class pooling {rule!r} needs a four-class model with [CAS, DAS] flags and "
                f"one of {', '.join(CLASS_POOLINGS)}")
    return None


def _best_class_pooling(labels, p_abn, class_probs: dict, threshold: float, classes) -> str:
    """The class pooling whose decisions score best on these recordings (ties: the first)."""
    from lungapp.evaluation.metrics import multiclass_metrics

    scores = {c: multiclass_metrics(labels, _decide(p_abn, cp, threshold, classes), classes)["score"]
              for c, cp in class_probs.items()}
    return max(scores, key=lambda c: scores[c])


def _class_pooling_check(y, labels, probs, class_probs: dict, fold_of, threshold, classes,
                         nested_argmax, groups, fixed: str | None = None
                         ) -> tuple[dict, list[str], list[str]]:
    """Choose a class pooling on the out-of-fold predictions and score it the strict way:
    each fold decided by the threshold and the pooling chosen on the other folds only,
    against the most probable class of the card's pooling (paired bootstrap). ``fixed``:
    the recipe's pooling, used in every fold instead of a choice (the check still says
    whether its gain would have passed)."""
    from lungapp.evaluation.metrics import choose_threshold, multiclass_metrics

    p_abn = 1 - probs[:, 0]
    chosen = fixed or _best_class_pooling(labels, p_abn, class_probs, threshold, classes)
    pred = _decide(p_abn, class_probs[chosen], threshold, classes)
    nested: list = [None] * len(labels)
    per_fold = []
    for i in range(int(fold_of.max()) + 1):
        m = fold_of == i
        other = [lab for lab, f in zip(labels, fold_of) if f != i]
        t_other, _ = choose_threshold(y[~m], p_abn[~m])
        c = fixed or _best_class_pooling(other, p_abn[~m], {k: v[~m] for k, v in class_probs.items()},
                                         t_other, classes)
        per_fold.append(c)
        for j, lab in zip(np.flatnonzero(m), _decide(p_abn[m], class_probs[c][m], t_other, classes)):
            nested[j] = lab
    g = paired_score_gain(labels, nested, nested_argmax, classes, groups)
    check = {"candidates": list(class_probs), "chosen": chosen, "chosen_per_fold": per_fold,
             "in_sample_score": multiclass_metrics(labels, pred, classes)["score"],
             "nested_score": g.pop("score_a"), "nested_argmax_score": g.pop("score_b"), **g}
    check["adopted"] = bool(check["ci95"][0] is not None and check["ci95"][0] > 0)
    if fixed:
        check["fixed"] = fixed
    return check, pred, nested


def _nested_classes(y, labels, probs, fold_of, classes, rule: bool) -> list[str]:
    """Each fold's recordings decided with the binary (and, with ``rule``, the flag)
    thresholds chosen on the other folds' out-of-fold predictions only."""
    from lungapp.evaluation.metrics import choose_threshold

    p_abn = 1 - probs[:, 0]
    out = [None] * len(labels)
    for i in range(int(fold_of.max()) + 1):
        m = fold_of == i
        other = [lab for lab, f in zip(labels, fold_of) if f != i]
        t_other, _ = choose_threshold(y[~m], p_abn[~m])
        ft = choose_flag_thresholds(other, probs[~m], t_other, classes) if rule else None
        for j, lab in zip(np.flatnonzero(m), _decide(p_abn[m], probs[m], t_other, classes, ft)):
            out[j] = lab
    return out


def paired_score_gain(labels, pred_a, pred_b, classes, groups=None, n_boot: int = 2000,
                      seed: int = 0) -> dict:
    """Four-class score of ``pred_a`` minus that of ``pred_b`` on the same recordings, with a
    95 % interval from a paired bootstrap that resamples patients (``groups``) whole, or
    recordings where there are no groups. Deterministic for a given ``seed``."""
    lab = np.asarray(labels)
    normal = lab == classes[0]
    ok_a, ok_b = np.asarray(pred_a) == lab, np.asarray(pred_b) == lab
    g = (np.unique(np.asarray(groups, dtype=str), return_inverse=True)[1] if groups is not None
         else np.arange(len(lab)))
    n_g = int(g.max()) + 1
    per = np.stack([np.bincount(g, weights=w.astype(float), minlength=n_g) for w in
                    (normal, normal & ok_a, normal & ok_b, ~normal, ~normal & ok_a, ~normal & ok_b)], 1)

    def gain(t):  # t: (..., 6) totals
        with np.errstate(invalid="ignore", divide="ignore"):
            return 0.5 * ((t[..., 1] - t[..., 2]) / t[..., 0] + (t[..., 4] - t[..., 5]) / t[..., 3])

    from lungapp.evaluation.metrics import patient_resamples

    boots = np.concatenate([gain(counts @ per) for counts in patient_resamples(n_g, n_boot, seed)])
    boots = boots[np.isfinite(boots)]
    ci = [float(v) for v in np.percentile(boots, [2.5, 97.5])] if len(boots) else [None, None]
    return {"score_a": float(0.5 * (per[:, 1].sum() / max(per[:, 0].sum(), 1)
                                    + per[:, 4].sum() / max(per[:, 3].sum(), 1))),
            "score_b": float(0.5 * (per[:, 2].sum() / max(per[:, 0].sum(), 1)
                                    + per[:, 5].sum() / max(per[:, 3].sum(), 1))),
            "gain": float(gain(per.sum(0))), "ci95": ci, "n_boot": int(n_boot),
            "resampled": "patients" if groups is not None else "recordings"}


def choose_flag_thresholds(labels: list[str], probs: np.ndarray, threshold: float,
                           classes: list[str], grid: int = 60) -> dict:
    """Per-flag thresholds {"CAS": t_c, "DAS": t_d} for four classes from [CAS, DAS] flags,
    chosen to maximise the four-class score of ``probs`` (n, 4) (out-of-fold predictions
    only). Normal decisions do not depend on them, so this maximises the abnormal
    recordings given their exact class. Candidates: quantiles of the pooled flags of the
    recordings called abnormal; ties go to the first (lowest) candidate pair."""
    lab = np.array([classes.index(c) for c in labels])
    probs = np.asarray(probs, dtype=float)
    ab = (1 - probs[:, 0] >= threshold) & (lab != 0)
    c = probs[ab, 1] + probs[ab, 3]
    d = probs[ab, 2] + probs[ab, 3]
    truth = lab[ab]
    pool = np.concatenate([c, d]) if ab.any() else np.array([0.5])
    cand = np.unique(np.clip(np.quantile(pool, np.linspace(0.02, 0.98, grid)), 1e-3, 1 - 1e-3))
    tc, td = cand[:, None, None], cand[None, :, None]
    has_c, has_d = c[None, None, :] >= tc, d[None, None, :] >= td
    neither = ~(has_c | has_d)
    nearer_c = (c[None, None, :] / tc) >= (d[None, None, :] / td)
    has_c = has_c | (neither & nearer_c)
    has_d = has_d | (neither & ~nearer_c)
    pred = np.where(has_c & has_d, 3, np.where(has_c, 1, 2))
    correct = (pred == truth[None, None, :]).sum(axis=2)
    i, j = np.unravel_index(int(np.argmax(correct)), correct.shape)
    return {"CAS": float(cand[i]), "DAS": float(cand[j])}


@dataclass
class OofData:
    """Out-of-fold predictions with their truth: ``y`` (0 normal / 1 abnormal), the
    recordings' class ``labels``, ``probs`` (n, n_classes), ``fold_of`` (0-based fold of
    each recording), the task's ``classes`` and the patient ``groups`` (or None)."""

    y: np.ndarray
    labels: list[str]
    probs: np.ndarray
    fold_of: np.ndarray
    classes: list[str]
    groups: list | None = None

    @property
    def p_abn(self) -> np.ndarray:
        return 1 - self.probs[:, 0]

    @property
    def k(self) -> int:
        return int(self.fold_of.max()) + 1


def evaluate_oof(y: np.ndarray, labels: list[str], probs: np.ndarray, fold_of: np.ndarray,
                 classes: list[str], task: str, flag_rule: bool = False,
                 groups: list | None = None, class_probs: dict | None = None,
                 class_pooling: str | None = None) -> dict:
    """The CV report from out-of-fold recording probabilities (n, n_classes).

    With ``flag_rule`` (four classes from [CAS, DAS] flags) per-flag thresholds
    (:func:`choose_flag_thresholds`) are tried against naming the most probable class. Both
    are scored with every threshold chosen on the other folds only, and the rule is adopted
    only when its gain survives a paired bootstrap over patients (``groups``; recordings
    where there are none): two fitted thresholds more must earn their place. The comparison
    is reported either way (``four_class.flag_rule_check``).

    ``class_probs`` ({class pooling: (n, n_classes)}, :func:`class_pooled_probs`): the
    class poolings are tried the same way (``four_class.class_pooling_check``); when both
    rules pass, the one with the better strict score is used. ``class_pooling`` (one of
    ``class_probs``): a pooling fixed by the recipe, used whatever the checks say (they are
    still reported, and the flag rule is not used)."""
    problem = class_pooling_problem(class_pooling, task, bool(class_probs))
    if problem:
        raise ValueError(problem)
    d = OofData(y, labels, probs, fold_of, classes, groups)
    report = _binary_report(d)
    if task == "4class":
        report.update(_four_class_report(d, report["threshold"], flag_rule, class_probs,
                                         class_pooling))
    return report


def calibration_report(d: OofData, threshold: float) -> dict | None:
    """Platt scaling of the out-of-fold abnormal probabilities (the card's
    ``calibration``), with the expected calibration error before, after, and with each
    fold calibrated by a fit on the other folds only; None with one class."""
    from lungapp.evaluation.calibration import apply_platt, fit_platt, reliability

    p = d.p_abn
    if len(set(d.y.tolist())) < 2:
        return None
    a, b = fit_platt(d.y, p)
    if not usable_calibration(a, b):
        return None  # e.g. a model that ranks no better than chance: shown uncalibrated
    nested = np.zeros(len(p))
    for i in range(d.k):
        m = d.fold_of == i
        if len(set(d.y[~m].tolist())) < 2:
            return None
        nested[m] = apply_platt(p[m], *fit_platt(d.y[~m], p[~m]))
    after = reliability(d.y, apply_platt(p, a, b))
    return {"method": "platt", "a": a, "b": b,
            "fitted_on": f"the out-of-fold abnormal probabilities of {len(p)} recordings",
            "raw_threshold": float(threshold), "ece_raw": reliability(d.y, p)["ece"],
            "ece": after["ece"], "nested_ece": reliability(d.y, nested)["ece"],
            "brier": after["brier"], "reliability": after["bins"]}


def usable_calibration(a: float, b: float) -> bool:
    """Whether a Platt fit (a, b) is one a card can carry (a positive, moderate slope)."""
    from lungapp.inference.card import CALIBRATION_LIMITS

    (lo_a, hi_a), (lo_b, hi_b) = CALIBRATION_LIMITS["a"], CALIBRATION_LIMITS["b"]
    return bool(np.isfinite(a) and np.isfinite(b) and lo_a <= a <= hi_a and lo_b <= b <= hi_b)


def card_threshold(report: dict) -> float:
    """The threshold a card stores for this report: the chosen threshold carried onto
    the calibrated scale where the report has a calibration (the same decisions)."""
    from lungapp.evaluation.calibration import apply_platt

    c = report.get("calibration")
    t = float(report["threshold"])
    return t if not c else float(apply_platt(t, c["a"], c["b"]))


def _binary_report(d: OofData) -> dict:
    """Threshold, overall, per-fold and nested-threshold figures of normal / abnormal."""
    from lungapp.evaluation.metrics import binary_metrics, choose_threshold

    p_abn = d.p_abn
    thr, rule = choose_threshold(d.y, p_abn)
    per_fold, nested = [], []
    for i in range(d.k):
        m = d.fold_of == i
        per_fold.append(binary_metrics(d.y[m], p_abn[m], thr))
        # stricter: this fold's threshold chosen on the other folds' predictions only
        t_other, _ = choose_threshold(d.y[~m], p_abn[~m])
        nested.append(binary_metrics(d.y[m], p_abn[m], t_other))
    keys = ("auc", "sensitivity", "specificity", "score", "accuracy")
    return {
        "threshold": thr, "threshold_rule": rule,
        "calibration": calibration_report(d, thr),
        "overall": binary_metrics(d.y, p_abn, thr),
        "per_fold": per_fold,
        "mean_sd": {kk: _mean_sd([f[kk] for f in per_fold]) for kk in keys},
        "nested_threshold": {"rule": "each fold scored at the threshold chosen on the other "
                                     "folds' out-of-fold predictions",
                             "per_fold": nested,
                             "mean_sd": {kk: _mean_sd([f[kk] for f in nested]) for kk in keys}},
    }


@dataclass
class _Choice:
    """The four-class rule chosen: flag thresholds ``ft`` or class pooling ``cp`` (or
    neither: the most probable class), its decisions in and out of sample, and the checks."""

    ft: dict | None
    cp: str | None
    pred: list[str]
    nested_pred: list[str]
    flag_check: dict | None = None
    pooling_check: dict | None = None


def _flag_rule_check(d: OofData, thr: float, nested_argmax: list[str]) -> tuple[dict, list, list]:
    """(check, in-sample decisions, nested decisions) of the per-flag threshold rule."""
    from lungapp.evaluation.metrics import multiclass_metrics

    cand = choose_flag_thresholds(d.labels, d.probs, thr, d.classes)
    nested_rule = _nested_classes(d.y, d.labels, d.probs, d.fold_of, d.classes, rule=True)
    rule_pred = _decide(d.p_abn, d.probs, thr, d.classes, cand)
    g = paired_score_gain(d.labels, nested_rule, nested_argmax, d.classes, d.groups)
    check = {"thresholds": cand,
             "in_sample_score": multiclass_metrics(d.labels, rule_pred, d.classes)["score"],
             "nested_score": g.pop("score_a"), "nested_argmax_score": g.pop("score_b"), **g}
    check["adopted"] = bool(check["ci95"][0] is not None and check["ci95"][0] > 0)
    return check, rule_pred, nested_rule


def _choose_four_class_rule(d: OofData, thr: float, flag_rule: bool, class_probs: dict | None,
                            class_pooling: str | None) -> _Choice:
    """Most probable class, per-flag thresholds or a class pooling (see :func:`evaluate_oof`)."""
    nested_argmax = _nested_classes(d.y, d.labels, d.probs, d.fold_of, d.classes, rule=False)
    c = _Choice(None, None, _decide(d.p_abn, d.probs, thr, d.classes), nested_argmax)
    if flag_rule:
        c.flag_check, rule_pred, nested_rule = _flag_rule_check(d, thr, nested_argmax)
        if c.flag_check["adopted"]:
            c.ft, c.pred, c.nested_pred = c.flag_check["thresholds"], rule_pred, nested_rule
    if not class_probs:
        return c
    check, cp_pred, cp_nested = _class_pooling_check(
        d.y, d.labels, d.probs, class_probs, d.fold_of, thr, d.classes, nested_argmax, d.groups,
        fixed=class_pooling)
    c.pooling_check = check
    if class_pooling:  # the recipe's rule, whatever the checks say
        if c.ft:
            c.flag_check["superseded_by"] = "class pooling fixed by the recipe"
        c.ft, c.cp, c.pred, c.nested_pred = None, class_pooling, cp_pred, cp_nested
    elif check["adopted"] and c.ft and c.flag_check["nested_score"] >= check["nested_score"]:
        check["superseded_by"] = "flag rule"  # both passed; the better one is used
    elif check["adopted"]:
        if c.ft:
            c.flag_check["superseded_by"] = "class pooling"
        c.ft, c.cp, c.pred, c.nested_pred = None, check["chosen"], cp_pred, cp_nested
    return c


def _four_class_report(d: OofData, thr: float, flag_rule: bool, class_probs: dict | None,
                       class_pooling: str | None) -> dict:
    """The report's ``four_class`` section, with ``flag_thresholds`` / ``class_pooling``
    when a rule other than the most probable class is used."""
    from lungapp.evaluation.metrics import multiclass_metrics

    c = _choose_four_class_rule(d, thr, flag_rule, class_probs, class_pooling)
    four = multiclass_metrics(d.labels, c.pred, d.classes)
    four["rule"] = (FLAG_RULE if c.ft else class_pooling_rule(c.cp, bool(class_pooling))
                    if c.cp else ARGMAX_RULE)
    out = {"four_class": four}
    if c.ft:
        out["flag_thresholds"] = c.ft
    if c.cp:
        out["class_pooling"] = c.cp
    if c.ft or c.cp:
        four["argmax_score"] = multiclass_metrics(
            d.labels, _decide(d.p_abn, d.probs, thr, d.classes), d.classes)["score"]
    if c.flag_check:
        four["flag_rule_check"] = c.flag_check
    if c.pooling_check:
        four["class_pooling_check"] = c.pooling_check
    # stricter: each fold decided by thresholds chosen on the other folds only
    four["nested_score"] = multiclass_metrics(d.labels, c.nested_pred, d.classes)["score"]
    four["per_fold_score"] = [
        multiclass_metrics([lab for lab, f in zip(d.labels, d.fold_of) if f == i],
                           [p for p, f in zip(c.pred, d.fold_of) if f == i], d.classes)["score"]
        for i in range(d.k)]
    return out


def save_oof(path, recs: list, root, fold_of, classes, spec, probs, windows,
             windows_shift=None) -> None:
    """Write out-of-fold predictions as a NumPy ``.npz`` (atomically), for research on
    what follows the network (pooling, class rules, ensembles across runs):

    ``path``, ``patient``, ``label``, ``fold`` (1-based) per recording; ``probs`` (n,
    n_classes), the pooled class probabilities; ``window_out`` (total windows, n_outputs),
    the raw window outputs of every recording one after another, recording i's being rows
    ``offsets[i]:offsets[i + 1]``, with their ``starts`` in seconds; ``classes`` and
    ``outputs`` (the output names); with the device-shift check, ``window_out_shift``, the
    window outputs of the device-shifted recordings (same layout)."""
    from lungapp.fsutil import atomic_write_bytes

    lens = np.array([len(w) for w in windows])
    buf = io.BytesIO()
    extra = {} if windows_shift is None else {
        "window_out_shift": np.concatenate(windows_shift).astype(np.float32)}
    np.savez_compressed(
        buf, **extra, path=np.array([os.path.relpath(r.path, root) for r in recs]),
        patient=np.array([r.patient or "" for r in recs]), label=np.array([r.label for r in recs]),
        fold=np.asarray(fold_of) + 1, probs=np.asarray(probs, dtype=np.float64),
        window_out=np.concatenate(windows).astype(np.float32),
        offsets=np.concatenate([[0], np.cumsum(lens)]), starts=np.concatenate([r.starts for r in recs]),
        classes=np.array(classes), outputs=np.array(list(spec[1])))
    atomic_write_bytes(Path(path), buf.getvalue())
