"""Agreement between two annotators: record-level Cohen's kappa, event-level F1 per event type
(an event matches one of the same type whose onset is within a tolerance), and the recordings
they disagree on, so an adjudicator can open each one.

Two ways to give the labels:

- two folders of sidecars (``NAME.json``, searched recursively), one per annotator
  (:func:`agreement`): recordings are paired by their path relative to the folder, without
  the suffix, and each sidecar's top level is its annotator's labels;
- one folder where several annotators labelled the same recordings, and two of their names
  (:func:`agreement_between`): each sidecar holds every annotator's labels apart (see
  :mod:`lungapp.annotation.sidecar`), and each recording is compared with itself.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from pathlib import Path

from lungapp.annotation.folder import check_folder
from lungapp.annotation.model import Annotation, Region
from lungapp.annotation.sidecar import annotation_from_json, annotator_docs
from lungapp.errors import LungappError

ONSET_TOLERANCE_S = 0.2


def read_sidecars(folder: str | os.PathLike, decode=annotation_from_json) -> tuple[dict, list[tuple[str, str]]]:
    """``({relative stem: decode(JSON)}, problems)`` for every ``.json`` under ``folder``
    (``decode``: :func:`annotation_from_json`, the top level, or :func:`annotator_docs`,
    every annotator's labels by name)."""
    root = check_folder(folder)
    docs, problems = {}, []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or not name.endswith(".json"):
                continue
            path = Path(dirpath) / name
            try:
                docs[str(path.relative_to(root).with_suffix(""))] = decode(
                    json.loads(path.read_bytes()))
            except (OSError, ValueError) as err:  # JSONDecodeError is a ValueError
                problems.append((str(path), str(err)))
            except RecursionError:  # json.loads gives up on arrays or objects nested ~1000 deep
                problems.append((str(path), "not a usable annotation: nested too deeply"))
    return docs, problems


def cohen_kappa(a: list[str], b: list[str]) -> float | None:
    """Cohen's kappa of two raters' labels of the same items; None without items, or when
    both always give one and the same label (chance agreement 1: kappa undefined)."""
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in ca) / (n * n)
    if expected == 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def match_events(a: list[Region], b: list[Region], tolerance: float) -> tuple[int, list, list]:
    """Pair events of the same type whose onsets differ by at most ``tolerance`` seconds,
    closest pairs first; returns ``(matched pairs, a's unmatched, b's unmatched)``."""
    candidates = sorted((abs(x.start_s - y.start_s), i, j) for i, x in enumerate(a)
                        for j, y in enumerate(b)
                        if x.type == y.type and abs(x.start_s - y.start_s) <= tolerance)
    used_a, used_b = set(), set()
    for _, i, j in candidates:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
    return (len(used_a), [x for i, x in enumerate(a) if i not in used_a],
            [y for j, y in enumerate(b) if j not in used_b])


def _f1(tp: int, fp: int, fn: int) -> float | None:
    return None if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def agreement(folder_a: str | os.PathLike, folder_b: str | os.PathLike,
              tolerance: float = ONSET_TOLERANCE_S) -> dict:
    """Compare two annotators' sidecar folders (see the module docstring). Pending
    suggestions are not labels and are left out."""
    check_tolerance(tolerance)
    docs_a, problems_a = read_sidecars(folder_a)
    docs_b, problems_b = read_sidecars(folder_b)
    # A recording whose sidecar one side cannot read is reported once, as unreadable, not
    # also as labelled by the other side only.
    unreadable = {_key(folder, f) for folder, problems in ((folder_a, problems_a), (folder_b, problems_b))
                  for f, _ in problems}
    return compare(docs_a, docs_b, (str(folder_a), str(folder_b)), tolerance,
                   problems_a + problems_b, unreadable)


def _key(folder: str | os.PathLike, file: str) -> str:
    """The key :func:`read_sidecars` gives the sidecar ``file`` of ``folder``."""
    return str(Path(file).relative_to(check_folder(folder)).with_suffix(""))


def check_tolerance(tolerance: float) -> None:
    """LungappError unless the onset tolerance is a finite number of seconds >= 0 (with a
    negative one nothing matches, with NaN identical labels disagreed)."""
    if not (isinstance(tolerance, int | float) and math.isfinite(tolerance) and tolerance >= 0):
        raise LungappError(f"the onset tolerance must be a number of seconds, 0 or more (got {tolerance!r})")


def parse_names(text: str) -> tuple[str, str]:
    """``"alice,bob"`` as two different annotator names; LungappError otherwise."""
    names = tuple(n.strip() for n in text.split(","))
    if len(names) != 2 or not all(names) or names[0] == names[1]:
        raise LungappError(f"--annotators wants two different names separated by a comma, "
                           f"as alice,bob (got {text!r})")
    return names


