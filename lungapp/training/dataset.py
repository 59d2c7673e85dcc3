"""The training data: recordings -> task labels, feature windows and window labels.

:func:`check_dataset` refuses data unfit for k-fold training before anything is computed;
:func:`extract_features` decodes every recording once and caches its windows
(:class:`Recording`); :func:`output_spec` turns window classes into training targets.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lungapp.errors import AudioError, DatasetError, LungappError
from lungapp.inference.features import FeatureConfig, image_features, windows_from_samples
from lungapp.training.progress import Cancelled, Event, Extract
from lungapp.training.recipes import TrainOptions
from lungapp.training.splits import validation_split, with_unknown
from lungapp.vocabulary import FLAG_OUTPUTS, FOUR_CLASSES


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


def patient_ids(examples) -> list | None:
    """The examples' patient ids (None for one without), or None when none has one. A
    recording without an id among others with one is a group of its own
    (:func:`~lungapp.training.splits.make_folds`)."""
    ids = [e.patient for e in examples]
    return ids if any(i is not None for i in ids) else None


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
    fewer = " or use fewer folds (--folds)" if k > 2 else ""  # 2 is the fewest there can be
    if few:
        raise DatasetError(f"class(es) with fewer examples than the {k} folds: {', '.join(few)}; "
                           f"add recordings{fewer}", where)
    if patients is not None:
        patients, _ = with_unknown(patients)  # each recording without an id: its own patient
    if patients is not None:
        per = {c: len({p for p, lab in zip(patients, labels) if lab == c}) for c in classes}
        few = [f"{c} ({per[c]} patients)" for c in classes if per[c] < k]
        if few:
            raise DatasetError(f"class(es) with fewer patients than the {k} folds: {', '.join(few)}; "
                               "patient-grouped folds need each class in every fold's patients "
                               f"(add patients{fewer.replace(' (--folds)', '')})", where)
        if len(set(patients)) < k:
            raise DatasetError(f"{len(set(patients))} patients cannot make {k} patient-grouped folds",
                               where)
    return warnings


@dataclass
class UsableExamples:
    """A labelled folder read for training (:func:`usable_examples`)."""

    dataset: object               # the lungapp.data Dataset
    usable: list                  # its examples with a label the task uses
    kind: str                     # "audio" or "image"
    patients: list | None         # the usable examples' patients (None: no patient ids)

    @property
    def excluded(self) -> int:
        return len(self.dataset.examples) - len(self.usable)


def usable_examples(folder, opts: TrainOptions, classes: list[str],
                    layout: str | None = None) -> UsableExamples:
    """Read the labelled ``folder`` and refuse it, naming it (DatasetError), when ``opts``
    cannot train on it: no known layout, images for a recipe without image features, too
    few recordings or patients per class for the folds. Reads no audio and imports no
    TensorFlow, so ``lungapp train`` says so in a second, before TensorFlow loads."""
    from lungapp.data import read_folder

    ds = read_folder(folder, layout)
    usable = [e for e in ds.examples if task_label(e.label, opts.task) is not None]
    kind = usable[0].kind if usable else "audio"
    if kind == "image" and opts.features.resize is None:
        raise DatasetError("this folder holds spectrogram images: image models need resized "
                           "features (use --preset seed)", ds.root)
    patients = patient_ids(usable)
    check_dataset([task_label(e.label, opts.task) for e in usable], patients, opts.folds,
                  classes, ds.root)
    return UsableExamples(ds, usable, kind, patients)


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
    # (mean power spectrum, bin spacing Hz) of the audio, as the quality check measures it
    # (for the card's input profile, lungapp.training.profile); None for images.
    spectrum: tuple[np.ndarray, float] | None = None


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


def _windows(ex, opts: TrainOptions, equalisation=None):
    """(windows, starts, duration_s, device-shifted windows or None, spectrum or None) of
    one example (``spectrum``: :func:`lungapp.inference.quality.mean_spectrum` of the
    recording as it is). With an ``equalisation`` (:mod:`lungapp.inference.equalise`) the
    windows, and the device shift, are made of the equalised recording, as the app reads it.

    Raises:
        AudioError / DatasetError: the file cannot be read or is too short.
    """
    from lungapp.audio import load_audio
    from lungapp.training.augment import device_shift

    fc = opts.features
    if ex.kind == "image":
        return image_features(ex.path, fc), np.zeros(1), 0.0, None, None
    from lungapp.inference.quality import mean_spectrum

    x = load_audio(ex.path, rate=fc.rate).samples
    if len(x) < fc.spectrogram.win_length:
        raise AudioError(f"too short ({len(x)} samples) for one spectrogram frame", ex.path)
    spectrum = mean_spectrum(x, fc.rate)
    if equalisation is not None:
        x = equalisation.apply(x, fc.rate)
    X, starts = windows_from_samples(x, fc)
    Xs = None
    if opts.device_shift:  # the same shift for a file in every run: seeded by its path
        rng = np.random.default_rng(int(hashlib.sha256(ex.path.encode()).hexdigest()[:8], 16))
        Xs = windows_from_samples(device_shift(x, fc.rate, rng), fc)[0].astype(np.float16)
    return X, starts, len(x) / fc.rate, Xs, spectrum


def fit_training_equalisation(examples, opts: TrainOptions, *, should_stop: Callable[[], bool],
                              root: str):
    """The equalisation target of ``examples`` (audio recordings of the folder ``root``):
    their mean band levels (:func:`lungapp.inference.equalise.fit_equalisation`), each
    decoded at the recipe's rate. Files that cannot be read are passed over here
    (:func:`extract_features` reports them). Raises Cancelled when ``should_stop()``,
    DatasetError naming the folder when no level could be measured."""
    from lungapp.audio import load_audio
    from lungapp.inference.equalise import fit_equalisation
    from lungapp.inference.quality import mean_spectrum

    rate = opts.features.rate
    spectra = []
    for ex in examples:
        if should_stop():
            raise Cancelled()
        try:
            spectra.append(mean_spectrum(load_audio(ex.path, rate=rate).samples, rate))
        except (AudioError, DatasetError):
            continue
    try:
        return fit_equalisation(spectra, source=f"the training folder {os.path.basename(str(root))}")
    except ValueError as exc:
        raise DatasetError(str(exc), root) from None


#: At most this much of the Poor Quality recordings goes into the noise bank (seconds):
#: 30 minutes at the bundled recipe's 125 frames a second of 64 bands is 58 MB.
NOISE_BANK_MAX_S = 1800.0


def poor_quality_noise(examples, opts: TrainOptions, *, should_stop: Callable[[], bool],
                       root: str) -> tuple[np.ndarray, int]:
    """The noise bank of ``--real-noise``: the linear power spectrograms (frames x bins, the
    recipe's own spectrogram, as :func:`lungapp.training.augment.white_noise_spectrogram`
    gives white noise's) of the folder's Poor Quality recordings, joined, in an order drawn
    from the run's seed, up to :data:`NOISE_BANK_MAX_S`. Experts rejected those recordings
    for what a clinic's recordings also hold (crying, talking, rubbing, handling); mixed
    under a window at a random SNR, they leave the window's label true. Returns (bank, how
    many recordings it holds); unreadable ones are passed over. Raises Cancelled when
    ``should_stop()``, DatasetError naming the folder when none could be read."""
    from lungapp.audio import load_audio
    from lungapp.data import POOR
    from lungapp.dsp.spectrogram import spectrogram

    cfg = opts.features.spectrogram
    poor = sorted((e for e in examples if e.label == POOR and e.kind == "audio"), key=lambda e: str(e.path))
    order = np.random.default_rng(opts.seed).permutation(len(poor))
    parts, seconds = [], 0.0
    for i in order:
        if should_stop():
            raise Cancelled()
        if seconds >= NOISE_BANK_MAX_S:
            break
        try:
            x = load_audio(poor[i].path, rate=cfg.rate).samples
        except (AudioError, DatasetError):
            continue
        if len(x) < cfg.win_length:
            continue
        parts.append((10.0 ** (spectrogram(x, cfg).astype(np.float64) / 10.0)).astype(np.float32))
        seconds += len(x) / cfg.rate
    bank = np.concatenate(parts) if parts else np.zeros((0, cfg.n_bins), np.float32)
    if len(bank) < opts.features.window_frames:
        if parts:
            found = f"its {len(parts)} hold {seconds:.1f} s, less than one {opts.features.window_s:g}-s window"
        elif poor:
            found = f"none of its {len(poor)} could be read"
        else:
            found = "the folder has none"
        raise DatasetError(f"--real-noise needs Poor Quality recordings to take noise from: {found}", root)
    return bank, len(parts)


def extract_features(examples, task: str, classes: list[str], opts: TrainOptions, *,
                     progress: Callable[[Event], None], should_stop: Callable[[], bool],
                     root: str, equalisation=None) -> tuple[list[Recording], list[tuple[str, str]]]:
    """Decode and window every example once (equalised first with an ``equalisation``).
    Returns (recordings, bad) where bad lists ``(path, reason)`` of unreadable files.
    Raises Cancelled when ``should_stop()``."""
    recs, bad = [], []
    n = len(examples)
    step = max(1, n // 20)
    for i, ex in enumerate(examples):
        if should_stop():
            raise Cancelled()
        label = task_label(ex.label, task)
        try:
            X, starts, dur, Xs, spectrum = _windows(ex, opts, equalisation)
        except (AudioError, DatasetError) as exc:
            bad.append((ex.path, exc.problem if isinstance(exc, LungappError) else str(exc)))
        else:
            wl = _window_classes(label, ex.events, starts, opts.features, task, classes,
                                 opts.window_labels)
            recs.append(Recording(ex.path, label, ex.patient, X.astype(np.float16), starts, wl,
                                  dur, Xs, spectrum))
        if (i + 1) % step == 0 or i + 1 == n:
            progress(Extract(done=i + 1, total=n, bad=len(bad)))
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


def output_spec(task: str, classes: list[str], outputs: str):
    """(card output_kind, output names, targets) for a run. ``targets`` (n_classes,
    n_outputs) maps a window's class index to its training target: one-hot for
    ``softmax``; for ``flags``, independent sigmoid flags [CAS, DAS] (4 classes: CAS & DAS
    sets both) or [abnormal] (binary), which the card turns back into class probabilities."""
    if outputs == "softmax":
        return "softmax", list(classes), np.eye(len(classes), dtype=np.float32)
    if task == "4class":
        targets = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], np.float32)
    else:
        targets = np.array([[0], [1]], np.float32)
    return "sigmoid", list(FLAG_OUTPUTS[task]), targets


def fit_validation_split(labels, groups, seed: int, fraction: float):
    """(fit, validation) indices; with ``fraction`` 0 everything is fitted."""
    if fraction == 0:
        return np.arange(len(labels)), np.arange(0)
    return validation_split(labels, groups, seed, fraction)
