"""Crash-safe recording: a writer thread streams the ring buffer to a WAV file.

Life of a recording ``<name>.wav``:

1. Its name is reserved (never an existing recording) and the audio is written to
   ``<name>.wav.partial`` (created exclusively and, on POSIX, ``flock``-ed while open),
   next to its JSON sidecar ``<name>.json`` (SPRSound-compatible keys plus device,
   rate, site, patient id, start time and app version), written atomically at start.
2. A writer thread drains the ring buffer into the file and, at least once a second,
   flushes Python's and libsndfile's buffers and ``os.fsync``-s the file: a SIGKILL or
   power cut loses at most the last flush interval.
3. On stop (user, duration reached, device failure, disk error) the file is closed
   (libsndfile writes the final header), fsync-ed and published as ``<name>.wav``
   with a hard link, which fails rather than replace an existing file. After a write
   error (a full disk) nothing more reaches the file: its header is rewritten from its
   size, as a recovery would, and what was written is published all the same; only when
   even that fails does it stay ``.partial`` (the result says so and names it).
4. A ``.partial`` left behind by a killed process is found by :func:`find_interrupted`
   and turned back into ``<name>.wav`` by :func:`recover`, which rewrites the WAV
   header sizes from the file size (a killed libsndfile WAV says "0 bytes of data").

Why WAV and not FLAC: a FLAC killed mid-write loses the encoder's buffered block and
carries "unknown length" in STREAMINFO, which libsndfile 1.2 refuses to read with its
public API (seek error), while a killed WAV holds every flushed sample and needs only
two header fields fixed. WAV PCM 24-bit is lossless for any stethoscope ADC.

No Qt here: the GUI polls :class:`Recording` from a timer.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import re
import secrets
import stat
import struct
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from lungapp import __version__, paths
from lungapp.errors import AudioError
from lungapp.fsutil import _fsync_dir, atomic_write_json

PARTIAL_SUFFIX = ".partial"
SUBTYPE = "PCM_24"
FLUSH_INTERVAL_S = 0.5
# How often the writer wakes up to drain the ring (the ring holds 30 s, so this only
# trades wake-ups for block size; stopping does not wait for it).
POLL_S = 0.1
SITES = ("Trachea",
         "Anterior left", "Anterior right",
         "Lateral left", "Lateral right",
         "Posterior left", "Posterior right")
# Short codes used in file names (ICBHI-style chest location abbreviations).
SITE_CODES = {"Trachea": "Tc", "Anterior left": "Al", "Anterior right": "Ar",
              "Lateral left": "Ll", "Lateral right": "Lr",
              "Posterior left": "Pl", "Posterior right": "Pr"}

_active_lock = threading.Lock()
_active: set[str] = set()  # partial files this process is writing right now


class RecorderError(AudioError):
    """The recording could not be started, written or recovered."""


# A write error in the user's words, by errno (else the system's own words).
_IO_WORDS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
             errno.EROFS: "the disk became read-only",
             errno.EIO: "input/output error (was the disk removed?)"}


def io_error_text(exc: BaseException) -> str:
    """One line for an error writing a recording: "the disk is full" for ENOSPC and the
    like, else the system's words for the first OSError in ``exc``'s chain, else its own
    text or type (libsndfile's errors can have an empty text)."""
    seen: set[int] = set()
    err: BaseException | None = exc
    while err is not None and id(err) not in seen:
        if isinstance(err, OSError) and err.errno:
            return _IO_WORDS.get(err.errno) or err.strerror or str(err)
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return str(exc) or type(exc).__name__


class _GuardedFile:
    """The open partial WAV as libsndfile writes it (through soundfile's virtual I/O).

    The first OSError (a full disk, a removed drive) is kept in :attr:`error` and from
    then on nothing more reaches the file: libsndfile's I/O callbacks cannot raise
    (soundfile would print the error and go on), so a failed seek would otherwise let it
    write its header over the audio at the wrong place. Writes then report 0 bytes and
    seeks -1, which libsndfile treats as errors."""

    def __init__(self, raw):
        self._raw = raw
        self.error: OSError | None = None

    def _failed(self, exc: OSError):
        if self.error is None:
            self.error = exc

    def write(self, data) -> int:
        if self.error is not None:
            return 0
        try:
            return self._raw.write(data)
        except OSError as exc:
            self._failed(exc)
            return 0

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if self.error is not None:
            return -1
        try:
            return self._raw.seek(offset, whence)
        except OSError as exc:
            self._failed(exc)
            return -1

    def tell(self) -> int:
        return -1 if self.error is not None else self._raw.tell()

    def flush(self) -> None:
        """Flush Python's buffer; raises the kept error, or the new one."""
        if self.error is not None:
            raise self.error
        try:
            self._raw.flush()
        except OSError as exc:
            self._failed(exc)
            raise

    def fileno(self) -> int:
        return self._raw.fileno()

    def close(self) -> None:
        self._raw.close()


# --- names, sidecars -------------------------------------------------------------------

def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text.strip()).strip("-")[:40]


