"""The training engine: patient-grouped k-fold cross-validated training with an honest
report, saving a model folder (Keras file(s) + model card + training curves) atomically.

Flow of :func:`train`:

1. read the folder (:func:`lungapp.data.read_folder`), map labels to the task, and refuse
   unfit datasets with a :class:`DatasetError` before any training (:func:`check_dataset`);
2. decode every recording once and cache its feature windows in memory (unreadable
   files are listed, skipped and counted; above ``max_bad_share`` the run aborts);
3. split recordings into k folds, stratified and grouped by patient (:mod:`.splits`);
4. per fold: carve a patient-grouped validation split out of the *training* folds (for
   early stopping / learning-rate decisions; the held-out fold is never looked at), train,
   then score the held-out recordings (out-of-fold predictions);
5. choose the decision threshold on the out-of-fold predictions, compute per-fold and
   overall metrics (mean +- sd), a device-shift check, and pooling alternatives;
6. write the artifact (the ensemble of fold models, or one model retrained on all data)
   into a staging folder next to ``out`` and publish it with :func:`publish_dir`.

Every recipe lives in :data:`PRESETS`; explicit options override a preset's values.
Progress is reported through a ``progress(event: dict)`` callable (the CLI prints the
events as JSON lines) and a ``should_stop()`` callable is polled between batches so a
cancelled run stops within one batch and leaves ``out`` untouched.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import io
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numpy as np

from lungapp.dsp.spectrogram import SpectrogramConfig
from lungapp.errors import AudioError, DatasetError, LungappError
from lungapp.fsutil import make_staging
from lungapp.training.augment import DEFAULT_POLICY, Augmenter, device_shift
from lungapp.inference.features import FeatureConfig, image_features, windows_from_samples
from lungapp.training.prefetch import Prefetcher
from lungapp.training.splits import make_folds, validation_split

FOUR_CLASSES = ["Normal", "CAS", "DAS", "CAS & DAS"]
BINARY_CLASSES = ["Normal", "Abnormal"]
TASKS = ("binary", "4class")
ARTIFACTS = ("ensemble", "retrain")
SCHEDULES = ("cosine", "plateau", "constant")
WINDOW_LABELS = ("record", "events")
POOLINGS = ("mean", "max", "topk:2", "topk:3")
# Candidate ways to pool [CAS, DAS] window flags when naming an abnormal recording's class
# (the abnormal probability keeps the card's pooling): a sound type present in a quarter of
# a recording's windows has a low mean flag but a high upper quartile. Chosen and checked
# on out-of-fold predictions by evaluate_oof.
CLASS_POOLINGS = ("quantile:0.75", "quantile:0.9", "topk:3")
OUTPUTS = ("softmax", "flags")
SAMPLINGS = ("shuffle", "balanced")
PRECISIONS = ("float32", "mixed_bfloat16", "auto")

# SpecAugment and a level shift (benchmarks/model_research.py): the constant noise floor,
# tilt, roll and mixup of DEFAULT_POLICY lowered out-of-fold AUC for the recommended recipe.
SPECAUGMENT_POLICY = {"image": False, "gain_db": 5.0, "tilt_db_per_octave": 0.0, "noise_prob": 0.0,
                      "roll": 0.0, "time_masks": 1, "freq_masks": 2, "mixup_alpha": 0.0}
# ... plus textured white noise at 0-30 dB in-band SNR on half the windows and a band limit
# (1.5-3 kHz) on a quarter. On fold 1 of SPRSound train (4 classes, 2026-11-26,
# scratch runs of this engine): AUC 0.915 against 0.920 without them, and 0.890 against
# 0.746 on the device-shifted recordings (drop 0.026 against 0.175). Softer (10-30 dB, no
# time mask) lowered AUC, four-class and device-shifted AUC on two paired seeds, and
# stronger (noise on 3/4 of the windows, two time masks) lowered AUC and four-class more
# (docs/model_checks.md, 2026-11-28).
ROBUST_POLICY = {**SPECAUGMENT_POLICY, "snr_prob": 0.5, "snr_db": [0.0, 30.0],
                 "band_limit_prob": 0.25, "band_limit_hz": [1500.0, 3000.0]}

# ------------------------------------------------------------------------------ presets
# The one place recipes are defined. "seed" reproduces the student project (DESIGN.md);
# "recommended" is the best recipe measured on patient-grouped CV (see the report in
# issue 3 / the README). Change a recipe here and nowhere else.

SEED_FEATURES = FeatureConfig(
    # STFT of the 15-s clip at 4 kHz: 256-sample window, 129 bins, hop 64 -> 934 frames
    # (the seed's 129 x 934 px images), resized to 64 x 64 and scaled to [0, 1].
    spectrogram=SpectrogramConfig(rate=4000, win_length=256, hop_length=64, n_fft=256,
                                  window="hann", scale="linear", min_db=-100.0, max_db=0.0),
    window_s=15.0, hop_s=15.0, resize=(64, 64))

RECOMMENDED_FEATURES = FeatureConfig(
    # 8 kHz log-mel, 64 bands 50-4000 Hz (crackle energy above 2 kHz counts), 32 ms window,
    # 16 ms hop; 2-s windows every 0.5 s (124 x 64 inputs). Chosen by patient-grouped
    # 4-fold CV on SPRSound train (benchmarks/model_research.py): with event-level window
    # labels and mean pooling it gave AUC 0.883 / score 0.813 against 0.854 / 0.790 for
    # record labels, the best of the recipes measured.
    spectrogram=SpectrogramConfig(rate=8000, win_length=256, hop_length=128, n_fft=256,
                                  window="hann", scale="mel", n_mels=64, fmin=50.0, fmax=4000.0,
                                  min_db=-100.0, max_db=0.0),
    window_s=2.0, hop_s=0.5)

FINE_FEATURES = FeatureConfig(
    # RECOMMENDED_FEATURES at twice the time resolution: 16 ms window, 8 ms hop (249 x 64
    # inputs), so a crackle (a few ms) is not smeared over a 32-ms frame. Same folds, same
    # seed, 40 epochs (2026-11-26/27, runs of this engine): out-of-fold AUC 0.925 / score
    # 0.853 / four-class 0.724 against 0.911 / 0.838 / 0.709, better on each of the 4 folds
    # (AUC 0.940 / 0.939 / 0.926 / 0.909 against 0.923 / 0.921 / 0.921 / 0.885); about twice
    # the compute per window.
    spectrogram=SpectrogramConfig(rate=8000, win_length=128, hop_length=64, n_fft=256,
                                  window="hann", scale="mel", n_mels=64, fmin=50.0, fmax=4000.0,
                                  min_db=-100.0, max_db=0.0),
    window_s=2.0, hop_s=0.5)

PRESETS: dict[str, dict] = {
    "seed": {
        # 20 epochs: the middle of the seed's 10-30. Its CNN costs about 240 MFLOP per image
        # per step, so 4 folds of 30 epochs took 11.9 min here even in bfloat16 (17.8 min in
        # float32), over the 10-min goal (benchmarks/bench_train.py; --epochs 30 restores it).
        "arch": "seed_cnn", "features": SEED_FEATURES, "epochs": 20, "batch_size": 16,
        "lr": 1e-3, "schedule": "plateau", "early_stopping": 0, "monitor": "val_loss",
        "augment": {**{k: 0 for k in DEFAULT_POLICY}, "image": True, "noise_db": [-70.0, -45.0]},
        "class_weights": False, "pooling": "mean", "window_labels": "record",
        "outputs": "softmax", "artifact": "ensemble", "sampling": "shuffle", "steps_per_epoch": 0,
        "val_fraction": 0.15, "precision": "auto",
    },
    "recommended": {
        # benchmarks/model_research.py's recipe: batches drawn a quarter from CAS windows, a
        # quarter from DAS windows and half from all; SpecAugment + level shift, textured
        # noise and band limits (ROBUST_POLICY); 40 epochs of 120 batches (307 k windows
        # per fold) on the whole training folds (no validation split: a fixed schedule, the
        # last weights kept). 40 epochs against 25, same folds (2026-11-26): out-of-fold
        # AUC 0.911 / score 0.838 / four-class 0.709 against 0.904 / 0.826 / 0.693.
        "arch": "lungcnn", "features": RECOMMENDED_FEATURES, "epochs": 40, "batch_size": 64,
        "lr": 2e-3, "schedule": "cosine", "early_stopping": 0, "monitor": "val_auc",
        "augment": ROBUST_POLICY, "class_weights": False, "pooling": "mean",
        "window_labels": "events", "outputs": "flags", "artifact": "ensemble",
        "sampling": "balanced", "steps_per_epoch": 120, "val_fraction": 0.0,
        "precision": "float32",
    },
}
# "bundled": the recipe of the app's own model. The recommended recipe on FINE_FEATURES,
# the most accurate measured, at about twice the training time (over the 30-min goal of
# the Train tab on 2 cores, hence not the default) and, as an ensemble of 4, about 3.5x the
# prediction time: so after the 4-fold CV one model is retrained on all data with the
# same fixed schedule (one model at 249 x 64 costs about what the 4-model ensemble at
# 124 x 64 did), and the CV figures estimate that model's recipe.
PRESETS["bundled"] = {**PRESETS["recommended"], "features": FINE_FEATURES, "artifact": "retrain"}
# "bundled-4s": the bundled recipe on 4-s windows of the same spectrogram (more of a breath
# per window; about twice the compute per window, so about 65 min per run here). Its runs
# join the 2-s runs in the bundled model's mixed ensemble (lungapp.training.combine), where
# they add what re-rolls of the 2-s recipe do not (out-of-fold AUC, seed 0, 2026-11-27:
# 0.928 alone at a 1-s step against 0.922-0.929 for 2-s runs; see the README).
PRESETS["bundled-4s"] = {**PRESETS["bundled"],
                         "features": dataclasses.replace(FINE_FEATURES, window_s=4.0, hop_s=1.0)}

_EPS = 1e-7


class Cancelled(Exception):
    """The run was stopped on request (SIGTERM / SIGINT); nothing was written to ``out``."""


@dataclass
class TrainOptions:
    """Everything that defines a training run (stored in the card's ``training.options``).

    Build with :meth:`from_preset` so a preset supplies the defaults and explicit values
    override them.
    """

    preset: str = "recommended"
    task: str = "binary"
    arch: str = "cnn4"
    features: FeatureConfig = RECOMMENDED_FEATURES
    folds: int = 4
    epochs: int = 20
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0
    augment: dict | None = field(default_factory=lambda: dict(DEFAULT_POLICY))
    schedule: str = "cosine"
    early_stopping: int = 5  # patience in epochs; 0 = off
    monitor: str = "val_auc"  # "val_auc" (recording level) or "val_loss" (window level)
    class_weights: bool = True
    pooling: str = "mean"
    window_labels: str = "record"
    outputs: str = "softmax"  # "softmax" over the classes, or "flags": sigmoid [CAS, DAS]
    artifact: str = "ensemble"
    val_fraction: float = 0.15  # share of the training folds' patients held out; 0 = none
    sampling: str = "shuffle"  # "shuffle": each epoch one pass; "balanced": see fit_one
    steps_per_epoch: int = 0  # batches per epoch; 0 = one pass over the training windows
    max_bad_share: float = 0.1
    device_shift: bool = True
    weights: str | None = None  # a backbone weights file (inception_v3 / resnet50)
    precision: str = "float32"  # training arithmetic: float32, mixed_bfloat16 or auto
    name: str = ""

    @classmethod
    def from_preset(cls, preset: str = "recommended", **overrides) -> "TrainOptions":
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        base = dict(PRESETS[preset])
        base["augment"] = dict(base["augment"]) if base["augment"] is not None else None
        base.update({k: v for k, v in overrides.items() if v is not None})
        opts = cls(preset=preset, **base)
        opts.validate()
        return opts

    def validate(self) -> None:
        from lungapp.training.archs import ARCHS

        p = []
        if self.task not in TASKS:
            p.append(f"task must be one of {TASKS}")
        if self.arch not in ARCHS:
            p.append(f"arch must be one of {ARCHS}")
        if not (isinstance(self.folds, int) and self.folds >= 2):
            p.append("folds must be an integer >= 2")
        if not (isinstance(self.epochs, int) and self.epochs >= 1):
            p.append("epochs must be an integer >= 1")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            p.append("batch size must be an integer >= 1")
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr < 1):
            p.append("learning rate must be in (0, 1)")
        if self.schedule not in SCHEDULES:
            p.append(f"schedule must be one of {SCHEDULES}")
        if self.monitor not in ("val_auc", "val_loss"):
            p.append("monitor must be val_auc or val_loss")
        if self.pooling not in POOLINGS and not self.pooling.startswith("topk:"):
            p.append(f"pooling must be one of {POOLINGS}")
        if self.window_labels not in WINDOW_LABELS:
            p.append(f"window_labels must be one of {WINDOW_LABELS}")
        if self.outputs not in OUTPUTS:
            p.append(f"outputs must be one of {OUTPUTS}")
        if self.artifact not in ARTIFACTS:
            p.append(f"artifact must be one of {ARTIFACTS}")
        if not 0 <= self.max_bad_share < 1:
            p.append("max_bad_share must be in [0, 1)")
        if not 0 <= self.val_fraction < 0.5:
            p.append("val_fraction must be in [0, 0.5)")
        if self.sampling not in SAMPLINGS:
            p.append(f"sampling must be one of {SAMPLINGS}")
        if self.precision not in PRECISIONS:
            p.append(f"precision must be one of {PRECISIONS}")
        if not (isinstance(self.steps_per_epoch, int) and self.steps_per_epoch >= 0):
            p.append("steps_per_epoch must be an integer >= 0")
        if self.val_fraction == 0 and (self.early_stopping or self.schedule == "plateau"):
            p.append("early stopping and the plateau schedule need a validation split "
                     "(val_fraction > 0)")
        if p:
            raise ValueError("invalid training options: " + "; ".join(p))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["features"] = self.features.to_dict()
        return d


# ---------------------------------------------------------------------------- the data


def task_label(label: str, task: str) -> str | None:
    """A record label's class for ``task`` (None: not usable, e.g. Poor Quality)."""
    from lungapp.data.labels import ABNORMAL, POOR, binary_label

    if label == POOR:
        return None
    if task == "binary":
        return "Normal" if binary_label(label) == "normal" else "Abnormal"
    if label == ABNORMAL:
        return None
    return label if label in FOUR_CLASSES else None


def check_dataset(labels: list[str], patients: list | None, k: int, classes: list[str],
                  where: str) -> list[str]:
    """Refuse a dataset unfit for k-fold training; returns warnings.

    Raises DatasetError naming the folder: no usable example, a single class, a class
    with fewer examples (or, with patient ids, fewer patients) than folds.
    """
    if not labels:
        raise DatasetError("no usable labelled recordings for this task (nothing to train on)", where)
    counts = {c: labels.count(c) for c in classes}
    present = [c for c in classes if counts[c]]
    if len(present) < 2:
        only = present[0] if present else "none"
        raise DatasetError(f"only one class present ({only}: {counts.get(only, 0)} recordings); "
                           f"training needs at least two of {', '.join(classes)}", where)
    warnings = []
    missing = [c for c in classes if not counts[c]]
    if missing:
        raise DatasetError(f"class(es) {', '.join(missing)} have no examples; this task needs "
                           f"every class (counts: {counts})", where)
    few = [f"{c} ({counts[c]})" for c in classes if counts[c] < k]
    if few:
        raise DatasetError(f"class(es) with fewer examples than the {k} folds: {', '.join(few)}; "
                           "add recordings or use fewer folds (--folds)", where)
    if patients is not None:
        per = {c: len({p for p, l in zip(patients, labels) if l == c}) for c in classes}
        few = [f"{c} ({per[c]} patients)" for c in classes if per[c] < k]
        if few:
            raise DatasetError(f"class(es) with fewer patients than the {k} folds: {', '.join(few)}; "
                               "patient-grouped folds need each class in every fold's patients "
                               "(add patients or use fewer folds)", where)
        if len(set(patients)) < k:
            raise DatasetError(f"{len(set(patients))} patients cannot make {k} patient-grouped folds",
                               where)
    return warnings


@dataclass
class Recording:
    """One usable recording with its cached feature windows."""

    path: str
    label: str  # task class
    patient: str | None
    X: np.ndarray  # (n_windows, *input_shape) float16
    starts: np.ndarray
    window_labels: np.ndarray  # (n_windows,) class index of each window
    duration_s: float
    X_shift: np.ndarray | None = None  # device-shifted windows (same shape), or None


def _window_classes(rec_label: str, events, starts, fc: FeatureConfig, task: str,
                    classes: list[str], mode: str) -> np.ndarray:
    """Class index of each window: the recording's label, or (mode "events", where the
    recording has timed events) the union of the adventitious events overlapping the
    window by at least min(0.25 s, half the event's length): a short crackle counts when
    mostly inside, a long wheeze once a quarter second of it is."""
    from lungapp.data.labels import event_flags, label_from_flags

    idx = classes.index(rec_label)
    out = np.full(len(starts), idx, dtype=np.int64)
    if mode != "events" or not events:
        return out
    for i, s in enumerate(starts):
        e_end = s + fc.window_s
        cas = das = False
        for ev in events:
            if min(e_end, ev.end_s) - max(s, ev.start_s) >= min(0.25, 0.5 * (ev.end_s - ev.start_s)):
                try:
                    c, d = event_flags(ev.type)
                except ValueError:
                    continue
                cas, das = cas or c, das or d
        out[i] = classes.index(task_label(label_from_flags(cas, das), task))
    return out


def extract_features(examples, task: str, classes: list[str], opts: TrainOptions, *,
                     progress: Callable[[dict], None], should_stop: Callable[[], bool],
                     root: str) -> tuple[list[Recording], list[tuple[str, str]]]:
    """Decode and window every example once. Returns (recordings, bad) where bad lists
    ``(path, reason)`` of unreadable files."""
    from lungapp.audio import load_audio

    fc = opts.features
    recs, bad = [], []
    n = len(examples)
    step = max(1, n // 20)
    for i, ex in enumerate(examples):
        if should_stop():
            raise Cancelled()
        label = task_label(ex.label, task)
        try:
            if ex.kind == "image":
                X = image_features(ex.path, fc)
                starts, dur, Xs = np.zeros(1), 0.0, None
            else:
                audio = load_audio(ex.path, rate=fc.rate)
                x = audio.samples
                if len(x) < fc.spectrogram.win_length:
                    raise AudioError(f"too short ({len(x)} samples) for one spectrogram frame", ex.path)
                X, starts = windows_from_samples(x, fc)
                dur = len(x) / fc.rate
                Xs = None
                if opts.device_shift:
                    rng = np.random.default_rng(int(hashlib.sha256(ex.path.encode()).hexdigest()[:8], 16))
                    Xs, _ = windows_from_samples(device_shift(x, fc.rate, rng), fc)
                    Xs = Xs.astype(np.float16)
        except (AudioError, DatasetError) as exc:
            bad.append((ex.path, exc.problem if isinstance(exc, LungappError) else str(exc)))
            continue
        wl = _window_classes(label, ex.events, starts, fc, task, classes, opts.window_labels)
        recs.append(Recording(ex.path, label, ex.patient, X.astype(np.float16), starts, wl, dur, Xs))
        if (i + 1) % step == 0 or i + 1 == n:
            progress({"event": "extract", "done": i + 1, "total": n, "bad": len(bad)})
    return recs, bad


def file_list_hash(recs: list[Recording], root: str) -> str:
    """sha256 of the sorted (relative path, task label) list: identifies the training data."""
    return labels_hash((os.path.relpath(r.path, root), r.label) for r in recs)


def labels_hash(pairs) -> str:
    """:func:`file_list_hash` of (relative path, task label) pairs."""
    h = hashlib.sha256()
    for rel, label in sorted(pairs):
        h.update(f"{rel}\t{label}\n".encode())
    return h.hexdigest()


# ----------------------------------------------------------------------------- training


def distribution_scope():
    """A context for building and training models across all visible GPUs.

    With more than one GPU: Keras 3's distribution API (``keras.distribution.DataParallel``)
    on the JAX backend; on the TensorFlow backend (the default here), whose Keras 3
    distribution support is still a prototype, TensorFlow's own ``MirroredStrategy``
    (data parallel). One GPU or none: a no-op. Returns (context manager, description).
    """
    import contextlib

    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_logical_devices("GPU")
        if len(gpus) > 1:
            strategy = tf.distribute.MirroredStrategy()
            return strategy.scope(), f"tf.distribute.MirroredStrategy over {len(gpus)} GPUs"
        return contextlib.nullcontext(), f"single device ({'GPU' if gpus else 'CPU'})"
    devices = keras.distribution.list_devices("gpu") if backend == "jax" else []
    if len(devices) > 1:
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        return contextlib.nullcontext(), f"keras.distribution.DataParallel over {len(devices)} GPUs"
    return contextlib.nullcontext(), "single device"


def output_spec(task: str, classes: list[str], outputs: str):
    """(card output_kind, output names, targets) for a run. ``targets`` (n_classes,
    n_outputs) maps a window's class index to its training target: one-hot for
    ``softmax``; for ``flags``, independent sigmoid flags [CAS, DAS] (4 classes: CAS & DAS
    sets both) or [abnormal] (binary), which the card turns back into class probabilities."""
    if outputs == "softmax":
        return "softmax", list(classes), np.eye(len(classes), dtype=np.float32)
    if task == "4class":
        return "sigmoid", ["CAS", "DAS"], np.array([[0, 0], [1, 0], [0, 1], [1, 1]], np.float32)
    return "sigmoid", ["abnormal"], np.array([[0], [1]], np.float32)


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
    return spec[0] == "sigmoid" and list(spec[1]) == ["CAS", "DAS"]


def class_pooled_probs(windows: list, rule: str, spec) -> dict[str, np.ndarray] | None:
    """For [CAS, DAS] flag models: each :data:`CLASS_POOLINGS` candidate's recording class
    probabilities (n, 4) from the recordings' window outputs, for
    :func:`evaluate_oof`'s ``class_probs``; None for other models."""
    if not is_flag_spec(spec):
        return None
    return {c: np.stack([pool_probs(w, rule, spec, c) for w in windows]) for c in CLASS_POOLINGS}


def flag_weights(targets: np.ndarray) -> np.ndarray:
    """Per-window weights (mean 1) for flag targets (n, k): windows positive for flag j
    together weigh 1/(2k) of the total, all windows 1/2, as if batches were drawn half
    from all windows and half evenly from each flag's positives (rare events matter)."""
    n, k = targets.shape
    w = np.full(n, 0.5 / n)
    for j in range(k):
        pos = targets[:, j] > 0.5
        if pos.any():
            w[pos] += 0.5 / k / pos.sum()
    return (w * n).astype(np.float32)


def _predict(model, X: np.ndarray, batch: int = 256) -> np.ndarray:
    """Window softmax outputs (direct model calls; model.predict is slow per call)."""
    outs = [np.asarray(model(X[i: i + batch].astype(np.float32), training=False))
            for i in range(0, len(X), batch)]
    return np.concatenate(outs).astype(np.float64) if outs else np.zeros((0, 0))


def _recording_probs(model, recs: list[Recording], rule: str, shifted: bool = False, spec=None):
    """(n_recordings, n_classes) pooled probabilities and per-recording window outputs."""
    Xs = [r.X_shift if shifted else r.X for r in recs]
    lens = [len(x) for x in Xs]
    W = _predict(model, np.concatenate(Xs))
    parts = np.split(W, np.cumsum(lens)[:-1])
    return np.stack([pool_probs(w, rule, spec) for w in parts]), parts


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if len(set(y.tolist())) == 2 else float("nan")


def _lr_at(opts: TrainOptions, step: int, total: int) -> float:
    if opts.schedule == "cosine":
        warm = max(1, total // 50)
        if step < warm:
            return opts.lr * (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return opts.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))
    return opts.lr


def _positive_sets(Y: np.ndarray, yw: np.ndarray, flags: bool) -> list[np.ndarray]:
    """Indices of the windows positive for each flag (flags) or in each abnormal class
    (softmax); empty sets are left out."""
    if flags:
        sets = [np.flatnonzero(Y[:, j] > 0.5) for j in range(Y.shape[1])]
    else:
        sets = [np.flatnonzero(yw == c) for c in range(1, int(yw.max(initial=0)) + 1)]
    return [s for s in sets if len(s)]


def _epoch_order(rng: np.random.Generator, n: int, steps: int, bs: int,
                 pos_sets: list[np.ndarray] | None) -> np.ndarray:
    """Window indices for one epoch of ``steps`` full batches of ``bs`` (full batches:
    one traced graph per model).

    ``pos_sets`` None: shuffled passes over all ``n`` windows. Otherwise balanced batches
    (the recommended recipe): each batch draws ``bs // (2 k)`` windows, with replacement,
    from each of the k positive sets and the rest uniformly from all windows, so rare
    adventitious windows make about half of every batch.
    """
    if not pos_sets:
        reps = int(math.ceil(steps * bs / n))
        return np.concatenate([rng.permutation(n) for _ in range(reps)])[: steps * bs]
    q = bs // (2 * len(pos_sets))
    parts = [s[rng.integers(0, len(s), (steps, q))] for s in pos_sets]
    parts.append(rng.integers(0, n, (steps, bs - q * len(pos_sets))))
    return np.concatenate(parts, axis=1).reshape(-1)


def fit_one(arch_model, train_recs: list[Recording], val_recs: list[Recording], opts: TrainOptions,
            classes: list[str], *, seed: int, fold: int | str, progress, should_stop) -> dict:
    """Train ``arch_model`` (compiled) on ``train_recs``' windows; early stopping and
    plateau decisions use ``val_recs`` only. Restores the best weights. Returns curves."""
    model = arch_model
    n_cls = len(classes)
    spec = output_spec(opts.task, classes, opts.outputs)
    flags = spec[0] == "sigmoid"
    X = np.concatenate([r.X for r in train_recs])
    yw = np.concatenate([r.window_labels for r in train_recs])
    Y = spec[2][yw]
    counts = np.bincount(yw, minlength=n_cls).astype(np.float64)
    cw = np.where(counts > 0, len(yw) / (n_cls * np.maximum(counts, 1)), 0.0) if opts.class_weights \
        else np.ones(n_cls)
    cw = cw.astype(np.float32)
    w_flags = flag_weights(Y) if flags and opts.class_weights else None
    aug = Augmenter(opts.features.spectrogram, opts.augment, seed=seed)
    rng = np.random.default_rng(seed)
    bs = opts.batch_size
    steps = opts.steps_per_epoch or int(math.ceil(len(X) / bs))
    pos_sets = _positive_sets(Y, yw, flags) if opts.sampling == "balanced" else None
    total = steps * opts.epochs
    Xv = np.concatenate([r.X for r in val_recs]) if val_recs else None
    yv_w = np.concatenate([r.window_labels for r in val_recs]) if val_recs else None
    Yv = spec[2][yv_w] if val_recs else None
    yv_rec = np.array([0 if r.label == classes[0] else 1 for r in val_recs])

    def batches():
        # Batches do not depend on the model, so a thread makes them while the model
        # trains on the previous one (the same random streams in the same order: the
        # same batches as making them inline).
        for _ in range(opts.epochs):
            order = _epoch_order(rng, len(X), steps, bs, pos_sets)
            for b in range(steps):
                idx = order[b * bs:(b + 1) * bs]
                xb, yb = aug(X[idx].astype(np.float32), Y[idx])
                if flags:
                    wb = w_flags[idx] if w_flags is not None else np.ones(len(idx), np.float32)
                else:
                    wb = yb @ cw
                yield xb, yb, wb

    feed = Prefetcher(batches(), depth=4)
    try:
        return _fit_loop(model, feed, X, opts, spec, flags, steps, total, Xv, Yv, yv_w, yv_rec,
                         val_recs, fold, progress, should_stop, cw)
    finally:
        feed.close()


def _fit_loop(model, feed, X, opts, spec, flags, steps, total, Xv, Yv, yv_w, yv_rec, val_recs,
              fold, progress, should_stop, cw) -> dict:
    best, best_weights, wait = None, None, 0
    plateau_best, plateau_wait, lr_scale = np.inf, 0, 1.0
    curves = []
    step = 0
    t_train = 0.0
    n_seen = 0
    bs = opts.batch_size
    for epoch in range(opts.epochs):
        t0 = time.perf_counter()
        sums = {"loss": 0.0, "accuracy": 0.0}
        for b in range(steps):
            if should_stop():
                raise Cancelled()
            xb, yb, wb = feed.next()
            lr = _lr_at(opts, step, total) * lr_scale
            model.optimizer.learning_rate.assign(lr)
            logs = model.train_on_batch(xb, yb, sample_weight=wb, return_dict=True)
            for key in sums:
                sums[key] += float(logs.get(key, np.nan))
            step += 1
        if epoch > 0 or opts.epochs == 1:  # epoch 1 includes graph tracing
            t_train += time.perf_counter() - t0
            n_seen += steps * bs
        row = {"epoch": epoch + 1, "loss": sums["loss"] / steps, "accuracy": sums["accuracy"] / steps,
               "lr": float(lr)}
        if val_recs:
            Pw = _predict(model, Xv)
            if flags:
                pc = np.clip(Pw, _EPS, 1 - _EPS)
                row["val_loss"] = float(-np.mean(Yv * np.log(pc) + (1 - Yv) * np.log(1 - pc)))
            else:
                row["val_loss"] = float(-np.mean(np.log(Pw[np.arange(len(yv_w)), yv_w] + _EPS)))
            rp = np.stack([pool_probs(w, opts.pooling, spec) for w in
                           np.split(Pw, np.cumsum([len(r.X) for r in val_recs])[:-1])])
            row["val_auc"] = _auc(yv_rec, 1 - rp[:, 0])
            row["val_accuracy"] = float(np.mean((Pw > 0.5) == (Yv > 0.5))) if flags \
                else float(np.mean(Pw.argmax(1) == yv_w))
        row["seconds"] = round(time.perf_counter() - t0, 3)
        curves.append(row)
        progress({"event": "epoch_end", "fold": fold, "epoch": epoch + 1, "epochs": opts.epochs,
                  "metrics": {k: v for k, v in row.items() if k != "epoch"}})
        if not val_recs:
            continue
        if opts.schedule == "plateau":  # ReduceLROnPlateau(val_loss, factor 0.5, patience 3)
            if row["val_loss"] < plateau_best - 1e-4:
                plateau_best, plateau_wait = row["val_loss"], 0
            else:
                plateau_wait += 1
                if plateau_wait >= 3:
                    lr_scale, plateau_wait = max(lr_scale * 0.5, 1e-5 / opts.lr), 0
        value = row[opts.monitor]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            value = -row["val_loss"] if opts.monitor == "val_auc" else row["val_loss"]
        better = (best is None or (value > best + 1e-4 if opts.monitor == "val_auc"
                                   else value < best - 1e-4))
        if better:
            best, wait = value, 0
            best_weights = [w.copy() for w in model.get_weights()]
            best_epoch = epoch + 1
        else:
            wait += 1
            if opts.early_stopping and wait >= opts.early_stopping:
                break
    restored = None
    if best_weights is not None and (opts.early_stopping or opts.monitor == "val_auc"):
        model.set_weights(best_weights)
        restored = best_epoch
    return {"curves": curves, "best_epoch": restored, "windows": int(len(X)),
            "windows_per_s": n_seen / t_train if t_train else None,
            "class_weights": cw.tolist()}


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AMX or AVX-512 BF16, read from Linux's
    /proc/cpuinfo). Elsewhere bfloat16 is emulated and slower than float32."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
    return bool(flags & {"amx_bf16", "avx512_bf16"})


def resolve_precision(precision: str) -> str:
    """The Keras dtype policy a run trains with: ``auto`` is ``mixed_bfloat16`` on a CPU-only
    machine whose CPU has native bfloat16 and ``float32`` otherwise."""
    if precision != "auto":
        return precision
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            return "float32"
    return "mixed_bfloat16" if cpu_has_bf16() else "float32"


def _arch_model(opts: TrainOptions, n_classes: int, name: str):
    from lungapp.training.archs import build

    flags = opts.outputs == "flags"
    n_out = (2 if opts.task == "4class" else 1) if flags else n_classes
    return build(opts.arch, opts.features.input_shape, n_out, weights=opts.weights,
                 name=name, activation="sigmoid" if flags else "softmax")


def _build(opts: TrainOptions, n_classes: int, seed: int, name: str, policy: str = "float32"):
    """A compiled model for training. Under a mixed policy the layers compute in bfloat16
    (weights stay float32) and a float32 cast follows the output, so the loss and the
    probabilities are float32; :func:`_as_float32` turns it back into the plain model."""
    import keras

    keras.utils.set_random_seed(seed)
    flags = opts.outputs == "flags"
    if policy == "float32":
        model, info = _arch_model(opts, n_classes, name)
    else:
        keras.mixed_precision.set_global_policy(policy)
        try:
            inner, info = _arch_model(opts, n_classes, name)
            out = keras.layers.Activation("linear", dtype="float32", name="to_float32")(inner.output)
            model = keras.Model(inner.input, out, name=name)
        finally:
            keras.mixed_precision.set_global_policy("float32")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=opts.lr),
                  loss="binary_crossentropy" if flags else "categorical_crossentropy",
                  metrics=["accuracy"])
    return model, info


