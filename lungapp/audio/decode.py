"""Decode any audio file a clinician or a public dataset may hand us, to mono float32.

One entry point, :func:`load_audio`, reads WAV (8/16/24/32-bit integer, 32/64-bit
float), FLAC, OGG (Vorbis, Opus), MP3 and the other formats libsndfile reads, at any
sample rate from :data:`MIN_RATE` to :data:`MAX_RATE` Hz and with any channel count
(averaged to mono), and can resample to a requested rate with
:func:`scipy.signal.resample_poly`. :func:`audio_info` reads only the header.

Memory: files are decoded in blocks; each block is mixed down and resampled before the
next is read, so loading a 1-hour 48 kHz stereo file at 8 kHz needs about the size of the
8 kHz output, not of the decoded 48 kHz stereo signal.

Errors: everything a user can cause (missing, unreadable, empty, truncated, corrupt,
non-audio or unsupported files, NaN/Inf samples, audio too short) raises
:class:`lungapp.errors.AudioError`, whose message names the file and the problem.
Invalid *arguments* (a negative ``max_seconds``, a non-integer rate) are programming
errors and raise ``ValueError``.
"""

from __future__ import annotations

import math
import numbers
import os
import stat
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import soundfile as sf

from lungapp.errors import AudioError

__all__ = [
    "AUDIO_EXTENSIONS",
    "MAX_RATE",
    "MIN_RATE",
    "Audio",
    "AudioInfo",
    "AudioStream",
    "audio_info",
    "is_audio_path",
    "load_audio",
    "resample",
]

#: Lowercase file suffixes the app lists when it scans folders for recordings.
AUDIO_EXTENSIONS: tuple[str, ...] = (
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3",
    ".aiff", ".aif", ".aifc", ".caf", ".w64", ".rf64", ".au", ".snd",
)

#: Supported sample rates of audio files, in Hz (inclusive).
MIN_RATE = 2_000
MAX_RATE = 192_000

# Rates a caller may request (the spectrogram config accepts the same range).
_MIN_TARGET_RATE = 100
_MAX_TARGET_RATE = 384_000

# Samples (frames x channels) decoded per block: 2**18 float32 = 1 MiB per block.
_BLOCK_SAMPLES = 1 << 18

_NO_SAMPLES = "contains no audio samples (empty or truncated audio data)"

# libsndfile's frame count for a stream of unknown length (SF_COUNT_MAX).
_UNKNOWN_FRAMES = 2 ** 63 - 1

# Leading bytes of the audio containers we can name when their header is damaged.
_MAGIC = (
    (b"RIFF", "WAV"), (b"RIFX", "WAV"), (b"RF64", "RF64/WAV"), (b"BW64", "WAV"),
    (b"riff", "W64"), (b"fLaC", "FLAC"), (b"OggS", "OGG"), (b"FORM", "AIFF"),
    (b"caff", "CAF"), (b".snd", "AU"), (b"ID3", "MP3"),
)


def is_audio_path(path) -> bool:
    """True when ``path``'s suffix (case-insensitive) is in :data:`AUDIO_EXTENSIONS`."""
    return os.path.splitext(os.fspath(path))[1].lower() in AUDIO_EXTENSIONS


@dataclass(frozen=True, eq=False)
class Audio:
    """A decoded recording.

    samples: float32, shape (n,), mono; 1.0 is full scale (integer formats are scaled
        to [-1, 1); float files are passed through unclipped).
    rate: sample rate of ``samples`` in Hz (the requested rate, else ``original_rate``).
    original_rate: the file's sample rate in Hz.
    channels: the file's channel count (before the mix-down to mono).
    duration_s: ``len(samples) / rate``, in seconds.
    path: the file that was read.
    declared_duration_s: the duration the file's header claims, when it is longer than the
        audio the file holds (a truncated WAV: a copy or a recording cut short); else None.
    """

    samples: np.ndarray
    rate: int
    original_rate: int
    channels: int
    duration_s: float
    path: str
    declared_duration_s: float | None = None

    @property
    def truncated(self) -> str:
        """A sentence for users when the file is truncated, else ""."""
        return _truncated_text(self.declared_duration_s, self.duration_s)


