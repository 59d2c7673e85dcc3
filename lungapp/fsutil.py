"""Crash-safe file writes: temporary file in the same folder, fsync, rename.

Nothing the user recorded or labelled is overwritten silently: callers that must not
replace an existing file pass ``overwrite=False`` (the default for user data) or use
:func:`unique_path`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
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


def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine. In doubt, True (nothing is removed)."""
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        import ctypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        kernel32.OpenProcess.restype = ctypes.c_void_p
        kernel32.OpenProcess.argtypes = (ctypes.c_ulong, ctypes.c_int, ctypes.c_ulong)
        kernel32.GetExitCodeProcess.argtypes = (ctypes.c_void_p, ctypes.POINTER(ctypes.c_ulong))
        kernel32.CloseHandle.argtypes = (ctypes.c_void_p,)
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return ctypes.get_last_error() != 87  # ERROR_INVALID_PARAMETER: no such process
        try:
            code = ctypes.c_ulong()
            if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
                return True
            return code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, owned by someone else
        return True
    return True


def _staging_pattern(name: str) -> re.Pattern:
    return re.compile(rf"^\.{re.escape(name)}\.staging-(\d+)@([0-9a-f]{{8}})-")


def remove_stale_staging(target) -> list[Path]:
    """Delete the staging folders that :func:`make_staging` made for ``target`` in processes
    of this machine that have since died (killed, crashed, power cut) and so could not clean
    up after themselves; return them. Folders of live processes, of other machines (a shared
    drive) and of any other name are left alone."""
    target = Path(target)
    if not target.parent.is_dir():
        return []
    pat, host, removed = _staging_pattern(target.name), _host_tag(), []
    for p in target.parent.iterdir():
        m = pat.match(p.name)
        if m and m.group(2) == host and p.is_dir() and not _pid_alive(int(m.group(1))):
            shutil.rmtree(p, ignore_errors=True)
            if not p.exists():
                removed.append(p)
    return removed


def make_staging(target) -> Path:
    """Create and return a new, empty hidden folder next to ``target`` (same file system,
    so that :func:`publish_dir` can move it into place); the caller deletes it if it is
    not published. Its name records this process and machine, so a later call for the same
    ``target`` deletes what a killed process left (:func:`remove_stale_staging`)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(target)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-{os.getpid()}@{_host_tag()}-",
                                 dir=target.parent))


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
