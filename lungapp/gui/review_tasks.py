"""The Review view's background work (run with :func:`lungapp.gui.workers.run_task`; no
widgets here): find recordings in folders, read their headers, decode one for display."""

from __future__ import annotations

import os
import time

from lungapp.gui.workers import Task

DEFAULT_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au", ".w64", ".caf")


def audio_extensions() -> tuple[str, ...]:
    """The decoder's file extensions, lower case with the dot (a fixed list when the
    decoder cannot be imported)."""
    try:
        from lungapp.audio import AUDIO_EXTENSIONS
    except ImportError:
        return DEFAULT_EXTENSIONS
    return tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in AUDIO_EXTENSIONS)


def examples_dir():
    """resources/examples when it holds recordings, else None."""
    from lungapp.paths import resources_dir

    try:
        d = resources_dir() / "examples"
    except FileNotFoundError:
        return None
    return d if d.is_dir() and any(p.suffix.lower() == ".wav" for p in d.iterdir()) else None


def scan_folders(task: Task, folders: list[str], exts: tuple[str, ...]) -> list[str]:
    """Files under ``folders`` (recursively, sorted, hidden ones skipped) whose name ends
    with one of ``exts``; what was found so far when cancelled."""
    found = []
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            if task.cancelled:
                return found
            dirs.sort()
            for name in sorted(files):
                if name.lower().endswith(exts) and not name.startswith("."):
                    found.append(os.path.join(root, name))
            task.progress(len(found), 0, f"Scanning {root}")
    return found


def read_infos(task: Task, paths: list[str]) -> int:
    """Header of each file (fast): emits batches of (path, info, error) as it goes (at
    most every 0.1 s or 200 files); returns the number of paths."""
    from lungapp.audio import audio_info
    from lungapp.errors import LungappError

    batch, last = [], time.monotonic()
    for i, p in enumerate(paths):
        if task.cancelled:
            break
        try:
            batch.append((p, audio_info(p), ""))
        except LungappError as exc:
            batch.append((p, None, exc.problem))
        except Exception as exc:  # noqa: BLE001 - one odd file must not stop the scan
            batch.append((p, None, f"{type(exc).__name__}: {exc}"))
        now = time.monotonic()
        if now - last > 0.1 or len(batch) >= 200:
            task.emit_partial(batch)
            task.progress(i + 1, len(paths), "Reading durations")
            batch, last = [], now
    if batch:
        task.emit_partial(batch)
    return len(paths)


def load_display(task: Task, path: str, cfg):
    """Decode a file for playback (its own rate) and its spectrogram at the model's
    rate, with the model's spectrogram config (what the user sees = what it reads);
    ``cfg`` None (no model yet) = the engine's default config. Returns a dict (path,
    audio, spec, cfg, wave) or None when cancelled."""
    from lungapp.audio import load_audio, resample
    from lungapp.dsp import SpectrogramConfig, spectrogram
    from lungapp.dsp.envelope import wave_points

    if cfg is None:
        cfg = SpectrogramConfig()

    audio = load_audio(path)
    if task.cancelled:
        return None
    samples = audio.samples if audio.rate == cfg.rate else resample(audio.samples, audio.rate, cfg.rate)
    if task.cancelled:
        return None
    spec = spectrogram(samples, cfg)
    return {"path": path, "audio": audio, "spec": spec, "cfg": cfg,
            "wave": wave_points(audio.samples, audio.rate)}