def _truncated_text(declared_s: float | None, present_s: float) -> str:
    if declared_s is None:
        return ""
    return f"truncated: the header says {declared_s:.1f} s, the file holds {present_s:.1f} s"


@dataclass(frozen=True)
class AudioInfo:
    """A file's header: rate (Hz), channels, frames (per channel; estimated by the
    decoder for MP3), duration_s, and libsndfile's ``format`` (e.g. ``"WAV"``) and
    ``subtype`` (e.g. ``"PCM_16"``)."""

    path: str
    rate: int
    channels: int
    frames: int
    duration_s: float
    format: str
    subtype: str


# --- resampling ----------------------------------------------------------------------

def _ratio(from_rate: int, to_rate: int) -> tuple[int, int]:
    """(up, down), coprime, for resampling ``from_rate`` Hz to ``to_rate`` Hz."""
    for name, value in (("from_rate", from_rate), ("to_rate", to_rate)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer number of Hz, not {value!r}")
    g = math.gcd(int(from_rate), int(to_rate))
    return int(to_rate) // g, int(from_rate) // g


@lru_cache(maxsize=16)
def _filter(up: int, down: int) -> np.ndarray:
    """The FIR low-pass that ``resample_poly(x, up, down)`` designs by default
    (Kaiser window, beta 5, 2 * 10 * max(up, down) + 1 taps), float64, read-only.
    Designed once per ratio so that block-by-block resampling does not redo it."""
    from scipy.signal import firwin  # imported here: scipy.signal costs ~1 s at startup

    max_rate = max(up, down)
    h = firwin(2 * 10 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0))
    h.setflags(write=False)
    return h


