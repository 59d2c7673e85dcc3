"""Run a model card's model(s) on a recording: windows -> probabilities -> result.

Two runtimes:

* ``onnx`` (:mod:`lungapp.inference.runtime`): ONNX Runtime runs the ONNX exports the
  card lists (each checked against its SHA-256). No TensorFlow import (seconds,
  hundreds of MB): the app's first result comes seconds sooner.
* ``keras``: ``keras.saving.load_model(safe_mode=True)`` and a compiled
  ``keras.layers.Average`` ensemble, for a model folder without ONNX exports (an older
  or hand-made one; ``lungapp models install`` exports it). A model file with a Lambda
  layer or other custom code is refused, never run.

``LUNGAPP_RUNTIME=auto|onnx|keras`` (default auto: onnx when the card lists ONNX exports,
else keras) or ``Predictor.load(runtime=...)`` chooses; ``Predictor.runtime`` says which
one is in use and ``Predictor.runtime_note`` why Keras was used. Importing this module is
cheap; TensorFlow/Keras is imported only when the keras runtime loads a model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lungapp.errors import AudioError, ModelError
from lungapp.inference.card import ModelCard, load_card, verify_onnx
from lungapp.inference.features import FeatureConfig, WindowStream, image_features, member_windows
from lungapp.inference.profile import Unfamiliar
from lungapp.inference.runtime import RUNTIMES, runtime_choice  # noqa: F401 (public here too)
from lungapp.inference.segments import (
    SEGMENT_S,
    SegmentResult,
    borderline_margin,
    flagged_ranges,
    segment_bounds,
    segment_length,
    timeline_peaks,
    windows_inside,
)

#: Recordings shorter than this are refused by the decoder ("too short to analyse").
MIN_SECONDS = 1.0
POOR_QUALITY_LABEL = "Poor quality - please record again"
# Windows per Keras call (ONNX Runtime's calls: lungapp.inference.runtime.call_pieces).
_BATCH = 16
#: Seconds of signal cut into windows at a time: bounds memory for recordings of any length.
CHUNK_S = 60.0
#: Why a model runs on Keras in auto mode.
NO_ONNX_NOTE = "no ONNX export in the model folder; `lungapp models install` exports it"


@dataclass
class WindowResult:
    start_s: float
    end_s: float
    probabilities: dict[str, float]
    abnormal_probability: float

    def to_dict(self) -> dict:
        return {"start_s": round(self.start_s, 4), "end_s": round(self.end_s, 4),
                "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()},
                "abnormal_probability": round(self.abnormal_probability, 6)}


@dataclass
class Prediction:
    """A recording's result. ``decision`` is "normal", "abnormal" or "poor quality";
    when the quality gate refuses the recording, ``label`` asks to record again and the
    model's probabilities are kept for transparency but are not a diagnosis."""

    file: str | None
    duration_s: float
    label: str
    decision: str
    abnormal_probability: float
    probabilities: dict[str, float]
    windows: list[WindowResult]
    model: dict
    threshold: float
    quality: object | None = None
    extra: dict = field(default_factory=dict)
    #: Each segment's answer (one segment, the whole recording, up to 1.5 segment lengths;
    #: :mod:`lungapp.inference.segments`); the recording's answer is its worst segment's.
    segments: list[SegmentResult] = field(default_factory=list)
    #: (start s, end s) of the abnormal stretches: the flagged segments, joined.
    abnormal_ranges: list[tuple[float, float]] = field(default_factory=list)
    #: The abnormal probability lies within ``borderline_margin`` of the threshold.
    borderline: bool = False
    borderline_margin: float = 0.0
    #: (centre time s, abnormal probability) of the timeline's highest windows.
    peaks: list[tuple[float, float]] = field(default_factory=list)
    #: {"declared_s", "present_s"} when the file's header promises more audio than it holds.
    truncated: dict | None = None
    #: Set when the recording's balance of frequencies is unlike the training recordings'
    #: (:mod:`lungapp.inference.profile`; only for models whose card has an input profile).
    unfamiliar: Unfamiliar | None = None

    def notes(self, caution: bool = True) -> list[str]:
        """Sentences a reader needs beside the verdict: truncation, where the abnormal
        stretches are, the caution on a recording unlike the training ones (left out with
        ``caution=False``, for a view that shows it on its own), a borderline answer and
        where to listen."""
        out = []
        if self.truncated:
            out.append(f"Truncated file: the header says {self.truncated['declared_s']:.1f} s, "
                       f"the file holds {self.truncated['present_s']:.1f} s; the part present was analysed.")
        if self.abnormal_ranges and len(self.segments) > 1:
            where = ", ".join(f"{_clock(a)}-{_clock(b)}" for a, b in self.abnormal_ranges)
            out.append(f"Abnormal in {where} (of {_clock(self.duration_s)}; judged in "
                       f"{self.segments[0].end_s - self.segments[0].start_s:.0f}-s segments).")
        if caution and self.unfamiliar is not None:
            out.append(self.unfamiliar.sentence())
        if self.borderline:
            at = ", ".join(f"{_clock(t)}" for t, _ in self.peaks)
            out.append(f"Borderline: listen again (abnormal {self.abnormal_probability:.0%}, within "
                       f"{self.borderline_margin:.0%} of the {self.threshold:.0%} threshold)"
                       + (f"; the timeline peaks at {at}." if at else "."))
        return out

    def to_dict(self) -> dict:
        q = self.quality
        return {
            "file": self.file, "duration_s": round(self.duration_s, 4), "label": self.label,
            "decision": self.decision,
            "abnormal_probability": round(self.abnormal_probability, 6),
            "threshold": self.threshold,
            "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()},
            "quality": None if q is None else q.to_dict(),
            "windows": [w.to_dict() for w in self.windows],
            "model": self.model,
            "segments": [sg.to_dict() for sg in self.segments],
            "abnormal_ranges": [[round(a, 3), round(b, 3)] for a, b in self.abnormal_ranges],
            "borderline": self.borderline,
            "borderline_margin": round(self.borderline_margin, 6),
            "peaks": [{"time_s": round(t, 3), "abnormal_probability": round(p, 6)} for t, p in self.peaks],
            "truncated": self.truncated,
            "unfamiliar": None if self.unfamiliar is None else self.unfamiliar.to_dict(),
            "notes": self.notes(),
        }


