"""Fine-tuning (``lungapp train FOLDER --init-from bundled|active|MODEL_DIR``): every fold
model starts from an existing model's weights instead of random ones, so a clinic with a
few dozen labelled recordings of its own stethoscope can adapt a model to it.

Which weights: a model folder holds one or more members (the bundled model: three, one on
2-s windows and two on 4-s windows). The run fine-tunes *one* member, the first that reads
the recipe's window length (:func:`pick_member`): the fold models must read the windows
the run computes, and fine-tuning each member on a few dozen recordings would multiply
the run time by the members for an ensemble whose out-of-fold figures could not be
reported member by member anyway. The member must read the same spectrogram and window
length, for the same task and output spec, or the run is refused with one line naming
what differs (:func:`compatibility_problem`).

The run is otherwise a normal one: patient-grouped CV, the threshold chosen on the
out-of-fold predictions (so it is recalibrated to the new device), a normal model folder.
Its report compares the adapted fold models with the starting model on the same held-out
recordings (:func:`start_comparison`): the starting model never saw this folder, so
scoring it on each held-out fold is fair.

Light module (no Keras): the CLI checks a starting model before TensorFlow is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lungapp.errors import LungappError, ModelError
from lungapp.inference.card import ModelCard, load_card
from lungapp.inference.features import FeatureConfig


def resolve_start_dir(spec: str) -> Path:
    """The model folder ``spec`` names: "bundled" (the app's own model), "active" (the
    model the app uses now) or a path. Raises LungappError naming what is missing."""
    from lungapp.inference.registry import active_model_dir, bundled_model_dir

    if spec == "bundled":
        found = bundled_model_dir()
        if found is None:
            raise LungappError("--init-from bundled: this installation has no bundled model")
        return found
    if spec == "active":
        return active_model_dir()
    return Path(spec).expanduser()


def members(card: ModelCard) -> list[tuple[FeatureConfig, str]]:
    """(features, model file) of each member of a model, in the card's order."""
    fcs = card.member_features or [card.features] * len(card.model_files)
    return list(zip(fcs, card.model_files))


def pick_member(card: ModelCard, window_s: float | None) -> tuple[FeatureConfig, str]:
    """The first member reading ``window_s``-second windows (None, or none does: the
    first member; :func:`compatibility_problem` then names the difference)."""
    ms = members(card)
    return next((m for m in ms if window_s is not None and m[0].window_s == window_s), ms[0])


def _feature_difference(want: FeatureConfig, have: FeatureConfig) -> str | None:
    """What differs between the recipe's features and a member's, in words (None: they
    agree on what the weights depend on: the spectrogram, window length and resize; the
    hop between windows only changes how many windows a recording gives)."""
    if want.spectrogram != have.spectrogram:
        a, b = want.spectrogram.to_dict(), have.spectrogram.to_dict()
        keys = [k for k in a if a.get(k) != b.get(k)]
        return "spectrogram " + ", ".join(f"{k} {a.get(k)} vs {b.get(k)}" for k in keys)
    if want.window_s != have.window_s:
        return f"window length {want.window_s:g} s vs {have.window_s:g} s"
    if want.resize != have.resize:
        return f"image resize {want.resize} vs {have.resize}"
    return None


def compatibility_problem(card: ModelCard, member: tuple[FeatureConfig, str], opts) -> str | None:
    """One line naming what differs between the recipe ``opts`` (a TrainOptions) and the
    starting ``member`` of ``card`` (features, task, output spec), or None."""
    from lungapp.training.dataset import output_spec
    from lungapp.vocabulary import classes_for

    if card.task != opts.task:
        return f"task differs: the starting model is {card.task}, the run {opts.task} (use --task {card.task})"
    kind, outputs, _ = output_spec(opts.task, list(classes_for(opts.task)), opts.outputs)
    if (card.output_kind, list(card.outputs)) != (kind, list(outputs)):
        return (f"outputs differ: the starting model has {card.output_kind} {list(card.outputs)}, "
                f"the run {kind} {list(outputs)}")
    if bool(opts.equalise) != (card.equalisation is not None):
        return ("input differs: the starting model "
                + ("equalises recordings, the run does not (a fine-tune keeps its model's input)"
                   if card.equalisation is not None else
                   "reads recordings as they are, the run equalises them (leave --equalise out)"))
    arch = start_arch(card)
    if arch is not None and opts.arch != arch:
        return (f"architecture differs: the starting model is {arch}, the run {opts.arch} (a fine-tune "
                "trains its model's network: leave --arch out, or use a preset of that network)")
    diff = _feature_difference(opts.features, member[0])
    if diff:
        return (f"features differ from its member {member[1]}: {diff} (recipe vs model; "
                "leave --features out to use the model's)")
    return None


