"""The training progress protocol: one typed event per step of a run.

:func:`lungapp.training.train.train` emits these events to its ``progress`` callable;
``lungapp train --progress json`` prints each as one JSON line (:meth:`Event.to_json`),
and the GUI's Train tab reads the lines back (:func:`parse`). The wire form is a JSON
object whose ``"event"`` key names the kind, followed by the event's fields:

* ``start``: folder, out, task, preset, arch, folds, epochs, classes;
* ``extract``: done, total, bad (feature extraction, every ~5 % of the files);
* ``log``: level (``info`` / ``warning``), message;
* ``epoch_end``: fold (1-based, or ``"final"`` for the model retrained on all data),
  epoch, epochs, metrics (loss, accuracy, lr, seconds; with a validation split
  val_loss, val_auc, val_accuracy);
* ``fold_end``: fold, folds, metrics (auc, n_test, best_epoch, windows_per_s);
* ``done``: out, wall_s, threshold, metrics, mean_sd, artifact, and for four classes
  four_class_score, with the device-shift check device_shift_drop;
* ``error``: kind (one of :data:`ERROR_KINDS`), message.

Light on purpose (standard library only): the CLI and the GUI import it without Keras.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

ERROR_KINDS = ("dataset", "output", "cancelled", "options", "unavailable", "internal")
"""Why a run ended without a model: refused data, an unusable output folder, cancelled,
bad options, no TensorFlow in this installation, or a bug."""


class Cancelled(Exception):
    """The run was stopped on request (SIGTERM / SIGINT); nothing was written to ``out``."""


def _json_safe(value):
    """``value`` with NaN / infinity as None and NumPy scalars and arrays as Python values,
    so the line is strict JSON."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "tolist"):  # NumPy scalar or array, without importing NumPy
        return _json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class Event:
    """Base of the events; ``event`` is the wire name of the kind (the ``"event"`` key)."""

    event: ClassVar[str] = ""

    def to_dict(self) -> dict:
        """The wire form as a dict: ``{"event": event, **fields}``; optional fields left
        None are left out."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        optional = getattr(self, "_optional", ())
        return {"event": self.event, **{k: v for k, v in fields.items()
                                       if not (k in optional and v is None)}}

    def to_json(self) -> str:
        """One line of strict JSON (NaN becomes null)."""
        return json.dumps(_json_safe(self.to_dict()))


@dataclass
class Start(Event):
    event: ClassVar[str] = "start"
    folder: str
    out: str
    task: str
    preset: str
    arch: str
    folds: int
    epochs: int
    classes: list[str]


@dataclass
class Extract(Event):
    event: ClassVar[str] = "extract"
    done: int
    total: int
    bad: int


@dataclass
class Log(Event):
    event: ClassVar[str] = "log"
    message: str
    level: str = "info"


@dataclass
class EpochEnd(Event):
    event: ClassVar[str] = "epoch_end"
    fold: int | str
    epoch: int
    epochs: int
    metrics: dict = field(default_factory=dict)


@dataclass
class FoldEnd(Event):
    event: ClassVar[str] = "fold_end"
    fold: int
    folds: int
    metrics: dict = field(default_factory=dict)


@dataclass
class Done(Event):
    event: ClassVar[str] = "done"
    _optional: ClassVar[tuple] = ("four_class_score", "device_shift_drop", "start_comparison")
    out: str
    wall_s: float
    threshold: float
    metrics: dict
    mean_sd: dict = field(default_factory=dict)
    artifact: list[str] = field(default_factory=list)
    four_class_score: float | None = None
    device_shift_drop: dict | None = None
    skipped: list[dict] = field(default_factory=list)  # {"file", "reason"}: files not used
    # fine-tuning: the starting model's figures next to the adapted one's (see
    # lungapp.training.train._comparison_summary)
    start_comparison: dict | None = None


@dataclass
class Error(Event):
    event: ClassVar[str] = "error"
    kind: str  # one of ERROR_KINDS
    message: str


EVENTS: dict[str, type[Event]] = {c.event: c for c in (Start, Extract, Log, EpochEnd, FoldEnd,
                                                     Done, Error)}


def from_dict(d: dict[str, Any]) -> Event:
    """The event of a wire-form dict. Unknown extra keys are ignored (a newer writer).

    Raises:
        ValueError: not an object, unknown ``event`` kind, or a required field missing.
    """
    if not isinstance(d, dict):
        raise ValueError(f"a progress event is a JSON object, not {type(d).__name__}")
    cls = EVENTS.get(d.get("event"))
    if cls is None:
        raise ValueError(f"unknown progress event {d.get('event')!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{k: v for k, v in d.items() if k in names})
    except TypeError as exc:
        raise ValueError(f"bad {cls.event} event: {exc}") from None


def parse(line: str | bytes) -> Event:
    """The event of one JSON line (see the module docstring).

    Raises:
        ValueError: not JSON, or not an event (:func:`from_dict`).
    """
    return from_dict(json.loads(line))
