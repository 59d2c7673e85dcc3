"""``lungapp record``: record from an input device to a WAV, headless.

    lungapp record [--device N|NAME] [--seconds S] [--out FILE.wav] [--rate HZ]
                   [--channel C] [--site SITE] [--patient-id ID] [--progress]
    lungapp record --list-devices
    lungapp record --recover [PATH...]

Without ``--seconds`` it records until Ctrl-C (or SIGTERM). Without ``--out`` the file
goes to the recordings folder with a unique name. On success the recording's path is
printed on stdout; on error one line on stderr and exit status 1 (2 for bad usage).
``--progress`` prints a JSON line per flush (``{"flushed_frames": N, ...}``) so
scripts and tests know what is safely on disk.

A recording killed outright (SIGKILL, a power cut) is left as ``X.wav.partial``: every
``lungapp record`` names those it finds (the recordings folder and --out's folder) and
``--recover`` repairs them into ``X.wav`` (the recorder's own recovery, as the app's).

Also runnable as ``python -m lungapp.cli.record``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import signal
import sys
import threading
from pathlib import Path

from lungapp.errors import LungappError

HELP = "record from an input device to a file (headless)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default=None,
                        help="input device index or name (default: the system's default input)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="stop after this many seconds (default: until Ctrl-C)")
    parser.add_argument("--out", type=Path, default=None,
                        help="WAV file to create (never overwritten; default: a new file "
                             "in the recordings folder)")
    parser.add_argument("--rate", type=int, default=None,
                        help="capture rate in Hz (default: the device's own rate, or 48000/44100)")
    parser.add_argument("--channel", type=int, default=1,
                        help="1-based input channel of a multi-channel device (default 1)")
    parser.add_argument("--site", default="", help="chest site, e.g. 'Posterior left'")
    parser.add_argument("--patient-id", default="", help="patient identifier for the sidecar")
    parser.add_argument("--progress", action="store_true",
                        help="print a JSON line on stdout at every flush to disk")
    parser.add_argument("--recover", nargs="*", metavar="PATH", default=None,
                        help="recover interrupted recordings (X.wav.partial): the files or "
                             "folders given, or the recordings folder's, and exit")
    parser.add_argument("--list-devices", action="store_true",
                        help="list input devices (index, name, host API, channels, rate) and exit")


def _err(msg: str) -> None:
    print(f"lungapp record: {msg}", file=sys.stderr, flush=True)


def run(args) -> int:
    if args.list_devices:
        return _list_devices()
    if getattr(args, "recover", None) is not None:
        return _recover(args.recover)
    problem = _usage_problem(args)
    if problem:
        _err(problem)
        return 2
    return _record(args)


def _list_devices() -> int:
    """Print the input devices (index, default mark, name, host API, channels, rate)."""
    from lungapp.audio import devices

    try:
        with _portaudio_lines_routed():
            devs = devices.list_input_devices()
    except LungappError as exc:
        _err(str(exc))
        return 1
    if not devs:
        _err("no audio input device found")
        return 1
    for d in devs:
        print(f"{d.index}\t{'*' if d.is_default else ' '} {d.name}\t{d.hostapi}\t"
              f"{d.max_input_channels} ch\t{d.default_samplerate:g} Hz")
    return 0


def _interrupted(where: list[str]) -> list[Path]:
    """The interrupted recordings named by ``where`` (.partial files, X.wav whose
    X.wav.partial exists, folders), or the recordings folder's when it is empty."""
    from lungapp.audio.recorder import PARTIAL_SUFFIX, find_interrupted

    if not where:
        return find_interrupted()
    found: list[Path] = []
    for w in map(Path, where):
        if w.is_dir():
            found += find_interrupted(w)
        elif w.name.endswith(PARTIAL_SUFFIX):
            found.append(w)
        else:
            found.append(w.with_name(w.name + PARTIAL_SUFFIX))
    return found


def _recover(where: list[str]) -> int:
    """Recover the interrupted recordings ``where`` names; print each recovered path."""
    from lungapp.audio.recorder import recover_all

    found = _interrupted(where)
    if not found:
        _err(f"no interrupted recordings in {', '.join(where) or 'the recordings folder'}")
        return 0
    done, failed = recover_all(found)
    for p in done:
        print(p, flush=True)
    for line in failed:
        _err(line)
    return 1 if failed else 0


def _mention_interrupted(out: Path | None) -> None:
    """Name, on stderr, the interrupted recordings a new recording's folders hold."""
    from lungapp.audio.recorder import describe_interrupted, find_interrupted

    folders = {None} | ({out.parent} if out is not None else set())
    found = sorted({p for f in folders for p in find_interrupted(f)})
    for p in found:
        secs = describe_interrupted(p).get("approx_seconds")
        about = f" (about {secs:g} s)" if secs is not None else ""
        _err(f"{p}: an interrupted recording{about}; recover it with "
             f"`lungapp record --recover {p}`")


def _portaudio_lines_routed():
    """PortAudio / ALSA write raw lines to fd 2 while devices are listed and opened: say
    them as this command's warnings instead."""
    from lungapp.native_stderr import routed

    return routed(lambda line: _err(f"warning from the audio system: {line}"))


def _usage_problem(args) -> str:
    """What is wrong with the recording options ("" when nothing is)."""
    if args.seconds is not None and not args.seconds > 0:
        return f"--seconds must be positive, not {args.seconds:g}"
    if args.seconds is not None and not math.isfinite(args.seconds):
        return "--seconds must be a number of seconds; leave it out to record until Ctrl-C"
    if args.channel < 1:
        return f"--channel is 1-based, not {args.channel}"
    return ""


def recording_settings(args):
    """The command line's options as a :class:`~lungapp.audio.recorder.RecordingSettings`
    (``--channel`` is 1-based, the settings' channel 0-based)."""
    from lungapp.audio.recorder import RecordingSettings

    return RecordingSettings(rate=args.rate, channel=args.channel - 1, seconds=args.seconds,
                             out=args.out, site=args.site, patient_id=args.patient_id)


def _json_line(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


def _record(args) -> int:
    """Record until the duration is reached, the device fails or SIGINT/SIGTERM; print
    the path (or, with --progress, JSON lines); 1 when the recording stopped on an error."""
    from lungapp.audio.recorder import start_recording

    def progress(rec):
        if args.progress:
            _json_line({"flushed_frames": rec.frames_flushed, "rate": rec.rate,
                        "partial": str(rec.partial_path), "overflows": rec.overflows})

    _mention_interrupted(args.out)
    try:
        with _portaudio_lines_routed():
            cap, rec = start_recording(args.device, recording_settings(args), progress=progress)
    except LungappError as exc:
        _err(str(exc))
        return 1
    with _stop_requested_by_signals() as stop_event:
        if args.progress:
            _json_line({"started": str(rec.partial_path), "rate": rec.rate,
                        "device": cap.device.name})
        while not rec.finished and not stop_event.is_set():
            rec.wait(0.1)
        result = rec.stop()
    if args.progress:
        _json_line({"finished": str(result.path), "frames": result.frames, "reason": result.reason,
                    "overflows": result.overflows, "lost_frames": result.lost_frames})
    else:
        print(result.path, flush=True)
    if result.error:
        _err(f"{result.error}; kept {result.duration_s:.1f} s in {result.path}")
        return 1
    return 0


@contextlib.contextmanager
def _stop_requested_by_signals():
    """While inside: SIGINT and SIGTERM set the yielded Event instead of killing the
    process (so the recording is stopped and published); the old handlers come back."""
    stop_event = threading.Event()

    def on_signal(signum, frame):
        stop_event.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop_event
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="lungapp record", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