@dataclass
class StartModel:
    """The model a fine-tuning run starts from: its folder, card and chosen member."""

    folder: Path
    card: ModelCard
    features: FeatureConfig
    member: str  # the member's model file name

    @property
    def member_path(self) -> Path:
        return self.folder / self.member

    def describe(self) -> dict:
        """What the card records about the start (``metrics.start_comparison.start``)."""
        return {"folder": str(self.folder), "name": self.card.name, "version": self.card.version,
                "member": self.member, "members": len(self.card.model_files),
                "window_s": self.features.window_s, "threshold": self.card.threshold,
                "created": self.card.created}


def load_start(spec: str, opts) -> StartModel:
    """The starting model ``spec`` names (see :func:`resolve_start_dir`), its member for
    the recipe ``opts``, checked. Raises LungappError (ModelError for a bad folder) with
    one line naming the model folder and what differs."""
    folder = resolve_start_dir(spec)
    card = load_card(folder)
    member = pick_member(card, opts.features.window_s)
    problem = compatibility_problem(card, member, opts)
    if problem:
        raise LungappError(f"cannot fine-tune this model: {problem}", folder)
    return StartModel(folder, card, member[0], member[1])


class StartModelError(ModelError):
    """The starting model cannot be used (said as a bad option, exit status 2)."""


def check_start_loads(start: StartModel) -> None:
    """Load the starting member once, before any work (TensorFlow is loaded for the run
    anyway): a damaged model file is refused now, as an unusable starting model, not after
    the folder was read."""
    from lungapp.inference.predictor import load_keras_model

    try:
        load_keras_model(start.member_path)
    except LungappError as exc:
        raise StartModelError(f"cannot fine-tune this model: its {start.member_path.name} cannot be loaded "
                         f"({exc.problem})", start.folder) from None


def start_defaults(spec: str, window_s: float | None) -> dict:
    """The recipe values a fine-tuning run takes from its starting model unless given:
    task, outputs, the chosen member's features (of ``window_s``-second windows where
    a member reads them) and whether it equalises recordings."""
    card = load_card(resolve_start_dir(spec))
    fc, _ = pick_member(card, window_s)
    out = {"task": card.task, "outputs": "flags" if card.output_kind == "sigmoid" else "softmax",
           "features": fc, "equalise": card.equalisation is not None}
    arch = start_arch(card)
    if arch is not None:  # a fine-tune trains its model's network: the card says which
        out["arch"] = arch
    return out


def start_arch(card: ModelCard) -> str | None:
    """The architecture the starting model was trained as (its card's training options),
    or None where the card does not say."""
    options = card.training.options
    arch = options.get("arch") if isinstance(options, dict) else None
    return arch if isinstance(arch, str) and arch else None


# ------------------------------------------------------------------- the comparison


def comparison_text(c: dict) -> str:
    """The fine-tuning summary line: the starting model against the adapted one on the same
    held-out recordings (the done event's ``start_comparison``)."""

    def fig(m: dict) -> str:
        (tn, fp), (fn, tp) = m["confusion"]
        auc = "n/a" if m["auc"] is None else f"{m['auc']:.3f}"
        return (f"AUC {auc}, sensitivity {m['sensitivity']:.3f}, specificity "
                f"{m['specificity']:.3f}, score {m['score']:.3f} (TN {tn} FP {fp} FN {fn} TP {tp})")

    member = c.get("member_auc")
    alone = "" if member is None else f" (its member {c['member']} alone: AUC {member:.3f})"
    return (f"same held-out recordings: starting model {c['model']} {fig(c['start'])}{alone}; "
            f"adapted {fig(c['adapted'])}")