def _clock(t: float) -> str:
    """Seconds as "12.5 s" below a minute, else "m:ss" (from an hour "h:mm:ss")."""
    if t < 60:
        return f"{t:.1f} s"
    m, sec = divmod(int(round(t)), 60)
    return f"{m // 60}:{m % 60:02d}:{sec:02d}" if m >= 60 else f"{m}:{sec:02d}"


def outputs_to_classes(out: np.ndarray, card: ModelCard) -> np.ndarray:
    """Model outputs (n, len(card.outputs)) -> class probabilities (n, len(card.classes))."""
    out = np.asarray(out, dtype=np.float64)
    if card.output_kind == "softmax":
        return out
    if card.outputs == ["abnormal"]:
        a = out[:, 0]
        return np.stack([1 - a, a], axis=1)
    c, d = out[:, 0], out[:, 1]
    return np.stack([(1 - c) * (1 - d), c * (1 - d), (1 - c) * d, c * d], axis=1)


def _pool(values: np.ndarray, rule: str) -> np.ndarray:
    """Pool per-window values (n, k) over windows -> (k,) by the card's rule."""
    if rule == "mean":
        return values.mean(axis=0)
    if rule == "max":
        return values.max(axis=0)
    if rule.startswith("quantile:"):
        return np.quantile(values, float(rule.split(":")[1]), axis=0)
    k = min(int(rule.split(":")[1]), len(values))
    return np.sort(values, axis=0)[-k:].mean(axis=0)


def _flag_probs(pooled: np.ndarray, class_pooled: np.ndarray | None, card) -> np.ndarray:
    """Recording class probabilities of a sigmoid model from its pooled flags (and the
    flags pooled by the card's ``class_pooling``, which share out the abnormal
    probability among the abnormal classes; None: the pooled flags name the class)."""
    probs = outputs_to_classes(pooled[None, :], card)[0]
    if class_pooled is not None:
        share = outputs_to_classes(class_pooled[None, :], card)[0][1:]
        total = share.sum()
        share = share / total if total > 0 else np.full(len(share), 1.0 / len(share))
        probs = np.concatenate([probs[:1], (1.0 - probs[0]) * share])
    return probs


def _class_rule(card) -> str | None:
    rule = card.class_pooling
    return rule if rule and rule != card.pooling and len(card.outputs) == 2 else None


