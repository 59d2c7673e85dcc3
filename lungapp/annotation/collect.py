"""Add confirmed recordings to a training folder.

A recording is confirmed when it has a record label and no pending suggestion (state
``reviewed``). Its audio is copied (or symbolically linked) into the training folder and its
sidecar written there with the confirmed labels only, in the SPRSound layout the Train tab
and ``lungapp train`` read. A different recording of the same name already in the training
folder is never overwritten (it is skipped with the reason), nor is another recording's
sidecar (``NAME.flac`` there, ``NAME.wav`` collected); the same recording gets its labels
updated. A recording is copied whole or not at all.
"""

from __future__ import annotations

import errno
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
    sidecar, into ``out``. Returns ``{"added": [...], "skipped": [{"file", "reason"}]}``.
    A recording whose copy cannot be written (a full disk) raises LungappError naming the
    training folder's file; what was added before it stays, whole."""
    target = Path(out).resolve()
    for source in sources:
        if check_folder(source) == target:
            raise LungappError("the training folder is one of the source folders", target)
    if target.exists() and not target.is_dir():
        raise LungappError("is a file, not a folder: choose a training folder with --out", target)
    target.mkdir(parents=True, exist_ok=True)
    items, problems = _items(sources, target)
    added, skipped = [], [{"file": f, "reason": r} for f, r in problems]
    taken: dict[Path, Path] = {}  # training folder file -> the source recording it came from, this run
    for item in items:
        dest = target / item.rel
        first = taken.get(dest)
        if first is not None:
            reason = (f"a recording of the same name ({first}) was collected from another "
                      "source in this run; it is kept, this one left out")
        else:
            try:
                reason = _add(item, dest, link)
            except OSError as err:
                done = f"; the {len(added)} added before it are complete" if added else ""
                raise LungappError(f"cannot add {item.sidecar.audio} there ({err.strerror or err}); "
                                   f"nothing of it was left{done}", dest) from None
        if reason:
            skipped.append({"file": str(item.sidecar.audio), "reason": reason})
        else:
            taken[dest] = item.sidecar.audio
            added.append(str(dest))
    return {"folder": str(target), "added": added, "skipped": skipped}


def _namesakes(dest: Path) -> list[Path]:
    """Other audio files beside ``dest`` with its name and another extension: they would
    share its sidecar."""
    from lungapp.audio import AUDIO_EXTENSIONS

    return [p for ext in AUDIO_EXTENSIONS if ext != dest.suffix.lower()
            for p in [dest.with_suffix(ext)] if os.path.lexists(p)]


def _add(item: Item, dest: Path, link: bool) -> str | None:
    """Add one recording as ``dest``; returns why it was skipped, or None. Raises OSError
    when it cannot be written, with nothing of it left in the training folder."""
    doc = item.sidecar.doc
    if not doc.record_label:
        return "not labelled"
    if doc.state() != "reviewed":
        return "has suggestions not yet accepted or rejected"
    audio = item.sidecar.audio
    sidecar = dest.with_suffix(".json")
    other = _namesakes(dest)
    if other:
        return (f"{other[0].name} is already in the training folder, and {sidecar.name} "
                "would hold the labels of both")
    new = not (dest.exists() or dest.is_symlink())
    if not new:
        if not dest.exists() or _digest(dest) != _digest(audio):
            return f"a different {dest.name} is already in the training folder"
    elif os.path.lexists(sidecar):
        return f"{sidecar.name} is already in the training folder without its recording"
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        _place(audio, dest, link)
    try:
        atomic_write_json(sidecar, annotation_to_json(_confirmed_copy(doc)))
    except BaseException:
        if new:  # no recording without its labels in the training folder
            dest.unlink(missing_ok=True)
        raise
    return None


def _place(audio: Path, dest: Path, link: bool) -> None:
    """The recording as ``dest``, whole or not at all: copied (or linked) under a hidden
    temporary name, then given its name, never over a file that appeared meanwhile."""
    tmp = dest.with_name(f".{dest.name[:100]}.{os.getpid()}.part")
    try:
        if link:
            os.symlink(audio.resolve(), tmp)
        else:
            shutil.copy2(audio, tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.link(tmp, dest, follow_symlinks=False)
    except FileExistsError:
        raise OSError(errno.EEXIST, "another program put a file of that name there meanwhile") from None
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
