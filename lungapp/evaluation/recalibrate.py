"""Recalibrate a model to one clinic's stethoscope: a new threshold and calibration chosen
on a labelled folder of that clinic's recordings, with no training.

The bundled model ranks recordings from other stethoscopes well, but the threshold chosen
on its training collection can sit far from where another device's recordings need it
(see the card's "Beyond the training collection"). Choosing the threshold again on a few
dozen labelled recordings of the clinic's own device moves it there. :func:`recalibrate`
first measures whether that helps: patient-grouped folds, each fold decided at the
threshold chosen on the other folds' recordings only, against the model's own threshold
on the same recordings. Then it fits the threshold and the Platt scaling on every
recording of the folder and returns the new card; :func:`write_recalibrated` writes the
model folder (the model files are copied unchanged).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import shutil
from pathlib import Path
from typing import NamedTuple

import numpy as np

from lungapp.errors import LungappError
from lungapp.evaluation.calibration import apply_platt, fit_platt, reliability
from lungapp.inference.card import CALIBRATION_LIMITS

#: Fewer recordings (or fewer of either class) than this give a threshold that says more
#: about the recordings picked than about the device: refused.
MIN_RECORDINGS = 12
MIN_PER_CLASS = 4


@dataclasses.dataclass
class Recalibration:
    """What :func:`recalibrate` measured and chose. ``before`` / ``after``: binary
    metrics of the same held-out recordings at the model's own threshold and at the
    thresholds chosen on the other folds; ``per_fold``: each fold's scores;
    ``card``: the recalibrated model card; ``gain_lo`` / ``gain_hi``: the score gain's 90 %
    interval over the folder's patients (:func:`gain_interval`)."""

    folder: str
    n: int
    n_abnormal: int
    n_normal: int
    k: int
    grouped: bool
    before: dict
    after: dict
    per_fold: list
    card: object
    notes: list
    gain_lo: float
    gain_hi: float
    #: (file, why) of the recordings left out: unreadable, unusable labels, refused by the
    #: quality check (its probability on them is noise, as the app shows no result)
    left_out: list = dataclasses.field(default_factory=list)
    #: how many of ``left_out`` could not be used at all (unreadable, unusable labels)
    n_failed: int = 0

    @property
    def gain(self) -> float:
        return float(self.after["score"] - self.before["score"])

    def summary(self) -> str:
        """The before/after lines the CLI prints."""
        f = lambda m: (f"AUC {m['auc']:.3f}, sensitivity {m['sensitivity']:.3f}, "  # noqa: E731
                       f"specificity {m['specificity']:.3f}, score {m['score']:.3f}")
        split = "patients" if self.grouped else "recordings (no patient ids: optimistic)"
        lines = [f"{self.n} recordings ({self.n_abnormal} abnormal, {self.n_normal} normal), "
                 f"{self.k} folds by {split}; every recording decided by a threshold chosen "
                 "without it:",
                 f"  model's own threshold:   {f(self.before)}",
                 f"  recalibrated threshold:  {f(self.after)}",
                 f"  gain in score: {self.gain:+.3f} (90 % interval {self.gain_lo:+.3f} to "
                 f"{self.gain_hi:+.3f}, resampling the {split.split(' ')[0]})"]
        if self.gain <= 0:
            lines.append("  the recalibrated threshold did not do better on held-out recordings: "
                         "keep using the model's own threshold unless you have more recordings")
        if self.left_out:
            lines.append(f"left out: {len(self.left_out)} recording(s) or label file(s):")
            lines += [f"  {f}: {why}" for f, why in self.left_out]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def _folds(y: np.ndarray, groups: list | None, k: int, seed: int) -> list[np.ndarray]:
    """Fold index of each recording: patient-grouped and stratified (by recording when
    there are no patient ids); fewer folds when the data cannot fill ``k``."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    g = np.arange(len(y)) if groups is None else np.unique(np.asarray(groups, dtype=str),
                                                          return_inverse=True)[1]
    # No more folds than the rarer class has patients (or recordings): each fold must hold one.
    rarer = min((len(set(g[y == c].tolist())) for c in (0, 1)), default=0)
    for kk in range(min(k, rarer), 1, -1):
        fold_of = np.full(len(y), -1)
        splitter = (StratifiedKFold(kk, shuffle=True, random_state=seed) if groups is None else
                    StratifiedGroupKFold(kk, shuffle=True, random_state=seed))
        try:
            for i, (_, te) in enumerate(splitter.split(np.zeros(len(y)), y, None if groups is None else g)):
                fold_of[te] = i
        except ValueError:
            continue
        # every fold's training part must hold both classes to choose a threshold
        if all(len(set(y[fold_of != i].tolist())) == 2 for i in range(kk)):
            return [fold_of == i for i in range(kk)]
    raise LungappError("too few patients of each class to hold any out: label more recordings")


class HeldOut(NamedTuple):
    """:func:`held_out_check`'s answer: ``before`` / ``after`` binary metrics of the same
    held-out recordings at the model's own threshold and at the thresholds chosen on the
    other folds, each fold's rows, the fold masks, and a 90 % interval of the score's gain
    from resampling the patients whole."""

    before: dict
    after: dict
    per_fold: list
    masks: list
    gain_lo: float
    gain_hi: float


def held_out_check(y: np.ndarray, shown: np.ndarray, raw: np.ndarray, threshold: float,
                   patients: list | None, folds: int = 3, seed: int = 0) -> HeldOut:
    """The check :func:`recalibrate` reports before it fits anything: patient-grouped folds
    (by recording when ``patients`` is None), each decided at the threshold chosen on the
    other folds' ``raw`` probabilities, against the model's own ``threshold`` on the
    ``shown`` (calibrated) ones; ``after`` has the model's AUC and no single threshold."""
    from lungapp.evaluation.metrics import binary_metrics, choose_threshold

    masks = _folds(y, patients, folds, seed)
    after_pred = np.zeros(len(y), dtype=float)
    per_fold = []
    for i, m in enumerate(masks):
        t, _ = choose_threshold(y[~m], raw[~m])
        after_pred[m] = (raw[m] >= t)
        per_fold.append({"fold": i + 1, "n": int(m.sum()), "threshold_raw": float(t),
                         "before_score": binary_metrics(y[m], shown[m], threshold)["score"],
                         "after_score": binary_metrics(y[m], raw[m], t)["score"]})
    before = binary_metrics(y, shown, threshold)
    after = binary_metrics(y, after_pred, 0.5)
    after["auc"] = before["auc"]  # the ranking is the model's either way
    after["threshold"] = None
    lo, hi = gain_interval(y, shown >= threshold, after_pred >= 0.5, patients, seed=seed)
    return HeldOut(before, after, per_fold, masks, lo, hi)