def partial_path(final: Path) -> Path:
    return final.with_name(final.name + PARTIAL_SUFFIX)


def sidecar_path(audio: Path) -> Path:
    """``x.wav`` or ``x.wav.partial`` -> ``x.json``."""
    audio = Path(audio)
    if audio.name.endswith(PARTIAL_SUFFIX):
        audio = audio.with_name(audio.name[: -len(PARTIAL_SUFFIX)])
    return audio.with_suffix(".json")


def new_recording_id() -> str:
    """A random recording id (12 hex digits). File names carry it, never the patient
    identifier: a folder listing, a backup log or a shared file reveals no one."""
    return secrets.token_hex(6)


def make_sidecar(*, device: str, sample_rate: int, site: str = "", patient_id: str = "",
                 start_time: _dt.datetime | None = None, channel: int = 0,
                 recording_id: str = "") -> dict:
    """The sidecar of a new recording: SPRSound-compatible annotation keys (empty until
    someone labels it) plus where and how it was recorded (the patient is named here,
    inside the file, not in its name).

    ``channel`` is the 0-based index the capture uses; the sidecar stores it as
    ``input_channel``, 1-based, as the Record view and ``lungapp record --channel`` name it.
    (Sidecars written before 2026-12-07 hold a 0-based ``channel`` instead.)"""
    start = start_time or _dt.datetime.now(_dt.UTC)
    return {
        "record_annotation": "",
        "event_annotation": [],
        "device": device,
        "sample_rate": int(sample_rate),
        "input_channel": int(channel) + 1,
        "site": site,
        "patient_id": patient_id,
        "recording_id": recording_id,
        "start_time": start.astimezone(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "app_version": __version__,
        "status": "recording",
    }


def _reserve(out: Path | None, recording_id: str, site: str) -> tuple[Path, Path]:
    """(final path, partial path) with the partial created exclusively; the final name,
    its partial and its sidecar are all free."""
    if out is not None:
        final = Path(out)
        if final.suffix.lower() != ".wav":
            raise RecorderError("recordings are written as WAV; use a .wav name", final)
        for p in (final, partial_path(final), sidecar_path(final)):
            if p.exists():
                raise RecorderError("already exists; not overwritten", p)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a read-only disk, a USB stick that is gone
            raise RecorderError(f"cannot create the folder: {exc.strerror}", final.parent) from None
        try:
            os.close(os.open(partial_path(final), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            raise RecorderError("already exists; not overwritten", partial_path(final)) from None
        except OSError as exc:
            raise RecorderError(f"cannot create: {exc.strerror}", partial_path(final)) from None
        return final, partial_path(final)
    try:
        folder = paths.ensure(paths.recordings_dir())
    except OSError as exc:  # a read-only disk, a recordings folder on a USB stick that is gone
        raise RecorderError(f"cannot create the recordings folder: {exc.strerror}",
                            paths.recordings_dir()) from None
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    parts = [stamp] + [p for p in (recording_id, SITE_CODES.get(site, _safe(site))) if p]
    stem = "_".join(parts)
    for i in range(1, 10_000):
        final = folder / (f"{stem}.wav" if i == 1 else f"{stem}-{i}.wav")
        if final.exists() or sidecar_path(final).exists():
            continue
        try:
            os.close(os.open(partial_path(final), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            continue
        except OSError as exc:
            raise RecorderError(f"cannot create a recording: {exc.strerror}", folder) from None
        return final, partial_path(final)
    raise RecorderError("no free recording name", folder)


def _lock(fobj) -> None:
    """Mark an open partial file as being written (POSIX advisory lock)."""
    if os.name == "posix":
        import fcntl
        fcntl.flock(fobj.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def _in_use(path: Path) -> bool:
    with _active_lock:
        if str(path) in _active:
            return True
    if os.name != "posix":
        return False
    import fcntl
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def _publish(partial: Path, final: Path) -> Path:
    """Give ``partial`` its final name without ever replacing an existing file."""
    target = final
    i = 2
    while True:
        try:
            os.link(partial, target)
            break
        except FileExistsError:
            target = final.with_name(f"{final.stem}-{i}{final.suffix}")
            i += 1
        except OSError:  # no hard links on this file system
            if target.exists():
                target = final.with_name(f"{final.stem}-{i}{final.suffix}")
                i += 1
                continue
            os.replace(partial, target)
            _fsync_dir(target.parent)
            return target
    os.unlink(partial)
    _fsync_dir(target.parent)
    return target


def _same_mode(sidecar: Path, audio: Path) -> None:
    """Give ``sidecar`` the permissions of ``audio``: an atomic write's temporary file is
    private (0600), which left the JSON unreadable where the WAV beside it is shared."""
    try:
        os.chmod(sidecar, stat.S_IMODE(os.stat(audio).st_mode))
    except OSError:
        pass  # best effort: the sidecar is written either way


def _update_sidecar(audio: Path, sidecar: Path, **changes) -> None:
    try:
        with open(sidecar, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict):
            raise ValueError("not an object")
    except (OSError, ValueError):
        data = {"record_annotation": "", "event_annotation": [], "app_version": __version__}
    data.update(changes)
    target = sidecar_path(audio)
    atomic_write_json(target, data)
    _same_mode(target, audio)
    if target != sidecar and sidecar.exists():
        os.unlink(sidecar)


# --- the writer -------------------------------------------------------------------------

@dataclass
class RecordingResult:
    path: Path                 # the published WAV (the .partial when not published)
    sidecar: Path
    frames: int
    rate: int
    overflows: int
    lost_frames: int           # frames the writer could not keep up with (goal: 0)
    reason: str                # "stopped", "duration", "device failed", "disk error"
    error: str | None          # one line when reason is a failure
    # False when the audio could not be published: ``path`` is then the ``.partial``
    # holding it, which find_interrupted offers for recovery.
    published: bool = True

    @property
    def duration_s(self) -> float:
        return self.frames / self.rate


@dataclass(frozen=True)
class RecordingSettings:
    """What the user chose for one recording (no device handle, no Qt).

    ``rate``: the capture rate to ask the device for, in Hz (None: the device's own,
    see :func:`~lungapp.audio.devices.choose_rate`). ``channel``: the 0-based input
    channel of a multi-channel device. ``seconds``: stop after exactly that long (None:
    until stopped). ``out``: the WAV to create (None: a new name in the recordings
    folder). ``site``, ``patient_id``: for the file name and the sidecar.
    ``device_name``: the device the sidecar names (:func:`start_recording` fills it in
    from the device it opened). ``flush_interval``: seconds between two flushes + fsyncs.
    """

    rate: int | None = None
    channel: int = 0
    seconds: float | None = None
    out: Path | None = None
    site: str = ""
    patient_id: str = ""
    device_name: str = ""
    flush_interval: float = FLUSH_INTERVAL_S

    def max_frames(self, rate: int) -> int | None:
        """Frames to record at ``rate`` Hz: ``seconds`` worth, rounded (None: until stopped)."""
        return None if self.seconds is None else int(round(self.seconds * rate))


class Recording:
    """Writes what arrives in ``ring`` (a RingBuffer, mono, ``rate`` Hz) to a new WAV,
    as ``settings`` (a :class:`RecordingSettings`; default: all defaults) say.

    ``source``: the capture feeding the ring (anything with ``failure() -> str|None``,
    ``stop()``, ``overflows``), or None when the caller feeds the ring itself.
    With ``settings.seconds`` it stops after exactly that many seconds of frames (a
    15/30/60 s recording). ``progress(recording)`` is called from the writer thread after
    each flush, ``on_finished(result)`` once the file is published.
    """

    def __init__(self, ring, rate: int, settings: RecordingSettings | None = None, *,
                 source=None, progress=None, on_finished=None):
        self.settings = settings = settings or RecordingSettings()
        self.rate = int(rate)
        self.source = source
        self.max_frames = settings.max_frames(self.rate)
        self.flush_interval = float(settings.flush_interval)
        self._progress = progress
        self._on_finished = on_finished
        self.recording_id = new_recording_id()
        self.final_path, self.partial_path = _reserve(
            Path(settings.out) if settings.out else None, self.recording_id, settings.site)
        self.sidecar_path = sidecar_path(self.final_path)
        self.frames_written = 0
        self.frames_flushed = 0
        self.flushes = 0
        self.started_monotonic = time.monotonic()
        self.result: RecordingResult | None = None
        self.error: str | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._own_sidecar = False
        self._open_files()
        with _active_lock:
            _active.add(str(self.partial_path))
        # From the oldest frame kept: the capture was started just before us.
        self._reader = ring.reader(from_now=False)
        self._thread = threading.Thread(target=self._run, name="lungapp-recorder", daemon=True)
        self._thread.start()

    def _open_files(self) -> None:
        """Write the sidecar (never over an existing one), open and lock the partial WAV
        and put its header on disk; on failure remove what this created and raise
        RecorderError."""
        import soundfile as sf

        st = self.settings
        try:
            self.meta = make_sidecar(device=st.device_name, sample_rate=self.rate, site=st.site,
                                     patient_id=st.patient_id, channel=st.channel,
                                     recording_id=self.recording_id)
            atomic_write_json(self.sidecar_path, self.meta, overwrite=False)
            self._own_sidecar = True
            _same_mode(self.sidecar_path, self.partial_path)
            self._file = _GuardedFile(open(self.partial_path, "r+b"))  # noqa: SIM115 - held for the recording
            _lock(self._file)
            self._snd = sf.SoundFile(self._file, mode="w", samplerate=self.rate, channels=1,
                                     format="WAV", subtype=SUBTYPE)
            self._sync()  # the header is on disk before the first sample
        except Exception as exc:
            self._abandon()
            if isinstance(exc, RecorderError):
                raise
            if isinstance(exc, FileExistsError):
                raise RecorderError("already exists; not overwritten", self.sidecar_path) from None
            why = io_error_text(getattr(getattr(self, "_file", None), "error", None) or exc)
            raise RecorderError(f"cannot start recording: {why}", self.partial_path) from None

    def _abandon(self):
        for closer in (getattr(self, "_snd", None), getattr(self, "_file", None)):
            try:
                if closer is not None:
                    closer.close()
            except Exception:
                pass
        for p in (self.partial_path, self.sidecar_path if self._own_sidecar else None):
            try:
                if p is not None and p.exists():
                    os.unlink(p)
            except OSError:
                pass

    # --- state the GUI polls ----------------------------------------------------------
    @property
    def elapsed_s(self) -> float:
        return self.frames_written / self.rate

    @property
    def lost_frames(self) -> int:
        return self._reader.lost_frames

    @property
    def overflows(self) -> int:
        return int(getattr(self.source, "overflows", 0))

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    # --- control ------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Ask the writer to stop and publish, without waiting (GUI thread); poll
        :attr:`finished` / :attr:`result`."""
        self._stop.set()

    def stop(self, timeout: float = 10.0) -> RecordingResult:
        """Stop, drain what was captured, publish the file; returns the result."""
        self._stop.set()
        self._done.wait(timeout)
        if self.result is None:
            raise RecorderError("the writer did not finish in time", self.partial_path)
        return self.result

    def wait(self, timeout: float | None = None) -> RecordingResult | None:
        self._done.wait(timeout)
        return self.result

    # --- the writer thread --------------------------------------------------------------
    def _sync(self) -> None:
        self._snd.flush()
        self._file.flush()
        os.fsync(self._file.fileno())

    def _write(self, block: np.ndarray) -> None:
        if self.max_frames is not None:
            block = block[: max(0, self.max_frames - self.frames_written)]
        if len(block):
            self._snd.write(block)
            self.frames_written += len(block)

    def _run(self) -> None:
        reason, error = "stopped", None
        last_flush = time.monotonic()
        try:
            while True:
                stopping = self._stop.is_set()
                if stopping and self.source is not None:
                    self.source.stop()  # no more callbacks: the ring holds the last block
                self._write(self._reader.read()[:, 0])
                now = time.monotonic()
                if now - last_flush >= self.flush_interval:
                    self._sync()
                    self.frames_flushed = self.frames_written
                    self.flushes += 1
                    last_flush = now
                    if self._progress is not None:
                        self._progress(self)
                if stopping:
                    break
                if self.max_frames is not None and self.frames_written >= self.max_frames:
                    reason = "duration"
                    break
                failure = self.source.failure() if self.source is not None else None
                if failure:
                    self._write(self._reader.read()[:, 0])
                    reason, error = "device failed", failure
                    break
                # Wake up for the next flush on time, else every POLL_S.
                self._stop.wait(min(POLL_S, max(0.005, last_flush + self.flush_interval
                                                - time.monotonic())))
        except Exception as exc:  # disk full, file system gone...
            reason, error = "disk error", self._write_error("cannot write to", exc)
        finally:
            if self.source is not None:
                self.source.stop()
            self._finish(reason, error)

    def _write_error(self, what: str, exc: BaseException) -> str:
        """"cannot write to FOLDER: the disk is full": the first OS error the file met
        (libsndfile's own error after it says nothing), else ``exc``."""
        return f"{what} {self.partial_path.parent}: {io_error_text(self._file.error or exc)}"

    def _close_files(self) -> BaseException | None:
        """Close libsndfile's handle (it writes the final header sizes), then flush,
        fsync and close the file; the first error (None: all on disk)."""
        problem = None
        try:
            self._snd.close()
        except Exception as exc:  # noqa: BLE001 - reported by the caller
            problem = exc
        try:
            if problem is None:
                self._file.flush()
                os.fsync(self._file.fileno())
        except Exception as exc:  # noqa: BLE001
            problem = exc
        finally:
            try:
                self._file.close()  # after a write error its unwritable buffer fails again
            except Exception as exc:  # noqa: BLE001
                problem = problem or exc
        return self._file.error or problem

    def _finish(self, reason: str, error: str | None) -> None:
        published: Path | None = None
        frames = self.frames_written
        problem = self._close_files()
        if problem is not None and error is None:
            reason, error = "disk error", self._write_error("cannot finish the recording in", problem)
        try:
            if problem is not None or reason == "disk error":
                # What reached the disk (nothing did after the error): the header that
                # libsndfile could not finish is rewritten from the file size. Until it
                # is, only the frames of the last flush are known to be there.
                frames = self.frames_flushed
                frames = repair_wav_header(self.partial_path)
            published = _publish(self.partial_path, self.final_path)
        except Exception as exc:  # noqa: BLE001 - it stays .partial: say where it is
            error = error or self._write_error("cannot finish the recording in", exc)
            error += (f"; the audio is kept in {self.partial_path}, which will be offered for "
                      "recovery at the next start" if self.partial_path.is_file() else
                      f"; {self.partial_path} is gone (deleted, or its disk removed): nothing "
                      "was kept")
            reason = "disk error" if reason in ("stopped", "duration") else reason
        finally:
            with _active_lock:
                _active.discard(str(self.partial_path))
        self.frames_written = frames
        if published is not None:
            self.frames_flushed = frames
            try:
                _update_sidecar(published, self.sidecar_path,
                                status="complete" if error is None else reason,
                                duration_s=round(frames / self.rate, 3),
                                overflows=self.overflows, lost_frames=self.lost_frames,
                                **({"error": error} if error else {}))
            except Exception:  # noqa: BLE001 - e.g. a full disk: the recording is published
                pass  # all the same, and its sidecar still names its patient and site
        where = published or self.partial_path
        self.error = error
        self.result = RecordingResult(path=where, sidecar=sidecar_path(where),
                                      frames=frames, rate=self.rate,
                                      overflows=self.overflows, lost_frames=self.lost_frames,
                                      reason=reason, error=error, published=published is not None)
        self._done.set()
        if self._on_finished is not None:
            try:
                self._on_finished(self.result)
            except Exception:
                pass


def start_recording(device=None, settings: RecordingSettings | None = None, *,
                    progress=None, on_finished=None):
    """Open ``device`` (index, name or None: the system's default input) as
    ``settings`` say and start recording; returns ``(capture, recording)``.

    Raises :class:`~lungapp.audio.devices.DeviceError` (no device, PortAudio missing,
    unsupported rate) or :class:`RecorderError` (cannot create the file).
    """
    from lungapp.audio.capture import Capture

    settings = settings or RecordingSettings()
    cap = Capture(device, rate=settings.rate, channel=settings.channel)
    cap.start()
    try:
        rec = Recording(cap.ring, cap.rate, replace(settings, device_name=cap.device.name),
                        source=cap, progress=progress, on_finished=on_finished)
    except BaseException:
        cap.stop()
        raise
    return cap, rec


# --- recovery ---------------------------------------------------------------------------

def repair_wav_header(path) -> int:
    """Rewrite the RIFF and data chunk sizes of a WAV from its size on disk.

    A WAV whose writer was killed says its data chunk is empty (libsndfile writes the
    sizes only on close): the audio then runs to the end of the file, which is cut to
    a whole number of frames. A header whose data size is plausible (fits the file and
    is followed by nothing or by another chunk) is left as it is. Returns the number of
    frames the file holds. Raises RecorderError when it is not a WAV at all.
    """
    path = Path(path)
    with open(path, "r+b") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise RecorderError("not a WAV file (no RIFF/WAVE header); cannot repair", path)
        size = os.fstat(f.fileno()).st_size
        pos, block_align, data_at = 12, None, None
        while pos + 8 <= size:
            f.seek(pos)
            cid, clen = struct.unpack("<4sI", f.read(8))
            if cid == b"fmt ":
                fmt = f.read(16)
                block_align = struct.unpack("<H", fmt[12:14])[0]
            if cid == b"data":
                data_at = pos + 8
                break
            pos += 8 + clen + (clen & 1)
        if block_align is None or data_at is None or block_align == 0:
            raise RecorderError("WAV header has no fmt or data chunk; cannot repair", path)
        f.seek(data_at - 4)
        claimed = struct.unpack("<I", f.read(4))[0]
        after = data_at + claimed + (claimed & 1)
        f.seek(after)
        following = f.read(4)
        if (0 < claimed < 0xFFFFFFFF and claimed % block_align == 0 and after <= size
                and (len(following) == 0 or (len(following) == 4 and following.isascii()
                                             and following.decode("ascii").isprintable()))):
            # A complete header (the file was closed properly, maybe with chunks after
            # the audio): trust it rather than counting those chunks as samples.
            return claimed // block_align
        frames = max(0, size - data_at) // block_align
        data_len = frames * block_align
        end = data_at + data_len
        f.truncate(end)
        if data_len & 1:  # RIFF chunks are padded to an even length
            f.seek(end)
            f.write(b"\0")
            end += 1
        f.seek(data_at - 4)
        f.write(struct.pack("<I", data_len))
        f.seek(4)
        f.write(struct.pack("<I", end - 8))
        f.flush()
        os.fsync(f.fileno())
    return frames


def find_interrupted(folder=None) -> list[Path]:
    """Recordings left ``.partial`` by a killed or crashed run (not ones being written
    now by this or another process), oldest first."""
    folder = Path(folder) if folder else paths.recordings_dir()
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob("*.wav" + PARTIAL_SUFFIX) if p.is_file() and not _in_use(p)]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def describe_interrupted(path) -> dict:
    """What a recovery dialog shows: path, size, start time, site, patient, seconds."""
    path = Path(path)
    info = {"path": str(path), "bytes": path.stat().st_size}
    try:
        with open(sidecar_path(path), encoding="utf-8") as f:
            meta = json.load(f)
        for k in ("start_time", "site", "patient_id", "device", "sample_rate"):
            info[k] = meta.get(k)
        rate = int(meta.get("sample_rate") or 0)
        if rate:
            info["approx_seconds"] = round(max(0, info["bytes"] - 44) / 3 / rate, 1)
    except (OSError, ValueError, TypeError):
        pass
    return info


def recover(path) -> Path:
    """Repair an interrupted ``x.wav.partial`` and publish it as ``x.wav`` (never
    replacing a file: ``x-2.wav``... if taken). Returns the recovered path."""
    path = Path(path)
    if not path.name.endswith(PARTIAL_SUFFIX):
        raise RecorderError("not an interrupted recording (no .partial suffix)", path)
    if _in_use(path):
        raise RecorderError("is still being recorded; not recovered", path)
    if not path.is_file():
        raise RecorderError("not found", path)
    frames = repair_wav_header(path)
    final = _publish(path, path.with_name(path.name[: -len(PARTIAL_SUFFIX)]))
    side = sidecar_path(path)
    rate = None
    try:
        with open(side, encoding="utf-8") as f:
            rate = int(json.load(f).get("sample_rate") or 0) or None
    except (OSError, ValueError, TypeError, AttributeError):
        pass
    if rate is None:
        import soundfile as sf

        from lungapp.audio.decode import native_path
        rate = sf.info(native_path(final)).samplerate
    _update_sidecar(final, side, status="recovered", sample_rate=rate,
                    duration_s=round(frames / rate, 3))
    return final


def recover_all(paths_) -> tuple[list[Path], list[str]]:
    """:func:`recover` each of ``paths_``; returns (recovered paths, one-line errors of
    those that could not be), so one bad file does not stop the others."""
    done: list[Path] = []
    failed: list[str] = []
    for p in paths_:
        try:
            done.append(recover(p))
        except Exception as exc:  # noqa: BLE001 - report each file, keep going
            failed.append(str(exc))
    return done, failed
