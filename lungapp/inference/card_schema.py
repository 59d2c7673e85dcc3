"""Typed parts of the model card: the cross-validation metrics, the training summary and
the model's output spec.

A card is JSON written by training and read by the app, the CLI, the card's text and the
ensemble tools. These dataclasses give its nested sections names and types, so readers
write ``card.metrics.overall.auc`` instead of ``(card.metrics.get("overall") or {}).get("auc")``.
Each section keeps the keys it does not know in ``extra`` and writes them back, so a card
written by a newer or older lungapp survives a load and a save unchanged
(``from_dict(d).to_dict() == d``). Plain data only: no numpy, no I/O.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar


class _Section:
    """A card section: known keys as typed fields, the rest in ``extra``.

    Fields whose type is another section are read recursively. On output, a field that is
    None is written only when it is in ``ALWAYS`` (a null the card means, e.g. an AUC that
    cannot be computed); otherwise None means "absent"."""

    ALWAYS: ClassVar[tuple[str, ...]] = ()
    #: Fields that are shares (AUC, sensitivity...): a card with one outside [0, 1] is
    #: invalid, not shown as "inf %" or "-500 %".
    RATES: ClassVar[tuple[str, ...]] = ("auc", "sensitivity", "specificity", "score", "accuracy",
                                        "four_class_score", "argmax_score", "nested_score", "ece")

    @classmethod
    def from_dict(cls, d: dict | None):
        if d is None:
            return None
        if not isinstance(d, dict):
            raise ValueError(f"{cls.__name__}: expected an object, not {type(d).__name__}")
        hints = typing.get_type_hints(cls)
        known, extra = {}, {}
        names = {f.name for f in dataclasses.fields(cls) if f.name != "extra"}
        for k, v in d.items():
            if k in names:
                known[k] = _read(hints[k], v, f"{cls.__name__}.{k}")
                if k in cls.RATES and known[k] is not None and not 0 <= known[k] <= 1:
                    raise ValueError(f"{cls.__name__}.{k} must lie between 0 and 1, not {known[k]:g}")
            else:
                extra[k] = v
        return cls(**known, extra=extra)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            v = getattr(self, f.name)
            if v is None and f.name not in self.ALWAYS:
                continue
            out[f.name] = v.to_dict() if isinstance(v, _Section) else v
        out.update(self.extra)
        return out


def _read(hint, value, where: str):
    """``value`` as the section type named in ``hint`` (``X | None``), else unchanged once
    its type is checked: a number must be an int or float (not a bool; NaN and infinity
    become None, as the card writes them), a list a list.
    Raises ValueError naming ``where`` (e.g. "BinaryScores.auc") otherwise."""
    types = [t for t in (typing.get_args(hint) or (hint,)) if t is not type(None)]
    for t in types:
        if isinstance(t, type) and issubclass(t, _Section):
            return t.from_dict(value)
    if value is None:
        return None
    if hasattr(value, "dtype") and hasattr(value, "item") and not hasattr(value, "__len__"):
        value = value.item()  # a numpy scalar from a report made in memory
    for t in types:
        if t is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            # NaN or infinity (an AUC of one class) is written as null, so it reads as None.
            return value if math.isfinite(value) else None
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if t in (str, bool, list, dict) and type(value) is t:
            return value
    names = " or ".join(getattr(t, "__name__", str(t)) for t in types)
    raise ValueError(f"{where} must be {names}, not {type(value).__name__}")


@dataclass
class BinaryScores(_Section):
    """Normal-vs-abnormal scores at ``threshold``. score = (sensitivity + specificity) / 2;
    confusion = [[tn, fp], [fn, tp]]; auc is None when only one class is present."""

    ALWAYS: ClassVar[tuple[str, ...]] = ("auc",)

    n: int = 0
    n_abnormal: int = 0
    n_normal: int = 0
    auc: float | None = None
    sensitivity: float | None = None
    specificity: float | None = None
    score: float | None = None
    accuracy: float | None = None
    confusion: list | None = None
    threshold: float | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class FourClassReport(_Section):
    """Four-class (Normal, CAS, DAS, CAS & DAS) scores: ``score`` is the mean of the
    abnormal recordings given their exact class (sensitivity) and specificity."""

    classes: list | None = None
    confusion: list | None = None
    per_class: dict | None = None
    sensitivity: float | None = None
    specificity: float | None = None
    score: float | None = None
    accuracy: float | None = None
    rule: str | None = None
    argmax_score: float | None = None
    nested_score: float | None = None
    per_fold_score: list | None = None
    flag_rule_check: dict | None = None
    class_pooling_check: dict | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class DeviceShift(_Section):
    """The out-of-fold recordings scored again after a fixed "other stethoscope" transform."""

    transform: str | None = None
    augmentation: str | None = None
    shifted: BinaryScores | None = None
    drop: dict | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class StartComparison(_Section):
    """A fine-tuned model (``lungapp train --init-from``) against the model it started
    from, on the same held-out recordings: ``start`` (what it was initialised from:
    folder, name, version, member), the starting model at its own threshold
    (``start_overall``) and the adapted fold models at the out-of-fold threshold
    (``adapted_overall``), both again at thresholds chosen on the other folds
    (``*_recalibrated``; also the fine-tuned member alone before fine-tuning,
    ``start_member_recalibrated``), and each fold's AUCs (``per_fold``)."""

    start: dict | None = None
    how: str | None = None
    n_unscored: int | None = None
    start_overall: BinaryScores | None = None
    start_recalibrated: BinaryScores | None = None
    start_member_recalibrated: BinaryScores | None = None
    adapted_overall: BinaryScores | None = None
    adapted_recalibrated: BinaryScores | None = None
    per_fold: list | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class Calibration(_Section):
    """Platt scaling of the abnormal probability, fitted on the out-of-fold predictions:
    the app shows sigmoid(a * logit(p) + b) for a pooled probability p. ``raw_threshold``
    is the threshold chosen on the uncalibrated out-of-fold probabilities (the card's
    ``threshold`` is the same cut on the calibrated scale); ``ece_raw`` / ``ece``: the
    expected calibration error of the out-of-fold probabilities before and after;
    ``nested_ece``: each fold calibrated by a fit on the other folds only;
    ``reliability``: the calibrated out-of-fold reliability bins."""

    method: str = "platt"
    a: float | None = None
    b: float | None = None
    fitted_on: str | None = None
    raw_threshold: float | None = None
    ece_raw: float | None = None
    ece: float | None = None
    nested_ece: float | None = None
    brier: float | None = None
    reliability: list | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class ExternalCheck(_Section):
    """The model on one collection or device it was not trained on (``name``): the
    binary scores at the card's threshold (with 95 % intervals of AUC and score), the
    four-class score, how many recordings the quality check refused or warned on and how
    many the input profile calls unlike the training recordings, and the calibration there
    (ECE and reliability bins). ``command`` reproduces it."""

    ALWAYS: ClassVar[tuple[str, ...]] = ("auc",)

    name: str = ""
    command: str | None = None
    n: int = 0
    n_abnormal: int = 0
    n_normal: int = 0
    auc: float | None = None
    sensitivity: float | None = None
    specificity: float | None = None
    score: float | None = None
    four_class_score: float | None = None
    refused: int | None = None
    warned: int | None = None
    ece: float | None = None
    reliability: list | None = None
    best_threshold: float | None = None
    #: 95 % intervals [low, high] of the AUC and the score, from a bootstrap over patients
    #: (``resampled`` says what was resampled and ``n_groups`` how many).
    auc_ci95: list | None = None
    score_ci95: list | None = None
    resampled: str | None = None
    n_groups: int | None = None
    #: How many of the recordings the quality check passed the card's input profile calls
    #: unlike the training recordings (lungapp.inference.profile); None: not measured.
    unfamiliar: int | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class Metrics(_Section):
    """Cross-validated performance: every figure out of fold, split by patient."""

    threshold: float | None = None
    threshold_rule: str | None = None
    flag_thresholds: dict | None = None
    overall: BinaryScores | None = None
    per_fold: list | None = None
    mean_sd: dict | None = None
    nested_threshold: dict | None = None
    four_class: FourClassReport | None = None
    class_pooling: str | None = None
    pooling_auc: dict | None = None
    patient_grouped: bool | None = None
    evaluated: str | None = None
    device_shift: DeviceShift | None = None
    quality_gate: str | None = None
    start_comparison: StartComparison | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class TrainingData(_Section):
    """What the model was trained on: the folder, its layout, counts and a hash of its files."""

    folder: str | None = None
    layout: str | None = None
    n_recordings: int | None = None
    counts: dict | None = None
    source_counts: dict | None = None
    n_patients: int | None = None
    total_duration_s: float | None = None
    n_windows: int | None = None
    excluded: int | None = None
    unreadable: int | None = None
    unreadable_files: list | None = None
    file_list_sha256: str | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class CrossValidation(_Section):
    """How the folds were made: k, the seed, whether they were grouped by patient."""

    k: int | None = None
    grouped_by_patient: bool | None = None
    seed: int | None = None
    splitter: str | None = None
    validation: str | None = None
    folds: list | None = None
    note: str | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class Training(_Section):
    """The training run: data, options (the recipe, as plain data), folds, artifact."""

    data: TrainingData | None = None
    options: dict | None = None
    cv: CrossValidation | None = None
    artifact: str | None = None
    backbone_weights: str | None = None
    backbone_note: str | None = None
    distribution: str | None = None
    precision: str | None = None
    warnings: list | None = None
    wall_s: float | None = None
    curves_file: str | None = None
    members: list | None = None
    dataset_description: str | None = None
    credits: str | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class OutputSpec:
    """What a model's output units are and how they become the card's classes:
    ``kind`` "softmax" (outputs == classes) or "sigmoid" (independent flags:
    ["abnormal"] for two classes, ["CAS", "DAS"] for four)."""

    kind: str
    outputs: tuple[str, ...]
    classes: tuple[str, ...]

    @property
    def flags(self) -> bool:
        return self.kind == "sigmoid"
