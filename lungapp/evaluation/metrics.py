"""Honest model metrics: sensitivity, specificity, their mean (score), AUC, confusion.

Shared by `lungapp evaluate`, cross-validation reports and model cards. Binary labels
are 1 = abnormal (positive), 0 = normal. The four-class score follows the ICBHI /
SPRSound definition: sensitivity = abnormal recordings given their exact class over all
abnormal recordings; specificity = normal recordings called normal over all normal ones.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve


def _safe_div(a: float, b: float) -> float:
    return float(a) / float(b) if b else float("nan")


def binary_metrics(y_true, p_abnormal, threshold: float) -> dict:
    """Metrics of the decision ``p_abnormal >= threshold`` against ``y_true`` (0/1).

    Returns {n, n_abnormal, n_normal, auc, sensitivity, specificity, score, accuracy,
    confusion [[tn, fp], [fn, tp]], threshold}. AUC is NaN (JSON: null) when only one
    class is present.
    """
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(p_abnormal, dtype=float)
    pred = (p >= threshold).astype(int)
    (tn, fp), (fn, tp) = confusion_matrix(y, pred, labels=[0, 1])
    sens = _safe_div(tp, tp + fn)
    spec = _safe_div(tn, tn + fp)
    auc = float(roc_auc_score(y, p)) if len(set(y.tolist())) == 2 else float("nan")
    return {
        "n": int(len(y)), "n_abnormal": int(y.sum()), "n_normal": int((1 - y).sum()),
        "auc": auc, "sensitivity": sens, "specificity": spec,
        "score": (sens + spec) / 2 if not (math.isnan(sens) or math.isnan(spec)) else float("nan"),
        "accuracy": _safe_div(tp + tn, len(y)),
        "confusion": [[int(tn), int(fp)], [int(fn), int(tp)]],
        "threshold": float(threshold),
    }


def choose_threshold(y_true, p_abnormal) -> tuple[float, str]:
    """The threshold on ``p_abnormal`` that maximises score = (sensitivity +
    specificity) / 2 (Youden's J); ties go to the middle of the best interval.

    Use it on out-of-fold (training) predictions only, never on a test set.
    Returns (threshold, rule description).
    """
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(p_abnormal, dtype=float)
    rule = "maximise score = (sensitivity + specificity) / 2 on out-of-fold predictions"
    if len(set(y.tolist())) < 2:
        return 0.5, rule + " (one class only: default 0.5)"
    fpr, tpr, thr = roc_curve(y, p)
    j = tpr - fpr
    best = int(np.argmax(j))
    t = float(thr[best])
    if not np.isfinite(t):
        t = 1.0
    # Move to the midpoint between this threshold and the next lower distinct score, so
    # that the decision is not on the edge of one training example.
    lower = p[p < t]
    if len(lower):
        t = (t + float(lower.max())) / 2
    return float(min(max(t, 0.0), 1.0)), rule


def patient_resamples(n_groups: int, n_boot: int, seed: int, chunk: int = 200):
    """Bootstrap resamples of ``n_groups`` patients, ``chunk`` at a time: count arrays
    (b, n_groups), each row how often each patient is drawn. The stream depends only on
    ``seed``, not on ``chunk``."""
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, chunk):
        yield rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups),
                              size=min(chunk, n_boot - start))


def weighted_figures(w: np.ndarray, y: np.ndarray, p: np.ndarray,
                     threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(AUC, score at ``threshold``) of each row of recording weights ``w`` (b, n), as if
    each recording appeared that many times (NaN where a class has no weight). The AUC is
    the weighted Mann-Whitney statistic, ties counting a half."""
    u, at = np.unique(p, return_inverse=True)
    pos = np.zeros((len(y), len(u)))
    pos[np.arange(len(y)), at] = y
    neg = np.zeros((len(y), len(u)))
    neg[np.arange(len(y)), at] = 1 - y
    wp, wn = w @ pos, w @ neg  # (b, len(u)): weight of each distinct probability, by class
    tp_w, tn_w = wp.sum(1), wn.sum(1)
    below = np.cumsum(wn, axis=1) - wn  # normal weight strictly below each value
    called = (p >= threshold).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (wp * (below + 0.5 * wn)).sum(1) / (tp_w * tn_w)
        sens = (w * (y * called)).sum(1) / tp_w
        spec = (w * ((1 - y) * (1 - called))).sum(1) / tn_w
    return auc, (sens + spec) / 2


def bootstrap_intervals(y_true, p_abnormal, threshold: float, groups=None,
                        n_boot: int = 2000, seed: int = 0) -> dict:
    """95 % intervals of the AUC and of the score at ``threshold``, from a bootstrap that
    resamples patients (``groups``) whole: a patient's recordings are correlated, so
    resampling recordings would make the intervals too narrow. A recording whose group is
    None counts as a patient of its own; with no groups at all, recordings are resampled.
    Resamples that lack one of the classes are left out of that figure's interval (an
    interval is None when too few remain). Deterministic for a given ``seed``.

    Returns {"auc_ci95": [lo, hi] | None, "score_ci95": [lo, hi] | None, "resampled":
    "patients" | "recordings", "n_groups", "n_boot"}.
    """
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(p_abnormal, dtype=float)
    if groups is None:
        g, resampled = np.arange(len(y)), "recordings"
    else:
        keys = [f"p:{v}" if v is not None else f"r:{i}" for i, v in enumerate(groups)]
        g, resampled = np.unique(keys, return_inverse=True)[1], "patients"
    n_g = int(g.max()) + 1 if len(g) else 0
    out = {"auc_ci95": None, "score_ci95": None, "resampled": resampled, "n_groups": n_g,
           "n_boot": int(n_boot)}
    if n_g < 2 or len(set(y.tolist())) < 2:
        return out
    aucs, scores = [], []
    for counts in patient_resamples(n_g, n_boot, seed):
        auc, score = weighted_figures(counts[:, g].astype(float), y, p, threshold)
        aucs.append(auc)
        scores.append(score)

    def ci(v):
        v = np.concatenate(v)
        v = v[np.isfinite(v)]
        return ([float(x) for x in np.percentile(v, [2.5, 97.5])]
                if len(v) >= max(20, n_boot // 2) else None)

    out["auc_ci95"], out["score_ci95"] = ci(aucs), ci(scores)
    return out


def multiclass_metrics(y_true, y_pred, classes, normal_class: str = "Normal") -> dict:
    """Per-class precision/recall, the confusion matrix (rows true, columns predicted,
    in ``classes`` order) and the ICBHI score for labels given as class names."""
    classes = list(classes)
    cm = confusion_matrix(list(y_true), list(y_pred), labels=classes)
    per_class = {}
    for i, c in enumerate(classes):
        tp = cm[i, i]
        per_class[c] = {"n": int(cm[i].sum()), "recall": _safe_div(tp, cm[i].sum()),
                        "precision": _safe_div(tp, cm[:, i].sum())}
    ni = classes.index(normal_class)
    abn = [i for i in range(len(classes)) if i != ni]
    spec = _safe_div(cm[ni, ni], cm[ni].sum())
    sens = _safe_div(sum(cm[i, i] for i in abn), sum(cm[i].sum() for i in abn))
    return {"classes": classes, "confusion": cm.astype(int).tolist(), "per_class": per_class,
            "sensitivity": sens, "specificity": spec,
            "score": (sens + spec) / 2 if not (math.isnan(sens) or math.isnan(spec)) else float("nan"),
            "accuracy": _safe_div(np.trace(cm), cm.sum())}


def json_safe(obj):
    """Replace NaN/inf floats by None recursively so the result is valid JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    return obj