def gain_interval(y: np.ndarray, before: np.ndarray, after: np.ndarray, patients: list | None,
                  resamples: int = 1000, level: float = 0.90, seed: int = 0) -> tuple[float, float]:
    """``level`` interval of the score gain of the decisions ``after`` over ``before``
    (booleans, one a recording), from resampling the patients whole (each recording its
    own patient when ``patients`` is None); resamples without both classes are dropped."""
    y, before, after = np.asarray(y, bool), np.asarray(before, bool), np.asarray(after, bool)
    ids = np.arange(len(y)) if patients is None else np.unique(np.asarray(patients, dtype=str),
                                                              return_inverse=True)[1]
    n_p = int(ids.max()) + 1
    # per patient: abnormal, abnormal called so before / after; normal, normal kept before / after
    cols = [y, y & before, y & after, ~y, ~y & ~before, ~y & ~after]
    counts = np.stack([np.bincount(ids, weights=c.astype(float), minlength=n_p) for c in cols], axis=1)
    w = np.random.default_rng(seed).multinomial(n_p, np.full(n_p, 1.0 / n_p), size=resamples)
    t = w @ counts
    ok = (t[:, 0] > 0) & (t[:, 3] > 0)
    if not ok.any():
        return float("nan"), float("nan")
    t = t[ok]
    gain = ((t[:, 2] - t[:, 1]) / t[:, 0] + (t[:, 5] - t[:, 4]) / t[:, 3]) / 2
    tail = 100 * (1 - level) / 2
    return float(np.percentile(gain, tail)), float(np.percentile(gain, 100 - tail))


def recalibrate(folder, predictor, *, folds: int = 3, layout: str | None = None, seed: int = 0,
                progress=None) -> Recalibration:
    """Measure and fit a recalibration of ``predictor``'s model on the labelled ``folder``
    (see the module docstring). Raises LungappError (naming the folder) when it holds too
    few usable recordings."""
    from lungapp.evaluation.folder import evaluate_folder
    from lungapp.evaluation.metrics import binary_metrics

    card = predictor.card
    res = evaluate_folder(folder, predictor, progress=progress, layout=layout)
    left_out = [(i["file"], i["error"]) for i in res.get("failed", [])]
    left_out += [(i["file"], f"unusable: {i['reason']}") for i in res.get("unusable", [])]
    n_failed = len(left_out)
    left_out += [(r["file"], "refused by the quality check (the app shows no result for it)")
                 for r in res["recordings"] if r.get("quality") == "refused"]
    rows = [r for r in res["recordings"] if r.get("quality") != "refused"]
    y = np.array([r["truth"] == "abnormal" for r in rows], dtype=int)
    if len(y) < MIN_RECORDINGS or min(y.sum(), len(y) - y.sum()) < MIN_PER_CLASS:
        raise LungappError(f"{len(y)} scorable recordings ({int(y.sum())} abnormal): recalibrating "
                           f"needs at least {MIN_RECORDINGS}, with {MIN_PER_CLASS} of each class",
                           folder)
    shown = np.array([r["abnormal_probability"] for r in rows], dtype=float)
    raw = np.asarray(card.uncalibrate(shown), dtype=float)
    patients = [r.get("patient") for r in rows]
    grouped = all(patients)
    check = held_out_check(y, shown, raw, card.threshold, patients if grouped else None, folds, seed)
    before, after, per_fold, masks = check.before, check.after, check.per_fold, check.masks
    a, b = fit_platt(y, raw)
    if a < CALIBRATION_LIMITS["a"][0]:
        raise LungappError(f"the model ranks these recordings no better than chance (AUC "
                           f"{binary_metrics(y, raw, 0.5)['auc']:.2f}): a new threshold cannot help; "
                           "this device needs a model trained on its recordings "
                           "(lungapp train FOLDER --init-from bundled)", folder)
    if not (a <= CALIBRATION_LIMITS["a"][1] and abs(b) <= CALIBRATION_LIMITS["b"][1]):
        raise LungappError(f"the calibration fitted on these recordings is extreme (slope {a:.3g}, "
                           f"offset {b:.3g}): label more recordings", folder)
    new_card = _recalibrated_card(card, y, raw, masks, folder)
    new_card.external_checks = [*card.external_checks, _check_record(folder, before, after, check)]
    notes = [] if grouped else ["no patient ids in this folder: folds split recordings, so "
                                "one patient's recordings can be on both sides"]
    return Recalibration(str(folder), len(y), int(y.sum()), int(len(y) - y.sum()), len(masks),
                         grouped, before, after, per_fold, new_card, notes, check.gain_lo, check.gain_hi,
                         left_out, n_failed)


