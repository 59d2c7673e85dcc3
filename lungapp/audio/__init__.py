"""Audio in and out: decoding files (:mod:`lungapp.audio.decode`), and, in their own
modules, capture and the crash-safe recorder. Kept light: importing this package does
not import sounddevice (capture modules import it themselves)."""

from lungapp.audio.decode import (  # noqa: F401
    AUDIO_EXTENSIONS,
    MAX_RATE,
    MIN_RATE,
    Audio,
    AudioInfo,
    AudioStream,
    audio_info,
    is_audio_path,
    load_audio,
    resample,
)