def agreement_between(folder: str | os.PathLike, names: tuple[str, str],
                      tolerance: float = ONSET_TOLERANCE_S) -> dict:
    """Compare two named annotators' labels of the same recordings in one folder (see the
    module docstring). Raises LungappError (one line naming the folder) when a name has no
    labels there, when only one annotator has, or when the two share no recording."""
    check_tolerance(tolerance)
    root = check_folder(folder)
    by_rec, problems = read_sidecars(root, annotator_docs)
    present = sorted({n for docs in by_rec.values() for n in docs})
    if len(present) < 2:
        raise LungappError(f"agreement needs two annotators, and the labels here name "
                           f"{len(present)} ({', '.join(present) or 'none'})", root)
    for name in names:
        if name not in present:
            raise LungappError(f"no labels by {name!r} here (annotators: {', '.join(present)})", root)
    docs_a, docs_b = ({k: d[n] for k, d in by_rec.items() if n in d} for n in names)
    if not set(docs_a) & set(docs_b):
        raise LungappError(f"{names[0]} and {names[1]} labelled no recording in common here", root)
    return compare(docs_a, docs_b, (f"{names[0]} in {root}", f"{names[1]} in {root}"), tolerance,
                   problems)


def annotators_of(folder: str | os.PathLike) -> list[str]:
    """The names of the annotators with labels in the sidecars of ``folder``."""
    by_rec, _ = read_sidecars(folder, annotator_docs)
    return sorted({n for docs in by_rec.values() for n in docs})


def compare(docs_a: dict[str, Annotation], docs_b: dict[str, Annotation], names: tuple[str, str],
            tolerance: float = ONSET_TOLERANCE_S, problems: list[tuple[str, str]] = (),
            unreadable: set[str] = frozenset()) -> dict:
    """The agreement of two sets of documents keyed by recording (``names``: what A and B
    are, for the report): kappa, event F1 per type, disagreements, recordings in one only
    (but for the ``unreadable`` keys, whose sidecar one side could not read)."""
    common = sorted(set(docs_a) & set(docs_b))
    labelled = [k for k in common if docs_a[k].record_label and docs_b[k].record_label]
    kappa = cohen_kappa([docs_a[k].record_label for k in labelled],
                        [docs_b[k].record_label for k in labelled])
    counts: dict[str, Counter] = {}
    disagreements = []
    for key in common:
        reasons = _compare(docs_a[key], docs_b[key], tolerance, counts)
        if reasons:
            disagreements.append({"recording": key, "reasons": reasons})
    per_type = {t: {"tp": c["tp"], "fp": c["fp"], "fn": c["fn"], "f1": _f1(c["tp"], c["fp"], c["fn"])}
                for t, c in sorted(counts.items())}
    total = sum(counts.values(), Counter())
    return {"a": names[0], "b": names[1], "n_common": len(common),
            "n_labelled_by_both": len(labelled), "only_a": sorted(set(docs_a) - set(docs_b) - unreadable),
            "only_b": sorted(set(docs_b) - set(docs_a) - unreadable), "kappa": kappa,
            "record_agreement": (sum(docs_a[k].record_label == docs_b[k].record_label
                                     for k in labelled) / len(labelled)) if labelled else None,
            "onset_tolerance_s": tolerance, "event_f1": per_type,
            "event_f1_all": _f1(total["tp"], total["fp"], total["fn"]),
            "disagreements": disagreements,
            "problems": [{"file": f, "reason": r} for f, r in problems]}


def _compare(a: Annotation, b: Annotation, tolerance: float, counts: dict[str, Counter]) -> list[str]:
    """Count matched/unmatched events per type into ``counts``; return why they disagree."""
    reasons = []
    if a.record_label != b.record_label:
        reasons.append(f"record label {a.record_label or 'none'} vs {b.record_label or 'none'}")
    ea, eb = a.confirmed_regions(), b.confirmed_regions()
    for type_ in sorted({r.type for r in ea + eb}):
        tp, only_a, only_b = match_events([r for r in ea if r.type == type_],
                                          [r for r in eb if r.type == type_], tolerance)
        c = counts.setdefault(type_, Counter())
        c["tp"] += tp
        c["fn"] += len(only_a)
        c["fp"] += len(only_b)
        if only_a or only_b:
            reasons.append(f"{type_}: {len(only_a)} only in A, {len(only_b)} only in B")
    return reasons


def format_report(res: dict) -> str:
    """The agreement as text, one fact a line."""
    f = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    lines = [f"A: {res['a']}", f"B: {res['b']}",
             f"recordings in both: {res['n_common']}; labelled by both: {res['n_labelled_by_both']}",
             f"record label: Cohen's kappa {f(res['kappa'])}, agreement {f(res['record_agreement'])}",
             f"events (onset within {res['onset_tolerance_s']:g} s): F1 {f(res['event_f1_all'])}"]
    for type_, c in res["event_f1"].items():
        lines.append(f"  {type_:<15} F1 {f(c['f1'])}  (matched {c['tp']}, only A {c['fn']}, "
                     f"only B {c['fp']})")
    lines.append(f"disagreements: {len(res['disagreements'])}")
    lines += [f"  {d['recording']}: {'; '.join(d['reasons'])}" for d in res["disagreements"]]
    lines += [f"only in A: {k}" for k in res["only_a"]] + [f"only in B: {k}" for k in res["only_b"]]
    lines += [f"unreadable: {p['file']}: {p['reason']}" for p in res["problems"]]
    return "\n".join(lines)
