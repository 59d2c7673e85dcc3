"""Building and fitting one model: ``model.fit`` over seeded batches, with callbacks.

:func:`build_model` builds an architecture of :mod:`.archs` for a recipe (under the
distribution scope of :func:`distribution_scope`, in the arithmetic of
:func:`resolve_precision`); :func:`fit_one` compiles it with the recipe's learning-rate
schedule (Keras's own: ``CosineDecay`` with warm-up, ``ReduceLROnPlateau``, or constant)
and fits it on the windows of the training recordings:

* :class:`WindowBatches` (a ``keras.utils.PyDataset``) makes every batch of the run as a
  pure function of its index (shuffled passes, or balanced draws of adventitious windows;
  augmentation seeded per batch), so the batches do not depend on timing or threads;
  Keras's data pipeline prefetches them while the model trains on the previous one;
* callbacks: :class:`CancelOnRequest` (``should_stop()`` polled after every batch),
  :class:`RecordingValidation` (validation loss, accuracy and the *recording-level* AUC
  the recipe monitors), :class:`EpochProgress` (the curves and ``epoch_end`` events), then
  Keras's ``ReduceLROnPlateau`` / ``EarlyStopping`` where the recipe asks for them.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from lungapp.training.augment import Augmenter
from lungapp.training.dataset import Recording, output_spec
from lungapp.training.oof import auc_or_nan, pool_probs
from lungapp.training.progress import Cancelled, EpochEnd, Event
from lungapp.training.recipes import TrainOptions

_EPS = 1e-7
MIN_LR = 1e-5  # the plateau schedule's floor


# ------------------------------------------------------------------ devices and precision


def distribution_scope():
    """A context for building and training models across all visible GPUs.

    With more than one GPU: Keras 3's distribution API (``keras.distribution.DataParallel``)
    on the JAX backend; on the TensorFlow backend (the default here), whose Keras 3
    distribution support is still a prototype, TensorFlow's own ``MirroredStrategy``
    (data parallel). One GPU or none: a no-op. Returns (context manager, description).
    """
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
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            return "float32"
    return "mixed_bfloat16" if cpu_has_bf16() else "float32"


# ------------------------------------------------------------------------------ models


def _arch_model(opts: TrainOptions, n_classes: int, name: str):
    from lungapp.training.archs import build

    flags = opts.outputs == "flags"
    n_out = (2 if opts.task == "4class" else 1) if flags else n_classes
    return build(opts.arch, opts.features.input_shape, n_out, weights=opts.weights,
                 name=name, activation="sigmoid" if flags else "softmax")


def build_model(opts: TrainOptions, n_classes: int, seed: int, name: str, policy: str = "float32"):
    """An uncompiled model for training, its weights drawn from ``seed``; returns (model,
    :class:`lungapp.training.archs.BuildInfo`). Under a mixed policy the layers compute in
    bfloat16 (weights stay float32) and a float32 cast follows the output, so the loss and
    the probabilities are float32; :func:`as_float32` turns it back into the plain model."""
    keras.utils.set_random_seed(seed)
    if policy == "float32":
        return _arch_model(opts, n_classes, name)
    keras.mixed_precision.set_global_policy(policy)
    try:
        inner, info = _arch_model(opts, n_classes, name)
        out = keras.layers.Activation("linear", dtype="float32", name="to_float32")(inner.output)
        return keras.Model(inner.input, out, name=name), info
    finally:
        keras.mixed_precision.set_global_policy("float32")


def load_start_model(path: Path, seed: int, name: str):
    """A fresh copy of the starting model's member ``path`` for one fold (fine-tuning,
    :mod:`lungapp.training.finetune`), loaded as the app loads models (safe mode) and
    renamed ``name``; ``seed`` seeds its dropout and the rest of the fit. Returns (model,
    :class:`lungapp.training.archs.BuildInfo`)."""
    from lungapp.inference.predictor import load_keras_model
    from lungapp.training.archs import BuildInfo

    keras.utils.set_random_seed(seed)
    model = load_keras_model(path)
    model.name = name
    return model, BuildInfo(arch=model.name, weights=f"fine-tuned from {path}")


def as_float32(model, opts: TrainOptions, n_classes: int, policy: str):
    """The trained model as the plain float32 architecture (the artifact and every
    out-of-fold prediction use this one): same weights, float32 arithmetic."""
    if policy == "float32":
        return model
    plain, _ = _arch_model(opts, n_classes, model.name)
    plain.set_weights(model.get_weights())
    return plain


def learning_rate(opts: TrainOptions, total_steps: int):
    """The optimizer's learning rate for the recipe's schedule: ``cosine``, a linear
    warm-up over 2 % of the ``total_steps`` to ``opts.peak_lr`` (``lr``, or ``finetune_lr``
    when fine-tuning) then a cosine decay to 2 % of it
    (``keras.optimizers.schedules.CosineDecay``); ``plateau`` and ``constant``, the
    constant ``opts.peak_lr`` (``ReduceLROnPlateau`` lowers it for ``plateau``)."""
    lr = opts.peak_lr
    if opts.schedule != "cosine":
        return float(lr)
    warm = max(1, total_steps // 50)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=lr / warm, decay_steps=max(1, total_steps - warm), alpha=0.02,
        warmup_target=lr, warmup_steps=warm)


def _compile(model, opts: TrainOptions, total_steps: int) -> None:
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate(opts, total_steps)),
                  loss="binary_crossentropy" if opts.outputs == "flags" else "categorical_crossentropy",
                  metrics=["accuracy"])


def predict_windows(model, X: np.ndarray, batch: int = 256) -> np.ndarray:
    """Window outputs (direct model calls; ``model.predict`` is slow per call)."""
    outs = [np.asarray(model(X[i: i + batch].astype(np.float32), training=False))
            for i in range(0, len(X), batch)]
    return np.concatenate(outs).astype(np.float64) if outs else np.zeros((0, 0))


def recording_probs(model, recs: list[Recording], rule: str, shifted: bool = False, spec=None):
    """(n_recordings, n_classes) pooled probabilities and per-recording window outputs of
    ``recs`` (``shifted``: of their device-shifted windows)."""
    Xs = [r.X_shift if shifted else r.X for r in recs]
    W = predict_windows(model, np.concatenate(Xs))
    parts = np.split(W, np.cumsum([len(x) for x in Xs])[:-1])
    return np.stack([pool_probs(w, rule, spec) for w in parts]), parts


# ----------------------------------------------------------------------------- batches


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


def positive_sets(Y: np.ndarray, yw: np.ndarray, flags: bool) -> list[np.ndarray]:
    """Indices of the windows positive for each flag (flags) or in each abnormal class
    (softmax); empty sets are left out."""
    if flags:
        sets = [np.flatnonzero(Y[:, j] > 0.5) for j in range(Y.shape[1])]
    else:
        sets = [np.flatnonzero(yw == c) for c in range(1, int(yw.max(initial=0)) + 1)]
    return [s for s in sets if len(s)]


def epoch_order(rng: np.random.Generator, n: int, steps: int, bs: int,
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


@dataclass
class TrainingWindows:
    """The windows one model trains on, with their targets and sample weights."""

    X: np.ndarray  # (n, *input_shape) float16
    Y: np.ndarray  # (n, n_outputs) targets
    classes: np.ndarray  # (n,) class index of each window
    flags: bool  # sigmoid flag targets (else one-hot softmax targets)
    flag_weights: np.ndarray | None  # (n,) flag models: each window's sample weight
    class_weights: np.ndarray  # (n_classes,) softmax models: each class's sample weight

    @classmethod
    def of(cls, recs: list[Recording], opts: TrainOptions, classes: list[str]) -> TrainingWindows:
        """The windows of ``recs`` for the recipe ``opts``: softmax targets weighted by
        class (with ``class_weights``), flag targets by :func:`flag_weights`."""
        spec = output_spec(opts.task, classes, opts.outputs)
        yw = np.concatenate([r.window_labels for r in recs])
        Y = spec[2][yw]
        n_cls = len(classes)
        counts = np.bincount(yw, minlength=n_cls).astype(np.float64)
        cw = (np.where(counts > 0, len(yw) / (n_cls * np.maximum(counts, 1)), 0.0)
              if opts.class_weights else np.ones(n_cls)).astype(np.float32)
        flags = spec[0] == "sigmoid"
        fw = (flag_weights(Y) if opts.class_weights else np.ones(len(yw), np.float32)) if flags \
            else None
        return cls(np.concatenate([r.X for r in recs]), Y, yw, flags, fw, cw)


class WindowBatches(keras.utils.PyDataset):
    """Every training batch of one fit, ``epochs * steps`` of them, each a pure function of
    its index: window orders come from ``seed`` (one stream per epoch, drawn up front) and
    each batch's augmentation from (``seed``, batch index). So Keras may prefetch batches
    in a background thread (it does) and the run stays reproducible. Fit with
    ``steps_per_epoch=steps``."""

    def __init__(self, data: TrainingWindows, opts: TrainOptions, steps: int, seed: int,
                 noise_power: np.ndarray | None = None):
        super().__init__(workers=1, use_multiprocessing=False)
        self.data, self.bs, self.seed = data, opts.batch_size, seed
        self.augment = Augmenter(opts.features.spectrogram, opts.augment, seed=seed,
                                 noise_power=noise_power)
        pos = positive_sets(data.Y, data.classes, data.flags) if opts.sampling == "balanced" else None
        rng = np.random.default_rng(seed)
        self.order = np.concatenate([epoch_order(rng, len(data.X), steps, self.bs, pos)
                                     for _ in range(opts.epochs)])

    def __len__(self) -> int:
        return len(self.order) // self.bs

    def __getitem__(self, i: int):
        idx = self.order[i * self.bs:(i + 1) * self.bs]
        rng = np.random.default_rng([self.seed, int(i)])
        x, y = self.augment(self.data.X[idx].astype(np.float32), self.data.Y[idx], rng)
        if self.data.flags:
            return x, y, self.data.flag_weights[idx]
        return x, y, (y @ self.data.class_weights).astype(np.float32)  # mixup: soft targets


# --------------------------------------------------------------------------- callbacks


class CancelOnRequest(keras.callbacks.Callback):
    """Stop training after the current batch (or the next: Keras calls it beside the
    training thread) once ``should_stop()`` is true; :func:`fit_one` then raises
    :class:`Cancelled`."""

    # It reads no logs, so Keras may call it asynchronously and keep the training steps
    # flowing (a callback that is not async-safe makes every step wait for its logs).
    async_safe = True

    def __init__(self, should_stop: Callable[[], bool]):
        super().__init__()
        self.should_stop = should_stop
        self.requested = False

    def on_train_batch_end(self, batch, logs=None):
        if self.should_stop():
            self.requested = True
            self.model.stop_training = True


@dataclass
class ValidationSet:
    """The held-out validation recordings' windows, targets and recording labels."""

    X: np.ndarray
    Y: np.ndarray  # (n_windows, n_outputs) targets
    classes: np.ndarray  # (n_windows,) class index
    lens: list[int]  # windows per recording
    abnormal: np.ndarray  # (n_recordings,) 0 normal, 1 abnormal

    @classmethod
    def of(cls, recs: list[Recording], opts: TrainOptions, classes: list[str]) -> ValidationSet:
        yw = np.concatenate([r.window_labels for r in recs])
        return cls(np.concatenate([r.X for r in recs]),
                   output_spec(opts.task, classes, opts.outputs)[2][yw], yw,
                   [len(r.X) for r in recs],
                   np.array([0 if r.label == classes[0] else 1 for r in recs]))