def pool_recording(window_out: np.ndarray, card: ModelCard) -> np.ndarray:
    """Window model outputs (n, n_outputs) -> recording class probabilities (n_classes,).

    sigmoid models pool each flag over windows (a wheeze in one window and a crackle in
    another make a "CAS & DAS" recording); with a ``class_pooling`` on the card, the abnormal
    classes share the pooled abnormal probability in proportion to the flags pooled that
    way. softmax models pool the abnormal probability and share it among abnormal classes
    in proportion to their window evidence.
    """
    if card.output_kind == "sigmoid":
        out = np.asarray(window_out, dtype=np.float64)
        # The abnormal probability stays the pooled one; the abnormal classes share it in
        # proportion to the class-pooled flags (a wheeze in a quarter of the windows makes
        # a CAS recording even where the mean of its CAS flag is low).
        rule = _class_rule(card)
        return _flag_probs(_pool(out, card.pooling), None if rule is None else _pool(out, rule), card)
    probs = np.asarray(window_out, dtype=np.float64)
    p_abn_w = 1.0 - probs[:, 0]
    p_abn = float(_pool(p_abn_w[:, None], card.pooling)[0])
    abn = probs[:, 1:]
    share = (abn * p_abn_w[:, None]).sum(axis=0) if p_abn_w.sum() > 0 else abn.sum(axis=0)
    share = share / share.sum() if share.sum() > 0 else np.full(abn.shape[1], 1.0 / abn.shape[1])
    return np.concatenate([[1.0 - p_abn], p_abn * share])


def pool_members(outs: list[np.ndarray], weights: list[int], card) -> np.ndarray:
    """Recording class probabilities of an ensemble whose member groups read different
    windows (:meth:`ModelCard.member_groups`): ``outs[g]`` is group g's window outputs
    (averaged over its members), ``weights[g]`` its number of members. Each group's
    windows are pooled by the card's rules and the pooled values averaged over all
    members (sigmoid: the pooled flags, and the class-pooled ones; softmax: the class
    probabilities). One group: :func:`pool_recording`."""
    if len(outs) == 1:
        return pool_recording(outs[0], card)
    w = np.asarray(weights, dtype=np.float64) / float(np.sum(weights))
    if card.output_kind == "sigmoid":
        outs = [np.asarray(o, dtype=np.float64) for o in outs]
        rule = _class_rule(card)
        pooled = sum(wg * _pool(o, card.pooling) for wg, o in zip(w, outs))
        class_pooled = None if rule is None else sum(wg * _pool(o, rule) for wg, o in zip(w, outs))
        return _flag_probs(pooled, class_pooled, card)
    return sum(wg * pool_recording(o, card) for wg, o in zip(w, outs))


def timeline_outputs(outs: list[np.ndarray], starts: list[np.ndarray], lengths: list[float],
                     weights: list[int]) -> np.ndarray:
    """The ensemble's outputs on the first group's windows (the timeline): for each of
    them, every other group contributes the mean of its windows that contain the window's
    centre (the nearest window when none does), weighted by the groups' members."""
    base = np.asarray(outs[0], dtype=np.float64)
    if len(outs) == 1:
        return base
    w = np.asarray(weights, dtype=np.float64) / float(np.sum(weights))
    centres = np.asarray(starts[0], dtype=np.float64) + lengths[0] / 2.0
    total = w[0] * base
    for wg, o, st, length in zip(w[1:], outs[1:], starts[1:], lengths[1:]):
        o = np.asarray(o, dtype=np.float64)
        st = np.asarray(st, dtype=np.float64)
        rows = []
        for c in centres:
            inside = (st <= c) & (c < st + length)
            if not inside.any():
                inside = np.abs(st + length / 2.0 - c) == np.abs(st + length / 2.0 - c).min()
            rows.append(o[inside].mean(axis=0))
        total = total + wg * np.array(rows)
    return total


@dataclass
class MemberGroup:
    """Members of a model that read the same windows: their features, one callable model
    (the group's members averaged) and how many members it holds."""

    features: FeatureConfig
    model: object
    members: int


def load_onnx_models(model_dir: Path, card: ModelCard) -> list[MemberGroup]:
    """The card's ONNX exports in ONNX Runtime sessions, one callable per member group
    (:meth:`ModelCard.member_groups`; an ensemble when a group has several files).
    Raises ModelError for a missing, altered or malformed ONNX file."""
    from lungapp.inference import runtime

    def load(path: Path):
        return runtime.load_onnx_model(model_dir, card, path.name)

    return _load_groups(model_dir, card, load, runtime.ensemble)


