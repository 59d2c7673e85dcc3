"""Training recipes as data: the presets and :class:`TrainOptions`, everything that
defines a run.

Light on purpose (no Keras, no SciPy): ``lungapp train --help`` reads the preset and
architecture names from here. :mod:`lungapp.training.archs` maps :data:`ARCH_NAMES` to
builders; explicit options override a preset's values (:meth:`TrainOptions.from_preset`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from lungapp.dsp.spectrogram import SpectrogramConfig
from lungapp.inference.card import LIMITS
from lungapp.inference.features import FeatureConfig
from lungapp.vocabulary import POOLINGS, TASKS, is_pooling_rule

TOPK_MAX = LIMITS["topk"][1]

ARCH_NAMES = ("seed_cnn", "cnn4", "lungcnn", "inception_v3", "resnet50")
"""Architectures :func:`lungapp.training.archs.build` builds (and ``--arch`` accepts)."""
ARTIFACTS = ("ensemble", "retrain")
SCHEDULES = ("cosine", "plateau", "constant")
MONITORS = ("val_auc", "val_loss")
WINDOW_LABELS = ("record", "events")
OUTPUTS = ("softmax", "flags")
SAMPLINGS = ("shuffle", "balanced")
PRECISIONS = ("float32", "mixed_bfloat16", "auto")

# Augmentation policy keys and their defaults (lungapp.training.augment.Augmenter).
DEFAULT_POLICY = {
    "image": False,           # seed image augmentation (rotation/zoom/shift)
    "gain_db": 6.0,           # uniform +-gain_db
    "tilt_db_per_octave": 3.0,  # uniform +-slope: other stethoscopes' responses
    "noise_prob": 0.3,        # share of examples given added noise
    "noise_db": [-70.0, -45.0],  # noise level range (dB full scale, per bin)
    "roll": 0.5,              # circular time roll, fraction of the window
    "time_masks": 2,
    "freq_masks": 2,
    "mixup_alpha": 0.2,       # 0 = no mixup
    "snr_prob": 0.0,          # share of examples given white noise at a random SNR (texture)
    "snr_db": [0.0, 30.0],    # in-band SNR range (dB) for snr_prob
    "band_limit_prob": 0.0,   # share of examples floored above a random cutoff
    "band_limit_hz": [1500.0, 3000.0],  # cutoff range (Hz) for band_limit_prob
}

# SpecAugment and a level shift (the recipe search, docs/model.md): the constant noise floor,
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
# docs/model.md). Change a recipe here and nowhere else.

SEED_FEATURES = FeatureConfig(
    # STFT of the 15-s clip at 4 kHz: 256-sample window, 129 bins, hop 64 -> 934 frames
    # (the seed's 129 x 934 px images), resized to 64 x 64 and scaled to [0, 1].
    spectrogram=SpectrogramConfig(rate=4000, win_length=256, hop_length=64, n_fft=256,
                                  window="hann", scale="linear", min_db=-100.0, max_db=0.0),
    window_s=15.0, hop_s=15.0, resize=(64, 64))

RECOMMENDED_FEATURES = FeatureConfig(
    # 8 kHz log-mel, 64 bands 50-4000 Hz (crackle energy above 2 kHz counts), 32 ms window,
    # 16 ms hop; 2-s windows every 0.5 s (124 x 64 inputs). Chosen by patient-grouped
    # 4-fold CV on SPRSound train (the recipe search, docs/model.md): with event-level window
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
        "val_fraction": 0.15, "precision": "auto", "finetune_lr": 1e-5,
    },
    "recommended": {
        # The recipe search's recipe (docs/model.md): batches drawn a quarter from CAS windows, a
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
        # finetune_lr: a hundredth of lr. Adapting the bundled model to ICBHI's Meditron
        # recordings (2 folds, 5 epochs of 40 batches; docs/model.md, 2026-12-05), 2e-4 lost
        # 0.13 of out-of-fold AUC against the starting member, 2e-5 lost 0.02.
        "precision": "float32", "finetune_lr": 2e-5,
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
# 0.928 alone at a 1-s step against 0.922-0.929 for 2-s runs; see docs/model.md).
PRESETS["bundled-4s"] = {**PRESETS["bundled"],
                         "features": dataclasses.replace(FINE_FEATURES, window_s=4.0, hop_s=1.0)}

PRESET_NAMES = tuple(PRESETS)
"""The recipes' names, in ``--preset`` order."""


