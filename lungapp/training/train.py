"""The training engine: patient-grouped k-fold cross-validated training with an honest
report, saving a model folder (Keras file(s) + model card + training curves) atomically.

:func:`train` reads like the recipe, one call per step:

1. read the folder, map labels to the task and refuse unfit data with a
   :class:`DatasetError` before any training (:func:`read_training_data`);
2. decode every recording once and cache its feature windows (unreadable files are
   listed, skipped and counted; above ``max_bad_share`` the run aborts);
3. split recordings into k folds, stratified and grouped by patient (:mod:`.splits`);
4. per fold: carve a patient-grouped validation split out of the *training* folds (for
   early stopping / learning-rate decisions; the held-out fold is never looked at), fit
   (:func:`lungapp.training.fit.fit_one`), then score the held-out recordings;
5. evaluate the out-of-fold predictions (:func:`lungapp.training.oof.evaluate_oof`):
   threshold, per-fold figures, four-class rule, pooling alternatives, device shift;
6. the artifact (the ensemble of fold models, or one model retrained on all data), its
   card (:mod:`.card_build`) and ONNX exports go into a staging folder next to ``out``,
   published with :func:`publish_dir`.

Recipes live in :mod:`.recipes`. Progress is reported as :mod:`.progress` events to a
``progress(event)`` callable; ``should_stop()`` is polled between batches so a cancelled
run stops within one batch and leaves ``out`` untouched.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lungapp.errors import DatasetError
from lungapp.fsutil import check_oof_file, check_output_dir, make_staging
from lungapp.training import fit
from lungapp.training.card_build import make_card
from lungapp.training.dataset import (
    Recording,
    UsableExamples,
    check_dataset,
    extract_features,
    fit_validation_split,
    output_spec,
    usable_examples,
)
from lungapp.training.oof import auc_or_nan, class_pooled_probs, evaluate_oof, is_flag_spec, pool_probs, save_oof
from lungapp.training.progress import Cancelled, Done, Event, FoldEnd, Log, Start
from lungapp.training.recipes import TrainOptions
from lungapp.training.splits import make_folds
from lungapp.vocabulary import POOLINGS, classes_for


@dataclass
class RunContext:
    """What every step of a run shares: the recipe, the progress and stop callables, and
    the device set-up (distribution scope and training arithmetic)."""

    opts: TrainOptions
    progress: Callable[[Event], None]
    should_stop: Callable[[], bool]
    scope: object = None
    distribution: str = ""
    precision: str = "float32"
    start: object = None  # lungapp.training.finetune.StartModel when fine-tuning
    # lungapp.inference.equalise.Equalisation the recordings are equalised to (--equalise)
    equalisation: object = None
    # The added noise's texture, linear power (frames x bins) of the folder's Poor Quality
    # recordings (--real-noise; None: white noise)
    noise_bank: object = None
    # Whether an existing out-of-fold file may be replaced (``--overwrite``)
    overwrite: bool = False

    def log(self, message: str, level: str = "info") -> None:
        self.progress(Log(message=message, level=level))

    def check_stop(self) -> None:
        """Raise :class:`Cancelled` once a stop was requested."""
        if self.should_stop():
            raise Cancelled()

    def set_up_devices(self) -> None:
        """Choose the distribution scope and the training arithmetic (logged)."""
        self.scope, self.distribution = fit.distribution_scope()
        # A fine-tuned model keeps the starting model's float32 layers (mixed precision
        # would need the architecture rebuilt around them).
        self.precision = ("float32" if self.opts.init_from
                          else fit.resolve_precision(self.opts.precision))
        if self.precision != "float32":
            self.log(f"training arithmetic: {self.precision} (this CPU computes bfloat16 "
                     "natively); the saved models and every reported prediction are float32")


@dataclass
class TrainingData:
    """The usable recordings of a run, read, checked and windowed."""

    root: str
    dataset: object  # lungapp.data.Dataset
    kind: str  # "audio" or "image"
    classes: list[str]
    recs: list[Recording]
    patients: list | None
    excluded: int  # recordings whose labels the task cannot use
    bad: list[tuple[str, str]]  # (path, reason) of unreadable files
    warnings: list[str]

    @property
    def labels(self) -> list[str]:
        return [r.label for r in self.recs]

    @property
    def y(self) -> np.ndarray:
        """0 for normal, 1 for abnormal recordings."""
        return np.array([0 if r.label == self.classes[0] else 1 for r in self.recs])


@dataclass
class CrossValidation:
    """The fold models and their out-of-fold predictions, recording by recording."""

    folds: object  # lungapp.training.splits.Folds
    probs: np.ndarray  # (n, n_classes) pooled by the recipe's pooling
    windows: list  # each recording's window outputs
    probs_shift: np.ndarray | None = None  # the device-shifted recordings' (or None)
    windows_shift: list | None = None
    pooled: dict = field(default_factory=dict)  # {pooling rule: (n,) abnormal probability}
    reports: list = field(default_factory=list)  # per fold: sizes, AUC, curves
    models: list = field(default_factory=list)
    build_info: object = None


def train(folder, out, opts: TrainOptions, *, progress: Callable[[Event], None] = lambda e: None,
          should_stop: Callable[[], bool] = lambda: False, overwrite: bool = False,
          oof_path=None, layout: str | None = None, found: UsableExamples | None = None) -> dict:
    """Run a full cross-validated training and save the model folder ``out``.

    ``progress`` receives :mod:`lungapp.training.progress` events. ``oof_path``: also
    write the out-of-fold predictions there (see :func:`save_oof`), as soon as the folds
    are done; they name the training recordings, so they are kept out of the model folder.
    ``layout``: the folder's layout (None: detected, see :func:`lungapp.data.read_folder`).
    ``found``: the folder as :func:`~lungapp.training.dataset.usable_examples` already read
    it (``lungapp train`` checks it before TensorFlow loads), so it is not read again.

    Returns the summary also sent as the ``done`` event (its wire form, a dict). Raises
    DatasetError (unfit data, before training), Cancelled (``should_stop()`` became true;
    ``out`` untouched), LungappError for an existing ``out`` without ``overwrite``.
    """
    t_start = time.perf_counter()
    opts.validate()
    folder, out = Path(folder), Path(out)
    ctx = RunContext(opts, progress, should_stop, overwrite=overwrite)
    oof_path = _check_outputs(out, oof_path, overwrite, folder, ctx)
    if opts.init_from:  # refused here, before any file is read, if it does not fit
        from lungapp.training.finetune import load_start

        if opts.init_from == "active":
            from lungapp.inference.registry import missing_active_model

            note = missing_active_model()  # the bundled model stands in: never silently
            if note:
                ctx.log(note, "warning")
        from lungapp.training.finetune import check_start_loads

        ctx.start = load_start(opts.init_from, opts)
        check_start_loads(ctx.start)
        ctx.log(f"fine-tuning {ctx.start.card.name} ({ctx.start.member_path}) at learning "
                f"rate {opts.finetune_lr:g}")
    classes = list(classes_for(opts.task))
    progress(Start(folder=str(folder), out=str(out), task=opts.task, preset=opts.preset,
                   arch=opts.arch, folds=opts.folds, epochs=opts.epochs, classes=classes))
    data = read_training_data(folder, ctx, classes, layout, found)
    try:
        folds = make_folds(data.labels, data.patients, opts.folds, opts.seed)
    except ValueError as exc:  # what check_dataset let through: still the data's problem
        raise DatasetError(f"cannot be split into {opts.folds} folds ({exc})", data.root) from None
    data.warnings += folds.warnings
    for w in data.warnings:
        ctx.log(w, "warning")
    ctx.set_up_devices()
    staging = make_staging(out)  # made now: an unwritable --out fails before the training
    try:
        cv = cross_validate(data, folds, ctx)
        report = oof_report(data, cv, ctx, oof_path)
        ctx.check_stop()
        files, artifact_text = make_artifact(data, cv, ctx)
        save_models(staging, files, cv)
        out = _publish_target(out, overwrite, ctx)
        card = make_card(ctx, data, cv, report, (list(files), artifact_text),
                         time.perf_counter() - t_start, out)
        from lungapp.fsutil import publish_dir
        from lungapp.inference.card import write_card

        write_card(staging, card)
        # --- ONNX export (issue 27): the app runs the .onnx files; keep this call between
        # the staged card's write_card and publish_dir when rewriting train().
        from lungapp.training.export import export_model_folder

        export_model_folder(staging)
        # --- end ONNX export
        ctx.check_stop()
        backup = publish_dir(staging, out)
        if backup is not None:
            ctx.log(f"replaced {out}; the previous model was moved to {backup}", "warning")
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    done = done_event(out, report, list(files), opts.task, time.perf_counter() - t_start)
    done.skipped = [{"file": f, "reason": why} for f, why in data.bad]
    progress(done)
    return done.to_dict()


def _publish_target(out: Path, overwrite: bool, ctx: RunContext) -> Path:
    """Where the finished model goes: ``out``, checked again now that the run is over.
    A folder that appeared there meanwhile (another training to the same place, files the
    user put there) is replaced only with ``overwrite`` and only if it is a model (as the
    check before the run said); else the model goes beside it, under a free name. An
    empty folder the run was given is simply taken."""
    from lungapp.fsutil import is_model_folder, unique_path

    out = Path(out)
    if not os.path.lexists(out):
        return out
    if out.is_dir() and not out.is_symlink():
        try:
            if not any(out.iterdir()):
                out.rmdir()  # empty, as it was checked: nothing in it to keep
                return out
            if overwrite and is_model_folder(out):
                return out
        except OSError:  # written into meanwhile, or unreadable: kept as it is
            pass
    other = unique_path(out)
    ctx.log(f"{out} was made or changed during the run (another training to the same folder?) and "
            f"is not a model this run may replace: kept as it is; this model was written to {other}",
            "warning")
    return other


def _check_outputs(out: Path, oof_path, overwrite: bool, folder: Path,
                   ctx: RunContext) -> Path | None:
    """Refuse, before anything is read, an ``out`` that would destroy data or cannot be
    written (:func:`~lungapp.fsutil.check_output_dir`) and an out-of-fold file that would
    (:func:`~lungapp.fsutil.check_oof_file`: inside the model or the data folder, an
    existing file without ``overwrite``); returns ``oof_path`` as a Path."""
    check_output_dir(out, data_dirs=[folder], overwrite=overwrite,
                     report=lambda note: ctx.log(note, "warning"))
    if oof_path is None:
        return None
    return check_oof_file(oof_path, out=out, data_dirs=[folder], overwrite=overwrite)


# ------------------------------------------------------------------------------ the data


def read_training_data(folder: Path, ctx: RunContext, classes: list[str],
                       layout: str | None = None, found: UsableExamples | None = None) -> TrainingData:
    """Read the labelled ``folder``, refuse it if unfit for the task's k folds, and window
    every usable recording (:func:`extract_features`). Raises DatasetError naming the
    folder: unfit data, image data for a recipe without image features, or more
    unreadable files than ``max_bad_share``."""
    opts = ctx.opts
    if found is None:
        found = usable_examples(folder, opts, classes, layout)
    ds, usable, kind, patients, excluded = (found.dataset, found.usable, found.kind,
                                            found.patients, found.excluded)
    root = ds.root
    warnings = list(ds.warnings)
    if excluded:
        warnings.append(f"{excluded} recordings excluded (labels unusable for task {opts.task}, "
                        "e.g. Poor Quality)")
    ctx.equalisation = _equalisation(usable, kind, ctx, root)
    ctx.noise_bank = _noise_bank(ds.examples, kind, ctx, root)
    recs, bad = extract_features(usable, opts.task, classes, opts, progress=ctx.progress,
                                 should_stop=ctx.should_stop, root=root, equalisation=ctx.equalisation)
    bad = list(ds.problems) + bad
    for path, why in bad:  # every skipped file, each on its own line: none dropped silently
        ctx.log(f"skipped {path}: {why}", "warning")
    warnings += _unreadable_warning(bad, len(usable) + len(ds.problems), opts.max_bad_share, root)
    patients = [r.patient for r in recs] if patients is not None else None
    check_dataset([r.label for r in recs], patients, opts.folds, classes, root)
    return TrainingData(root, ds, kind, classes, recs, patients, excluded, bad, warnings)


def _equalisation(usable, kind: str, ctx: RunContext, root):
    """The run's equalisation (None without ``--equalise``): the starting model's when
    fine-tuning, else the training recordings' own mean band levels."""
    from lungapp.training.dataset import fit_training_equalisation

    if not ctx.opts.equalise:
        return None
    if kind == "image":
        raise DatasetError("--equalise applies to audio recordings, not to spectrogram images", root)
    if ctx.start is not None:
        ctx.log("equalising every recording to the target of the model it starts from")
        return ctx.start.card.equalisation
    ctx.log(f"measuring {len(usable)} recordings' balance of frequencies for the equalisation")
    return fit_training_equalisation(usable, ctx.opts, should_stop=ctx.should_stop, root=root)


