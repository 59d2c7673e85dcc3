"""Fit and measure the recording-quality gate (lungapp.inference.quality) on SPRSound train.

    python benchmarks/quality_gate.py [../shared/data/sprsound/train] [--json]

Poor Quality recordings (177) against all others (Normal, CAS, DAS, CAS & DAS).
1. Measures every recording with ``quality.measure``.
2. Patient-grouped 4-fold cross-validation (StratifiedGroupKFold, shuffle, seed 0) of a
   logistic regression (C=1, balanced class weights) on the standardised NOISE_FEATURES:
   out-of-fold noise scores give the AUC; the threshold is the out-of-fold score at which
   90 % of the acceptable recordings pass.
3. Applies the whole gate (duration, level, clipping, noise rule with the out-of-fold
   scores and that threshold) and prints sensitivity / specificity and the reasons.
4. Refits the logistic model on all of train and prints the parameters to paste into
   ``DEFAULT_PARAMS`` (with ``--json``: also as JSON).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold

from lungapp.inference import quality

ROOT = Path(__file__).resolve().parents[1]
TARGET_SPECIFICITY = 0.90


def load_metrics(folder: Path):
    rows = []
    t_measure = 0.0
    for jf in sorted(folder.glob("*.json")):
        audio = jf.with_suffix(".flac")
        if not audio.exists():
            audio = jf.with_suffix(".wav")
        label = json.loads(jf.read_text())["record_annotation"]
        x, rate = sf.read(str(audio), dtype="float32", always_2d=True)
        x = x.mean(axis=1)
        t0 = time.perf_counter()
        m = quality.measure(x, rate)
        t_measure += time.perf_counter() - t0
        rows.append((jf.stem, jf.stem.split("_")[0], label, m))
    return rows, t_measure


def fit_noise_model(X: np.ndarray, y: np.ndarray):
    mean = X.mean(axis=0)
    scale = X.std(axis=0) + 1e-9
    clf = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000)
    clf.fit(_z(X, mean, scale), y)
    return mean, scale, clf


def _z(X, mean, scale):
    return np.clip((X - mean) / scale, -quality.Z_CLIP, quality.Z_CLIP)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", default=str(ROOT.parent / "shared/data/sprsound/train"))
    ap.add_argument("--json", action="store_true", help="also print the fitted parameters as JSON")
    a = ap.parse_args(argv)
    rows, t_measure = load_metrics(Path(a.folder))
    names = list(quality.NOISE_FEATURES)
    y = np.array([r[2] == "Poor Quality" for r in rows], dtype=int)
    groups = np.array([r[1] for r in rows])
    X = np.array([[r[3][k] for k in names] for r in rows])
    print(f"{len(rows)} recordings, {y.sum()} Poor Quality, {len(set(groups))} patients; "
          f"measure() {1000 * t_measure / len(rows):.2f} ms per recording")
    print("single-feature AUC (Poor Quality high):")
    for i, k in enumerate(names):
        print(f"  {k:18s} {roc_auc_score(y, X[:, i]):.3f}")

    skf = StratifiedGroupKFold(n_splits=4, shuffle=True, random_state=0)
    oof = np.zeros(len(rows))
    thresholds = []
    for tr, va in skf.split(X, y, groups):
        mean, scale, clf = fit_noise_model(X[tr], y[tr])
        oof[va] = clf.predict_proba(_z(X[va], mean, scale))[:, 1]
        # threshold from the training fold only: 90 % of its acceptable recordings pass
        s_tr = clf.predict_proba(_z(X[tr], mean, scale))[:, 1]
        thresholds.append(float(np.quantile(s_tr[y[tr] == 0], TARGET_SPECIFICITY)))
    auc = roc_auc_score(y, oof)
    thr = float(np.quantile(oof[y == 0], TARGET_SPECIFICITY))
    print(f"noise score, out-of-fold AUC {auc:.3f}; threshold at OOF specificity "
          f"{TARGET_SPECIFICITY:.2f}: {thr:.3f} (per-fold training thresholds "
          f"{', '.join(f'{t:.3f}' for t in thresholds)})")

    # the whole gate, noise rule on out-of-fold scores
    params = dict(quality.DEFAULT_PARAMS)
    flagged = np.zeros(len(rows), dtype=bool)
    reasons = collections.Counter()
    for i, (_, _, label, m) in enumerate(rows):
        reason = None
        if m["duration_s"] < params["min_duration_s"]:
            reason = "too short"
        elif m["rms_dbfs"] < params["min_rms_dbfs"]:
            reason = "too quiet"
        elif m["clip_fraction"] > params["max_clip_fraction"] or m["clip_run_ms"] >= params["min_clip_run_ms"]:
            reason = "clipped"
        elif m["flatness"] > params["max_flatness"] or oof[i] >= thr:
            reason = "too noisy"
        flagged[i] = reason is not None
        if reason:
            reasons[(label == "Poor Quality", reason)] += 1
    sens = flagged[y == 1].mean()
    spec = 1 - flagged[y == 0].mean()
    print(f"whole gate (out-of-fold): sensitivity {sens:.3f} (Poor Quality flagged), "
          f"specificity {spec:.3f} (others passed), score {(sens + spec) / 2:.3f}")
    by_label = collections.defaultdict(list)
    for f, r in zip(flagged, rows):
        by_label[r[2]].append(f)
    for lab, v in sorted(by_label.items()):
        print(f"  {lab:13s} flagged {np.mean(v):.3f} of {len(v)}")
    for (pq, reason), c in sorted(reasons.items()):
        print(f"  {'Poor Quality' if pq else 'other':12s} {reason:10s} {c}")

    mean, scale, clf = fit_noise_model(X, y)
    s_all = clf.predict_proba(_z(X, mean, scale))[:, 1]
    fitted = {
        "noise_mean": {k: round(float(v), 6) for k, v in zip(names, mean)},
        "noise_scale": {k: round(float(v), 6) for k, v in zip(names, scale)},
        "noise_coef": {k: round(float(v), 6) for k, v in zip(names, clf.coef_[0])},
        "noise_bias": round(float(clf.intercept_[0]), 6),
        "noise_threshold": round(thr, 4),
    }
    cv = {"auc": round(auc, 3), "sensitivity": round(float(sens), 3), "specificity": round(float(spec), 3),
          "n_poor": int(y.sum()), "n_other": int((y == 0).sum()),
          "full_fit_auc_on_train": round(roc_auc_score(y, s_all), 3)}
    print("GATE_CV =", json.dumps(cv))
    if a.json:
        print(json.dumps(fitted, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