def validation_metrics(model, val: ValidationSet, pooling: str, spec) -> dict:
    """``val_loss`` (window level, unweighted), ``val_auc`` (recording level: windows pooled
    as the card pools them; NaN with one class) and ``val_accuracy`` of ``model``."""
    P = predict_windows(model, val.X)
    if spec[0] == "sigmoid":
        pc = np.clip(P, _EPS, 1 - _EPS)
        loss = -np.mean(val.Y * np.log(pc) + (1 - val.Y) * np.log(1 - pc))
        acc = np.mean((P > 0.5) == (val.Y > 0.5))
    else:
        loss = -np.mean(np.log(P[np.arange(len(val.classes)), val.classes] + _EPS))
        acc = np.mean(P.argmax(1) == val.classes)
    rec = np.stack([pool_probs(w, pooling, spec)
                    for w in np.split(P, np.cumsum(val.lens)[:-1])])
    return {"val_loss": float(loss), "val_auc": auc_or_nan(val.abnormal, 1 - rec[:, 0]),
            "val_accuracy": float(acc)}


class RecordingValidation(keras.callbacks.Callback):
    """Adds :func:`validation_metrics` to each epoch's logs, for the callbacks after it
    (plateau, early stopping) and the curves."""

    def __init__(self, val: ValidationSet, pooling: str, spec, cancel: CancelOnRequest):
        super().__init__()
        self.val, self.pooling, self.spec, self.cancel = val, pooling, spec, cancel

    def on_epoch_end(self, epoch, logs=None):
        if not self.cancel.requested and logs is not None:
            logs.update(validation_metrics(self.model, self.val, self.pooling, self.spec))