def _noise_bank(examples, kind: str, ctx: RunContext, root):
    """The run's noise texture (None without ``--real-noise``): the folder's Poor Quality
    recordings' spectrograms (:func:`~lungapp.training.dataset.poor_quality_noise`)."""
    from lungapp.training.dataset import poor_quality_noise

    if not ctx.opts.real_noise:
        return None
    if kind == "image":
        raise DatasetError("--real-noise applies to audio recordings, not to spectrogram images", root)
    bank, n = poor_quality_noise(examples, ctx.opts, should_stop=ctx.should_stop, root=root)
    cfg = ctx.opts.features.spectrogram
    ctx.log(f"added noise textured with {n} Poor Quality recordings "
            f"({len(bank) * cfg.hop_length / cfg.rate / 60:.1f} min)")
    return bank


def _unreadable_warning(bad: list[tuple[str, str]], n_files: int, max_share: float,
                        root: str) -> list[str]:
    """The warning listing unreadable files (none: no warning); raises DatasetError when
    they are more than ``max_share`` of the ``n_files``."""
    if not bad:
        return []
    listed = "; ".join(f"{os.path.relpath(p, root)}: {why}" for p, why in bad[:10])
    msg = (f"{len(bad)} of {n_files} files unreadable and skipped "
           f"({listed}{'; ...' if len(bad) > 10 else ''})")
    if len(bad) / max(1, n_files) > max_share:
        raise DatasetError(f"{msg}: more than {max_share:.0%} of the files failed; aborting", root)
    return [msg]