def resample(x, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample a 1-D signal from ``from_rate`` Hz to ``to_rate`` Hz.

    x: 1-D array (any real dtype), shape (n,).
    Returns float32 of shape (ceil(n * to_rate / from_rate),), computed in float64 with
    :func:`scipy.signal.resample_poly` (its default Kaiser-windowed FIR filter, zero
    padding at the ends). Equal rates return a float32 copy.
    """
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D signal, got shape {x.shape}")
    up, down = _ratio(from_rate, to_rate)
    x = x.astype(np.float64, copy=False)
    if up == down:
        return x.astype(np.float32)
    from scipy.signal import resample_poly

    return resample_poly(x, up, down, window=_filter(up, down)).astype(np.float32)


class _ChunkedResampler:
    """``resample_poly`` over a signal that arrives in blocks, equal (to float64
    rounding) to ``resample_poly`` of the whole signal.

    Output sample ``k`` is a weighted sum of input samples ``n`` with
    ``|k * down - n * up| <= half_len``. Each :meth:`push` resamples the retained input
    tail plus the new block and returns only the outputs whose whole filter support has
    arrived; the tail is kept from a multiple of ``down`` (so that its first output
    lands exactly on a whole-signal output index) covering the support of the next
    output. Hand-written because scipy has no streaming polyphase resampler with
    ``resample_poly``'s exact filter and phase (``upfirdn`` is batch only).
    """

    def __init__(self, up: int, down: int):
        self.up, self.down = up, down
        self.h = _filter(up, down)
        self.half_len = (len(self.h) - 1) // 2
        self._buf = np.zeros(0, dtype=np.float64)
        self._start = 0      # input index of self._buf[0]; a multiple of down
        self._n_in = 0       # input samples received
        self._next = 0       # index of the next output sample to emit

    def _run(self) -> np.ndarray:
        """Outputs of the retained buffer, starting at output index ``_next``."""
        from scipy.signal import resample_poly

        y = resample_poly(self._buf, self.up, self.down, window=self.h)
        return y[self._next - self._start * self.up // self.down:]

    def push(self, block: np.ndarray) -> np.ndarray:
        """Add input samples (1-D); return the newly completed outputs (float64, 1-D)."""
        block = np.asarray(block, dtype=np.float64)
        self._buf = np.concatenate([self._buf, block]) if len(self._buf) else block.copy()
        self._n_in += len(block)
        # Last output whose support ends at or before input index n_in - 1.
        last = ((self._n_in - 1) * self.up - self.half_len) // self.down
        if last < self._next:
            return np.zeros(0, dtype=np.float64)
        out = self._run()[: last + 1 - self._next]
        self._next = last + 1
        # Keep input from the first sample the next output needs, rounded down to a
        # multiple of down.
        need = -(-(self._next * self.down - self.half_len) // self.up)  # ceil division
        new_start = max(self._start, (max(need, 0) // self.down) * self.down)
        self._buf = self._buf[new_start - self._start:]
        self._start = new_start
        return out

    def finish(self) -> np.ndarray:
        """Return the remaining outputs (the signal is zero beyond its end, as in
        ``resample_poly``); afterwards ceil(n_in * up / down) outputs were emitted."""
        if self._n_in == 0:
            return np.zeros(0, dtype=np.float64)
        out = self._run()
        self._next += len(out)
        self._buf = np.zeros(0, dtype=np.float64)
        return out


class _Output:
    """A growable float32 array, preallocated to the expected length so that the
    finished signal is not copied (peak memory ~ the output size)."""

    def __init__(self, capacity: int):
        self._a = np.empty(max(int(capacity), 0), dtype=np.float32)
        self.n = 0

    def append(self, chunk: np.ndarray) -> None:
        end = self.n + len(chunk)
        if end > len(self._a):
            grown = np.empty(max(end, 2 * len(self._a)), dtype=np.float32)
            grown[: self.n] = self._a[: self.n]
            self._a = grown
        self._a[self.n:end] = chunk
        self.n = end

    def result(self) -> np.ndarray:
        if self.n == len(self._a):
            return self._a
        if self.n >= 0.9 * len(self._a):
            return self._a[: self.n]   # a view; the few unused samples are not worth a copy
        return self._a[: self.n].copy()


def _mix_down(block: np.ndarray) -> np.ndarray:
    """Channel mean of a (frames, channels) float32 block, float64 of shape (frames,).
    Column by column: ``block.mean(axis=1)`` reduces along the short, strided axis and
    is several times slower."""
    mono = block[:, 0].astype(np.float64)
    for c in range(1, block.shape[1]):
        mono += block[:, c]
    mono /= block.shape[1]
    return mono


# --- validation ----------------------------------------------------------------------

def _describe(exc: Exception) -> str:
    """libsndfile's own message without soundfile's "Error opening '<path>': " prefix."""
    text = getattr(exc, "error_string", None) or str(exc)
    # Users are told about their file, not about the library that read it.
    text = str(text).replace("libsndfile", "the audio decoder")
    return " ".join(text.split()) or type(exc).__name__


def _sniff(head: bytes) -> str | None:
    """Name of the audio container ``head`` (a file's first bytes) starts like, or None."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "MP3"  # an MPEG audio frame sync word
    return None


def _check_file(path: str) -> bytes:
    """Raise AudioError unless ``path`` is a readable, non-empty regular file; return
    its first 16 bytes."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise AudioError("file not found", path) from None
    except NotADirectoryError:
        raise AudioError("file not found (a folder in its path is a file)", path) from None
    except PermissionError:
        raise AudioError("no permission to read this file (or a folder in its path)", path) from None
    except (OSError, ValueError) as e:
        raise AudioError(f"cannot access the file ({getattr(e, 'strerror', None) or e})", path) from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError("is a folder, not an audio file", path)
    if not stat.S_ISREG(st.st_mode):
        # Opening a pipe or device could block forever.
        raise AudioError("is not a regular file (a pipe, socket or device?)", path)
    if st.st_size == 0:
        raise AudioError("the file is empty (0 bytes)", path)
    try:
        with open(path, "rb") as f:
            return f.read(16)
    except PermissionError:
        raise AudioError("no permission to read this file", path) from None
    except OSError as e:
        raise AudioError(f"cannot read the file ({e.strerror or e})", path) from None


def _open(path: str) -> sf.SoundFile:
    """Open ``path`` with libsndfile after the checks above; validate the header."""
    head = _check_file(path)
    try:
        f = _open_routed(path, head)
    except Exception as e:  # noqa: BLE001 - soundfile raises RuntimeError, TypeError, ValueError...
        kind = _sniff(head)
        if kind is None:
            ext = os.path.splitext(path)[1].lower()
            claimed = f" despite its {ext} name" if ext in AUDIO_EXTENSIONS else ""
            raise AudioError(
                f"not a supported audio file{claimed}: its content is not WAV, FLAC, OGG, "
                f"MP3, AIFF or another audio format lungapp reads", path) from None
        raise AudioError(f"truncated, corrupt or unsupported {kind} file: its header cannot "
                         f"be read ({_describe(e)})", path) from None
    try:
        _check_header(f, path)
    except BaseException:
        f.close()
        raise
    return f


def native_path(path) -> str | bytes:
    """``path`` as libsndfile should be given it: its bytes on POSIX, where soundfile would
    encode a name that is not valid UTF-8 (a disk from another system) strictly and fail."""
    return os.fsencode(path) if os.name == "posix" else os.fspath(path)


def _open_routed(path: str, head: bytes) -> sf.SoundFile:
    """``sf.SoundFile(path)``; for MP3, mpg123's own warnings (written to fd 2) become one
    warning line naming the file instead of a stray library line."""
    if _sniff(head) != "MP3":
        return sf.SoundFile(native_path(path))
    from lungapp.native_stderr import routed, warn_once

    def say(line: str) -> None:
        text = line.removeprefix("Warning: ").rstrip("!")
        warn_once(f"lungapp: {path}: warning from the MP3 decoder: {text}")

    with routed(say):
        return sf.SoundFile(native_path(path))


def _check_header(f: sf.SoundFile, path: str) -> None:
    if not MIN_RATE <= f.samplerate <= MAX_RATE:
        raise AudioError(f"unsupported sample rate {f.samplerate} Hz "
                         f"(supported: {MIN_RATE}..{MAX_RATE} Hz)", path)
    if f.channels < 1:
        raise AudioError(f"invalid channel count {f.channels}", path)
    if f.frames <= 0:
        raise AudioError(_NO_SAMPLES, path)
    if f.frames >= _UNKNOWN_FRAMES:
        # libsndfile cannot then tell the end of the stream from a read error.
        raise AudioError("the header does not give the audio's length (a FLAC written as a "
                         "stream?); re-encode the file to read it", path)


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _fmt_pair(a: float, b: float) -> tuple[str, str]:
    """Format two durations with the fewest decimals (>= 2) that tell them apart."""
    for digits in (2, 3, 4, 6):
        sa, sb = f"{a:.{digits}f}", f"{b:.{digits}f}"
        if sa != sb:
            return sa, sb
    return f"{a!r}", f"{b!r}"


# --- the API -------------------------------------------------------------------------

def audio_info(path) -> AudioInfo:
    """Read only the header of ``path`` (fast). Raises AudioError for the same file
    problems as :func:`load_audio` that a header reveals (missing, folder, no permission,
    empty, corrupt, not audio, unsupported rate, no samples)."""
    path = os.fspath(path)
    with _open(path) as f:
        return AudioInfo(path=path, rate=int(f.samplerate), channels=int(f.channels),
                         frames=int(f.frames), duration_s=f.frames / f.samplerate,
                         format=str(f.format), subtype=str(f.subtype))


def load_audio(path, rate: int | None = None, *, min_seconds: float = 0.0,
               max_seconds: float | None = None) -> Audio:
    """Decode ``path`` to mono float32, optionally resampled to ``rate`` Hz.

    rate: the wanted sample rate in Hz, or None to keep the file's own rate.
    min_seconds: raise AudioError when the (possibly cut) audio is shorter than this.
    max_seconds: decode only the first ``max_seconds`` seconds (None = all).

    Channels are averaged to mono; resampling uses :func:`scipy.signal.resample_poly`
    block by block and equals resampling the whole decoded signal (to ~1e-7). Raises
    :class:`AudioError` for every problem with the file (see the module docstring).
    """
    path = os.fspath(path)
    _check_load_arguments(rate, min_seconds, max_seconds)
    with _open(path) as f:
        rate0, channels = int(f.samplerate), int(f.channels)
        out_rate = rate0 if rate is None else int(rate)
        limit = f.frames if max_seconds is None else min(f.frames, max(1, round(max_seconds * rate0)))
        out, n_read, damaged = _decode_blocks(f, path, limit, out_rate)
        declared = f.frames if damaged else _declared_wav_frames(path) if f.format in ("WAV", "WAVEX") else None

    if n_read == 0:
        raise AudioError(_NO_SAMPLES, path)
    samples = out.result()
    duration = len(samples) / out_rate
    if n_read / rate0 < min_seconds:
        have, need = _fmt_pair(n_read / rate0, float(min_seconds))
        raise AudioError(f"audio is {have} s long; at least {need} s is needed", path)
    truncated = declared is not None and declared > n_read + 1 and max_seconds is None
    return Audio(samples=samples, rate=out_rate, original_rate=rate0, channels=channels,
                 duration_s=duration, path=path,
                 declared_duration_s=declared / rate0 if truncated else None)


def _declared_wav_frames(path: str) -> int | None:
    """The frame count a RIFF WAV header declares (its ``data`` chunk size over the
    ``fmt`` chunk's block size), read by hand because libsndfile reports only the frames
    present; None when the header cannot say (not RIFF, a streamed size, no chunks)."""
    import struct

    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            block = None
            for _ in range(64):  # a WAV has a handful of chunks before its data
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"fmt ":
                    fmt = f.read(size + (size & 1))
                    block = struct.unpack("<H", fmt[12:14])[0] if len(fmt) >= 14 else None
                elif cid == b"data":
                    ok = block and size not in (0, 0xFFFFFFFF)
                    return size // block if ok else None
                else:
                    f.seek(size + (size & 1), os.SEEK_CUR)
    except OSError:
        return None
    return None


def _check_load_arguments(rate, min_seconds, max_seconds) -> None:
    """ValueError for arguments of :func:`load_audio` that no file could satisfy."""
    if rate is not None:
        _ratio(rate, rate)  # type check
        if not _MIN_TARGET_RATE <= rate <= _MAX_TARGET_RATE:
            raise ValueError(f"rate must be {_MIN_TARGET_RATE}..{_MAX_TARGET_RATE} Hz, not {rate}")
    if not (_is_real(min_seconds) and math.isfinite(min_seconds) and min_seconds >= 0):
        raise ValueError(f"min_seconds must be a finite number >= 0, not {min_seconds!r}")
    if max_seconds is not None:
        if not (_is_real(max_seconds) and math.isfinite(max_seconds) and max_seconds > 0):
            raise ValueError(f"max_seconds must be a finite number > 0, not {max_seconds!r}")
        if max_seconds < min_seconds:
            raise ValueError(f"max_seconds ({max_seconds}) is below min_seconds ({min_seconds})")


def _decode_blocks(f, path: str, limit: int, out_rate: int) -> tuple[_Output, int, bool]:
    """Read up to ``limit`` frames of the open file ``f`` block by block, mixed to mono and
    resampled to ``out_rate`` as they come. Returns (output, frames read, whether damaged
    data stopped the reading early). Raises AudioError for unreadable data or non-finite
    samples."""
    up, down = _ratio(int(f.samplerate), out_rate)
    # Preallocate the expected output, but never trust a (possibly corrupt) header
    # with more than 64 samples per byte of file (FLAC rarely compresses beyond 8x).
    expected = min(limit, 64 * os.path.getsize(path) + _BLOCK_SAMPLES)
    out = _Output(-(-expected * up // down))
    counter = [0, False]
    for chunk in _blocks(f, path, limit, out_rate, counter):
        out.append(chunk)
    return out, counter[0], counter[1]


def _salvage(path: str, start: int, frames: int, step: int = 1024) -> np.ndarray:
    """The frames of ``path`` from ``start`` (at most ``frames``) that decode before a
    decoding error, read ``step`` at a time from a fresh handle (libsndfile's handle is
    unusable after an error); (0, channels) when none do."""
    parts = []
    try:
        with sf.SoundFile(native_path(path)) as g:
            g.seek(start)
            while frames > 0:
                part = g.read(min(step, frames), dtype="float32", always_2d=True)
                if len(part) == 0:
                    break
                parts.append(part)
                frames -= len(part)
    except Exception:  # noqa: BLE001, S110 - the error this reading stops at
        pass
    return np.concatenate(parts) if parts else np.zeros((0, 1), dtype=np.float32)


def _blocks(f, path: str, limit: int, out_rate: int, counter: list):
    """Yield up to ``limit`` frames of the open file ``f`` as mono blocks resampled to
    ``out_rate`` (float32, or float64 straight from the resampler), one per decoded block;
    ``counter[0]`` holds the frames read so far, ``counter[1]`` becomes True when damaged
    audio data stopped the reading early (what decoded before it was yielded). Raises
    AudioError for unreadable data (nothing decodes) or non-finite samples."""
    rate0, channels = int(f.samplerate), int(f.channels)
    up, down = _ratio(rate0, out_rate)
    resampler = _ChunkedResampler(up, down) if up != down else None
    block_frames = max(256, _BLOCK_SAMPLES // channels)
    while counter[0] < limit:
        n_read = counter[0]
        want = min(block_frames, limit - n_read)
        try:
            block = f.read(want, dtype="float32", always_2d=True)
        except Exception as e:  # noqa: BLE001 - libsndfile/soundfile errors of any type
            # The block holds the error somewhere: keep what decodes before it (a FLAC cut
            # short or damaged is then analysed up to there, as a truncated WAV is).
            block = _salvage(path, n_read, want)
            if len(block) == 0:
                where = f"after {n_read / rate0:.2f} s" if n_read else "from its start"
                raise AudioError(f"the audio data is truncated or corrupt {where} "
                                 f"({_describe(e)})", path) from None
            limit = n_read + len(block)  # nothing after the damage is read
            counter[1] = True
        if len(block) == 0:
            break
        mono = block[:, 0] if channels == 1 else _mix_down(block)
        if not np.isfinite(mono).all():
            bad = n_read + int(np.flatnonzero(~np.isfinite(mono))[0])
            raise AudioError(f"contains NaN or infinite sample values "
                             f"(first at {bad / rate0:.3f} s)", path)
        counter[0] += len(block)
        yield mono if resampler is None else resampler.push(mono)
    if resampler is not None:
        yield resampler.finish()


class AudioStream:
    """A file decoded block by block, for recordings too long to hold in memory.

    ``with AudioStream(path, rate) as s: for block in s: ...`` yields mono float32
    blocks at ``rate`` Hz (None: the file's own rate) whose concatenation equals
    :func:`load_audio`'s samples; each block is about a megabyte of decoded audio, so
    memory does not grow with the file's length. The header is checked on entry
    (AudioError as :func:`load_audio` raises); after the loop, :attr:`n_samples`,
    :attr:`duration_s`, :attr:`declared_duration_s` and :attr:`truncated` describe what
    was read, and a recording shorter than ``min_seconds`` raises AudioError.
    """

    def __init__(self, path, rate: int | None = None, *, min_seconds: float = 0.0):
        self.path = os.fspath(path)
        _check_load_arguments(rate, min_seconds, None)
        self._want_rate, self.min_seconds = rate, min_seconds
        self.n_samples = 0
        self.declared_duration_s: float | None = None
        self._f = None

    def __enter__(self) -> AudioStream:
        self._f = _open(self.path)
        self.original_rate = int(self._f.samplerate)
        self.channels = int(self._f.channels)
        self.rate = self.original_rate if self._want_rate is None else int(self._want_rate)
        return self

    def __exit__(self, *exc) -> None:
        self._f.close()

    def __iter__(self):
        f, counter = self._f, [0, False]
        for chunk in _blocks(f, self.path, f.frames, self.rate, counter):
            chunk = np.asarray(chunk, dtype=np.float32)
            self.n_samples += len(chunk)
            if len(chunk):
                yield chunk
        self._finish(counter[0], f, counter[1])

    def _finish(self, n_read: int, f, damaged: bool = False) -> None:
        """The checks :func:`load_audio` makes once the whole file has been read."""
        if n_read == 0:
            raise AudioError(_NO_SAMPLES, self.path)
        if n_read / self.original_rate < self.min_seconds:
            have, need = _fmt_pair(n_read / self.original_rate, float(self.min_seconds))
            raise AudioError(f"audio is {have} s long; at least {need} s is needed", self.path)
        declared = f.frames if damaged else _declared_wav_frames(self.path) if f.format in ("WAV", "WAVEX") else None
        if declared is not None and declared > n_read + 1:
            self.declared_duration_s = declared / self.original_rate

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.rate

    @property
    def truncated(self) -> str:
        """A sentence for users when the file is truncated, else "" (as :attr:`Audio.truncated`)."""
        return _truncated_text(self.declared_duration_s, self.duration_s)

