"""The model card of a finished training run (:class:`lungapp.inference.card.ModelCard`):
what the model is, how it was trained and evaluated, on which data, and its limits."""

from __future__ import annotations

import datetime as _dt
import os
from collections import Counter

from lungapp.inference.card_schema import CrossValidation, Metrics, Training, TrainingData
from lungapp.training.dataset import file_list_hash, output_spec


def make_card(ctx, data, cv, report: dict, artifact: tuple[list[str], str], wall: float, out):
    """The card of a run: ``ctx`` (:class:`lungapp.training.train.RunContext`), ``data``
    (its ``TrainingData``), ``cv`` (its ``CrossValidation``), the out-of-fold ``report``,
    the ``artifact`` (model file names, description), the wall time so far and the output
    folder ``out`` (the default model name)."""
    from lungapp.inference.card import ModelCard, library_versions
    from lungapp.training.oof import card_threshold
    from lungapp.training.profile import profile_of_recordings

    opts, (files, artifact_text) = ctx.opts, artifact
    folds, info = cv.folds, cv.build_info
    spec = output_spec(opts.task, data.classes, opts.outputs)
    return ModelCard(
        name=opts.name or out.name, version="1", task=opts.task, classes=list(data.classes),
        features=opts.features, model_files=list(files), threshold=card_threshold(report),
        threshold_rule=report["threshold_rule"], output_kind=spec[0], outputs=list(spec[1]),
        flag_thresholds=report.get("flag_thresholds", {}),
        class_pooling=report.get("class_pooling", ""),
        pooling=opts.pooling,
        input_kind=data.kind,
        created=_dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        calibration=report.get("calibration"),
        metrics=Metrics.from_dict(metrics_of(report)), training=_training_section(ctx, data, cv, artifact_text, wall),
        versions=library_versions(), limitations=_limitations(opts, folds, info),
        description=f"lungapp train --preset {opts.preset} --arch {opts.arch} --task {opts.task}, "
                    f"{folds.k}-fold CV" + _start_text(ctx.start),
        quality_gate={"enabled": False} if data.kind == "image" else {},
        equalisation=ctx.equalisation,
        input_profile=None if data.kind == "image" else profile_of_recordings(
            data.recs, data.patients, source=f"the training folder {os.path.basename(str(data.root))}"))


def metrics_of(report: dict) -> dict:
    """The card's ``metrics`` from an out-of-fold report: all of it but the calibration,
    which the card holds at its top level beside the threshold."""
    return {k: v for k, v in report.items() if k != "calibration"}


def _start_text(start) -> str:
    """The description's note of what a fine-tuned model started from ("" otherwise)."""
    if start is None:
        return ""
    return (f"; every model fine-tuned from {start.card.name} {start.card.version} "
            f"(member {start.member}, {start.features.window_s:g}-s windows, {start.folder})")


def _data_section(data) -> TrainingData:
    """The card's ``training.data``: the recordings trained on and those left out."""
    recs, root, bad = data.recs, data.root, data.bad
    counts = Counter(r.label for r in recs)
    patients = {r.patient for r in recs if r.patient is not None}
    return TrainingData(
        folder=str(root), layout=data.dataset.layout, n_recordings=len(recs),
        counts={c: counts[c] for c in data.classes}, source_counts=dict(data.dataset.counts()),
        n_patients=len(patients) if patients else None,
        total_duration_s=round(float(sum(r.duration_s for r in recs)), 1),
        n_windows=int(sum(len(r.X) for r in recs)), excluded=data.excluded, unreadable=len(bad),
        unreadable_files=[os.path.relpath(p, root) for p, _ in bad[:50]],
        file_list_sha256=file_list_hash(recs, root))


def _training_section(ctx, data, cv, artifact_text: str, wall: float) -> Training:
    """The card's ``training``: data, options, cross-validation, artifact, set-up."""
    opts, folds, info = ctx.opts, cv.folds, cv.build_info
    validation = ((f"{opts.val_fraction:.0%} of the training folds' patients, for "
                   f"{opts.monitor} early stopping / LR decisions; the held-out fold is "
                   "never used in training") if opts.val_fraction else
                  ("none: each fold model trains on all its training folds with a fixed "
                   "schedule and keeps its last weights; the held-out fold is never "
                   "used in training"))
    return Training(
        data=_data_section(data),
        options=opts.to_dict(),
        cv=CrossValidation(
            k=folds.k, grouped_by_patient=folds.grouped, seed=opts.seed,
            splitter="sklearn StratifiedGroupKFold" if folds.grouped else "sklearn StratifiedKFold",
            validation=validation,
            folds=[{k: v for k, v in f.items() if k != "curves"} for f in cv.reports]),
        artifact=artifact_text,
        backbone_weights=info.weights if info else None,
        backbone_note=info.note if info else "",
        distribution=ctx.distribution,
        precision=ctx.precision,
        curves_file="curves.json",
        warnings=list(data.warnings),
        wall_s=round(wall, 1),
    )


def _limitations(opts, folds, info) -> list[str]:
    """What the card must say the cross-validation does not show."""
    out = ["Cross-validated on the training folder only; performance on other hospitals, "
           "stethoscopes, ages and noise conditions is unknown (see the device-shift check)."]
    if not folds.grouped:
        out.append("No patient ids: folds were split by file, so the CV estimate is optimistic.")
    if info and info.weights == "random" and opts.arch in ("inception_v3", "resnet50"):
        out.append(info.note)
    return out