def _nested_decisions(y: np.ndarray, p: np.ndarray, fold_of: np.ndarray) -> np.ndarray:
    """Each recording decided at the threshold chosen on the other folds' predictions."""
    from lungapp.evaluation.metrics import choose_threshold

    out = np.zeros(len(y))
    for i in np.unique(fold_of):
        m = fold_of == i
        t, _ = choose_threshold(y[~m], p[~m])
        out[m] = p[m] >= t
    return out


def _recalibrated(y, p, fold_of) -> dict:
    """Figures at thresholds chosen on the other folds (AUC of the probabilities)."""
    from lungapp.evaluation.metrics import binary_metrics
    from lungapp.training.oof import auc_or_nan

    m = binary_metrics(y, _nested_decisions(y, p, fold_of), 0.5)
    m["auc"] = auc_or_nan(y, p)
    m["threshold"] = None
    return m


def start_comparison(start: StartModel, y: np.ndarray, p: dict[str, np.ndarray],
                     fold_of: np.ndarray, adapted: dict) -> dict:
    """The report's ``start_comparison`` from each recording's abnormal probability under
    ``p["start"]`` (the starting model as the app runs it; NaN where it could not score a
    recording, left out of every row), ``p["start_member"]`` (the member that was
    fine-tuned, on the run's windows, pooled as the adapted models are) and
    ``p["adapted"]`` (the out-of-fold predictions; ``adapted``: the report's ``overall``,
    at the out-of-fold threshold), fold by fold with the same folds."""
    from lungapp.evaluation.metrics import binary_metrics
    from lungapp.training.oof import auc_or_nan

    ok = np.isfinite(p["start"])
    y, f = y[ok], fold_of[ok]
    ps, pm, pa = (p[k][ok] for k in ("start", "start_member", "adapted"))
    per_fold = [{"fold": int(i) + 1, "n": int((f == i).sum()),
                 **{f"{k}_auc": auc_or_nan(y[f == i], v[f == i])
                    for k, v in (("start", ps), ("start_member", pm), ("adapted", pa))}}
                for i in np.unique(f)]
    return {
        "start": start.describe(),
        "how": ("the starting model as the app runs it (all its members, its own threshold), "
                "and the member that was fine-tuned alone (pooled as the adapted models are), "
                "scored on every held-out recording, against the adapted fold model that did "
                "not see it; 'recalibrated': each fold decided at the threshold chosen on the "
                "other folds (for the starting model: a new threshold only)"),
        "n_unscored": int((~ok).sum()),
        "start_overall": binary_metrics(y, ps, start.card.threshold),
        "start_recalibrated": _recalibrated(y, ps, f),
        "start_member_recalibrated": _recalibrated(y, pm, f),
        "adapted_overall": adapted if ok.all() else binary_metrics(y, pa, adapted["threshold"]),
        "adapted_recalibrated": _recalibrated(y, pa, f),
        "per_fold": per_fold,
    }


def start_probabilities(start: StartModel, paths: list[str], log) -> np.ndarray:
    """The starting model's abnormal probability for each recording, as the app computes
    it (:meth:`lungapp.inference.predictor.Predictor.predict_file`, quality check aside);
    NaN (and a ``log`` warning) for a recording it cannot read."""
    from lungapp.inference.predictor import Predictor

    predictor = Predictor.load(start.folder)
    out = np.full(len(paths), np.nan)
    for i, path in enumerate(paths):
        try:
            out[i] = predictor.predict_file(path).abnormal_probability
        except LungappError as exc:
            log(f"the starting model could not score {path}: {exc}", "warning")
    return out