def finetune_epochs(preset: str) -> int:
    """A fine-tuning run's default epochs: a quarter of the preset's (a few passes adapt a
    trained model; a long run would over-fit a clinic's small folder)."""
    return max(1, int(PRESETS.get(preset, PRESETS["recommended"])["epochs"]) // 4)


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
    # Equalise every recording to the training recordings' mean balance of frequencies
    # before windowing it (lungapp.inference.equalise); the card carries the target, so the
    # app equalises the same way. A fine-tune keeps its starting model's setting.
    equalise: bool = False
    # Texture the added noise (the policy's snr_prob share of windows) with stretches of the
    # training folder's own Poor Quality recordings (crying, talking, rubbing, handling)
    # instead of white noise (lungapp.training.dataset.poor_quality_noise): real noise the
    # window's label stays true under. Needs such recordings and a policy that adds noise.
    real_noise: bool = False
    weights: str | None = None  # a backbone weights file (inception_v3 / resnet50)
    precision: str = "float32"  # training arithmetic: float32, mixed_bfloat16 or auto
    name: str = ""
    # Fine-tuning (lungapp.training.finetune): the model folder whose weights every fold
    # model starts from ("" = random weights), and the (peak) learning rate used then, a
    # hundredth of the presets' lr: larger steps soon undo what the model already knows.
    init_from: str = ""
    finetune_lr: float = 2e-5

    @property
    def peak_lr(self) -> float:
        """The learning rate the schedule peaks at: ``finetune_lr`` when fine-tuning."""
        return self.finetune_lr if self.init_from else self.lr

    @classmethod
    def from_preset(cls, preset: str = "recommended", **overrides) -> TrainOptions:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        base = dict(PRESETS[preset])
        base["augment"] = dict(base["augment"]) if base["augment"] is not None else None
        base.update({k: v for k, v in overrides.items() if v is not None})
        opts = cls(preset=preset, **base)
        opts.validate()
        return opts

    def validate(self) -> None:
        p = []
        if self.task not in TASKS:
            p.append(f"task must be one of {TASKS}")
        if self.arch not in ARCH_NAMES:
            p.append(f"arch must be one of {ARCH_NAMES}")
        if not (isinstance(self.folds, int) and self.folds >= 2):
            p.append("folds must be an integer >= 2")
        if not (isinstance(self.epochs, int) and self.epochs >= 1):
            p.append("epochs must be an integer >= 1")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            p.append("batch size must be an integer >= 1")
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr < 1):
            p.append("learning rate must be in (0, 1)")
        if not (isinstance(self.finetune_lr, (int, float)) and 0 < self.finetune_lr < 1):
            p.append("fine-tuning learning rate must be in (0, 1)")
        if self.schedule not in SCHEDULES:
            p.append(f"schedule must be one of {SCHEDULES}")
        if self.monitor not in MONITORS:
            p.append("monitor must be val_auc or val_loss")
        topk = (isinstance(self.pooling, str) and self.pooling.startswith("topk:") and is_pooling_rule(self.pooling)
                and int(self.pooling[5:]) <= TOPK_MAX)
        if self.pooling not in POOLINGS and not topk:  # as the card will be checked, before the run
            p.append(f"pooling must be one of {', '.join(POOLINGS)} or topk:K with K in 1..{TOPK_MAX}, "
                     f"not {self.pooling!r}")
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
        if not isinstance(self.equalise, bool):
            p.append("equalise must be true or false")
        if not isinstance(self.real_noise, bool):
            p.append("real_noise must be true or false")
        elif self.real_noise and not (self.augment or {}).get("snr_prob"):
            p.append("real noise textures the added noise: the recipe's augmentation adds none "
                     "(snr_prob is 0)")
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
        if not self.init_from:  # a run from random weights: its card reads as before fine-tuning
            del d["init_from"], d["finetune_lr"]
        if not self.equalise:  # likewise a run that reads its recordings as they are
            del d["equalise"]
        if not self.real_noise:  # and one whose added noise is white
            del d["real_noise"]
        return d