# ------------------------------------------------------------------------- the folds


def train_model(recs: list[Recording], groups: list | None, ctx: RunContext, classes: list[str],
                seed: int, fold: int | str):
    """Build and fit one model on ``recs`` (a patient-grouped validation split of them held
    out when the recipe has one); returns (float32 model, fit report, build info, number of
    fitted and of validation recordings)."""
    opts = ctx.opts
    fit_idx, val_idx = fit_validation_split([r.label for r in recs], groups, seed,
                                            opts.val_fraction)
    name = f"{opts.arch}_fold{fold}" if isinstance(fold, int) else f"{opts.arch}_all"
    if opts.val_fraction > 0 and not len(val_idx):
        ctx.log(f"{'fold ' + str(fold) if isinstance(fold, int) else 'the final model'}: too few "
                f"recordings ({len(recs)}) or patients to hold out a validation split; trained "
                "on all of them with a fixed schedule (no early stopping or plateau decisions)")
    weight_seed = opts.seed + (1000 * (fold - 1) if isinstance(fold, int) else 99_000)
    with ctx.scope:
        if ctx.start is not None:
            model, info = fit.load_start_model(ctx.start.member_path, weight_seed, name)
        else:
            model, info = fit.build_model(opts, len(classes), weight_seed, name=name,
                                          policy=ctx.precision)
        report = fit.fit_one(model, [recs[j] for j in fit_idx], [recs[j] for j in val_idx], opts,
                             classes, seed=seed, fold=fold, progress=ctx.progress,
                             should_stop=ctx.should_stop, noise_power=ctx.noise_bank)
        model = fit.as_float32(model, opts, len(classes), ctx.precision)
    return model, report, info, len(fit_idx), len(val_idx)


