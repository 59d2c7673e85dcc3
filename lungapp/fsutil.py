"""Crash-safe file writes: temporary file in the same folder, fsync, rename.

Nothing the user recorded or labelled is overwritten silently: callers that must not
replace an existing file pass ``overwrite=False`` (the default for user data) or use
:func:`unique_path`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path, data: bytes, *, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically. With ``overwrite=False`` an existing file
    raises FileExistsError and is left untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            # link() fails if the target exists: no window in which it could be clobbered.
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise FileExistsError(f"{path}: already exists; not overwritten") from None
            except OSError:  # file systems without hard links
                if path.exists():
                    raise FileExistsError(f"{path}: already exists; not overwritten") from None
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        _fsync_dir(path.parent)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path, text: str, *, overwrite: bool = True) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def atomic_write_json(path, obj, *, overwrite: bool = True) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n", overwrite=overwrite)


def unique_path(path) -> Path:
    """``path`` if free, else ``stem-2.ext``, ``stem-3.ext``... (never an existing file)."""
    path = Path(path)
    if not path.exists():
        return path
    i = 2
    while True:
        cand = path.with_name(f"{path.stem}-{i}{path.suffix}")
        if not cand.exists():
            return cand
        i += 1


def publish_dir(staging: Path, target: Path) -> Path:
    """Move a fully written ``staging`` folder to ``target`` (same file system) so that
    ``target`` either does not exist or is complete. An existing ``target`` is first moved
    aside and deleted only once the new one is in place."""
    staging, target = Path(staging), Path(target)
    backup = None
    if target.exists():
        backup = unique_path(target.with_name(target.name + ".old"))
        os.replace(target, backup)
    try:
        os.replace(staging, target)
    except BaseException:
        if backup is not None:
            os.replace(backup, target)
        raise
    _fsync_dir(target.parent)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
    return target
