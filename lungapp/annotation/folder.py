"""The annotated recordings of a folder: every audio file with its sidecar (or ICBHI cycles)."""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from pathlib import Path

from lungapp.annotation.sidecar import Sidecar
from lungapp.errors import LungappError


@dataclass
class Item:
    """One recording of a folder: its path relative to the folder and its loaded sidecar."""

    rel: str
    sidecar: Sidecar


def audio_files(folder: Path) -> list[Path]:
    """Audio files under ``folder`` (recursively, hidden files and folders left out), sorted."""
    from lungapp.audio import AUDIO_EXTENSIONS

    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / n for n in filenames
                  if not n.startswith(".") and os.path.splitext(n)[1].lower() in AUDIO_EXTENSIONS]
    return sorted(found)


def check_folder(folder: str | os.PathLike) -> Path:
    path = Path(folder).resolve()
    if not path.is_dir():
        raise LungappError("no such folder" if not path.exists() else "not a folder", path)
    return path


def annotated(folder: str | os.PathLike) -> tuple[list[Item], list[tuple[str, str]]]:
    """``(items, problems)``: every recording of ``folder`` with a sidecar or ICBHI cycle
    file, loaded; recordings whose sidecar cannot be read are listed as ``(file, reason)``."""
    root = check_folder(folder)
    items, problems = [], []
    for audio in audio_files(root):
        sidecar = Sidecar(audio)
        try:
            sidecar.reload()
        except LungappError as err:
            problems.append((str(sidecar.path), err.problem))
            continue
        if sidecar.source != "new":
            items.append(Item(str(audio.relative_to(root)), sidecar))
        else:
            broken = _icbhi_problem(audio.with_suffix(".txt"))
            if broken:
                problems.append((str(audio.with_suffix(".txt")), broken))
    return items, problems


def _icbhi_problem(txt: Path) -> str | None:
    """Why ``txt``, beside a recording with no sidecar, is not usable as its ICBHI labels
    (None when there is no such file): the recording would otherwise vanish without a word."""
    from lungapp.data.readers import parse_icbhi_cycles

    if not txt.is_file():
        return None
    try:
        parse_icbhi_cycles(txt.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return f"not a usable ICBHI cycle file ({err}); its recording is left out"
    return None


LABEL_STATES = ("unlabelled", "labelled", "reviewed")


def label_state(audio: str | os.PathLike, annotator: str = "") -> tuple[str, str]:
    """``(state, who)`` of one recording's labels by ``annotator`` (their part of the sidecar,
    see :class:`~lungapp.annotation.sidecar.Sidecar`): state ``unlabelled``, ``labelled`` (a
    record label, suggestions still pending), ``reviewed`` or ``unreadable`` (who is then the
    reason); who = everyone with labels there (see :func:`describe`)."""
    sidecar = Sidecar(audio, annotator)
    try:
        sidecar.reload()
    except LungappError as err:
        return "unreadable", err.problem
    return describe(sidecar)


def describe(sidecar: Sidecar) -> tuple[str, str]:
    """``(state, who)`` of a loaded sidecar's document: who = its record label's author, else
    its regions' authors, then the other annotators with labels in the file."""
    doc = sidecar.doc
    who = doc.record_author or ", ".join(sorted({r.author for r in doc.regions if r.author}))
    more = [n for n in sidecar.others() if n not in who.split(", ")]
    return doc.state(), ", ".join(filter(None, [who, *more]))


def label_states(task, paths: list[str], annotator: str = "") -> list[tuple[str, tuple[str, str]]]:
    """:func:`label_state` of each path (a worker task: stops early when cancelled). A file
    that fails in a way :func:`label_state` does not foresee is ``unreadable`` (who = the
    error), not the end of the batch: the other recordings' states still come back."""
    out = []
    for p in paths:
        if getattr(task, "cancelled", False):
            break
        try:
            state = label_state(p, annotator)
        except Exception as err:  # noqa: BLE001 - one file must not blank the others' column
            traceback.print_exc()  # a bug, not a bad file: the traceback is for bug reports
            state = "unreadable", f"{type(err).__name__}: {err}"
        out.append((p, state))
    return out