def cross_validate(data: TrainingData, folds, ctx: RunContext) -> CrossValidation:
    """Train one model per fold on the other folds and score its held-out recordings."""
    opts, n = ctx.opts, len(data.recs)
    shift = opts.device_shift and data.kind == "audio"
    cv = CrossValidation(folds, np.zeros((n, len(data.classes))), [None] * n,
                         np.zeros((n, len(data.classes))) if shift else None,
                         [None] * n if shift else None, {rule: np.zeros(n) for rule in POOLINGS})
    for i in range(folds.k):
        tr, te = folds.train(i), folds.test[i]
        groups = [data.patients[j] for j in tr] if data.patients is not None else None
        model, report, info, n_fit, n_val = train_model(
            [data.recs[j] for j in tr], groups, ctx, data.classes, opts.seed + i, i + 1)
        if i == 0 and info.note:
            ctx.log(info.note, "warning")
        fold_auc = score_held_out(model, data, te, cv, ctx)
        cv.reports.append({"fold": i + 1, "n_train": n_fit, "n_val": n_val, "n_test": int(len(te)),
                           "auc": fold_auc, **report})
        cv.models.append(model)
        cv.build_info = info
        ctx.progress(FoldEnd(fold=i + 1, folds=folds.k, metrics={
            "auc": fold_auc, "n_test": int(len(te)), "best_epoch": report["best_epoch"],
            "windows_per_s": report["windows_per_s"]}))
    return cv


