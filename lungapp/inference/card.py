"""The model card: the JSON file that makes a Keras file a usable lungapp model.

A model folder holds ``card.json`` plus the Keras file(s) it lists and, normally, their
ONNX exports (file name and SHA-256 in the card's ``onnx``). The card says what
the model outputs, the features it needs (the one spectrogram engine's config), how
window outputs become a recording's result, the decision threshold chosen by
cross-validation, the CV metrics, the training data and the library versions. Loading
validates the card; a model without a valid card is refused with a clear message.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lungapp.errors import ModelError
from lungapp.fsutil import atomic_write_json
from lungapp.inference.card_schema import Calibration, ExternalCheck, Metrics, Training
from lungapp.inference.equalise import Equalisation
from lungapp.inference.features import FeatureConfig
from lungapp.inference.profile import InputProfile
from lungapp.vocabulary import FOUR_CLASSES, INPUT_KINDS, OUTPUT_KINDS, POOLING_RULE, TASKS

CARD_NAME = "card.json"
CARD_FORMAT = "lungapp-model-card"
CARD_VERSION = 1
# The vocabulary (classes, tasks, kinds, pooling rules) is lungapp.vocabulary's.
_POOLING = POOLING_RULE
_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.keras$")
_ONNX_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.onnx$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
#: A card larger than this is refused before it is parsed (the bundled card is about 27 kB;
#: a training run's, with its per-fold figures, under 100 kB).
MAX_CARD_BYTES = 2 * 1024 * 1024
#: Sane ranges for the numbers that size what the app allocates and computes; a card
#: outside them (say window_s = 1e12) is refused at load and at install, never run.
LIMITS = {
    "window_s": (0.05, 60.0),       # seconds of audio per model input
    "hop_s": (0.01, 60.0),
    "n_fft": (8, 65_536),           # samples
    "win_length": (8, 65_536),
    "hop_length": (1, 65_536),
    "n_mels": (2, 1_024),
    "resize": (4, 2_048),           # pixels per side of an image input
    "input_values": (1, 4_000_000),  # frames x bins of one model input
    "model_files": (1, 64),
    "topk": (1, 100_000),
    "text": (0, 20_000),            # characters of a name, description or limitation
}


#: Platt scaling's slope must be positive (a calibration never reverses the ranking) and
#: both numbers moderate; probabilities are clipped this far from 0 and 1 before a logit.
CALIBRATION_LIMITS = {"a": (0.01, 100.0), "b": (-100.0, 100.0)}
_EPS = 1e-6


@dataclass(frozen=True)
class OnnxFile:
    """A Keras model file's ONNX export: its file name in the model folder and the
    SHA-256 (lowercase hex) of its bytes, checked whenever it is loaded."""

    file: str
    sha256: str

    def problems(self) -> list[str]:
        """What is wrong with the entry ([] when it is valid)."""
        p = []
        if not isinstance(self.file, str) or not _ONNX_FILE.match(self.file):
            p.append(f"an ONNX file must be a .onnx file name (no folders), not {self.file!r}")
        if not isinstance(self.sha256, str) or not _SHA256.match(self.sha256):
            p.append(f"sha256 of {self.file!r} must be 64 lowercase hex digits")
        return p

    def to_dict(self) -> dict:
        return {"file": self.file, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, d) -> OnnxFile:
        if not isinstance(d, dict) or set(d) != {"file", "sha256"}:
            raise ValueError('each onnx entry must be {"file": "<name>.onnx", "sha256": "<hex>"}')
        return cls(d["file"], d["sha256"])


def sha256_hex(data: bytes) -> str:
    """SHA-256 of ``data`` as 64 lowercase hex digits (the card's ONNX hashes)."""
    return hashlib.sha256(data).hexdigest()


def _onnx_problems(onnx, model_files) -> list[str]:
    """What is wrong with a card's ``onnx`` mapping (model file -> OnnxFile): empty, or
    one valid entry for every model file, each its own ONNX file."""
    if not isinstance(onnx, dict) or not all(isinstance(v, OnnxFile) for v in onnx.values()):
        return ["onnx must map model files to {file, sha256} entries"]
    if not onnx:
        return []
    p = [q for v in onnx.values() for q in v.problems()]
    if isinstance(model_files, list) and set(onnx) != set(model_files):
        p.append("onnx must list every model file (and only those) or be empty")
    if len({v.file for v in onnx.values()}) != len(onnx):
        p.append("each model file must have its own ONNX file")
    return p


@dataclass
class ModelCard:
    """See the module docstring. ``classes`` are the recording-level classes reported
    to users (normal class first); ``outputs`` name the model's output units:

    * ``output_kind="softmax"``: outputs == classes, one probability distribution.
    * ``output_kind="sigmoid"``: independent flags, either ``["abnormal"]`` (classes
      ``["Normal", "Abnormal"]``) or ``["CAS", "DAS"]`` (the four classes, derived as
      Normal=(1-c)(1-d), CAS=c(1-d), DAS=(1-c)d, CAS & DAS=cd).
    """

    name: str
    version: str
    task: str
    classes: list[str]
    features: FeatureConfig
    model_files: list[str]
    threshold: float = 0.5
    threshold_rule: str = ""
    output_kind: str = "softmax"
    outputs: list[str] = field(default_factory=list)
    pooling: str = "mean"
    input_kind: str = "audio"
    created: str = ""
    # The cross-validated figures and the training run, typed (lungapp.inference.card_schema);
    # a plain dict given to the constructor is read into its section.
    metrics: Metrics = field(default_factory=Metrics)
    training: Training = field(default_factory=Training)
    versions: dict = field(default_factory=dict)
    quality_gate: dict = field(default_factory=dict)
    # 4class flag models: {"CAS": t_c, "DAS": t_d}, the per-flag thresholds that name an
    # abnormal recording's class (see decide_class); empty: the most probable class.
    flag_thresholds: dict = field(default_factory=dict)
    # 4class flag models: how the flags are pooled to *name* an abnormal recording's class
    # (e.g. "quantile:0.75"); the abnormal probability keeps ``pooling``. Empty: ``pooling``
    # names the class too (see lungapp.inference.predictor.pool_recording).
    class_pooling: str = ""
    # Ensembles whose members read different windows of the same spectrogram (e.g. 2-s and
    # 4-s windows): each model file's features, in ``model_files`` order, the first equal
    # to ``features`` (whose windows make the timeline). Empty: every member uses
    # ``features``. See :meth:`member_groups` and lungapp.inference.predictor.pool_members.
    member_features: list = field(default_factory=list)
    intended_use: str = ("Decision support for clinicians and researchers. Not a diagnostic "
                         "device: every result must be confirmed by a qualified clinician.")
    limitations: list[str] = field(default_factory=list)
    description: str = ""
    # Each model file's ONNX export (lungapp.training.export), which the app runs with ONNX
    # Runtime; empty: no export, the Keras runtime runs the model files.
    onnx: dict[str, OnnxFile] = field(default_factory=dict)
    # Platt scaling of the abnormal probability (fitted on the out-of-fold predictions);
    # with it, ``threshold`` and every probability the app shows are on the calibrated
    # scale. None: the pooled probability is shown as it is (older cards).
    calibration: Calibration | None = None
    # The model on collections and devices it was not trained on (ExternalCheck each).
    external_checks: list = field(default_factory=list)
    # The training recordings' balance of frequencies (lungapp.inference.profile): results
    # on recordings unlike them carry a caution. None: no such check (older cards).
    input_profile: InputProfile | None = None
    # The training recordings' mean band levels, to which every recording is equalised
    # before the model reads it (lungapp.inference.equalise). None: recordings are read
    # as they are.
    equalisation: Equalisation | None = None

    def __post_init__(self):
        for name, section in (("metrics", Metrics), ("training", Training)):
            value = getattr(self, name)
            if value is None or isinstance(value, dict):
                setattr(self, name, section.from_dict(value or {}))
        if isinstance(self.calibration, dict):
            self.calibration = Calibration.from_dict(self.calibration)
        if isinstance(self.input_profile, dict):
            self.input_profile = InputProfile.from_dict(self.input_profile)
        if isinstance(self.equalisation, dict):
            self.equalisation = Equalisation.from_dict(self.equalisation)
        if isinstance(self.external_checks, list):
            self.external_checks = [ExternalCheck.from_dict(x) if isinstance(x, dict) else x
                                    for x in self.external_checks]
        if not self.outputs:
            self.outputs = list(self.classes)
        if not self.created:
            self.created = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
        self.validate()

    @property
    def normal_class(self) -> str:
        return self.classes[0]

    def member_groups(self) -> list[tuple[FeatureConfig, list[str]]]:
        """The model files grouped by the features they read, in first-appearance order:
        [(features, [file, ...]), ...]; the first group reads ``features``."""
        if not self.member_features:
            return [(self.features, list(self.model_files))]
        groups: dict[FeatureConfig, list[str]] = {}
        for fc, f in zip(self.member_features, self.model_files):
            groups.setdefault(fc, []).append(f)
        return list(groups.items())

    def decide_class(self, probs, p_abnormal: float) -> str:
        """The recording's class from its class probabilities (in ``classes`` order), as
        the app shows them (calibrated, where the card calibrates). Per-flag thresholds
        were chosen on the uncalibrated flags, so they are applied to those."""
        if self.flag_thresholds and self.calibration is not None:
            probs = self.uncalibrate_probs(np.asarray(probs, dtype=np.float64))
        return decide_class(probs, self.classes, p_abnormal, self.threshold, self.flag_thresholds)

    def calibrate(self, p):
        """The abnormal probability ``p`` (a number or an array) as the app shows it:
        Platt-scaled where the card has a calibration, unchanged otherwise."""
        c = self.calibration
        if c is None:
            return p
        z = np.log(np.clip(p, _EPS, 1 - _EPS) / (1 - np.clip(p, _EPS, 1 - _EPS)))
        out = 0.5 * (1.0 + np.tanh(0.5 * (c.a * z + c.b)))  # sigmoid, no overflow
        return float(out) if np.ndim(out) == 0 else out

    def uncalibrate(self, p):
        """The inverse of :meth:`calibrate`."""
        c = self.calibration
        if c is None:
            return p
        z = np.log(np.clip(p, _EPS, 1 - _EPS) / (1 - np.clip(p, _EPS, 1 - _EPS)))
        out = 0.5 * (1.0 + np.tanh(0.5 * (z - c.b) / c.a))
        return float(out) if np.ndim(out) == 0 else out

    def calibrate_probs(self, probs: np.ndarray) -> np.ndarray:
        """Class probabilities (..., n_classes) with the abnormal probability calibrated:
        the normal class gets 1 - calibrate(1 - p_normal) and the abnormal classes keep
        their shares of the rest (so the class named does not change)."""
        return self._rescale(probs, self.calibrate)

    def uncalibrate_probs(self, probs: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`calibrate_probs`."""
        return self._rescale(probs, self.uncalibrate)

    def _rescale(self, probs: np.ndarray, fn) -> np.ndarray:
        if self.calibration is None:
            return probs
        probs = np.asarray(probs, dtype=np.float64)
        p_abn = 1.0 - probs[..., 0]
        new = np.asarray(fn(p_abn), dtype=np.float64)
        some = (p_abn > 0)[..., None]
        # each abnormal class's share of the abnormal probability (even shares of none)
        shares = np.where(some, probs[..., 1:] / np.where(some, p_abn[..., None], 1.0),
                          1.0 / (probs.shape[-1] - 1))
        out = np.empty_like(probs)
        out[..., 0] = 1.0 - new
        out[..., 1:] = shares * new[..., None]
        return out

    def validate(self) -> None:
        """Raise ValueError listing every problem in the card."""
        p = []
        if not isinstance(self.name, str) or not self.name.strip():
            p.append("name must be a non-empty string")
        if not isinstance(self.version, str) or not self.version.strip():
            p.append("version must be a non-empty string")
        if self.task not in TASKS:
            p.append(f"task must be one of {TASKS}, not {self.task!r}")
        if (not isinstance(self.classes, list) or len(self.classes) < 2
                or len(set(self.classes)) != len(self.classes)
                or not all(isinstance(c, str) and c for c in self.classes)):
            p.append("classes must be a list of at least two distinct names")
        elif self.task == "4class" and list(self.classes) != list(FOUR_CLASSES):
            p.append(f"a 4class model must have classes {list(FOUR_CLASSES)}")
        elif self.task == "binary" and len(self.classes) != 2:
            p.append("a binary model must have exactly two classes (normal first)")
        if self.output_kind not in OUTPUT_KINDS:
            p.append(f"output_kind must be one of {OUTPUT_KINDS}")
        elif self.output_kind == "softmax" and list(self.outputs) != list(self.classes):
            p.append("softmax outputs must equal classes")
        elif self.output_kind == "sigmoid" and list(self.outputs) not in (["abnormal"], ["CAS", "DAS"]):
            p.append('sigmoid outputs must be ["abnormal"] or ["CAS", "DAS"]')
        elif self.output_kind == "sigmoid" and self.outputs == ["CAS", "DAS"] and self.task != "4class":
            p.append('sigmoid outputs ["CAS", "DAS"] go with task 4class')
        if not isinstance(self.features, FeatureConfig):
            p.append("features must be a FeatureConfig")
        if not (finite_number(self.threshold) and 0.0 <= self.threshold <= 1.0):
            p.append(f"threshold must be a number in [0, 1], not {self.threshold!r}")
        if not isinstance(self.pooling, str) or not _POOLING.match(self.pooling):
            p.append(f"pooling must be 'mean', 'max', 'topk:K' or 'quantile:Q', not {self.pooling!r}")
        if not isinstance(self.class_pooling, str) or (
                self.class_pooling and not _POOLING.match(self.class_pooling)):
            p.append(f"class_pooling must be empty, 'mean', 'max', 'topk:K' or 'quantile:Q', "
                     f"not {self.class_pooling!r}")
        elif self.class_pooling and (self.output_kind != "sigmoid"
                                     or list(self.outputs) != ["CAS", "DAS"]):
            p.append('class_pooling goes with sigmoid outputs ["CAS", "DAS"]')
        elif self.class_pooling and self.flag_thresholds:
            p.append("class_pooling and flag_thresholds are two four-class rules; a card uses one")
        mf = self.member_features
        if not isinstance(mf, list) or not all(isinstance(fc, FeatureConfig) for fc in mf):
            p.append("member_features must be a list of feature configs")
        elif mf and isinstance(self.model_files, list) and len(mf) != len(self.model_files):
            p.append("member_features must give one feature config per model file")
        elif mf and isinstance(self.features, FeatureConfig):
            if mf[0] != self.features:
                p.append("member_features must start with the card's features")
            if any(fc.spectrogram != self.features.spectrogram or fc.resize is not None for fc in mf):
                p.append("members must read windows of the card's spectrogram (same spectrogram, "
                         "no resize)")
        if self.input_kind not in INPUT_KINDS:
            p.append(f"input_kind must be one of {INPUT_KINDS}")
        if (not isinstance(self.model_files, list) or not self.model_files
                or not all(isinstance(f, str) and _FILE.match(f) for f in self.model_files)):
            p.append("model_files must list one or more .keras file names (no folders)")
        ft = self.flag_thresholds
        if not isinstance(ft, dict):
            p.append("flag_thresholds must be an object")
        elif ft:
            if self.output_kind != "sigmoid" or list(self.outputs) != ["CAS", "DAS"]:
                p.append('flag_thresholds go with sigmoid outputs ["CAS", "DAS"]')
            elif set(ft) != {"CAS", "DAS"} or not all(finite_number(v) and 0.0 < v < 1.0 for v in ft.values()):
                p.append('flag_thresholds must be {"CAS": t, "DAS": t} with each t in (0, 1)')
        if not isinstance(self.metrics, Metrics):
            p.append("metrics must be an object")
        if not isinstance(self.training, Training):
            p.append("training must be an object")
        for name in ("versions", "quality_gate"):
            if not isinstance(getattr(self, name), dict):
                p.append(f"{name} must be an object")
        p.extend(_onnx_problems(self.onnx, self.model_files))
        p.extend(_calibration_problems(self.calibration))
        if not isinstance(self.external_checks, list) or not all(
                isinstance(x, ExternalCheck) for x in self.external_checks):
            p.append("external_checks must be a list of objects")
        if self.input_profile is not None:
            if not isinstance(self.input_profile, InputProfile):
                p.append("input_profile must be an object")
            else:
                p.extend(self.input_profile.problems())
        if self.equalisation is not None:
            if not isinstance(self.equalisation, Equalisation):
                p.append("equalisation must be an object")
            else:
                p.extend(self.equalisation.problems())
        p.extend(self._range_problems())
        if p:
            raise ValueError("; ".join(p))

    def _range_problems(self) -> list[str]:
        """Numbers outside :data:`LIMITS` (the spectrogram engine checks the rest of a
        feature config's consistency itself)."""
        p = []
        configs = [self.features, *self.member_features]
        for fc in (c for c in configs if isinstance(c, FeatureConfig)):
            sc = fc.spectrogram
            for name, value in (("window_s", fc.window_s), ("hop_s", fc.hop_s), ("n_fft", sc.n_fft),
                                ("win_length", sc.win_length), ("hop_length", sc.hop_length)):
                p.extend(_out_of_range(f"features.{name}", value))
            if sc.scale == "mel":
                p.extend(_out_of_range("features.n_mels", sc.n_mels))
            for v in fc.resize or ():
                p.extend(_out_of_range("features.resize", v, key="resize"))
            if not p:
                frames, bins, _ = fc.input_shape
                p.extend(_out_of_range("one model input's frames x bins", frames * bins,
                                       key="input_values"))
        if isinstance(self.model_files, list):
            p.extend(_out_of_range("the number of model files", len(self.model_files),
                                   key="model_files"))
        for rule in (self.pooling, self.class_pooling):
            if isinstance(rule, str) and rule.startswith("topk:") and rule[5:].isdigit():
                p.extend(_out_of_range("pooling topk:K", int(rule[5:]), key="topk"))
        texts = [("name", self.name), ("version", self.version), ("description", self.description),
                 ("intended_use", self.intended_use)]
        if not isinstance(self.limitations, list) or not all(isinstance(x, str) for x in self.limitations):
            p.append("limitations must be a list of strings")
        else:
            texts += [("a limitation", x) for x in self.limitations]
        for name, text in texts:
            if not isinstance(text, str):
                if name not in ("name", "version"):  # validate() has said so of these
                    p.append(f"{name} must be a string")
            else:
                p.extend(_out_of_range(f"{name}'s length", len(text), key="text"))
        return p

    def to_dict(self) -> dict:
        d = {"format": CARD_FORMAT, "format_version": CARD_VERSION}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            d[f.name] = (v.to_dict() if isinstance(v, (FeatureConfig, Metrics, Training, Calibration,
                                                       InputProfile, Equalisation)) else v)
        # absent unless set, so a card written before these existed saves back unchanged
        for name in ("calibration", "input_profile", "equalisation"):
            if getattr(self, name) is None:
                d.pop(name)
        if self.external_checks:
            d["external_checks"] = [x.to_dict() for x in self.external_checks]
        else:
            d.pop("external_checks")
        d["member_features"] = [fc.to_dict() for fc in self.member_features]
        d["onnx"] = {k: v.to_dict() for k, v in self.onnx.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelCard:
        """Parse and validate; raises ValueError naming every problem."""
        if not isinstance(d, dict):
            raise ValueError("the card must be a JSON object")
        if d.get("format") != CARD_FORMAT:
            raise ValueError(f'"format" must be "{CARD_FORMAT}" (is this a lungapp model card?)')
        if d.get("format_version") != CARD_VERSION:
            raise ValueError(f"unsupported card format_version {d.get('format_version')!r} "
                             f"(this lungapp reads version {CARD_VERSION})")
        fields = {f.name for f in dataclasses.fields(cls)}
        required = {"name", "version", "task", "classes", "features", "model_files"}
        missing = sorted(required - set(d))
        if missing:
            raise ValueError(f"missing keys: {missing}")
        kwargs = {k: v for k, v in d.items() if k in fields}
        kwargs["features"] = FeatureConfig.from_dict(d["features"])
        mf = d.get("member_features") or []
        if not isinstance(mf, list):
            raise ValueError("member_features must be a list of feature configs")
        kwargs["member_features"] = [FeatureConfig.from_dict(x) for x in mf]
        onnx = d.get("onnx") or {}
        if not isinstance(onnx, dict):
            raise ValueError("onnx must map model files to {file, sha256} entries")
        kwargs["onnx"] = {k: OnnxFile.from_dict(v) for k, v in onnx.items()}
        kwargs["metrics"] = Metrics.from_dict(d.get("metrics") or {})
        kwargs["training"] = Training.from_dict(d.get("training") or {})
        return cls(**kwargs)


def _calibration_problems(c) -> list[str]:
    """What is wrong with a card's ``calibration`` ([] when it is absent or valid)."""
    if c is None:
        return []
    if not isinstance(c, Calibration):
        return ["calibration must be an object"]
    if c.method != "platt":
        return [f"calibration method must be 'platt', not {c.method!r}"]
    p = []
    for name, value, (lo, hi) in (("a", c.a, CALIBRATION_LIMITS["a"]), ("b", c.b, CALIBRATION_LIMITS["b"])):
        if not (finite_number(value) and lo <= value <= hi):
            p.append(f"calibration.{name} must be a number within {lo:g}..{hi:g}, not {value!r}")
    return p


def finite_number(value) -> bool:
    """Whether a card's value is a finite real number (booleans are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _out_of_range(what: str, value, *, key: str | None = None) -> list[str]:
    """[] when ``value`` is within ``LIMITS[key]`` (``key`` defaults to the last word of
    ``what``), else the problem in words."""
    lo, hi = LIMITS[key or what.rsplit(".", 1)[-1]]
    if finite_number(value) and lo <= value <= hi:
        return []
    return [f"{what} must be within {lo:g}..{hi:g}, not {value!r}"]


def pooling_words(rule: str) -> str:
    """A pooling rule (``mean``, ``max``, ``topk:K``, ``quantile:Q``) in words, as in
    "the flags pooled by <words>"."""
    if rule.startswith("quantile:"):
        return f"their {100 * float(rule.split(':')[1]):g}th percentile"
    if rule.startswith("topk:"):
        return f"the mean of their top {rule.split(':')[1]}"
    return f"their {rule}"


def decide_class(probs, classes: list[str], p_abnormal: float, threshold: float,
                 flag_thresholds: dict | None = None) -> str:
    """Normal below ``threshold``; otherwise the abnormal class. Without flag thresholds
    that is the most probable abnormal class. With them (four classes from [CAS, DAS]
    flags, whose pooled values are c = P(CAS) + P(CAS & DAS), d = P(DAS) + P(CAS & DAS)):
    CAS if c >= t_CAS, DAS if d >= t_DAS, CAS & DAS if both, and if neither the flag
    nearer its threshold (c / t_CAS against d / t_DAS)."""
    if p_abnormal < threshold:
        return classes[0]
    pr = [float(v) for v in probs]
    if not flag_thresholds or len(classes) != 4:
        return classes[1 + int(np.argmax(pr[1:]))]
    c, d = pr[1] + pr[3], pr[2] + pr[3]
    tc, td = float(flag_thresholds["CAS"]), float(flag_thresholds["DAS"])
    has_c, has_d = c >= tc, d >= td
    if not (has_c or has_d):
        has_c = c / tc >= d / td
        has_d = not has_c
    return classes[3] if has_c and has_d else classes[1] if has_c else classes[2]


def card_path(model_dir) -> Path:
    return Path(model_dir) / CARD_NAME


def load_card(model_dir) -> ModelCard:
    """Read and validate ``model_dir/card.json``; check the listed model files exist.
    Raises ModelError naming the folder and the problem."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelError("model folder not found" if not model_dir.exists() else "not a folder", model_dir)
    path = card_path(model_dir)
    raw = read_card_json(path)
    try:
        card = ModelCard.from_dict(raw)
    except (ValueError, TypeError) as exc:
        raise ModelError(f"invalid model card: {exc}", path) from None
    missing = [f for f in card.model_files if not (model_dir / f).is_file()]
    if missing:
        raise ModelError(f"model file(s) listed in the card are missing: {', '.join(missing)}", model_dir)
    missing = [o.file for o in card.onnx.values() if not (model_dir / o.file).is_file()]
    if missing:
        raise ModelError(f"ONNX file(s) listed in the card are missing: {', '.join(missing)} "
                         "(an incomplete model folder: copy it whole, or export it again)", model_dir)
    return card


def read_card_json(path: Path):
    """The JSON of a card file, refused with ModelError when it is missing, larger than
    :data:`MAX_CARD_BYTES`, not UTF-8 JSON, or nested too deep for the parser."""
    model_dir = path.parent
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CARD_BYTES + 1)
    except FileNotFoundError:
        raise ModelError(f"no model card ({CARD_NAME}) in this folder; a model without a valid "
                         "card is refused", model_dir) from None
    except IsADirectoryError:
        raise ModelError(f"{CARD_NAME} is a folder, not a model card", path) from None
    except OSError as exc:
        raise ModelError(f"cannot read the model card ({exc.strerror or exc})", path) from None
    if len(data) > MAX_CARD_BYTES:
        raise ModelError(f"model card is larger than {MAX_CARD_BYTES // (1024 * 1024)} MB; "
                         "refused (a real card is a few tens of kB)", path)
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"model card is not valid JSON ({exc})", path) from None
    except ValueError as exc:  # e.g. an integer past Python's 4300-digit limit
        raise ModelError(f"model card holds a value that cannot be read ({str(exc)[:120]})", path) from None
    except RecursionError:
        raise ModelError("model card is nested too deeply to be a model card; refused", path) from None


def read_onnx(model_dir, card: ModelCard, model_file: str) -> bytes:
    """The bytes of ``model_file``'s ONNX export, checked against the card's SHA-256.
    Raises ModelError naming the file when it is missing, unreadable or altered."""
    entry = card.onnx.get(model_file)
    if entry is None:
        raise ModelError(f"the card lists no ONNX export of {model_file}", Path(model_dir))
    path = Path(model_dir) / entry.file
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError("ONNX file listed in the card is missing", path) from None
    except OSError as exc:
        raise ModelError(f"cannot read the ONNX file ({exc.strerror or exc})", path) from None
    if sha256_hex(data) != entry.sha256:
        raise ModelError("refused: the ONNX file does not match the SHA-256 in the model card "
                         "(altered or corrupt; export the model again)", path)
    return data


def verify_onnx(model_dir, card: ModelCard) -> None:
    """Check every ONNX export the card lists against its SHA-256 (ModelError if not)."""
    for model_file in card.onnx:
        read_onnx(model_dir, card, model_file)


def write_card(model_dir, card: ModelCard) -> Path:
    card.validate()
    from lungapp.evaluation.metrics import json_safe

    return atomic_write_json(card_path(model_dir), json_safe(card.to_dict()))


def library_versions() -> dict:
    """Versions of the libraries that made or read a model (for the card)."""
    import platform
    from importlib import metadata

    import numpy
    import scipy

    import lungapp

    out = {"lungapp": lungapp.__version__, "python": platform.python_version(),
           "numpy": numpy.__version__, "scipy": scipy.__version__}
    # From package metadata: importing Keras here would pull TensorFlow into inference.
    for key, dists in (("keras", ("keras",)), ("tensorflow", ("tensorflow-cpu", "tensorflow"))):
        for dist in dists:
            try:
                out[key] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return out
