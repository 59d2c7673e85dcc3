"""Combine finished training runs into one ensemble model folder.

Each member is a `lungapp train` output folder holding one model (``--artifact retrain``)
and the out-of-fold predictions its cross-validation wrote (``--oof``). The members must
be runs on the same recordings with the same task, classes, outputs, pooling and
spectrogram (typically one recipe's runs with different seeds). Members reading the same
windows are averaged window by window, as the app's runtimes do
(:class:`lungapp.inference.runtime.OnnxEnsemble`, a Keras ``Average``), then pooled.
Members may also read windows of other lengths of the same spectrogram (a mixed
ensemble, e.g. 2-s and 4-s windows): each such group's windows are pooled and the
pooled values averaged over all members
(:func:`lungapp.inference.predictor.pool_members`); the card lists each model's
features (``member_features``).

Its card reports the ensemble's own cross-validation: for every recording, each member's
out-of-fold window outputs (from that member's fold model that never saw the recording;
the members' fold partitions may differ, each grouped by patient) are averaged and pooled,
and the report (threshold chosen on these predictions, per-fold figures over the first
member's folds, four classes, the device-shift check when every member ran it) is
computed by :func:`lungapp.training.oof.evaluate_oof`, the function training uses.

``hop_s`` may coarsen the window step to a whole multiple of the members' step (one step
for all, or one per window length, :func:`member_steps`): a member then runs on every m-th
window (and the tail window), which is exactly the window set the coarser step gives, so
its cost per recording stays that of one member (a 2-model ensemble at twice the step
costs what one model does).

An out-of-fold file may be stripped of its labels and patient ids (:func:`strip_oof`), so
that it can be kept beside the model without copying the dataset's labels; combining such
files reads the labels again from the data folder (``data_root``) and checks them against
the hash of the file list the member was trained on.

    python -m lungapp.training.combine OUT RUN1:OOF1.npz RUN2:OOF2.npz [--hop-s 1.0] [--data DIR]
    python -m lungapp.training.combine OUT ... --hop-s 2=1 --hop-s 4=2   # per window length
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import os
import re
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from lungapp.errors import LungappError
from lungapp.inference.card import ModelCard, library_versions, load_card, write_card
from lungapp.inference.card_schema import DeviceShift
from lungapp.training.card_build import metrics_of
from lungapp.training.card_text import seed_words
from lungapp.training.oof import OofData, card_threshold

_SAME = ("task", "classes", "output_kind", "outputs", "pooling", "input_kind", "equalisation")


def window_subset(n_windows: int, m: int) -> np.ndarray:
    """Which of a recording's ``n_windows`` windows (at step h) are the windows at step
    ``m * h`` (:func:`lungapp.inference.features.window_starts`): every m-th, and the last
    (the tail window, aligned to the end)."""
    i = np.arange(n_windows)
    return (i % m == 0) | (i == n_windows - 1)


def member_steps(cards: list[ModelCard], hop_s=None) -> list[tuple]:
    """Each member's (features at the ensemble's step, m): the member runs on one in ``m``
    of its windows. ``hop_s``: None (each member's own step), one step for every member,
    or {window length (s): step} (members whose window length is not listed keep their
    own step). A step must be a whole multiple of the member's; LungappError otherwise."""
    out = []
    for card in cards:
        fc = card.features
        step = hop_s.get(fc.window_s) if isinstance(hop_s, dict) else hop_s
        if step is None:
            out.append((fc, 1))
            continue
        ratio = float(step) / fc.hop_s
        m = int(round(ratio))
        if m < 1 or abs(ratio - m) > 1e-9:
            raise LungappError(f"hop_s {step} must be a whole multiple of the members' {fc.hop_s} s")
        out.append((dataclasses.replace(fc, hop_s=float(step)), m))
    return out


def check_members(cards: list[ModelCard], dirs: list[Path], one_model: bool = True) -> None:
    """Raise LungappError unless the runs ``dirs`` (their ``cards``) fit in one ensemble: the
    same task, outputs, pooling and spectrogram (windows may differ), on the same
    recordings, each holding one model (unless not ``one_model``)."""
    first = cards[0]
    for card, d in zip(cards[1:], dirs[1:]):
        for key in _SAME:
            if getattr(card, key) != getattr(first, key):
                raise LungappError(f"member differs from {dirs[0]} in {key}: "
                                   f"{getattr(card, key)!r} vs {getattr(first, key)!r}", d)
        fa, fb = first.features, card.features
        if fb.spectrogram != fa.spectrogram or fa.resize is not None or fb.resize is not None:
            # Members may read windows of other lengths or steps (a mixed ensemble), but of
            # one spectrogram, computed once per recording.
            raise LungappError(f"member's spectrogram differs from {dirs[0]}'s", d)
        a, b = _file_list_hash(first), _file_list_hash(card)
        if not a or a != b:
            raise LungappError(f"member was trained on other recordings than {dirs[0]} "
                               "(file list hashes differ or are missing)", d)
    for card, d in zip(cards, dirs):
        if one_model and len(card.model_files) != 1:
            raise LungappError(f"a member must hold one model (train --artifact retrain), not "
                               f"{len(card.model_files)}", d)


#: What :func:`strip_oof` removes from an out-of-fold file: the dataset's own facts.
STRIPPED = ("label", "patient")


def strip_oof(src, dst) -> None:
    """Copy out-of-fold file ``src`` to ``dst`` without its labels and patient ids (the
    model's outputs, file names and folds stay), written atomically."""
    import io

    from lungapp.fsutil import atomic_write_bytes

    with np.load(src, allow_pickle=False) as npz:
        kept = {key: npz[key] for key in npz.files if key not in STRIPPED}
    buf = io.BytesIO()
    np.savez_compressed(buf, **kept)
    atomic_write_bytes(Path(dst), buf.getvalue())


def _data_facts(data_root, task: str, path: Path) -> dict[str, tuple[str, str]]:
    """{relative path: (task label or "", patient id or "")} of the data folder, read once
    for all the stripped out-of-fold files of one ensemble."""
    from lungapp.data.readers import read_folder
    from lungapp.training.dataset import task_label

    if data_root is None:
        raise LungappError("out-of-fold file holds no labels; give the data folder the member "
                           "was trained on", path)
    root = Path(data_root)
    return {os.path.relpath(ex.path, root): (task_label(ex.label, task) or "", ex.patient or "")
            for ex in read_folder(root).examples}


def restore_labels(z: dict, card: ModelCard, facts: dict, data_root, path: Path) -> None:
    """Put back the labels and patient ids of stripped out-of-fold arrays ``z`` (read from
    ``path``) from ``facts`` (:func:`_data_facts` of the member's data folder ``data_root``),
    checked against the hash of the file list the member was trained on (``card``). Raises
    LungappError."""
    from lungapp.training.dataset import labels_hash

    rels = [str(p) for p in z["path"]]
    missing = [r for r in rels if r not in facts]
    if missing:
        raise LungappError(f"{len(missing)} of the out-of-fold file's recordings are not in "
                           f"{data_root} (first: {missing[0]})", path)
    labels = [facts[r][0] for r in rels]
    want = _file_list_hash(card)
    if labels_hash(zip(rels, labels)) != want:
        raise LungappError(f"the labels in {data_root} are not those the member was trained on "
                           "(file list hash differs)", path)
    z["label"] = np.array(labels)
    z["patient"] = np.array([facts[r][1] for r in rels])


def load_oofs(members: list[tuple[Path, Path]], cards: list[ModelCard], data_root=None) -> list[dict]:
    """The members' out-of-fold arrays, each file read once, with the labels of stripped
    files restored from ``data_root`` (read once for all of them)."""
    zs, facts = [], None
    for (_, f), card in zip(members, cards):
        # Read every array once: indexing an NpzFile decompresses the array again each time.
        with np.load(f, allow_pickle=False) as npz:
            z = {key: npz[key] for key in npz.files}
        if "label" not in z:
            if facts is None:
                facts = _data_facts(data_root, card.task, Path(f))
            restore_labels(z, card, facts, data_root, Path(f))
        zs.append(z)
    return zs


def _align(z: dict, order: list[str] | None, path: Path):
    """Indices of ``order``'s recordings in out-of-fold arrays ``z`` (None: z's own order)."""
    paths = [str(p) for p in z["path"]]
    if order is None:
        order = paths
    index = {p: i for i, p in enumerate(paths)}
    if len(index) != len(paths) or set(index) != set(order):
        raise LungappError("out-of-fold file covers other recordings than the first member's", path)
    return [index[p] for p in order], order


def keep_runs(members: list[tuple[Path, Path]], dest) -> None:
    """Replace folder ``dest`` with one folder per run (``w<window>s_seed<N>``, e.g.
    ``w2s_seed0``): its card, model file (and its ONNX export) and
    curves, and its out-of-fold file without labels or patient ids (``oof.npz``). Raises
    LungappError when two runs share a seed."""
    from lungapp.fsutil import make_staging, publish_dir

    dest = Path(dest)
    staging = make_staging(dest)
    try:
        for run, oof in members:
            run = Path(run)
            card = load_card(run)
            d = staging / kept_name_of(card)
            if d.exists():
                raise LungappError(f"two runs share a window length and a seed ({d.name})", run)
            d.mkdir()
            onnx = [o.file for o in card.onnx.values()]  # the run's ONNX export travels with it
            for name in ("card.json", card.model_files[0], card.training.curves_file, *onnx):
                if name and (run / name).is_file():
                    shutil.copyfile(run / name, d / name)
            strip_oof(oof, d / "oof.npz")
        publish_dir(staging, dest)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


_KEPT = re.compile(r"w(\d+(?:\.\d+)?)s_seed(\d+)")


def kept_runs(dest) -> list[tuple[Path, Path]]:
    """The (run folder, out-of-fold file) pairs kept in ``dest`` by :func:`keep_runs`, in
    order of window length, then seed (``w10s_`` after ``w2s_``)."""
    found = [(m, d) for d in Path(dest).glob("w*s_seed*")
             if (m := _KEPT.fullmatch(d.name)) and (d / "oof.npz").is_file()]
    found.sort(key=lambda md: (float(md[0][1]), int(md[0][2])))
    return [(d, d / "oof.npz") for _, d in found]


def kept_members_of(card: ModelCard, dest) -> list[tuple[Path, Path]]:
    """The (run folder, out-of-fold file) pairs in ``dest`` of the members an ensemble's
    ``card`` names (kept there by :func:`keep_runs`); empty for a card naming none. Raises
    LungappError naming the first member that is not kept."""
    out = []
    for m in card.training.to_dict().get("members") or []:
        d = Path(dest) / kept_name(m["window_s"], m["seed"])
        if not (d / "oof.npz").is_file():
            raise LungappError(f"member {d.name} is not kept (no {d.name}/oof.npz)", dest)
        out.append((d, d / "oof.npz"))
    return out


def kept_name(window_s: float, seed) -> str:
    """The folder name :func:`keep_runs` gives a run with windows of ``window_s`` seconds
    and seed ``seed`` (e.g. ``w2s_seed0``)."""
    return f"w{window_s:g}s_seed{seed}"


def kept_name_of(card: ModelCard) -> str:
    """:func:`kept_name` of a run's card."""
    return kept_name(card.features.window_s, _seed(card))


def _seed(card: ModelCard) -> int | None:
    return card.training.cv.seed if card.training.cv else None


def _file_list_hash(card: ModelCard) -> str | None:
    return card.training.data.file_list_sha256 if card.training.data else None


def combine(members: list[tuple[Path, Path]], out, *, hop_s: float | None = None,
            name: str | None = None, overwrite: bool = False, data_root=None,
            class_pooling: str | None = None) -> dict:
    """Write the ensemble of ``members`` ((model folder, oof file) pairs) to ``out``.
    Returns the card's metrics. Raises LungappError for members that do not fit together
    or an existing ``out`` without ``overwrite``. ``data_root``: the data folder the
    members were trained on, needed for stripped out-of-fold files. ``class_pooling``: the
    four-class class pooling fixed instead of chosen (see :func:`ensemble_report`)."""
    from lungapp.fsutil import check_output_dir, make_staging, publish_dir

    if len(members) < 2:
        raise LungappError("an ensemble needs at least two members")
    out = Path(out)
    # Before any work: never over the data or the members, nor over anything but a model.
    check_output_dir(out, data_dirs=[data_root, *(d for d, _ in members)], overwrite=overwrite)
    dirs = [Path(d) for d, _ in members]
    cards = [load_card(d) for d in dirs]
    check_members(cards, dirs)
    first = cards[0]
    report, fcs = ensemble_report(members, hop_s=hop_s, data_root=data_root, cards=cards,
                                  class_pooling=class_pooling)
    fc = fcs[0]

    files = [f"model_{i + 1}.keras" for i in range(len(members))]
    seeds = [_seed(c) for c in cards]
    training = first.training.to_dict()
    # each member's training curves travel with it (curves_1.json, ...)
    curves = {i: d / c.training.curves_file for i, (d, c) in enumerate(zip(dirs, cards))
              if c.training.curves_file and (d / c.training.curves_file).is_file()}
    training["members"] = [{"folder": str(d), "model_file": c.model_files[0], "seed": s,
                            "cv": c.training.cv.to_dict() if c.training.cv else None,
                            "auc": c.metrics.overall.auc if c.metrics.overall else None,
                            "wall_s": c.training.wall_s, "window_s": c.features.window_s,
                            "curves_file": f"curves_{i + 1}.json" if i in curves else None}
                           for i, (d, c, s) in enumerate(zip(dirs, cards, seeds))]
    training.pop("curves_file", None)
    training["cv"] = {**(training.get("cv") or {}),
                      "note": "per-fold figures use the first member's folds; each member's fold "
                              "models held out their own patient-grouped folds"}
    step = "; " + "; ".join(
        f"{g}: {f.window_s:g}-s windows every {f.hop_s:g} s"
        + (f" (one in {int(round(f.hop_s / c.features.hop_s))} of its own {c.features.hop_s:g}-s step)"
           if f.hop_s != c.features.hop_s else "")
        for g, f, c in _group_words(fcs, cards))
    each = str(first.training.artifact or "one run's model").split(";")[0]
    how = ("outputs averaged" if len(set(fcs)) == 1 else
           "outputs averaged over models on the same windows, each window length's pooled, "
           "then averaged over all")
    training["artifact"] = (f"ensemble of {len(members)} models ({how}), each {each} "
                            f"({seed_words(training['members'])}){step}; the CV figures average the "
                            "members' out-of-fold predictions")
    card = dataclasses.replace(
        first, name=name or first.name, features=fc, model_files=files,
        member_features=fcs if len(set(fcs)) > 1 else [],
        threshold=card_threshold(report), threshold_rule=report["threshold_rule"],
        flag_thresholds=report.get("flag_thresholds", {}), calibration=report.get("calibration"),
        class_pooling=report.get("class_pooling", ""), metrics=metrics_of(report), training=training,
        versions=library_versions(), onnx={},  # the members' exports are made again below
        created=_dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        description=f"{len(members)} runs of {first.description} ({seed_words(training['members'])}), "
                    "combined by lungapp.training.combine")

    staging = make_staging(out)
    try:
        for d, c, f in zip(dirs, cards, files):
            shutil.copyfile(d / c.model_files[0], staging / f)
        for i, src in curves.items():
            shutil.copyfile(src, staging / f"curves_{i + 1}.json")
        write_card(staging, card)
        # ONNX export (lungapp.training.export): the app runs model_N.onnx; the card gets
        # their hashes before the folder is published.
        from lungapp.training.export import export_model_folder

        export_model_folder(staging)
        publish_dir(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return report




def _groups(fcs: list) -> dict:
    """{features: [member index, ...]}: the members reading each window set, in order."""
    groups: dict = {}
    for i, fc in enumerate(fcs):
        groups.setdefault(fc, []).append(i)
    return groups


def _group_words(fcs: list, cards: list[ModelCard]):
    """(words naming the members, features, first member's card) per member group."""
    groups = _groups(fcs)
    for fc, idx in groups.items():
        who = "members " + ", ".join(str(i + 1) for i in idx) if len(idx) > 1 else f"member {idx[0] + 1}"
        yield ("all members" if len(groups) == 1 else who), fc, cards[idx[0]]


@dataclasses.dataclass
class EnsembleOof:
    """An ensemble's out-of-fold predictions (:func:`ensemble_oof`): ``data`` (labels,
    pooled probabilities, folds, patients), ``class_probs`` (per class pooling, flag models
    only), ``alt`` (abnormal probability per pooling rule), ``shifted`` (the device-shifted
    copies' pooled probabilities, or None), and the members' ``cards`` and features ``fcs``."""

    data: OofData
    class_probs: dict | None
    alt: dict
    shifted: np.ndarray | None
    cards: list
    fcs: list


def ensemble_oof(members: list[tuple[Path, Path]], *, hop_s: float | None = None,
                 data_root=None, cards: list[ModelCard] | None = None,
                 arrays: list[dict] | None = None,
                 pool_rules: tuple[str, ...] | None = None) -> EnsembleOof:
    """The out-of-fold predictions of the ensemble of ``members`` ((model folder, oof file)
    pairs) at window step ``hop_s`` (see :func:`member_steps`), as the app would pool them;
    ``alt`` holds the abnormal probability pooled by each of ``pool_rules`` (pooling rules as a
    card names them; default :data:`lungapp.vocabulary.POOLINGS`).

    Members reading the same windows are averaged window by window; member groups that
    read different windows (other lengths or steps) are each pooled and the pooled values
    averaged over all members (:func:`lungapp.inference.predictor.pool_members`), as the app
    does. ``cards`` (checked to fit together) and ``arrays`` (:func:`load_oofs`) may be
    given when already loaded."""
    from lungapp.inference.predictor import pool_members
    from lungapp.training.oof import is_flag_spec
    from lungapp.vocabulary import CLASS_POOLINGS, POOLINGS

    dirs = [Path(d) for d, _ in members]
    if cards is None:
        cards = [load_card(d) for d in dirs]
        check_members(cards, dirs, one_model=False)
    first = cards[0]
    spec = (first.output_kind, list(first.outputs))
    steps = member_steps(cards, hop_s)
    fcs = [fc for fc, _ in steps]
    groups = list(_groups(fcs).values())
    weights = [len(g) for g in groups]

    if arrays is None:
        arrays = load_oofs(members, cards, data_root)
    oofs, order = [], None
    for (_, f), z in zip(members, arrays):
        idx, order = _align(z, order, Path(f))
        oofs.append((z, idx))
    z0, idx0 = oofs[0]
    labels = [str(z0["label"][i]) for i in idx0]
    for z, idx in oofs[1:]:
        if [str(z["label"][i]) for i in idx] != labels:
            raise LungappError("members' out-of-fold files disagree on the labels", Path(members[0][1]))
    classes = list(first.classes)
    y = np.array([0 if lab == classes[0] else 1 for lab in labels])
    fold_of = np.array([int(z0["fold"][i]) - 1 for i in idx0])
    patients = [str(z0["patient"][i]) or None for i in idx0]
    shift_all = all("window_out_shift" in z for z, _ in oofs)

    def windows(key: str, r: int) -> list[np.ndarray]:
        """Each member group's window outputs for recording r (its members averaged)."""
        out = []
        for g in groups:
            ws = []
            for k in g:
                z, idx = oofs[k]
                off = z["offsets"]
                w = z[key][off[idx[r]]: off[idx[r] + 1]].astype(np.float64)
                ws.append(w[window_subset(len(w), steps[k][1])])
            if len({len(w) for w in ws}) != 1:
                raise LungappError(f"members' windows of {order[r]} differ in number",
                                   Path(members[g[0]][1]))
            out.append(np.mean(ws, axis=0))
        return out

    rules: dict = {}

    def pooled(outs: list[np.ndarray], rule: str, class_rule: str = "") -> np.ndarray:
        key = (rule, class_rule)
        if key not in rules:  # a card-like view of each pooling rule, made once
            rules[key] = SimpleNamespace(output_kind=spec[0], outputs=spec[1], pooling=rule,
                                         class_pooling=class_rule)
        return pool_members(outs, weights, rules[key])

    n = len(order)
    probs = np.zeros((n, len(classes)))
    alt = {rule: np.zeros(n) for rule in (pool_rules or POOLINGS)}
    shifted = np.zeros((n, len(classes))) if shift_all else None
    kept = []
    for r in range(n):
        w = windows("window_out", r)
        kept.append(w)
        probs[r] = pooled(w, first.pooling)
        for rule in alt:
            alt[rule][r] = 1 - pooled(w, rule)[0]
        if shifted is not None:
            shifted[r] = pooled(windows("window_out_shift", r), first.pooling)
    class_probs = ({c: np.stack([pooled(w, first.pooling, c) for w in kept]) for c in CLASS_POOLINGS}
                   if is_flag_spec(spec) else None)
    data = OofData(y, labels, probs, fold_of, classes, patients if all(patients) else None)
    return EnsembleOof(data, class_probs, alt, shifted, cards, fcs)


def ensemble_report(members: list[tuple[Path, Path]], *, hop_s: float | None = None,
                    data_root=None, cards: list[ModelCard] | None = None,
                    arrays: list[dict] | None = None, class_pooling: str | None = None):
    """The cross-validation report of the ensemble of ``members`` (one or more (model
    folder, oof file) pairs) at window step ``hop_s``, from their out-of-fold files
    (:func:`ensemble_oof`), as :func:`combine` writes it on the card. Returns (report,
    features): each member's features at the ensemble's step. ``class_pooling`` (one of
    :data:`lungapp.vocabulary.CLASS_POOLINGS`, for [CAS, DAS] flag models): name the four
    classes from the flags pooled so, fixed by the recipe instead of chosen on these
    predictions (the checks are still reported)."""
    from lungapp.evaluation.metrics import binary_metrics
    from lungapp.training.oof import auc_or_nan, class_pooling_problem, evaluate_oof, is_flag_spec

    if cards is None:
        dirs = [Path(d) for d, _ in members]
        cards = [load_card(d) for d in dirs]
        check_members(cards, dirs, one_model=False)
    first = cards[0]
    problem = class_pooling_problem(class_pooling, first.task,
                                    is_flag_spec((first.output_kind, list(first.outputs))))
    if problem:
        raise LungappError(problem, Path(members[0][0]))
    e = ensemble_oof(members, hop_s=hop_s, data_root=data_root, cards=cards, arrays=arrays)
    d = e.data
    report = evaluate_oof(d.y, d.labels, d.probs, d.fold_of, d.classes, first.task,
                          flag_rule=e.class_probs is not None, groups=d.groups,
                          class_probs=e.class_probs, class_pooling=class_pooling)
    report["pooling_auc"] = {rule: auc_or_nan(d.y, p) for rule, p in e.alt.items()}
    report["patient_grouped"] = all(bool(c.training.cv and c.training.cv.grouped_by_patient)
                                    for c in cards)
    report["evaluated"] = (f"out-of-fold: every recording scored by the {len(members)} members' fold "
                           "models that did not see it, their window outputs averaged")
    if e.shifted is not None:
        ds0 = first.metrics.device_shift or DeviceShift()
        sh = binary_metrics(d.y, 1 - e.shifted[:, 0], report["threshold"])
        report["device_shift"] = {
            "transform": ds0.transform, "augmentation": ds0.augmentation, "shifted": sh,
            "drop": {k: (report["overall"][k] - sh[k]) if report["overall"][k] is not None
                     and sh[k] is not None else None for k in ("auc", "score", "sensitivity", "specificity")}}
    return report, e.fcs


def parse_member(spec: str) -> tuple[Path, Path]:
    """``RUN:OOF`` -> (run folder, out-of-fold file); ValueError without the colon."""
    run, sep, oof = spec.rpartition(":")
    if not sep or not run or not oof:
        raise ValueError(f"{spec!r}: expected RUN:OOF (a model folder and its --oof file)")
    return Path(run), Path(oof)


def add_run_arguments(ap: argparse.ArgumentParser, kept: Path, data: Path) -> None:
    """The arguments of the scripts that read runs' out-of-fold files: ``RUN:OOF ...``
    (default: the runs kept in ``--members``, default ``kept``) and ``--data`` (default
    ``data``), the folder that restores labels stripped from kept files."""
    ap.add_argument("runs", nargs="*", metavar="RUN:OOF",
                    help="model folders and their --oof files (default: the kept runs)")
    ap.add_argument("--members", type=Path, default=kept, help="folder of kept runs")
    ap.add_argument("--data", type=Path, default=data,
                    help="the runs' data folder (for out-of-fold files without labels)")


def runs_from_arguments(ap: argparse.ArgumentParser, args) -> list[tuple[Path, Path]]:
    """The (run, out-of-fold file) pairs :func:`add_run_arguments` named; a malformed
    ``RUN:OOF`` exits through ``ap.error``. Empty when none was given and none is kept."""
    try:
        members = [parse_member(s) for s in args.runs]
    except ValueError as exc:
        ap.error(str(exc))
    return members or kept_runs(args.members)


def parse_hops(values: list[str] | None):
    """``--hop-s`` values -> None, one step, or {window length: step}; ValueError."""
    if not values:
        return None
    if len(values) == 1 and "=" not in values[0]:
        return _positive(values[0])
    hops = {}
    for v in values:
        w, sep, h = v.partition("=")
        if not sep:
            raise ValueError(f"--hop-s {v!r}: give one step, or WINDOW=STEP for each window length")
        hops[_positive(w)] = _positive(h)
    return hops


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number of seconds") from None
    if not v > 0:
        raise ValueError(f"{text!r}: seconds must be positive")
    return v


def summary_line(report: dict) -> str:
    """The headline figures of a CV report (a card's ``metrics``), on one line."""
    ov = report["overall"]
    line = (f"AUC {ov['auc']:.4f} score {ov['score']:.4f} sensitivity {ov['sensitivity']:.3f} "
            f"specificity {ov['specificity']:.3f}")
    fc = report.get("four_class")
    if not fc:
        return line
    line += f" 4-class {fc['score']:.4f} (nested {fc['nested_score']:.4f}"
    for key, what in (("flag_rule_check", "flag rule"), ("class_pooling_check", "class pooling")):
        chk = fc.get(key)
        if chk:
            verdict = "adopted" if chk["adopted"] else "not adopted"
            if chk.get("fixed"):
                verdict = f"fixed by the recipe (its check: {verdict})"
            line += f"; {what} {verdict}, nested {chk['nested_score']:.4f}"
    return line + ")"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lungapp.training.combine",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("members", nargs="+", metavar="RUN:OOF", help="model folder and its --oof file")
    ap.add_argument("--hop-s", action="append", default=None, metavar="STEP|WINDOW=STEP",
                    help="window step of the ensemble (s): one for every member, or per window "
                         "length, e.g. --hop-s 2=1 --hop-s 4=2 (default: each member's own)")
    ap.add_argument("--name", default=None)
    ap.add_argument("--data", default=None, metavar="DIR",
                    help="the members' data folder (for out-of-fold files stripped of labels)")
    ap.add_argument("--class-pooling", default=None, metavar="RULE",
                    help="four classes: name the class from the flags pooled by RULE (e.g. "
                         "quantile:0.75), fixed instead of chosen on the out-of-fold predictions")
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)
    try:
        pairs = [parse_member(spec) for spec in args.members]
        hop_s = parse_hops(args.hop_s)
    except ValueError as exc:
        ap.error(str(exc))
    try:
        rep = combine(pairs, args.out, hop_s=hop_s, name=args.name, overwrite=args.overwrite,
                      data_root=args.data, class_pooling=args.class_pooling)
    except LungappError as exc:
        print(f"lungapp combine: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: {summary_line(rep)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