def _load_groups(model_dir: Path, card: ModelCard, load, ensemble) -> list[MemberGroup]:
    """The card's member groups (:meth:`ModelCard.member_groups`), each file read by
    ``load`` and shape-checked against its group's features, each group's models made
    one by ``ensemble``."""
    groups = []
    for fc, files in card.member_groups():
        models = [load(model_dir / f) for f in files]
        for f, m in zip(files, models):
            _check_shapes(model_dir / f, m, card, fc)
        groups.append(MemberGroup(fc, ensemble(models), len(files)))
    return groups


def planned_runtime(model_dir, runtime: str | None = None) -> tuple[str, str]:
    """(runtime, note): the runtime :meth:`Predictor.load` would use for ``model_dir``
    ("onnx" or "keras"; "none" when it would refuse the model) and why. Checks the card
    and the ONNX files' hashes; never imports TensorFlow or ONNX Runtime (for
    ``lungapp info`` / ``models``)."""
    choice = runtime_choice(runtime)
    try:
        card = load_card(model_dir)
        if choice == "keras":
            return "keras", "LUNGAPP_RUNTIME=keras"
        if not card.onnx:
            return ("none", _forced_onnx_problem()) if choice == "onnx" else ("keras", NO_ONNX_NOTE)
        verify_onnx(model_dir, card)
    except ModelError as exc:  # invalid card, or an altered/missing ONNX file
        return "none", str(exc)
    return "onnx", ""


def _forced_onnx_problem() -> str:
    return ("LUNGAPP_RUNTIME=onnx, but the model folder has no ONNX export "
            "(`lungapp models install` exports it)")


def _card_sha256(model_dir: Path) -> str:
    from lungapp.inference.card import card_path

    try:
        return hashlib.sha256(card_path(model_dir).read_bytes()).hexdigest()
    except OSError:
        return ""


