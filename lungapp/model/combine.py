"""Combine finished training runs into one ensemble model folder.

Each member is a `lungapp train` output folder holding one model (``--artifact retrain``)
and the out-of-fold predictions its cross-validation wrote (``--oof``). The members must
be the same recipe's runs on the same recordings (same task, classes, outputs, pooling,
features and file list; typically different seeds). The ensemble averages the members'
window outputs, as :class:`lungapp.model.npruntime.NumpyEnsemble` and the Keras runtime
do in the app, then pools them.

Its card reports the ensemble's own cross-validation: for every recording, each member's
out-of-fold window outputs (from that member's fold model that never saw the recording;
the members' fold partitions may differ, each grouped by patient) are averaged and pooled,
and the report (threshold chosen on these predictions, per-fold figures over the first
member's folds, four classes, the device-shift check when every member ran it) is
computed by :func:`lungapp.model.train.evaluate_oof`, the function training uses.

``hop_s`` may coarsen the window step to a whole multiple of the members' step: the
ensemble then runs on every m-th window (and the tail window), which is exactly the
window set the coarser step gives, so its cost per recording stays that of one member
(a 2-model ensemble at twice the step costs what one model does).

An out-of-fold file may be stripped of its labels and patient ids (:func:`strip_oof`), so
that it can be kept beside the model without copying the dataset's labels; combining such
files reads the labels again from the data folder (``data_root``) and checks them against
the hash of the file list the member was trained on.

    python -m lungapp.model.combine OUT RUN1:OOF1.npz RUN2:OOF2.npz [--hop-s 1.0] [--data DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from lungapp.errors import LungappError
from lungapp.model.card import ModelCard, library_versions, load_card, write_card

_SAME = ("task", "classes", "output_kind", "outputs", "pooling", "input_kind")


def window_subset(n_windows: int, m: int) -> np.ndarray:
    """Which of a recording's ``n_windows`` windows (at step h) are the windows at step
    ``m * h`` (:func:`lungapp.model.features.window_starts`): every m-th, and the last
    (the tail window, aligned to the end)."""
    i = np.arange(n_windows)
    return (i % m == 0) | (i == n_windows - 1)


def check_members(cards: list[ModelCard], dirs: list[Path], one_model: bool = True) -> None:
    """Raise LungappError unless the runs ``dirs`` (their ``cards``) are one recipe's runs on
    the same recordings, each holding one model (unless not ``one_model``)."""
    first = cards[0]
    for card, d in zip(cards[1:], dirs[1:]):
        for key in _SAME:
            if getattr(card, key) != getattr(first, key):
                raise LungappError(f"member differs from {dirs[0]} in {key}: "
                                   f"{getattr(card, key)!r} vs {getattr(first, key)!r}", d)
        if card.features != first.features:
            raise LungappError(f"member's features differ from {dirs[0]}'s", d)
        a = (first.training.get("data") or {}).get("file_list_sha256")
        b = (card.training.get("data") or {}).get("file_list_sha256")
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
    from lungapp.model.train import task_label

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
    from lungapp.model.train import labels_hash

    rels = [str(p) for p in z["path"]]
    missing = [r for r in rels if r not in facts]
    if missing:
        raise LungappError(f"{len(missing)} of the out-of-fold file's recordings are not in "
                           f"{data_root} (first: {missing[0]})", path)
    labels = [facts[r][0] for r in rels]
    want = (card.training.get("data") or {}).get("file_list_sha256")
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
    """Replace folder ``dest`` with one folder per run (``seedN``): its card, model file and
    curves, and its out-of-fold file without labels or patient ids (``oof.npz``). Raises
    LungappError when two runs share a seed."""
    from lungapp.fsutil import publish_dir

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.staging-", dir=dest.parent))
    try:
        for run, oof in members:
            run = Path(run)
            card = load_card(run)
            d = staging / f"seed{(card.training.get('cv') or {}).get('seed')}"
            if d.exists():
                raise LungappError(f"two runs share a seed ({d.name})", run)
            d.mkdir()
            for name in ("card.json", card.model_files[0], card.training.get("curves_file")):
                if name and (run / name).is_file():
                    shutil.copyfile(run / name, d / name)
            strip_oof(oof, d / "oof.npz")
        publish_dir(staging, dest)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def kept_runs(dest) -> list[tuple[Path, Path]]:
    """The (run folder, out-of-fold file) pairs kept in ``dest`` by :func:`keep_runs`."""
    return [(d, d / "oof.npz") for d in sorted(Path(dest).glob("seed*")) if (d / "oof.npz").is_file()]


def combine(members: list[tuple[Path, Path]], out, *, hop_s: float | None = None,
            name: str | None = None, overwrite: bool = False, data_root=None) -> dict:
    """Write the ensemble of ``members`` ((model folder, oof file) pairs) to ``out``.
    Returns the card's metrics. Raises LungappError for members that do not fit together
    or an existing ``out`` without ``overwrite``. ``data_root``: the data folder the
    members were trained on, needed for stripped out-of-fold files."""
    from lungapp.fsutil import publish_dir

    if len(members) < 2:
        raise LungappError("an ensemble needs at least two members")
    out = Path(out)
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise LungappError("output folder already exists and is not empty (use overwrite)", out)
    dirs = [Path(d) for d, _ in members]
    cards = [load_card(d) for d in dirs]
    check_members(cards, dirs)
    first = cards[0]
    report, fc, m = ensemble_report(members, hop_s=hop_s, data_root=data_root, cards=cards)

    files = [f"model_{i + 1}.keras" for i in range(len(members))]
    seeds = [(c.training.get("cv") or {}).get("seed") for c in cards]
    training = dict(first.training)
    # each member's training curves travel with it (curves_1.json, ...)
    curves = {i: d / c.training["curves_file"] for i, (d, c) in enumerate(zip(dirs, cards))
              if c.training.get("curves_file") and (d / c.training["curves_file"]).is_file()}
    training["members"] = [{"folder": str(d), "model_file": c.model_files[0], "seed": s,
                            "cv": c.training.get("cv"), "auc": (c.metrics.get("overall") or {}).get("auc"),
                            "wall_s": c.training.get("wall_s"),
                            "curves_file": f"curves_{i + 1}.json" if i in curves else None}
                           for i, (d, c, s) in enumerate(zip(dirs, cards, seeds))]
    training.pop("curves_file", None)
    training["cv"] = {**(first.training.get("cv") or {}),
                      "note": "per-fold figures use the first member's folds; each member's fold "
                              "models held out their own patient-grouped folds"}
    step = (f"; windows every {fc.hop_s:g} s (one in {m} of the members' {first.features.hop_s:g}-s "
            "step)") if m > 1 else ""
    each = str(first.training.get("artifact") or "one run's model").split(";")[0]
    training["artifact"] = (f"ensemble of {len(members)} models (outputs averaged), each {each} "
                            f"(seeds "
                            f"{', '.join(str(s) for s in seeds)}){step}; the CV figures average the "
                            "members' out-of-fold predictions")
    card = dataclasses.replace(
        first, name=name or first.name, features=fc, model_files=files,
        threshold=float(report["threshold"]), threshold_rule=report["threshold_rule"],
        flag_thresholds=report.get("flag_thresholds", {}),
        class_pooling=report.get("class_pooling", ""), metrics=report, training=training,
        versions=library_versions(),
        created=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        description=f"{len(members)} runs of {first.description} (seeds "
                    f"{', '.join(str(s) for s in seeds)}), combined by lungapp.model.combine")

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        for d, c, f in zip(dirs, cards, files):
            shutil.copyfile(d / c.model_files[0], staging / f)
        for i, src in curves.items():
            shutil.copyfile(src, staging / f"curves_{i + 1}.json")
        write_card(staging, card)
        publish_dir(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return report




def ensemble_report(members: list[tuple[Path, Path]], *, hop_s: float | None = None,
                    data_root=None, cards: list[ModelCard] | None = None,
                    arrays: list[dict] | None = None):
    """The cross-validation report of the ensemble of ``members`` (one or more (model
    folder, oof file) pairs) at window step ``hop_s``, from their out-of-fold files, as
    :func:`combine` writes it on the card. Returns (report, feature config, m) where the
    ensemble runs on one in ``m`` of the members' windows. ``cards`` (checked to fit
    together) and ``arrays`` (:func:`load_oofs`) may be given when already loaded."""
    from lungapp.model.metrics import binary_metrics
    from lungapp.model.train import (POOLINGS, _auc, class_pooled_probs, evaluate_oof,
                                      is_flag_spec, pool_probs)

    dirs = [Path(d) for d, _ in members]
    if cards is None:
        cards = [load_card(d) for d in dirs]
        check_members(cards, dirs, one_model=False)
    first = cards[0]
    spec = (first.output_kind, list(first.outputs))
    fc = first.features
    m = 1
    if hop_s is not None:
        ratio = hop_s / fc.hop_s
        m = int(round(ratio))
        if m < 1 or abs(ratio - m) > 1e-9:
            raise LungappError(f"hop_s {hop_s} must be a whole multiple of the members' {fc.hop_s} s")
        fc = dataclasses.replace(fc, hop_s=float(hop_s))

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

    def windows(key: str, r: int) -> np.ndarray:
        ws = []
        for z, idx in oofs:
            off = z["offsets"]
            w = z[key][off[idx[r]]: off[idx[r] + 1]].astype(np.float64)
            ws.append(w)
        if len({len(w) for w in ws}) != 1:
            raise LungappError(f"members' windows of {order[r]} differ in number", Path(members[0][1]))
        mean = np.mean(ws, axis=0)
        return mean[window_subset(len(mean), m)]

    n = len(order)
    probs = np.zeros((n, len(classes)))
    alt = {rule: np.zeros(n) for rule in POOLINGS}
    shifted = np.zeros((n, len(classes))) if shift_all else None
    kept = []
    for r in range(n):
        w = windows("window_out", r)
        kept.append(w)
        probs[r] = pool_probs(w, first.pooling, spec)
        for rule in POOLINGS:
            alt[rule][r] = 1 - pool_probs(w, rule, spec)[0]
        if shifted is not None:
            shifted[r] = pool_probs(windows("window_out_shift", r), first.pooling, spec)

    report = evaluate_oof(y, labels, probs, fold_of, classes, first.task,
                          flag_rule=is_flag_spec(spec),
                          groups=patients if all(patients) else None,
                          class_probs=class_pooled_probs(kept, first.pooling, spec))
    report["pooling_auc"] = {rule: _auc(y, p) for rule, p in alt.items()}
    report["patient_grouped"] = all(bool((c.training.get("cv") or {}).get("grouped_by_patient"))
                                    for c in cards)
    report["evaluated"] = (f"out-of-fold: every recording scored by the {len(members)} members' fold "
                           "models that did not see it, their window outputs averaged")
    if shifted is not None:
        ds0 = first.metrics.get("device_shift") or {}
        sh = binary_metrics(y, 1 - shifted[:, 0], report["threshold"])
        report["device_shift"] = {
            "transform": ds0.get("transform"), "augmentation": ds0.get("augmentation"), "shifted": sh,
            "drop": {k: (report["overall"][k] - sh[k]) if report["overall"][k] is not None
                     and sh[k] is not None else None for k in ("auc", "score", "sensitivity", "specificity")}}

    return report, fc, m


def parse_member(spec: str) -> tuple[Path, Path]:
    """``RUN:OOF`` -> (run folder, out-of-fold file); ValueError without the colon."""
    run, sep, oof = spec.rpartition(":")
    if not sep or not run or not oof:
        raise ValueError(f"{spec!r}: expected RUN:OOF (a model folder and its --oof file)")
    return Path(run), Path(oof)


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
            line += (f"; {what} {'adopted' if chk['adopted'] else 'not adopted'}, nested "
                     f"{chk['nested_score']:.4f}")
    return line + ")"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lungapp.model.combine",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("members", nargs="+", metavar="RUN:OOF", help="model folder and its --oof file")
    ap.add_argument("--hop-s", type=float, default=None, help="window step of the ensemble (s)")
    ap.add_argument("--name", default=None)
    ap.add_argument("--data", default=None, metavar="DIR",
                    help="the members' data folder (for out-of-fold files stripped of labels)")
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)
    try:
        pairs = [parse_member(spec) for spec in args.members]
    except ValueError as exc:
        ap.error(str(exc))
    try:
        rep = combine(pairs, args.out, hop_s=args.hop_s, name=args.name, overwrite=args.overwrite,
                      data_root=args.data)
    except LungappError as exc:
        print(f"lungapp combine: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: {summary_line(rep)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
