"""Input devices: list them, pick one, pick a rate it supports.

sounddevice is imported lazily inside functions: it raises OSError at import when the
PortAudio library is missing, and the rest of the app must work without it. Every
problem is raised as :class:`DeviceError` with one clear line naming the device.
"""

from __future__ import annotations

import gc
import threading
from dataclasses import asdict, dataclass

from lungapp.errors import AudioError

# Held while PortAudio is re-initialised (rescan) and while a stream is opened, so a
# stream is never opened half-way through a re-initialisation.
PA_LOCK = threading.RLock()

# Rates we are willing to open, best first after the device's own default. Never an
# exotic low rate such as 4 kHz: capture at a native rate and resample for the model.
STANDARD_RATES = (48000, 44100, 96000, 88200, 32000, 22050, 16000)
MIN_RATE = 16000


class DeviceError(AudioError):
    """No usable input device, PortAudio missing, or the device failed."""


class DeviceUnavailable(DeviceError):
    """A listed device cannot be opened at all (unplugged, its audio server stopped, in use):
    not a matter of sample rates. The message ends "reconnect it and try again"."""


# PortAudio's codes for a device that cannot be opened at all, whatever the rate:
# paDeviceUnavailable, paBadIODeviceCombination (what its ALSA host API says when the PCM
# cannot be opened, e.g. the PulseAudio plugin without a server), paInvalidDevice and
# paUnanticipatedHostError. An unsupported rate is paInvalidSampleRate (-9997).
UNAVAILABLE_CODES = (-9985, -9993, -9996, -9999)


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    hostapi: str
    max_input_channels: int
    default_samplerate: float
    is_default: bool = False

    @property
    def label(self) -> str:
        """What a picker shows: name, host API, channels and default rate."""
        star = " (default)" if self.is_default else ""
        return (f"{self.name} - {self.hostapi}, {self.max_input_channels} ch, "
                f"{self.default_samplerate / 1000:g} kHz{star}")

    def to_dict(self) -> dict:
        return asdict(self)


def _sd():
    """Import sounddevice, turning a missing PortAudio into a DeviceError."""
    try:
        import sounddevice
    except OSError as exc:  # libportaudio not found
        raise DeviceError(f"PortAudio library not available ({exc}); recording is disabled") from None
    except ImportError as exc:
        raise DeviceError(f"sounddevice is not installed ({exc}); recording is disabled") from None
    return sounddevice


def portaudio_status() -> tuple[bool, str]:
    """(True, version string) or (False, the reason recording cannot work)."""
    try:
        sd = _sd()
        return True, sd.get_portaudio_version()[1]
    except DeviceError as exc:
        return False, str(exc)


def list_input_devices() -> list[DeviceInfo]:
    """Every device with at least one input channel (possibly an empty list)."""
    sd = _sd()
    try:
        devices = sd.query_devices()
        hostapis = sd.query_hostapis()
    except Exception as exc:  # PortAudio errors surface as sd.PortAudioError
        raise DeviceError(f"cannot list audio devices: {exc}") from None
    try:
        default_in = sd.default.device[0]
        if default_in is None or default_in < 0:
            default_in = sd.query_devices(kind="input")["index"]
    except Exception:
        default_in = -1
    out = []
    for d in devices:
        if d["max_input_channels"] < 1:
            continue
        out.append(DeviceInfo(
            index=int(d["index"]), name=str(d["name"]),
            hostapi=str(hostapis[d["hostapi"]]["name"]),
            max_input_channels=int(d["max_input_channels"]),
            default_samplerate=float(d["default_samplerate"]),
            is_default=int(d["index"]) == default_in,
        ))
    return out


#: Streams whose stop never returned (a hung driver or audio server): kept alive here,
#: never touched again. PortAudio cannot be re-initialised (or terminated) under them.
_ABANDONED: list = []


_ABANDON_LOCK = threading.Lock()


def abandon(stream) -> None:
    """Leave ``stream`` behind: its stop did not return. PortAudio's own clean-up at exit
    (sounddevice's atexit handler, Pa_Terminate) would wait on it for ever, and the process
    would never end: it is skipped while such a stream is left; the operating system
    closes the device."""
    import atexit

    with _ABANDON_LOCK:
        _ABANDONED.append(stream)
        handler = getattr(_sd(), "_exit_handler", None)
        if handler is not None and len(_ABANDONED) == 1:
            atexit.unregister(handler)


def released(stream) -> None:
    """A stream left behind whose stop returned after all: PortAudio is usable again
    (re-scans, its clean-up at exit) once no stream is left behind."""
    import atexit

    with _ABANDON_LOCK:
        if not any(s is stream for s in _ABANDONED):
            return
        _ABANDONED[:] = [s for s in _ABANDONED if s is not stream]
        handler = getattr(_sd(), "_exit_handler", None)
        if handler is not None and not _ABANDONED:
            atexit.register(handler)


def abandoned() -> int:
    """How many streams are left behind (:func:`abandon`)."""
    return len(_ABANDONED)