def _as_float32(model, opts: TrainOptions, n_classes: int, policy: str):
    """The trained model as the plain float32 architecture (the artifact and every
    out-of-fold prediction use this one): same weights, float32 arithmetic."""
    if policy == "float32":
        return model
    plain, _ = _arch_model(opts, n_classes, model.name)
    plain.set_weights(model.get_weights())
    return plain


def _validation_split(labels, groups, seed: int, fraction: float):
    """(fit, validation) indices; with ``fraction`` 0 everything is fitted."""
    if fraction == 0:
        return np.arange(len(labels)), np.arange(0)
    return validation_split(labels, groups, seed, fraction)


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
        other = [l for l, f in zip(labels, fold_of) if f != i]
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

    rng = np.random.default_rng(seed)
    boots = []
    for start in range(0, n_boot, 100):  # (100, n_g) resample counts at a time
        counts = rng.multinomial(n_g, np.full(n_g, 1.0 / n_g), size=min(100, n_boot - start))
        boots.append(gain(counts @ per))
    boots = np.concatenate(boots)
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
    lab = np.array([classes.index(l) for l in labels])
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
    from lungapp.evaluation.metrics import binary_metrics, choose_threshold, multiclass_metrics

    problem = class_pooling_problem(class_pooling, task, bool(class_probs))
    if problem:
        raise ValueError(problem)
    p_abn = 1 - probs[:, 0]
    thr, rule = choose_threshold(y, p_abn)
    overall = binary_metrics(y, p_abn, thr)
    per_fold, nested = [], []
    k = int(fold_of.max()) + 1
    for i in range(k):
        m = fold_of == i
        per_fold.append(binary_metrics(y[m], p_abn[m], thr))
        # stricter: this fold's threshold chosen on the other folds' predictions only
        t_other, _ = choose_threshold(y[~m], p_abn[~m])
        nested.append(binary_metrics(y[m], p_abn[m], t_other))
    keys = ("auc", "sensitivity", "specificity", "score", "accuracy")
    report = {
        "threshold": thr, "threshold_rule": rule,
        "overall": overall,
        "per_fold": per_fold,
        "mean_sd": {kk: _mean_sd([f[kk] for f in per_fold]) for kk in keys},
        "nested_threshold": {"rule": "each fold scored at the threshold chosen on the other "
                                     "folds' out-of-fold predictions",
                             "per_fold": nested,
                             "mean_sd": {kk: _mean_sd([f[kk] for f in nested]) for kk in keys}},
    }
    if task == "4class":
        nested_argmax = _nested_classes(y, labels, probs, fold_of, classes, rule=False)
        ft, pred, nested_pred, check = None, _decide(p_abn, probs, thr, classes), nested_argmax, None
        if flag_rule:
            cand = choose_flag_thresholds(labels, probs, thr, classes)
            nested_rule = _nested_classes(y, labels, probs, fold_of, classes, rule=True)
            rule_pred = _decide(p_abn, probs, thr, classes, cand)
            g = paired_score_gain(labels, nested_rule, nested_argmax, classes, groups)
            check = {"thresholds": cand,
                     "in_sample_score": multiclass_metrics(labels, rule_pred, classes)["score"],
                     "nested_score": g.pop("score_a"), "nested_argmax_score": g.pop("score_b"), **g}
            check["adopted"] = bool(check["ci95"][0] is not None and check["ci95"][0] > 0)
            if check["adopted"]:
                ft, pred, nested_pred = cand, rule_pred, nested_rule
        cp, cp_check = None, None
        if class_probs:
            cp_check, cp_pred, cp_nested = _class_pooling_check(
                y, labels, probs, class_probs, fold_of, thr, classes, nested_argmax, groups,
                fixed=class_pooling)
            if class_pooling:  # the recipe's rule, whatever the checks say
                if ft:
                    check["superseded_by"] = "class pooling fixed by the recipe"
                ft, cp, pred, nested_pred = None, class_pooling, cp_pred, cp_nested
            elif cp_check["adopted"] and ft and check["nested_score"] >= cp_check["nested_score"]:
                cp_check["superseded_by"] = "flag rule"  # both passed; the better one is used
            elif cp_check["adopted"]:
                if ft:
                    check["superseded_by"] = "class pooling"
                ft, cp, pred, nested_pred = None, cp_check["chosen"], cp_pred, cp_nested
        report["four_class"] = multiclass_metrics(labels, pred, classes)
        report["four_class"]["rule"] = (FLAG_RULE if ft else class_pooling_rule(cp, bool(class_pooling))
                                        if cp else ARGMAX_RULE)
        if ft:
            report["flag_thresholds"] = ft
        if cp:
            report["class_pooling"] = cp
        if ft or cp:
            report["four_class"]["argmax_score"] = multiclass_metrics(
                labels, _decide(p_abn, probs, thr, classes), classes)["score"]
        if check:
            report["four_class"]["flag_rule_check"] = check
        if cp_check:
            report["four_class"]["class_pooling_check"] = cp_check
        # stricter: each fold decided by thresholds chosen on the other folds only
        report["four_class"]["nested_score"] = multiclass_metrics(labels, nested_pred, classes)["score"]
        report["four_class"]["per_fold_score"] = [
            multiclass_metrics([l for l, f in zip(labels, fold_of) if f == i],
                               [p for p, f in zip(pred, fold_of) if f == i], classes)["score"]
            for i in range(k)]
    return report