def _check_record(folder, before: dict, after: dict, check: HeldOut):
    """The card's record of the recalibration check (held-out figures, both thresholds)."""
    from lungapp.inference.card_schema import ExternalCheck

    return ExternalCheck(
        name=f"{Path(folder).name}: recalibration check (held-out patients, thresholds "
             "chosen on the other folds)",
        command=f"lungapp recalibrate {folder}", n=after["n"], n_abnormal=after["n_abnormal"],
        n_normal=after["n_normal"], auc=after["auc"], sensitivity=after["sensitivity"],
        specificity=after["specificity"], score=after["score"],
        extra={"model_threshold_score": before["score"],
               "model_threshold_sensitivity": before["sensitivity"],
               "model_threshold_specificity": before["specificity"],
               "gain_interval_90": [round(v, 4) if np.isfinite(v) else None
                                    for v in (check.gain_lo, check.gain_hi)]})


def _recalibrated_card(card, y: np.ndarray, raw: np.ndarray, masks: list, folder):
    """The model's card with the threshold and the calibration fitted on all of ``raw``."""
    from lungapp.evaluation.metrics import choose_threshold
    from lungapp.inference.card_schema import Calibration

    t_raw, _ = choose_threshold(y, raw)
    a, b = fit_platt(y, raw)
    nested = np.zeros(len(y))
    for m in masks:
        nested[m] = apply_platt(raw[m], *fit_platt(y[~m], raw[~m]))
    shown = apply_platt(raw, a, b)
    rel = reliability(y, shown)
    where = f"{len(y)} recordings of {Path(folder).name} (lungapp recalibrate)"
    calibration = Calibration(
        method="platt", a=a, b=b, fitted_on=where, raw_threshold=float(t_raw),
        ece_raw=reliability(y, raw)["ece"], ece=rel["ece"], nested_ece=reliability(y, nested)["ece"],
        brier=rel["brier"], reliability=rel["bins"])
    now = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
    return dataclasses.replace(
        card, name=f"{card.name}-recalibrated-{Path(folder).resolve().name}", version=card.version,
        created=now,
        threshold=float(apply_platt(t_raw, a, b)), calibration=calibration,
        threshold_rule=(f"maximise score = (sensitivity + specificity) / 2 on {where}; the "
                        f"model's own threshold ({card.threshold:.3f}) was chosen on its "
                        "training folds"),
        description=(card.description + f"; threshold and calibration refitted on {where} on "
                     f"{now[:10]}, the model files unchanged").lstrip("; "))


def write_recalibrated(model_dir, rec: Recalibration, out) -> Path | None:
    """Write the recalibrated model folder ``out``: the model's files copied unchanged,
    the new card and its text; atomically (a staging folder moved into place). Returns
    where a model folder it replaced was kept (None: nothing was replaced)."""
    from lungapp.fsutil import make_staging, publish_dir
    from lungapp.inference.card import write_card
    from lungapp.training.card_text import card_markdown

    model_dir, out = Path(model_dir), Path(out)
    card = rec.card
    files = [*card.model_files, *(o.file for o in card.onnx.values())]
    files += sorted(p.name for p in model_dir.glob("curves*.json") if p.is_file() and not p.is_symlink())
    staging = make_staging(out)
    try:
        for f in files:
            shutil.copyfile(model_dir / f, staging / f)
        write_card(staging, card)
        (staging / "MODEL_CARD.md").write_text(card_markdown(card))
        return publish_dir(staging, out)
    except OSError as exc:  # a full disk, a folder that went read-only: --out is the place named
        raise LungappError(f"the model folder cannot be written ({exc.strerror or exc}); nothing "
                           "was written there", out) from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