class EpochClock(keras.callbacks.Callback):
    """When each epoch began and when its training batches ended (first in the callback
    list: before the validation predictions)."""

    def __init__(self):
        super().__init__()
        self.begin = self.end = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.begin = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.end = time.perf_counter()


class EpochProgress(keras.callbacks.Callback):
    """Each epoch's curve row (loss, accuracy, lr, validation metrics, seconds), sent as
    an ``epoch_end`` event; also measures training windows per second (the first epoch,
    which traces the graph, left out unless it is the only one)."""

    def __init__(self, fold, epochs: int, window_count: int, progress, cancel: CancelOnRequest):
        super().__init__()
        self.fold, self.epochs, self.per_epoch = fold, epochs, window_count
        self.progress, self.cancel = progress, cancel
        self.clock = EpochClock()
        self.curves: list[dict] = []
        self.t_train, self.n_seen = 0.0, 0

    def on_epoch_end(self, epoch, logs=None):
        if self.cancel.requested:
            return
        logs = logs or {}
        if epoch > 0 or self.epochs == 1:
            self.t_train += self.clock.end - self.clock.begin
            self.n_seen += self.per_epoch
        lr = self.model.optimizer.learning_rate
        row = {"epoch": epoch + 1, "loss": float(logs.get("loss", np.nan)),
               "accuracy": float(logs.get("accuracy", np.nan)),
               "lr": float(keras.ops.convert_to_numpy(lr))}
        row.update({k: logs[k] for k in ("val_loss", "val_auc", "val_accuracy") if k in logs})
        row["seconds"] = round(time.perf_counter() - self.clock.begin, 3)
        self.curves.append(row)
        self.progress(EpochEnd(fold=self.fold, epoch=epoch + 1, epochs=self.epochs,
                               metrics={k: v for k, v in row.items() if k != "epoch"}))

    @property
    def windows_per_s(self) -> float | None:
        return self.n_seen / self.t_train if self.t_train else None