def _log(progress, message: str, level: str = "info"):
    progress({"event": "log", "level": level, "message": message})


def train(folder, out, opts: TrainOptions, *, progress: Callable[[dict], None] = lambda e: None,
          should_stop: Callable[[], bool] = lambda: False, overwrite: bool = False,
          oof_path=None) -> dict:
    """Run a full cross-validated training and save the model folder ``out``.

    ``oof_path``: also write the out-of-fold predictions there (see :func:`save_oof`), as
    soon as the folds are done; they name the training recordings, so they are kept out
    of the model folder.

    Returns the summary also sent as the ``done`` event. Raises DatasetError (unfit data,
    before training), Cancelled (``should_stop()`` became true; ``out`` untouched),
    LungappError for an existing ``out`` without ``overwrite``.
    """
    from lungapp.data import read_folder

    t_start = time.perf_counter()
    opts.validate()
    folder, out = Path(folder), Path(out)
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise LungappError("output folder already exists and is not empty (use --overwrite to "
                           "replace it once the new model is complete)", out)
    if oof_path is not None:
        oof_path = Path(oof_path)
        if oof_path.is_dir() or oof_path.resolve().is_relative_to(out.resolve()):
            raise LungappError("the out-of-fold file must be a file outside the model folder", oof_path)
    classes = BINARY_CLASSES if opts.task == "binary" else FOUR_CLASSES
    spec = output_spec(opts.task, classes, opts.outputs)
    progress({"event": "start", "folder": str(folder), "out": str(out), "task": opts.task,
              "preset": opts.preset, "arch": opts.arch, "folds": opts.folds, "epochs": opts.epochs,
              "classes": classes})

    ds = read_folder(folder)
    root = ds.root
    usable = [e for e in ds.examples if task_label(e.label, opts.task) is not None]
    excluded = len(ds.examples) - len(usable)
    kind = usable[0].kind if usable else "audio"
    if kind == "image" and opts.features.resize is None:
        raise DatasetError("this folder holds spectrogram images: image models need resized "
                           "features (use --preset seed)", root)
    patients = [e.patient for e in usable] if ds.has_patients else None
    labels = [task_label(e.label, opts.task) for e in usable]
    warnings = list(ds.warnings)
    check_dataset(labels, patients, opts.folds, classes, root)
    if excluded:
        warnings.append(f"{excluded} recordings excluded (labels unusable for task {opts.task}, "
                        "e.g. Poor Quality)")

    recs, bad = extract_features(usable, opts.task, classes, opts, progress=progress,
                                 should_stop=should_stop, root=root)
    bad_all = list(ds.problems) + bad
    n_cand = len(usable) + len(ds.problems)
    if bad_all:
        listed = "; ".join(f"{os.path.relpath(p, root)}: {why}" for p, why in bad_all[:10])
        msg = (f"{len(bad_all)} of {n_cand} files unreadable and skipped "
               f"({listed}{'; ...' if len(bad_all) > 10 else ''})")
        if len(bad_all) / max(1, n_cand) > opts.max_bad_share:
            raise DatasetError(f"{msg}: more than {opts.max_bad_share:.0%} of the files failed; "
                               "aborting", root)
        warnings.append(msg)
    labels = [r.label for r in recs]
    patients = [r.patient for r in recs] if patients is not None else None
    check_dataset(labels, patients, opts.folds, classes, root)

    folds = make_folds(labels, patients, opts.folds, opts.seed)
    warnings += folds.warnings
    for w in warnings:
        _log(progress, w, "warning")

    scope, dist = distribution_scope()
    policy = resolve_precision(opts.precision)
    if policy != "float32":
        _log(progress, f"training arithmetic: {policy} (this CPU computes bfloat16 natively); "
                       "the saved models and every reported prediction are float32", "info")
    y = np.array([0 if l == classes[0] else 1 for l in labels])
    oof = np.zeros((len(recs), len(classes)))
    oof_shift = np.zeros_like(oof) if opts.device_shift and kind == "audio" else None
    fold_of = folds.fold_of()
    fold_reports, models, build_info = [], [], None
    pooled_alt = {rule: np.zeros(len(recs)) for rule in POOLINGS}
    oof_windows: list = [None] * len(recs)
    oof_windows_shift: list = [None] * len(recs)
    staging = make_staging(out)  # made now: an unwritable --out fails before the training
    try:
        for i in range(folds.k):
            tr, te = folds.train(i), folds.test[i]
            tr_labels = [labels[j] for j in tr]
            tr_groups = [patients[j] for j in tr] if patients is not None else None
            fit_idx, val_idx = _validation_split(tr_labels, tr_groups, opts.seed + i, opts.val_fraction)
            fit_recs = [recs[tr[j]] for j in fit_idx]
            val_recs = [recs[tr[j]] for j in val_idx]
            with scope:
                model, build_info = _build(opts, len(classes), opts.seed + 1000 * i,
                                           name=f"{opts.arch}_fold{i + 1}", policy=policy)
                if i == 0 and build_info.note:
                    _log(progress, build_info.note, "warning")
                fit = fit_one(model, fit_recs, val_recs, opts, classes, seed=opts.seed + i, fold=i + 1,
                              progress=progress, should_stop=should_stop)
                model = _as_float32(model, opts, len(classes), policy)
            test_recs = [recs[j] for j in te]
            probs, parts = _recording_probs(model, test_recs, opts.pooling, spec=spec)
            oof[te] = probs
            for j, w in zip(te, parts):
                oof_windows[j] = w
            for rule in POOLINGS:
                pooled_alt[rule][te] = [1 - pool_probs(w, rule, spec)[0] for w in parts]
            if oof_shift is not None:
                oof_shift[te], parts_shift = _recording_probs(model, test_recs, opts.pooling,
                                                              shifted=True, spec=spec)
                for j, w in zip(te, parts_shift):
                    oof_windows_shift[j] = w
            fold_auc = _auc(y[te], 1 - probs[:, 0])
            fold_reports.append({"fold": i + 1, "n_train": int(len(fit_recs)), "n_val": int(len(val_recs)),
                                 "n_test": int(len(te)), "auc": fold_auc, **fit})
            models.append(model)
            progress({"event": "fold_end", "fold": i + 1, "folds": folds.k,
                      "metrics": {"auc": fold_auc, "n_test": int(len(te)),
                                  "best_epoch": fit["best_epoch"],
                                  "windows_per_s": fit["windows_per_s"]}})

        report = evaluate_oof(y, labels, oof, fold_of, classes, opts.task,
                              flag_rule=is_flag_spec(spec),
                              groups=patients,
                              class_probs=class_pooled_probs(oof_windows, opts.pooling, spec))
        report["pooling_auc"] = {rule: _auc(y, p) for rule, p in pooled_alt.items()}
        if oof_path is not None:
            try:
                save_oof(oof_path, recs, root, fold_of, classes, spec, oof, oof_windows,
                         oof_windows_shift if oof_shift is not None else None)
                _log(progress, f"out-of-fold predictions written to {oof_path}")
            except OSError as exc:  # the model is still worth finishing
                warnings.append(f"out-of-fold predictions not written to {oof_path}: {exc}")
                _log(progress, warnings[-1], "warning")
        report["patient_grouped"] = folds.grouped
        report["evaluated"] = ("out-of-fold: every recording scored by the fold model that did "
                               "not see it")
        if oof_shift is not None:
            from lungapp.evaluation.metrics import binary_metrics

            shifted = binary_metrics(y, 1 - oof_shift[:, 0], report["threshold"])
            report["device_shift"] = {
                "transform": "resample to 4 kHz, band-limit 100-1500 Hz, tilt -3 dB/octave, "
                             "white noise at 20 dB SNR (lungapp.training.augment.device_shift)",
                "augmentation": "on" if opts.augment else "off",
                "shifted": shifted,
                "drop": {kk: (report["overall"][kk] - shifted[kk])
                         if report["overall"][kk] is not None and shifted[kk] is not None else None
                         for kk in ("auc", "score", "sensitivity", "specificity")},
            }

        if should_stop():
            raise Cancelled()
        if opts.artifact == "retrain":
            with scope:
                fit_idx, val_idx = _validation_split(labels, patients, opts.seed + 99, opts.val_fraction)
                final, _ = _build(opts, len(classes), opts.seed + 99_000, name=f"{opts.arch}_all",
                                  policy=policy)
                fit_one(final, [recs[j] for j in fit_idx], [recs[j] for j in val_idx], opts, classes,
                        seed=opts.seed + 99, fold="final", progress=progress, should_stop=should_stop)
                final = _as_float32(final, opts, len(classes), policy)
            files = {"model.keras": final}
            artifact_text = ("one model retrained on all data (" + (
                "early stopping on a patient-grouped validation split" if opts.val_fraction
                else "the recipe's fixed schedule") + "); the CV figures estimate its recipe")
        else:
            files = {f"fold{i + 1}.keras": m for i, m in enumerate(models)}
            artifact_text = (f"ensemble of the {folds.k} fold models (outputs averaged): the "
                             "models whose out-of-fold predictions are reported; each OOF "
                             "figure comes from one member, so the ensemble's own error is "
                             "expected to be at most that (the seed project's 'parallel networks')")
        for name, m in files.items():
            m.save(staging / name)

        curves = {"folds": [{"fold": f["fold"], "curves": f["curves"], "best_epoch": f["best_epoch"]}
                            for f in fold_reports]}
        from lungapp.fsutil import atomic_write_json
        from lungapp.evaluation.metrics import json_safe

        atomic_write_json(staging / "curves.json", json_safe(curves))
        card = _make_card(opts, classes, kind, list(files), report, recs, root, ds, folds, fold_reports,
                          bad_all, warnings, excluded, dist, policy, build_info, artifact_text,
                          time.perf_counter() - t_start, out)
        from lungapp.inference.card import write_card
        from lungapp.fsutil import publish_dir

        write_card(staging, card)
        if should_stop():
            raise Cancelled()
        publish_dir(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    wall = time.perf_counter() - t_start
    summary = {"event": "done", "out": str(out), "wall_s": round(wall, 1),
               "threshold": report["threshold"],
               "metrics": {kk: report["overall"][kk] for kk in
                           ("auc", "sensitivity", "specificity", "score", "accuracy", "confusion")},
               "mean_sd": report["mean_sd"], "artifact": list(files)}
    if opts.task == "4class":
        summary["four_class_score"] = report["four_class"]["score"]
    if "device_shift" in report:
        summary["device_shift_drop"] = report["device_shift"]["drop"]
    progress(summary)
    return summary


def save_oof(path, recs: list[Recording], root, fold_of, classes, spec, probs, windows,
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


def _make_card(opts, classes, kind, files, report, recs, root, ds, folds, fold_reports, bad_all,
               warnings, excluded, dist, policy, build_info, artifact_text, wall, out):
    from collections import Counter

    from lungapp.inference.card import ModelCard, library_versions

    spec = output_spec(opts.task, classes, opts.outputs)
    counts = Counter(r.label for r in recs)
    patients = {r.patient for r in recs if r.patient is not None}
    training = {
        "data": {"folder": root, "layout": ds.layout, "n_recordings": len(recs),
                 "counts": {c: counts[c] for c in classes},
                 "source_counts": dict(ds.counts()),
                 "n_patients": len(patients) if patients else None,
                 "total_duration_s": round(float(sum(r.duration_s for r in recs)), 1),
                 "n_windows": int(sum(len(r.X) for r in recs)),
                 "excluded": excluded, "unreadable": len(bad_all),
                 "unreadable_files": [os.path.relpath(p, root) for p, _ in bad_all[:50]],
                 "file_list_sha256": file_list_hash(recs, root)},
        "options": opts.to_dict(),
        "cv": {"k": folds.k, "grouped_by_patient": folds.grouped, "seed": opts.seed,
               "splitter": "sklearn StratifiedGroupKFold" if folds.grouped else "sklearn StratifiedKFold",
               "validation": (f"{opts.val_fraction:.0%} of the training folds' patients, for "
                              f"{opts.monitor} early stopping / LR decisions; the held-out fold is "
                              "never used in training") if opts.val_fraction else
                             ("none: each fold model trains on all its training folds with a fixed "
                              "schedule and keeps its last weights; the held-out fold is never "
                              "used in training"),
               "folds": [{k: v for k, v in f.items() if k != "curves"} for f in fold_reports]},
        "artifact": artifact_text,
        "backbone_weights": build_info.weights if build_info else None,
        "backbone_note": build_info.note if build_info else "",
        "distribution": dist,
        "precision": policy,
        "curves_file": "curves.json",
        "warnings": warnings,
        "wall_s": round(wall, 1),
    }
    limitations = [
        "Cross-validated on the training folder only; performance on other hospitals, "
        "stethoscopes, ages and noise conditions is unknown (see the device-shift check).",
    ]
    if not folds.grouped:
        limitations.append("No patient ids: folds were split by file, so the CV estimate is optimistic.")
    if build_info and build_info.weights == "random" and opts.arch in ("inception_v3", "resnet50"):
        limitations.append(build_info.note)
    name = opts.name or f"{out.name}"
    return ModelCard(
        name=name, version="1", task=opts.task, classes=list(classes), features=opts.features,
        model_files=list(files), threshold=float(report["threshold"]),
        threshold_rule=report["threshold_rule"], output_kind=spec[0], outputs=list(spec[1]),
        flag_thresholds=report.get("flag_thresholds", {}),
        class_pooling=report.get("class_pooling", ""),
        pooling=opts.pooling,
        input_kind=kind, created=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        metrics=report, training=training, versions=library_versions(), limitations=limitations,
        description=f"lungapp train --preset {opts.preset} --arch {opts.arch} --task {opts.task}, "
                    f"{folds.k}-fold CV",
        quality_gate={"enabled": False} if kind == "image" else {})