def open_streams() -> int:
    """How many sounddevice streams are open in this process (any module's: capture,
    playback). Found through the garbage collector because sounddevice keeps no list,
    and re-initialising PortAudio under an open stream would close it."""
    sd = _sd()
    return sum(1 for o in gc.get_objects()
               if isinstance(o, sd._StreamBase) and not getattr(o, "closed", True))


def rescan() -> bool:
    """Re-initialise PortAudio so that devices plugged in (or removed) since it started
    are listed: PortAudio enumerates devices only when it initialises.

    Does nothing and returns False while any stream is open (Pa_Terminate would close
    it: a recording or a playback); returns True when the device list was refreshed.
    Raises DeviceError when PortAudio cannot be re-initialised.
    """
    sd = _sd()
    with PA_LOCK:
        if open_streams() or _ABANDONED:
            return False
        try:
            while sd._initialized > 0:
                sd._terminate()
            sd._initialize()
        except Exception as exc:  # PortAudio errors surface as sd.PortAudioError
            raise DeviceError(f"cannot re-scan audio devices: {exc}") from None
    return True


def same_device(a: DeviceInfo, name: str, hostapi: str | None) -> bool:
    """Whether ``a`` is the device called ``name`` on host API ``hostapi`` (None: any).
    Indices change when devices come and go; name and host API do not."""
    return a.name == name and (hostapi is None or a.hostapi == hostapi)


def current(device: DeviceInfo) -> DeviceInfo:
    """``device`` as PortAudio lists it now (its index may have changed after a re-scan):
    the same name and host API, preferring the same index. DeviceError if it is gone."""
    devices = list_input_devices()
    matches = [d for d in devices if same_device(d, device.name, device.hostapi)]
    if not matches:
        raise DeviceError(f"input device {device.name!r} ({device.hostapi}) is no longer "
                          "connected")
    return next((d for d in matches if d.index == device.index), matches[0])


def default_input_device() -> DeviceInfo:
    """The system's default input device (DeviceError if there is none)."""
    devices = list_input_devices()
    if not devices:
        raise DeviceError("no audio input device found (connect a stethoscope or microphone)")
    for d in devices:
        if d.is_default:
            return d
    return devices[0]


def find_device(spec: int | str | None) -> DeviceInfo:
    """A device by index, by (case-insensitive) name substring, or the default for None."""
    if spec is None or spec == "":
        return default_input_device()
    devices = list_input_devices()
    if not devices:
        raise DeviceError("no audio input device found (connect a stethoscope or microphone)")
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        idx = int(spec)
        for d in devices:
            if d.index == idx:
                return d
        raise DeviceError(f"input device {idx} not found (have: "
                          + ", ".join(f"{d.index} {d.name}" for d in devices) + ")")
    matches = [d for d in devices if spec.lower() in d.name.lower()]
    if not matches:
        raise DeviceError(f"no input device named like {spec!r}")
    exact = [d for d in matches if d.name.lower() == spec.lower()]
    return (exact or matches)[0]


def rate_supported(device: DeviceInfo, rate: int, channels: int = 1) -> bool:
    """Whether ``device`` opens with ``channels`` at ``rate`` Hz. Raises DeviceUnavailable
    when it cannot be opened at all (PortAudio blames the device, not the rate): then no
    rate would do."""
    sd = _sd()
    try:
        sd.check_input_settings(device=device.index, channels=channels, samplerate=rate,
                                dtype="float32")
        return True
    except Exception as exc:  # PortAudio errors surface as sd.PortAudioError
        args = getattr(exc, "args", ())
        if isinstance(exc, sd.PortAudioError) and len(args) > 1 and args[1] in UNAVAILABLE_CODES:
            raise DeviceUnavailable(f"input device {device.index} ({device.name}) is unavailable "
                                    "(unplugged, its audio server stopped, or in use by another "
                                    "program): reconnect it and try again") from None
        return False


def choose_rate(device: DeviceInfo, preferred: int | None = None, channels: int = 1) -> int:
    """A capture rate the device supports: ``preferred`` if given and supported, else
    the device's default rate (if standard and >= 16 kHz), else 48000, 44100, ...

    Raises DeviceError when none works (or when ``preferred`` is below 16 kHz), as
    DeviceUnavailable when the device cannot be opened at all.
    """
    if preferred is not None:
        if preferred < MIN_RATE:
            raise DeviceError(f"refusing to capture at {preferred} Hz: use a native rate "
                              f">= {MIN_RATE} Hz; audio is resampled for the model")
        if rate_supported(device, int(preferred), channels):
            return int(preferred)
        raise DeviceError(f"device {device.index} ({device.name}) does not support {preferred} Hz")
    candidates = []
    dflt = int(round(device.default_samplerate))
    if dflt in STANDARD_RATES:
        candidates.append(dflt)
    candidates += [r for r in STANDARD_RATES if r not in candidates]
    for r in candidates:
        if rate_supported(device, r, channels):
            return r
    raise DeviceError(f"device {device.index} ({device.name}) supports none of the rates "
                      + ", ".join(str(r) for r in candidates))