def _schedule_callbacks(opts: TrainOptions) -> tuple[list, keras.callbacks.EarlyStopping | None]:
    """Keras's plateau and early-stopping callbacks the recipe asks for (with a validation
    split only). The best weights (by ``opts.monitor``) are restored with early stopping,
    and whenever the recording AUC is monitored."""
    out, stop = [], None
    if opts.schedule == "plateau":
        out.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=3,
                                                     min_delta=1e-4, min_lr=MIN_LR))
    if opts.early_stopping or opts.monitor == "val_auc":
        stop = keras.callbacks.EarlyStopping(
            monitor=opts.monitor, mode="max" if opts.monitor == "val_auc" else "min",
            min_delta=1e-4, patience=opts.early_stopping or opts.epochs + 1,
            restore_best_weights=True)
        out.append(stop)
    return out, stop


def fit_one(model, train_recs: list[Recording], val_recs: list[Recording], opts: TrainOptions,
            classes: list[str], *, seed: int, fold: int | str,
            progress: Callable[[Event], None], should_stop: Callable[[], bool],
            noise_power: np.ndarray | None = None) -> dict:
    """Compile and train ``model`` (from :func:`build_model`) on ``train_recs``' windows;
    plateau and early-stopping decisions use ``val_recs`` only (none: a fixed schedule,
    the last weights kept). ``noise_power``: the added noise's texture (see
    :class:`~lungapp.training.augment.Augmenter`; None: white). Returns curves, best_epoch
    (the restored epoch, or None), windows, windows_per_s and class_weights. Raises
    :class:`Cancelled` within a batch of ``should_stop()`` turning true."""
    data = TrainingWindows.of(train_recs, opts, classes)
    steps = opts.steps_per_epoch or int(math.ceil(len(data.X) / opts.batch_size))
    _compile(model, opts, steps * opts.epochs)
    spec = output_spec(opts.task, classes, opts.outputs)
    cancel = CancelOnRequest(should_stop)
    epochs = EpochProgress(fold, opts.epochs, steps * opts.batch_size, progress, cancel)
    callbacks, stop = [epochs.clock, cancel], None
    if val_recs:
        callbacks.append(RecordingValidation(ValidationSet.of(val_recs, opts, classes),
                                             opts.pooling, spec, cancel))
        callbacks.append(epochs)
        schedule, stop = _schedule_callbacks(opts)
        callbacks += schedule
    else:
        callbacks.append(epochs)
    if should_stop():
        raise Cancelled()
    model.fit(WindowBatches(data, opts, steps, seed, noise_power), epochs=opts.epochs, steps_per_epoch=steps,
              callbacks=callbacks, verbose=0)
    if cancel.requested:
        raise Cancelled()
    restored = stop.best_epoch + 1 if stop is not None and stop.best_weights is not None else None
    return {"curves": epochs.curves, "best_epoch": restored, "windows": int(len(data.X)),
            "windows_per_s": epochs.windows_per_s, "class_weights": data.class_weights.tolist()}