class Predictor:
    """A loaded model. Use :meth:`load`; then :meth:`predict_file` / :meth:`predict_audio`.

    ``runtime`` is "onnx" or "keras" (see the module docstring); ``runtime_note`` says
    why the keras runtime was chosen ("" for onnx)."""

    def __init__(self, model_dir: Path, card: ModelCard, model, runtime: str = "keras",
                 runtime_note: str = ""):
        """``model``: one callable model reading ``card.features`` (all the card's files
        averaged), or a list of :class:`MemberGroup` (one per member group)."""
        self.model_dir = Path(model_dir)
        self.card = card
        self.groups = (list(model) if isinstance(model, list)
                       else [MemberGroup(card.features, model, len(card.model_files))])
        self.runtime = runtime
        self.runtime_note = runtime_note
        #: The sha256 of the folder's ``card.json`` (which records the model files' hashes,
        #: threshold and calibration) as it was when the model loaded ("" when unreadable):
        #: a card rewritten later does not make this model look like the new one.
        self.card_sha256 = _card_sha256(self.model_dir)
        #: Segment length for pooling long recordings (s); 0 or None pools the whole
        #: recording (the rule before segments; :mod:`lungapp.inference.segments`).
        self.segment_s: float | None = SEGMENT_S
        #: Seconds of signal analysed at a time (memory, not results, depends on it).
        self.chunk_s: float = CHUNK_S

    @property
    def card_digest(self) -> str:
        """The first 16 hex digits of :attr:`card_sha256`: what a result's model dict
        carries ("card"), so a model retrained or recalibrated in the same folder under the
        same name is another model."""
        return self.card_sha256[:16]

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def version(self) -> str:
        return self.card.version

    def runtime_text(self) -> str:
        """One line for users: "ONNX Runtime" / "Keras runtime (reason)"."""
        if self.runtime == "onnx":
            return "ONNX Runtime"
        return "Keras runtime" + (f" ({self.runtime_note})" if self.runtime_note else "")

    @classmethod
    def load(cls, model_dir=None, runtime: str | None = None) -> Predictor:
        """Load the model in ``model_dir`` (None: the active model) with ``runtime``
        ("auto", "onnx", "keras"; None: ``LUNGAPP_RUNTIME``, default auto). Raises
        ModelError (also when "onnx" is forced on a folder without ONNX exports, and for
        an ONNX file that does not match the card's hash)."""
        from lungapp.inference.registry import active_model_dir

        choice = runtime_choice(runtime)
        # Absolute (links kept): results name the folder that made them, wherever they are read.
        model_dir = Path(model_dir if model_dir is not None else active_model_dir()).absolute()
        card = load_card(model_dir)
        if choice != "keras" and card.onnx:
            return cls(model_dir, card, load_onnx_models(model_dir, card), runtime="onnx")
        if choice == "onnx":
            raise ModelError(_forced_onnx_problem(), model_dir)
        note = "LUNGAPP_RUNTIME=keras" if choice == "keras" else NO_ONNX_NOTE
        groups = _load_groups(model_dir, card, load_keras_model, _ensemble)
        return cls(model_dir, card, groups, runtime="keras", runtime_note=note)

    # --- raw model calls ---------------------------------------------------------------
    def window_outputs(self, X: np.ndarray, group: int = 0) -> np.ndarray:
        """Model outputs for windows X (n, *input_shape) of member group ``group`` (the
        first: ``card.features``' windows) -> (n, n_outputs) float64."""
        return self.group_outputs([(group, X)])[0]

    def group_outputs(self, batches: list[tuple[int, np.ndarray]]) -> list[np.ndarray]:
        """:meth:`window_outputs` of several ``(group, X)`` batches.

        onnx runtime: every member's calls on every batch run side by side on the model
        threads (:func:`lungapp.inference.runtime.ensemble_outputs`). keras runtime:
        predict_on_batch runs a compiled graph (traced once), several times faster than an
        eager ``model(x)`` call or ``model.predict`` (which also sets up a data pipeline per
        call)."""
        batches = [(g, np.asarray(X, dtype=np.float32)) for g, X in batches]
        if self.runtime == "onnx":
            from lungapp.inference import runtime

            jobs = [(runtime.members(self.groups[g].model), X) for g, X in batches]
            return [o.astype(np.float64) for o in runtime.ensemble_outputs(jobs)]
        out = []
        for g, X in batches:
            call = self.groups[g].model.predict_on_batch
            out.append(np.concatenate([np.asarray(call(X[i: i + _BATCH]))
                                       for i in range(0, len(X), _BATCH)]).astype(np.float64))
        return out

    # --- recordings --------------------------------------------------------------------
    def predict_file(self, path) -> Prediction:
        """Decode ``path`` (any supported audio file, or an image for image models) and
        predict. The file is decoded, resampled and analysed block by block, so memory
        does not grow with its length. Raises AudioError naming the file for unreadable
        audio."""
        if self.card.input_kind == "image":
            X = image_features(path, self.card.features)
            return self._result(str(path), 0.0, ([self.window_outputs(X)], [np.zeros(1)]), quality=None)
        from lungapp.audio import AudioStream
        from lungapp.inference.runtime import one_blas_thread

        with one_blas_thread(), AudioStream(path, rate=self.card.features.rate,
                                            min_seconds=MIN_SECONDS) as stream:
            pred = self._predict_blocks(stream, str(path))
        if stream.declared_duration_s is not None:
            pred.truncated = {"declared_s": round(stream.declared_duration_s, 3),
                              "present_s": round(stream.duration_s, 3)}
        return pred

    def predict_audio(self, samples, rate: int, path: str | None = None) -> Prediction:
        """Predict a mono signal ``samples`` (float, [-1, 1]) sampled at ``rate`` Hz."""
        from lungapp.inference.runtime import one_blas_thread

        with one_blas_thread():
            return self._predict_audio(samples, rate, path)

    def _predict_audio(self, samples, rate: int, path: str | None) -> Prediction:
        fc: FeatureConfig = self.card.features
        x = np.asarray(samples, dtype=np.float32)
        if x.ndim != 1 or len(x) == 0:
            raise AudioError("expected a non-empty mono signal", path)
        if not np.all(np.isfinite(x)):
            raise AudioError("audio contains NaN or infinite samples", path)
        if rate != fc.rate:
            from lungapp.audio import resample

            x = resample(x, rate, fc.rate)
        step = max(1, int(self.chunk_s * fc.rate))
        return self._predict_blocks((x[i: i + step] for i in range(0, len(x), step)), path)

    def _predict_blocks(self, blocks, path: str | None) -> Prediction:
        """Windows, model outputs and the quality check of a signal at the card's rate
        given as consecutive mono blocks; only a chunk of it is held at a time."""
        fc: FeatureConfig = self.card.features
        stream = WindowStream([g.features for g in self.groups], chunk_s=self.chunk_s, reuse=True)
        quality = None
        if self.card.quality_gate.get("enabled", True):
            from lungapp.inference.quality_blocks import QualityStream

            params = {k: v for k, v in self.card.quality_gate.items() if k != "enabled"}
            quality = QualityStream(fc.rate, params or None)
        outs: list[list] = [[] for _ in self.groups]
        starts: list[list] = [[] for _ in self.groups]
        for block, model_block in self._model_blocks(blocks):
            if quality is not None:
                quality.push(block)  # the quality check reads the recording as it is
            self._run_windows(stream.push(model_block), outs, starts)
        # The quality check of what is left (all of a recording under two minutes) runs on
        # a helper thread while this one makes the last windows' features; the helper then
        # joins in the model calls (runtime.run_parallel). NumPy and ONNX Runtime release
        # the GIL, so on two cores the check costs almost no latency.
        from lungapp.inference.runtime import worker_pool

        verdict = worker_pool().submit(quality.finish) if quality is not None else None
        self._run_windows(stream.finish(), outs, starts)
        if stream.n_samples == 0:
            raise AudioError("expected a non-empty mono signal", path)
        read = ([np.concatenate(o) for o in outs], [np.concatenate(s) for s in starts])
        return self._result(path, stream.n_samples / fc.rate, read,
                            None if verdict is None else verdict.result())

    def _model_blocks(self, blocks):
        """(block as recorded, block the model reads) pairs: the same block, or for a card
        with an ``equalisation`` the recording equalised as a whole
        (:mod:`lungapp.inference.equalise`) and cut into the same blocks."""
        eq = self.card.equalisation
        if eq is None:
            yield from ((b, b) for b in blocks)
            return
        raw = [np.asarray(b, dtype=np.float32) for b in blocks]
        if not raw:
            return
        y = eq.apply(np.concatenate(raw), self.card.features.rate)
        i = 0
        for b in raw:
            yield b, y[i: i + len(b)]
            i += len(b)

    def _run_windows(self, batches, outs: list[list], starts: list[list]) -> None:
        for (g, _, st), o in zip(batches, self.group_outputs([(g, X) for g, X, _ in batches])):
            outs[g].append(o)
            starts[g].append(st)

    def member_windows(self, x: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """(X, starts_s) of each member group for a mono signal at the card's rate, as the
        model reads it (equalised first when the card says so;
        :func:`lungapp.inference.features.member_windows`)."""
        if self.card.equalisation is not None:
            x = self.card.equalisation.apply(x, self.card.features.rate)
        return member_windows(x, [g.features for g in self.groups])

    def segment_probabilities(self, duration_s: float, outs, starts) -> tuple[np.ndarray, np.ndarray]:
        """(bounds (k, 2) s, class probabilities (k, n_classes)) of the recording's
        segments (:func:`lungapp.inference.segments.segment_bounds`), each pooled by the
        card's rules over the windows inside it; one segment pools every window. The
        probabilities are calibrated as the card says (:meth:`ModelCard.calibrate_probs`)."""
        lengths = [g.features.window_s for g in self.groups]
        weights = [g.members for g in self.groups]
        bounds = segment_bounds(duration_s, segment_length(lengths, self.segment_s))
        if len(bounds) == 1:
            return bounds, self.card.calibrate_probs(pool_members(outs, weights, self.card)[None, :])
        probs = []
        for a, b in bounds:
            masks = [windows_inside(s, length, a, b) for s, length in zip(starts, lengths)]
            probs.append(pool_members([o[m] for o, m in zip(outs, masks)], weights, self.card))
        return bounds, self.card.calibrate_probs(np.array(probs))

    def _result(self, path, duration_s, read, quality) -> Prediction:
        """The recording's Prediction from each group's window outputs and start times."""
        card = self.card
        outs, starts = read
        bounds, seg_probs = self.segment_probabilities(duration_s, outs, starts)
        # A refused recording is not judged: no segment flagged, no abnormal stretch, no
        # peak to listen to (the model's output on silence or clipping means nothing).
        refused = quality is not None and not quality.ok
        segments = self._segments(bounds, seg_probs, judged=not refused)
        worst = int(np.argmax([sg.abnormal_probability for sg in segments]))
        rec = seg_probs[worst]
        fc = card.features
        out = timeline_outputs(outs, starts, [g.features.window_s for g in self.groups],
                               [g.members for g in self.groups])
        # the timeline on the same (calibrated) scale as the threshold it is drawn against
        win_probs = card.calibrate_probs(outputs_to_classes(out, card))
        p_abn = float(1.0 - rec[0])
        timeline = [WindowResult(float(s), float(min(s + fc.window_s, max(duration_s, fc.window_s))),
                                 dict(zip(card.classes, map(float, wp))), float(1.0 - wp[0]))
                    for s, wp in zip(starts[0], win_probs)]
        if refused:
            decision, label = "poor quality", POOR_QUALITY_LABEL
        elif p_abn >= card.threshold:
            decision, label = "abnormal", card.decide_class(rec, p_abn)
        else:
            decision, label = "normal", card.classes[0]
        margin = borderline_margin(card.metrics, card.calibrate)
        unfamiliar = None
        if card.input_profile is not None and quality is not None and quality.ok and quality.spectrum:
            unfamiliar = card.input_profile.check(quality.spectrum, quality.spectrum_bin_hz)
        return Prediction(file=path, duration_s=float(duration_s), label=label, decision=decision,
                          abnormal_probability=p_abn, probabilities=dict(zip(card.classes, map(float, rec))),
                          windows=timeline, model=self._model_info(outs), threshold=card.threshold,
                          quality=quality, segments=segments, abnormal_ranges=flagged_ranges(segments),
                          borderline=not refused and abs(p_abn - card.threshold) < margin,
                          borderline_margin=margin,
                          peaks=[] if refused else timeline_peaks(starts[0], 1.0 - win_probs[:, 0], fc.window_s),
                          unfamiliar=unfamiliar)

    def _segments(self, bounds: np.ndarray, seg_probs: np.ndarray, judged: bool = True) -> list[SegmentResult]:
        card = self.card
        out = []
        for (a, b), probs in zip(bounds, seg_probs):
            p = float(1.0 - probs[0])
            out.append(SegmentResult(float(a), float(b), dict(zip(card.classes, map(float, probs))),
                                     p, judged and p >= card.threshold))
        return out

    def _model_info(self, outs) -> dict:
        return {"name": self.card.name, "version": self.card.version, "path": str(self.model_dir),
                "card": self.card_digest,
                "windows_read": [{"window_s": g.features.window_s, "windows": int(len(o))}
                                 for g, o in zip(self.groups, outs)]}


def load_keras_model(path: Path):
    """Load one .keras file with safe_mode=True; ModelError for unsafe or corrupt files."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    try:
        return keras.saving.load_model(str(path), compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a bad file; all mean "refused".
        text = str(exc)
        if "safe_mode" in text or "Lambda" in text or "lambda" in text:
            raise ModelError("refused: the model file contains custom code (e.g. a Lambda layer) "
                             "and could run code when loaded; lungapp loads models in safe mode",
                             path) from None
        if "Could not locate" in text or "Unknown layer" in text or "custom" in text.lower():
            raise ModelError("refused: the model file needs custom objects that lungapp does not "
                             f"provide ({text.splitlines()[0][:200]})", path) from None
        raise ModelError(f"cannot load the Keras model file ({type(exc).__name__}: "
                         f"{text.splitlines()[0][:200] if text else 'no detail'})", path) from None


def _check_shapes(path: Path, model, card: ModelCard, fc: FeatureConfig | None = None) -> None:
    want_in = tuple((fc or card.features).input_shape)
    got_in = tuple(model.input_shape[1:])
    if any(g is not None and g != w for g, w in zip(got_in, want_in)) or len(got_in) != len(want_in):
        raise ModelError(f"model input shape {got_in} does not match the card's features {want_in}", path)
    n_out = model.output_shape[-1]
    if n_out != len(card.outputs):
        raise ModelError(f"model has {n_out} outputs but the card lists {len(card.outputs)}", path)


def _ensemble(models):
    """One Keras model averaging the members' outputs (one call instead of k)."""
    if len(models) == 1:
        return models[0]
    import keras

    if len({m.name for m in models}) != len(models):
        # Runs of one recipe name their models alike (lungapp.training.combine ensembles);
        # a Keras graph needs distinct names. Only the in-memory names change.
        for i, m in enumerate(models):
            m.name = f"member_{i + 1}"
    inp = keras.Input(shape=models[0].input_shape[1:])
    return keras.Model(inp, keras.layers.Average()([m(inp) for m in models]))


def prediction_fields() -> list[str]:
    return [f.name for f in dataclasses.fields(Prediction)]