def score_held_out(model, data: TrainingData, te, cv: CrossValidation, ctx: RunContext) -> float:
    """Put the held-out recordings ``te``'s predictions into ``cv`` (pooled, by window,
    under each pooling rule, device-shifted); returns the fold's recording AUC."""
    spec = output_spec(ctx.opts.task, data.classes, ctx.opts.outputs)
    test = [data.recs[j] for j in te]
    probs, parts = fit.recording_probs(model, test, ctx.opts.pooling, spec=spec)
    cv.probs[te] = probs
    for j, w in zip(te, parts):
        cv.windows[j] = w
    for rule in POOLINGS:
        cv.pooled[rule][te] = [1 - pool_probs(w, rule, spec)[0] for w in parts]
    if cv.probs_shift is not None:
        cv.probs_shift[te], parts_shift = fit.recording_probs(model, test, ctx.opts.pooling,
                                                              shifted=True, spec=spec)
        for j, w in zip(te, parts_shift):
            cv.windows_shift[j] = w
    return auc_or_nan(data.y[te], 1 - probs[:, 0])


# ------------------------------------------------------------------------ the report


def oof_report(data: TrainingData, cv: CrossValidation, ctx: RunContext, oof_path) -> dict:
    """The card's metrics from the out-of-fold predictions (:func:`evaluate_oof`), with the
    pooling alternatives and the device-shift check; writes ``oof_path`` if given (a
    failure there is a warning: the model is still worth finishing)."""
    opts = ctx.opts
    spec = output_spec(opts.task, data.classes, opts.outputs)
    fold_of = cv.folds.fold_of()
    y = data.y
    report = evaluate_oof(y, data.labels, cv.probs, fold_of, data.classes, opts.task,
                          flag_rule=is_flag_spec(spec), groups=data.patients,
                          class_probs=class_pooled_probs(cv.windows, opts.pooling, spec))
    report["pooling_auc"] = {rule: auc_or_nan(y, p) for rule, p in cv.pooled.items()}
    if oof_path is not None:
        try:
            if not ctx.overwrite and os.path.lexists(oof_path):  # made during the run
                raise FileExistsError("a file of that name appeared during the run; not overwritten")
            save_oof(oof_path, data.recs, data.root, fold_of, data.classes, spec, cv.probs,
                     cv.windows, cv.windows_shift)
            ctx.log(f"out-of-fold predictions written to {oof_path}")
        except OSError as exc:
            data.warnings.append(f"out-of-fold predictions not written to {oof_path}: {exc}")
            ctx.log(data.warnings[-1], "warning")
    report["patient_grouped"] = cv.folds.grouped
    report["evaluated"] = ("out-of-fold: every recording scored by the fold model that did "
                           "not see it")
    if cv.probs_shift is not None:
        report["device_shift"] = device_shift_report(report, y, cv.probs_shift, opts)
    if ctx.start is not None and data.kind == "audio":
        report["start_comparison"] = compare_with_start(data, cv, ctx, report)
    return report


def compare_with_start(data: TrainingData, cv: CrossValidation, ctx: RunContext,
                       report: dict) -> dict:
    """The starting model against the adapted fold models on the same held-out recordings
    (:func:`lungapp.training.finetune.start_comparison`)."""
    from lungapp.training.finetune import start_comparison, start_probabilities

    ctx.log(f"scoring the starting model {ctx.start.card.name} on the {len(data.recs)} "
            "held-out recordings")
    p_start = start_probabilities(ctx.start, [r.path for r in data.recs], ctx.log)
    spec = output_spec(ctx.opts.task, data.classes, ctx.opts.outputs)
    member, _ = fit.load_start_model(ctx.start.member_path, ctx.opts.seed, "start_member")
    p_member = 1 - fit.recording_probs(member, data.recs, ctx.opts.pooling, spec=spec)[0][:, 0]
    return start_comparison(ctx.start, data.y, {"start": p_start, "start_member": p_member,
                                                "adapted": 1 - cv.probs[:, 0]},
                            cv.folds.fold_of(), report["overall"])


