"""The annotated recordings of a folder: every audio file with its sidecar (or ICBHI cycles)."""

from __future__ import annotations

import os
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
    return items, problems
