"""Crash-safe file writes: temporary file in the same folder, fsync, rename.

Nothing the user recorded or labelled is overwritten silently: callers that must not
replace an existing file pass ``overwrite=False`` (the default for user data) or use
:func:`unique_path`. Folders are written into a staging folder and published whole
(:func:`publish_dir`, which keeps what it replaces as a dated backup and journals its swap);
:func:`check_output_dir` refuses, before any work, an output folder that would destroy data.
"""

from __future__ import annotations

import datetime as _dt
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    """The process's umask (read without changing it where /proc tells it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temp_prefix(name: str) -> str:
    """The hidden temporary file's prefix for ``name``: ``.NAME.``, the name cut so that
    the temporary name stays within the 255 bytes a file name may have (a legal 250-byte
    name must not fail for its temporary file's sake)."""
    cut = name.encode("utf-8", "surrogateescape")[:120].decode("utf-8", "ignore")
    return f".{cut}."


def atomic_write_bytes(path, data: bytes, *, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically. With ``overwrite=False`` an existing file
    raises FileExistsError and is left untouched.

    A ``path`` that is a symbolic link is written through: the file it points to is
    replaced and the link kept. A replaced file keeps its permissions; a new one gets the
    usual ones (0666 less the umask), not the temporary file's 0600. An OSError names
    ``path``, not the hidden temporary file."""
    link = Path(path)
    path = Path(os.path.realpath(link)) if link.is_symlink() else link
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    except OSError as exc:  # named by the file the user knows, not the hidden temporary one
        raise OSError(exc.errno, exc.strerror, str(link)) from None
    try:
        try:
            mode = os.stat(path).st_mode & 0o7777 if overwrite else None
        except OSError:
            mode = None
        try:
            os.fchmod(fd, mode if mode is not None else 0o666 & ~_umask())
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:  # a full disk: named by the file the user knows
            raise OSError(exc.errno, exc.strerror, str(link)) from None
        if overwrite:
            os.replace(tmp, path)
        else:
            # link() fails if the target exists: no window in which it could be clobbered.
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise FileExistsError(f"{link}: already exists; not overwritten") from None
            except OSError:  # file systems without hard links
                if path.exists():
                    raise FileExistsError(f"{link}: already exists; not overwritten") from None
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        _fsync_dir(path.parent)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return link


def atomic_write_text(path, text: str, *, overwrite: bool = True) -> Path:
    """UTF-8; a file name that is not valid UTF-8 in the text keeps its own bytes."""
    return atomic_write_bytes(path, text.encode("utf-8", "surrogateescape"), overwrite=overwrite)


def atomic_write_json(path, obj, *, overwrite: bool = True) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n", overwrite=overwrite)


def open_regular(path, mode: str = "rb", **kwargs):
    """``open`` for a file read whole (a label file, a manifest), refusing what is not a regular file (a FIFO
    would block for ever, a device never end) with an OSError saying so. Opened without
    blocking first, so that a FIFO with no writer is refused rather than waited on."""
    nonblock = getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, os.O_RDONLY | nonblock)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        if nonblock:
            os.set_blocking(fd, True)
        return open(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise


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
    recover_swap(target)  # a half-done swap's new folder is a staging folder: keep it
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
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-{os.getpid()}@{_host_tag()}-",
                                    dir=target.parent))
    # mkdtemp makes it 0700: published, the folder would be unreadable to anyone else (a
    # model folder shared on a clinic's machine); a folder as mkdir makes it instead.
    os.chmod(staging, 0o777 & ~_umask())
    return staging


#: Environment hook for tests only: seconds to sleep between the two renames of a
#: replacing :func:`publish_dir`, so a test can kill the process inside the swap.
SWAP_PAUSE_ENV = "LUNGAPP_TEST_SWAP_PAUSE_S"


def _swap_marker(target: Path) -> Path:
    """The journal of a replacement of ``target`` (absolute: "." and "x/.." have a name)."""
    return target.with_name(f".{target.name}.swap.json")


def _backup_name(target: Path) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return unique_path(target.with_name(f"{target.name}.replaced-{stamp}"))


def publish_dir(staging: Path, target: Path) -> Path | None:
    """Move a fully written ``staging`` folder to ``target`` (same file system) so that
    ``target`` either does not exist or is complete. An existing ``target`` is moved to a
    dated backup beside it (``NAME.replaced-YYYYmmdd-HHMMSS``), never deleted; returns that
    backup (None when nothing was replaced). The two renames of a replacement are journalled
    in a hidden marker file, so a process killed between them is repaired by the next
    :func:`recover_swap` of ``target``."""
    staging, target = Path(staging), Path(os.path.abspath(target))
    if not target.exists():
        os.replace(staging, target)
        _fsync_dir(target.parent)
        return None
    backup, marker = _backup_name(target), _swap_marker(target)
    atomic_write_json(marker, {"staging": staging.name, "backup": backup.name,
                               "pid": os.getpid(), "host": _host_tag()})
    os.replace(target, backup)
    try:
        if os.environ.get(SWAP_PAUSE_ENV):
            time.sleep(float(os.environ[SWAP_PAUSE_ENV]))
        os.replace(staging, target)
    except BaseException:
        os.replace(backup, target)
        marker.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    marker.unlink(missing_ok=True)
    return backup


def recover_swap(target) -> str | None:
    """Finish or undo a replacement of ``target`` that a killed process left half done
    (see :func:`publish_dir`): the new folder is moved into place when it is there, else the
    previous one is restored. Returns one line saying what was done (None: nothing to do;
    a swap of a live process is left alone)."""
    target = Path(os.path.abspath(target))
    if not target.name:  # the root: nothing is ever published in its place
        return None
    marker = _swap_marker(target)
    try:
        info = json.loads(marker.read_text("utf-8"))
        staging, backup = target.parent / info["staging"], target.parent / info["backup"]
        pid, host = int(info["pid"]), str(info["host"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"{marker}: unreadable record of an interrupted replacement ({exc}); left alone"
    if host != _host_tag() or _pid_alive(pid):
        return None
    note = None
    if not target.exists() and staging.is_dir():
        os.replace(staging, target)
        note = (f"{target}: completed a replacement that a killed process left half done "
                f"(the previous version is kept in {backup})")
    elif not target.exists() and backup.is_dir():
        os.replace(backup, target)
        note = f"{target}: restored the previous version from {backup} after an interrupted replacement"
    marker.unlink(missing_ok=True)
    _fsync_dir(target.parent)
    return note


# --------------------------------------------------------------- output folder checks

#: Files a lungapp model folder may hold (card, Keras and ONNX models, curves, reports,
#: out-of-fold predictions of kept runs). Anything else means the folder is not a model.
MODEL_FILE_SUFFIXES = frozenset({".json", ".keras", ".h5", ".onnx", ".csv", ".md", ".png",
                                 ".txt", ".npz", ".pdf"})
#: Virtual file systems: writing a model there cannot work and must fail before any work.
_VIRTUAL_ROOTS = (Path("/proc"), Path("/sys"), Path("/dev"))


def is_model_folder(folder) -> bool:
    """Whether ``folder`` holds a lungapp model and nothing else: a ``card.json`` and only
    model files, or sub-folders that are model folders themselves (kept runs)."""
    folder = Path(folder)
    entries = list(folder.iterdir())
    has_card = (folder / "card.json").is_file()
    for p in entries:
        if p.is_symlink():
            return False
        if p.is_dir():
            if not is_model_folder(p):
                return False
        elif p.suffix.lower() not in MODEL_FILE_SUFFIXES:
            return False
    return has_card or any(p.is_dir() for p in entries)


def _refuse_overlap(out: Path, data_dirs) -> None:
    from lungapp.errors import LungappError

    for d in data_dirs:
        if d is None:
            continue
        data = Path(d).expanduser().resolve()
        if out == data:
            raise LungappError("is the data folder: choose another output folder", out)
        if data.is_relative_to(out):
            raise LungappError(f"contains the data folder {data}: choose another output folder", out)
        if out.is_relative_to(data):
            raise LungappError(f"lies inside the data folder {data}: choose an output folder "
                               "outside it", out)


def _probe_writable(out: Path, what: str = "the output folder") -> None:
    """Create and delete a temporary file where ``out`` will be written (its nearest
    existing parent), so an unwritable place fails now, naming the path."""
    from lungapp.errors import LungappError

    where = out.parent
    while not os.path.lexists(where) and where != where.parent:
        where = where.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=".lungapp-probe-", dir=where)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise LungappError(f"cannot write {what} here ({where}: "
                           f"{exc.strerror or exc})", out) from None


def check_output_dir(out, *, data_dirs=(), overwrite: bool = False, model: bool = True,
                     report: Callable[[str], None] | None = None) -> None:
    """Check an output folder before any work, so that nothing the user has is destroyed
    and an impossible place fails at once. Refuses (LungappError naming ``out``) a folder
    that is, contains or lies inside one of ``data_dirs`` (symlinks resolved), a place on a
    virtual file system or where no file can be created, an existing non-empty folder
    without ``overwrite``, and (``model``) one holding anything but a lungapp model.
    First repairs a replacement of ``out`` a killed process left half done, and passes the
    line saying so to ``report`` (at once: it is news even when ``out`` is then refused)."""
    from lungapp.errors import LungappError

    out = Path(out).expanduser()
    note = recover_swap(out)
    if note and report is not None:
        report(note)
    real = out.resolve()
    if any(real.is_relative_to(v) for v in _VIRTUAL_ROOTS):
        raise LungappError("is on a virtual file system: choose a folder on a disk", out)
    _refuse_overlap(real, data_dirs)
    try:
        here = Path.cwd().resolve()
    except OSError:  # the current folder was deleted: it cannot be the output
        here = None
    if here is not None and here.is_relative_to(real):
        raise LungappError("is (or holds) the current folder, which the finished model would be moved "
                           "into place of: give the name of a new folder", out)
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise LungappError("exists and is not a folder", out)
        if any(out.iterdir()):
            if not overwrite:
                raise LungappError("output folder already exists and is not empty (use "
                                   "--overwrite to replace it once the new model is complete)", out)
            if model and not is_model_folder(out):
                raise LungappError("holds files that are not a lungapp model: not replaced; "
                                   "choose another output folder", out)
    _probe_writable(out)


# ----------------------------------------------------------------- output file checks

#: Arrays every out-of-fold file of ``lungapp train --oof`` holds
#: (:func:`lungapp.training.oof.save_oof`).
OOF_ARRAYS = frozenset({"path.npy", "label.npy", "fold.npy", "probs.npy", "window_out.npy",
                        "offsets.npy"})


def is_oof_file(path) -> bool:
    """Whether ``path`` is an out-of-fold file that ``lungapp train --oof`` wrote (a NumPy
    ``.npz`` archive holding :data:`OOF_ARRAYS`): the only file ``--oof --overwrite`` replaces."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return set(z.namelist()) >= OOF_ARRAYS
    except (OSError, zipfile.BadZipFile):
        return False


def check_output_file(path, *, data_dirs=(), overwrite: bool = False,
                      replaceable: Callable[[Path], bool] | None = None, kind: str = "",
                      hint: str = "use --overwrite to replace it", probe: bool = False) -> Path:
    """Check an output file before any work (the file counterpart of
    :func:`check_output_dir`), so that nothing the user has is replaced. Refuses
    (LungappError naming ``path``) a folder, a place on a virtual file system, a path inside
    one of ``data_dirs`` (symlinks resolved; even with ``overwrite``), an existing file
    without ``overwrite`` (``hint`` says what to do), and, with ``overwrite``, an existing
    file that ``replaceable`` rejects (``kind`` names what it would have to be), and, with
    ``probe``, a place where no file can be created. Returns ``path`` (``~`` expanded)."""
    from lungapp.errors import LungappError

    path = Path(path).expanduser()
    if path.is_dir():
        raise LungappError("is a folder: give a file name", path)
    real = path.resolve()
    if any(real.is_relative_to(v) for v in _VIRTUAL_ROOTS):
        raise LungappError("is on a virtual file system: choose a file on a disk", path)
    for d in data_dirs:
        if d is None:
            continue
        data = Path(d).expanduser().resolve()
        if real.is_relative_to(data):
            raise LungappError(f"lies inside the data folder {data}: choose a file outside it", path)
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise LungappError(f"already exists; not overwritten ({hint})", path)
        if replaceable is not None and not replaceable(path):
            raise LungappError(f"is not {kind or 'a file this command writes'}: not replaced; "
                               "choose another file", path)
    if probe:  # a read-only place fails now, not after the work
        _probe_writable(path, "the file")
    return path


def check_oof_file(path, *, out, data_dirs=(), overwrite: bool = False) -> Path:
    """Check ``lungapp train``'s out-of-fold file (``--oof``) before any work: refuses a
    folder or a path inside the model folder ``out``, a path inside one of ``data_dirs``
    (always), an existing file without ``overwrite``, and, with it, any existing file but
    an earlier out-of-fold file (:func:`is_oof_file`). Returns ``path`` as a Path."""
    from lungapp.errors import LungappError

    path = Path(path).expanduser()
    if path.is_dir() or path.resolve().is_relative_to(Path(out).expanduser().resolve()):
        raise LungappError("the out-of-fold file must be a file outside the model folder", path)
    return check_output_file(path, data_dirs=data_dirs, overwrite=overwrite, replaceable=is_oof_file,
                             kind="an out-of-fold file of lungapp train (.npz)", probe=True)