def device_shift_report(report: dict, y: np.ndarray, probs_shift: np.ndarray,
                        opts: TrainOptions) -> dict:
    """The device-shift check: the out-of-fold figures on device-shifted recordings at the
    report's threshold, and their drop from the plain figures."""
    from lungapp.evaluation.metrics import binary_metrics

    shifted = binary_metrics(y, 1 - probs_shift[:, 0], report["threshold"])
    overall = report["overall"]
    return {
        "transform": "resample to 4 kHz, band-limit 100-1500 Hz, tilt -3 dB/octave, "
                     "white noise at 20 dB SNR (lungapp.training.augment.device_shift)",
        "augmentation": ("off" if not opts.augment else
                         "on, its added noise from the folder's Poor Quality recordings" if opts.real_noise
                         else "on"),
        "shifted": shifted,
        "drop": {k: (overall[k] - shifted[k]) if overall[k] is not None and shifted[k] is not None
                 else None for k in ("auc", "score", "sensitivity", "specificity")},
    }


# ---------------------------------------------------------------------- the artifact


def make_artifact(data: TrainingData, cv: CrossValidation, ctx: RunContext) -> tuple[dict, str]:
    """({file name: model}, description) of what the folder ships: the fold models as an
    ensemble, or one model retrained on all data with the same recipe."""
    opts = ctx.opts
    if opts.artifact == "ensemble":
        return ({f"fold{i + 1}.keras": m for i, m in enumerate(cv.models)},
                f"ensemble of the {cv.folds.k} fold models (outputs averaged): the models whose "
                "out-of-fold predictions are reported; each OOF figure comes from one member, so "
                "the ensemble's own error is expected to be at most that (the seed project's "
                "'parallel networks')")
    final, _, _, _, _ = train_model(data.recs, data.patients, ctx, data.classes, opts.seed + 99,
                                    "final")
    how = ("early stopping on a patient-grouped validation split" if opts.val_fraction
           else "the recipe's fixed schedule")
    return ({"model.keras": final},
            f"one model retrained on all data ({how}); the CV figures estimate its recipe")


def save_models(staging: Path, files: dict, cv: CrossValidation) -> None:
    """Write the artifact's models and the folds' training curves into ``staging``."""
    from lungapp.evaluation.metrics import json_safe
    from lungapp.fsutil import atomic_write_json

    for name, model in files.items():
        model.save(staging / name)
    curves = {"folds": [{"fold": f["fold"], "curves": f["curves"], "best_epoch": f["best_epoch"]}
                        for f in cv.reports]}
    atomic_write_json(staging / "curves.json", json_safe(curves))


def done_event(out: Path, report: dict, files: list[str], task: str, wall: float) -> Done:
    """The run's summary: the out-of-fold figures at the chosen threshold (given on the
    calibrated scale the app shows, where the run calibrates)."""
    from lungapp.training.oof import card_threshold

    return Done(out=str(out), wall_s=round(wall, 1), threshold=card_threshold(report),
                metrics={k: report["overall"][k] for k in
                         ("auc", "sensitivity", "specificity", "score", "accuracy", "confusion")},
                mean_sd=report["mean_sd"], artifact=files,
                four_class_score=report["four_class"]["score"] if task == "4class" else None,
                device_shift_drop=report["device_shift"]["drop"] if "device_shift" in report
                else None, start_comparison=_comparison_summary(report.get("start_comparison")))


def _comparison_summary(comparison: dict | None) -> dict | None:
    """The done event's short form of the start comparison: {"start", "adapted"} figures
    (AUC, sensitivity, specificity, score, confusion) and the starting model's name."""
    if comparison is None:
        return None
    keys = ("auc", "sensitivity", "specificity", "score", "confusion")
    return {"model": comparison["start"]["name"], "member": comparison["start"]["member"],
            "start": {k: comparison["start_overall"][k] for k in keys},
            "member_auc": comparison["start_member_recalibrated"]["auc"],
            "adapted": {k: comparison["adapted_overall"][k] for k in keys}}
