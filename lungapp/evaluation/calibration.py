"""Calibration of the abnormal probability: Platt scaling fitted on out-of-fold
predictions, and how well a probability is calibrated on a labelled set (reliability
bins, expected calibration error, Brier score).

A calibrated probability means what it says: of the recordings given 0.7, about 70 % are
abnormal in the collection it was fitted on. Platt scaling (a logistic regression on the
logit of the model's probability) is monotone, so it changes no ranking and no AUC; the
threshold is carried onto the calibrated scale, so it changes no decision either.
"""

from __future__ import annotations

import math

import numpy as np

#: Probabilities are clipped this far from 0 and 1 before their logit is taken.
EPS = 1e-6


def logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return np.log(p / (1 - p))


def sigmoid(z) -> np.ndarray:
    """1 / (1 + exp(-z)), without overflow for large |z|."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=float)))


def apply_platt(p, a: float, b: float) -> np.ndarray:
    """sigmoid(a * logit(p) + b)."""
    return sigmoid(a * logit(p) + b)


def fit_platt(y, p, iterations: int = 100) -> tuple[float, float]:
    """(a, b) minimising the log loss of sigmoid(a * logit(p) + b) against 0/1 labels
    ``y``, by Newton's method, with Platt's smoothed targets ((n+ + 1) / (n+ + 2) and
    1 / (n- + 2)) so that a separable set does not send the slope to infinity. Raises
    ValueError when ``y`` holds one class only."""
    y = np.asarray(y, dtype=float)
    x = logit(p)
    n_pos, n_neg = float(y.sum()), float(len(y) - y.sum())
    if not n_pos or not n_neg:
        raise ValueError("calibration needs both normal and abnormal recordings")
    t = np.where(y > 0, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    design = np.stack([x, np.ones_like(x)], axis=1)

    def loss(w: np.ndarray) -> float:  # cross-entropy against the smoothed targets
        z = design @ w
        return float(np.sum(t * np.logaddexp(0, -z) + (1 - t) * np.logaddexp(0, z)))

    w = np.array([1.0, 0.0])
    current = loss(w)
    for _ in range(iterations):
        q = sigmoid(design @ w)
        grad = design.T @ (q - t)
        hess = design.T @ (design * (q * (1 - q))[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        # damped Newton: halve the step until the loss does not rise (well-separated
        # scores make the full step overshoot)
        scale = 1.0
        while scale > 1e-6 and loss(w - scale * step) > current:
            scale /= 2
        w = w - scale * step
        new = loss(w)
        if abs(current - new) < 1e-12 or float(np.abs(scale * step).max()) < 1e-10:
            break
        current = new
    return float(w[0]), float(w[1])


def reliability(y, p, bins: int = 10) -> dict:
    """How well ``p`` is calibrated against 0/1 labels ``y``: per equal-width bin of ``p``
    the count, the mean probability and the observed abnormal fraction; the expected
    calibration error (ECE: the count-weighted mean gap between those two) and the Brier
    score. Empty bins are left out of the curve."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    if not len(y):
        return {"bins": [], "ece": None, "brier": None, "n": 0}
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    curve, ece = [], 0.0
    for k in range(bins):
        m = which == k
        if not m.any():
            continue
        mean_p, frac = float(p[m].mean()), float(y[m].mean())
        ece += m.sum() / len(y) * abs(mean_p - frac)
        curve.append({"from": float(edges[k]), "to": float(edges[k + 1]), "n": int(m.sum()),
                      "mean_probability": mean_p, "abnormal_fraction": frac})
    brier = float(np.mean((p - y) ** 2))
    return {"bins": curve, "ece": float(ece), "brier": brier if math.isfinite(brier) else None,
            "n": int(len(y))}
