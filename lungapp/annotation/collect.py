"""Add confirmed recordings to a training folder.

A recording is confirmed when it has a record label and no pending suggestion (state
``reviewed``). Its audio is copied (or symbolically linked) into the training folder and its
sidecar written there with the confirmed labels only, in the SPRSound layout the Train tab
and ``lungapp train`` read. A different recording of the same name already in the training
folder is never overwritten (it is skipped with the reason); the same recording gets its
labels updated.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from lungapp.annotation.folder import Item, annotated, check_folder
from lungapp.annotation.model import Annotation
from lungapp.annotation.sidecar import annotation_to_json
from lungapp.errors import LungappError
from lungapp.fsutil import atomic_write_json


def _digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _confirmed_copy(doc: Annotation) -> Annotation:
    return Annotation(doc.record_label, doc.record_author, doc.record_time,
                      doc.confirmed_regions(), dict(doc.extra))


def _items(sources: list[str | os.PathLike], target: Path) -> tuple[list[Item], list[tuple[str, str]]]:
    """The sources' annotated recordings and problems, leaving out the training folder
    ``target`` where it lies inside a source: else each run would add last run's copies
    again (``training/training/...``). Paths are compared as found under the resolved
    folders, not resolved themselves: a linked copy resolves to its source."""
    items, problems = [], []
    for source in sources:
        found, bad = annotated(source)
        if target.is_relative_to(check_folder(source)):
            found = [i for i in found if not i.sidecar.audio.is_relative_to(target)]
            bad = [(f, r) for f, r in bad if not Path(f).is_relative_to(target)]
        items += found
        problems += bad
    return items, problems


def collect(sources: list[str | os.PathLike], out: str | os.PathLike,
            link: bool = False) -> dict:
    """Copy (``link``: symlink) every confirmed recording of the ``sources`` folders, with its
    sidecar, into ``out``. Returns ``{"added": [...], "skipped": [{"file", "reason"}]}``."""
    target = Path(out).resolve()
    for source in sources:
        if check_folder(source) == target:
            raise LungappError("the training folder is one of the source folders", target)
    target.mkdir(parents=True, exist_ok=True)
    items, problems = _items(sources, target)
    added, skipped = [], [{"file": f, "reason": r} for f, r in problems]
    for item in items:
        reason = _add(item, target, link)
        if reason:
            skipped.append({"file": str(item.sidecar.audio), "reason": reason})
        else:
            added.append(str(target / item.rel))
    return {"folder": str(target), "added": added, "skipped": skipped}


def _add(item: Item, target: Path, link: bool) -> str | None:
    """Add one recording; returns why it was skipped, or None."""
    doc = item.sidecar.doc
    if not doc.record_label:
        return "not labelled"
    if doc.state() != "reviewed":
        return "has suggestions not yet accepted or rejected"
    audio = item.sidecar.audio
    dest = target / item.rel
    sidecar = dest.with_suffix(".json")
    if dest.exists() or dest.is_symlink():
        if not dest.exists() or _digest(dest) != _digest(audio):
            return f"a different {dest.name} is already in the training folder"
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if link:
            os.symlink(audio.resolve(), dest)
        else:
            shutil.copy2(audio, dest)
    atomic_write_json(sidecar, annotation_to_json(_confirmed_copy(doc)))
    return None
