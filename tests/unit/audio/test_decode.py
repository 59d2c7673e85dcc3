"""Tests for lungapp.audio.decode: every bad input gives an AudioError naming the file,
every supported format / bit depth / rate / channel count round-trips, resampling is
resample_poly's (block by block equals whole), long files need about the output's
memory, and random or truncated bytes never escape as anything but AudioError."""

from __future__ import annotations

import faulthandler
import json
import math
import os
import pickle
import pwd
import select
import shutil
import struct
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.signal import resample_poly

import lungapp.audio as audio_pkg
from lungapp.audio import (
    AUDIO_EXTENSIONS,
    Audio,
    AudioInfo,
    audio_info,
    is_audio_path,
    load_audio,
    resample,
)
from lungapp.audio.decode import _BLOCK_SAMPLES, AudioStream, _ChunkedResampler
from lungapp.errors import AudioError

# --- helpers ---------------------------------------------------------------------------

def tone(n, rate, freq=440.0, amp=0.5, phase=0.0):
    t = np.arange(n) / rate
    return amp * np.sin(2 * np.pi * freq * t + phase)


def peak_hz(x, rate):
    """Frequency (Hz) of the largest FFT bin of ``x`` (Hann window)."""
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spec))]


def write_int16(path, rate, channels=1, seconds=1.0, fmt=None):
    """Write int16 tones (a different one per channel); return the exact expected mono
    float32 signal (channel mean of int16 / 32768)."""
    n = int(round(seconds * rate))
    chans = [np.round(tone(n, rate, 300 + 100 * c, 0.3 + 0.1 * (c % 3)) * 32767) for c in range(channels)]
    data = np.stack(chans, axis=1).astype(np.int16)
    sf.write(path, data, rate, subtype="PCM_16", format=fmt)
    return (data.astype(np.float64) / 32768).mean(axis=1)


def expect_error(path, *, fragment, func=load_audio, **kw):
    """Call func(path) and require an AudioError whose message is "<path>: <problem>"
    with ``fragment`` in the problem."""
    with pytest.raises(AudioError) as info:
        func(path, **kw)
    err = info.value
    assert type(err) is AudioError
    assert str(err).startswith(f"{os.fspath(path)}: "), str(err)
    assert fragment in err.problem, err.problem
    return err


# --- bad input -------------------------------------------------------------------------

@pytest.mark.parametrize("func", [load_audio, audio_info])
def test_missing_file(tmp_path, func):
    expect_error(tmp_path / "nope.wav", fragment="file not found", func=func)


@pytest.mark.parametrize("func", [load_audio, audio_info])
def test_parent_is_a_file(tmp_path, func):
    (tmp_path / "a.wav").write_bytes(b"x")
    expect_error(tmp_path / "a.wav" / "b.wav", fragment="file not found", func=func)


@pytest.mark.parametrize("func", [load_audio, audio_info])
def test_directory(tmp_path, func):
    d = tmp_path / "folder.wav"
    d.mkdir()
    expect_error(d, fragment="is a folder", func=func)


@pytest.mark.parametrize("func", [load_audio, audio_info])
def test_fifo_is_refused_without_blocking(tmp_path, func):
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    expect_error(fifo, fragment="not a regular file", func=func)


@pytest.mark.parametrize("func", [load_audio, audio_info])
def test_empty_file(tmp_path, func):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    expect_error(p, fragment="empty (0 bytes)", func=func)


def _run_as_nobody(func, *args):
    """Run func(*args) in a forked child whose uid is 'nobody' (root reads every file,
    so a permission test must drop root). Returns ('ok', repr) or ('error', type, str)."""
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no 'nobody' user to drop root privileges to")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop root, call, report, exit without running any cleanup
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            try:
                func(*args)
                result = ("ok", "")
            except BaseException as e:  # noqa: BLE001 - reported to the parent
                result = ("error", type(e).__name__, str(e))
            os.write(w, pickle.dumps(result))
        finally:
            os._exit(0)
    os.close(w)
    try:
        ready, _, _ = select.select([r], [], [], 60)
        data = os.read(r, 1 << 16) if ready else b""
    finally:
        os.close(r)
        if not data:
            os.kill(pid, 9)
        os.waitpid(pid, 0)
    assert data, "the unprivileged child did not answer within 60 s"
    return pickle.loads(data)


@pytest.fixture
def reachable_dir():
    """A fresh folder that any user may enter (tmp_path's parents are private to their
    owner, so a process dropped to 'nobody' could not even reach a file there)."""
    d = Path(tempfile.mkdtemp(prefix="lungapp_perm_"))
    os.chmod(d, 0o711)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("func", [load_audio, audio_info])
def test_no_permission(reachable_dir, func):
    p = reachable_dir / "locked.wav"
    write_int16(p, 8000)
    os.chmod(p, 0)
    if os.geteuid() != 0:
        expect_error(p, fragment="no permission to read this file", func=func)
        return
    result = _run_as_nobody(func, str(p))
    assert result[0] == "error" and result[1] == "AudioError", result
    assert result[2].startswith(f"{p}: ") and "no permission to read this file" in result[2], result


def test_no_permission_on_parent_folder(reachable_dir):
    if os.geteuid() != 0:
        pytest.skip("covered by test_no_permission when not root")
    p = reachable_dir / "private" / "a.wav"
    p.parent.mkdir()
    write_int16(p, 8000)
    os.chmod(p.parent, 0o700)
    result = _run_as_nobody(load_audio, str(p))
    assert result[:2] == ("error", "AudioError"), result
    assert "no permission to read this file (or a folder in its path)" in result[2], result


def _valid_bytes(tmp_path, fmt, subtype, ext, seconds=1.0, rate=8000):
    p = tmp_path / f"valid.{ext}"
    sf.write(p, tone(int(seconds * rate), rate, 500).astype(np.float32), rate, format=fmt, subtype=subtype)
    return p.read_bytes()


@pytest.mark.parametrize("fmt,subtype,ext,cut,kind", [
    ("WAV", "PCM_16", "wav", 12, "WAV"),
    ("WAV", "PCM_16", "wav", 30, "WAV"),
    ("FLAC", "PCM_16", "flac", 12, "FLAC"),
    ("FLAC", "PCM_16", "flac", 30, "FLAC"),
    ("OGG", "VORBIS", "ogg", 100, "OGG"),
])
@pytest.mark.parametrize("func", [load_audio, audio_info])
def test_truncated_header(tmp_path, fmt, subtype, ext, cut, kind, func):
    data = _valid_bytes(tmp_path, fmt, subtype, ext)
    p = tmp_path / f"cut.{ext}"
    p.write_bytes(data[:cut])
    expect_error(p, fragment=f"truncated, corrupt or unsupported {kind} file", func=func)


def test_truncated_flac_data_returns_what_decodes(tmp_path):
    # A FLAC cut mid-data decodes up to the cut (lossless: those samples are exact), and
    # says it is truncated, as a cut WAV does; it was refused whole, "from its start".
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(3 * 8000)).astype(np.float32)  # noise: compresses little
    full = tmp_path / "full.flac"
    sf.write(full, x, 8000, subtype="PCM_16")
    exact = sf.read(full, dtype="float32")[0]
    data = full.read_bytes()
    p = tmp_path / "cut.flac"
    p.write_bytes(data[: len(data) // 2])
    a = load_audio(p)
    assert 0.5 < a.duration_s < 2.0 and a.declared_duration_s == pytest.approx(3.0)
    assert "truncated: the header says 3.0 s" in a.truncated
    assert np.array_equal(a.samples, exact[: len(a.samples)])
    with AudioStream(p) as stream:
        blocks = np.concatenate(list(stream))
    assert np.array_equal(blocks, a.samples) and stream.declared_duration_s == pytest.approx(3.0)
    # Damage in the middle of a longer file: the audio before it, the rest not read.
    y = (0.1 * rng.standard_normal(90 * 8000)).astype(np.float32)
    long = tmp_path / "long.flac"
    sf.write(long, y, 8000, subtype="PCM_16")
    data = bytearray(long.read_bytes())
    at = int(len(data) * 0.7)
    data[at: at + 3000] = b"\xde\xad" * 1500
    long.write_bytes(bytes(data))
    b = load_audio(long)
    assert 50 < b.duration_s < 65 and b.declared_duration_s == pytest.approx(90.0)
    assert np.abs(b.samples - y[: len(b.samples)]).max() < 1e-4  # 16-bit steps


def test_truncated_wav_data_returns_what_is_there(tmp_path):
    # A WAV cut mid-data (e.g. an interrupted copy) still decodes: its samples are
    # plain PCM, so what remains is exact.
    p = tmp_path / "a.wav"
    expected = write_int16(p, 8000, seconds=2)
    data = p.read_bytes()
    p.write_bytes(data[: 44 + 2 * 6000])
    a = load_audio(p)
    np.testing.assert_array_equal(a.samples, expected[:6000].astype(np.float32))


def test_corrupt_header(tmp_path):
    p = tmp_path / "corrupt.wav"
    p.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + bytes(range(256)) * 4)
    expect_error(p, fragment="truncated, corrupt or unsupported WAV file")


def test_unsupported_wav_codec(tmp_path):
    # A well-formed RIFF/WAVE header with an unknown format tag (0x1234).
    fmt = struct.pack("<HHIIHH", 0x1234, 1, 8000, 16000, 2, 16)
    data = b"\x00\x01" * 4000
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    p = tmp_path / "odd.wav"
    p.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    expect_error(p, fragment="unsupported WAV file")


@pytest.mark.parametrize("content", [
    b"just some notes, not a recording\n" * 40,
    b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8,
    b"%PDF-1.7\n" + b"0" * 3000,
    b"\x00\x00\x00\x20ftypM4A " + b"\x00" * 2000,  # an AAC/M4A file: not read by libsndfile
])
@pytest.mark.parametrize("func", [load_audio, audio_info])
def test_not_audio_renamed_wav(tmp_path, content, func):
    p = tmp_path / "renamed.wav"
    p.write_bytes(content)
    expect_error(p, fragment="not a supported audio file despite its .wav name", func=func)


def test_not_audio_without_audio_suffix(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_bytes(b"hello\n" * 100)
    err = expect_error(p, fragment="not a supported audio file")
    assert "despite" not in err.problem


@pytest.mark.parametrize("fmt,ext", [("WAV", "wav"), ("AIFF", "aiff"), ("W64", "w64"), ("CAF", "caf")])
@pytest.mark.parametrize("func", [load_audio, audio_info])
def test_zero_samples(tmp_path, fmt, ext, func):
    p = tmp_path / f"zero.{ext}"
    sf.write(p, np.zeros((0, 1), dtype=np.int16), 8000, format=fmt, subtype="PCM_16")
    assert p.stat().st_size > 0  # a header, no samples
    expect_error(p, fragment="contains no audio samples", func=func)


def test_wav_cut_right_after_its_header(tmp_path):
    p = tmp_path / "a.wav"
    write_int16(p, 8000)
    p.write_bytes(p.read_bytes()[:44])
    expect_error(p, fragment="contains no audio samples")


def _flac_streaminfo_only(total_samples):
    """A FLAC file holding only a STREAMINFO block (8 kHz, mono, 16-bit)."""
    bits = (8000 << 44) | (0 << 41) | (15 << 36) | total_samples
    info = struct.pack(">HH", 4096, 4096) + bytes(6) + bits.to_bytes(8, "big") + bytes(16)
    return b"fLaC" + bytes([0x80]) + len(info).to_bytes(3, "big") + info


@pytest.mark.parametrize("func", [load_audio, audio_info])
def test_flac_without_frames(tmp_path, func):
    # total_samples 0 means "unknown length" in FLAC; libsndfile then cannot tell the
    # end of the stream from an error, so such files are refused with that reason.
    p = tmp_path / "stream.flac"
    p.write_bytes(_flac_streaminfo_only(0))
    expect_error(p, fragment="does not give the audio's length", func=func)
    # Claims 16000 samples but holds none.
    p.write_bytes(_flac_streaminfo_only(16000))
    if func is load_audio:
        expect_error(p, fragment="truncated or corrupt from its start")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE"])
def test_nan_inf_samples(tmp_path, bad, subtype):
    x = tone(8000, 8000)
    x[5000] = bad
    p = tmp_path / "bad.wav"
    sf.write(p, x, 8000, subtype=subtype)
    err = expect_error(p, fragment="NaN or infinite")
    assert "0.625 s" in err.problem


def test_nan_in_one_channel_of_a_late_block(tmp_path):
    n = _BLOCK_SAMPLES  # stereo: 2 blocks of _BLOCK_SAMPLES // 2 frames
    x = np.zeros((n, 2), dtype=np.float32)
    x[n - 10, 1] = np.nan
    p = tmp_path / "bad.wav"
    sf.write(p, x, 48000, subtype="FLOAT")
    expect_error(p, fragment="NaN or infinite")
    expect_error(p, fragment="NaN or infinite", rate=8000)


def test_too_short(tmp_path):
    p = tmp_path / "short.wav"
    write_int16(p, 8000, seconds=0.2)
    err = expect_error(p, fragment="audio is 0.20 s long; at least 1.00 s is needed", min_seconds=1.0)
    assert err.path == str(p)
    # Just short enough to round to the minimum: more decimals keep the two apart.
    p2 = tmp_path / "almost.wav"
    write_int16(p2, 8000, seconds=0.999)
    expect_error(p2, fragment="audio is 0.999 s long; at least 1.000 s is needed", min_seconds=1.0)
    assert load_audio(p2, min_seconds=0.999).duration_s == pytest.approx(0.999)
    assert load_audio(p2, min_seconds=np.float32(0.5), max_seconds=np.float64(0.75)).duration_s == 0.75


@pytest.mark.parametrize("rate", [1000, 1999, 192001, 200000])
@pytest.mark.parametrize("func", [load_audio, audio_info])
def test_unsupported_rate(tmp_path, rate, func):
    p = tmp_path / "rate.wav"
    sf.write(p, np.zeros(2000, dtype=np.int16), rate, subtype="PCM_16")
    expect_error(p, fragment=f"unsupported sample rate {rate} Hz", func=func)


@pytest.mark.parametrize("kw", [
    {"rate": 0}, {"rate": -8000}, {"rate": 8000.5}, {"rate": 50}, {"rate": True},
    {"min_seconds": -1}, {"min_seconds": math.nan}, {"max_seconds": 0},
    {"max_seconds": math.inf}, {"min_seconds": 2.0, "max_seconds": 1.0},
])
def test_invalid_arguments_are_value_errors(tmp_path, kw):
    p = tmp_path / "a.wav"
    write_int16(p, 8000)
    with pytest.raises(ValueError):
        load_audio(p, **kw)


# --- formats, bit depths, rates, channels ------------------------------------------------

def _int_signal(n, bits, rng):
    """Random-phase tone quantised to ``bits``; returns (int array to write, expected
    float values, dtype used)."""
    x = tone(n, 8000, 700, 0.8, phase=rng.uniform(0, 6))
    if bits == 8:
        # libsndfile keeps the top 8 bits of int16 data for 8-bit files.
        q = (np.round(x * 127).astype(np.int16) * 256)
        return q, q / 32768.0
    if bits == 16:
        q = np.round(x * 32767).astype(np.int16)
        return q, q / 32768.0
    if bits == 24:
        q = (np.round(x * (2 ** 23 - 1)).astype(np.int32) * 256)
        return q, q / 2.0 ** 31
    q = np.round(x * (2 ** 31 - 1)).astype(np.int32)
    return q, q / 2.0 ** 31


@pytest.mark.parametrize("fmt,subtype,bits", [
    ("WAV", "PCM_U8", 8), ("WAV", "PCM_16", 16), ("WAV", "PCM_24", 24), ("WAV", "PCM_32", 32),
    ("FLAC", "PCM_S8", 8), ("FLAC", "PCM_16", 16), ("FLAC", "PCM_24", 24),
    ("AIFF", "PCM_16", 16), ("AIFF", "PCM_24", 24), ("W64", "PCM_16", 16), ("RF64", "PCM_32", 32),
])
def test_integer_formats_round_trip(tmp_path, fmt, subtype, bits):
    q, expected = _int_signal(4000, bits, np.random.default_rng(bits))
    p = tmp_path / f"x.{fmt.lower()}"
    sf.write(p, q, 8000, format=fmt, subtype=subtype)
    a = load_audio(p)
    assert isinstance(a, Audio)
    assert a.samples.dtype == np.float32 and a.samples.ndim == 1
    assert (a.rate, a.original_rate, a.channels, a.path) == (8000, 8000, 1, str(p))
    assert a.duration_s == pytest.approx(0.5)
    np.testing.assert_allclose(a.samples, expected, rtol=0, atol=1e-7)
    info = audio_info(p)
    assert isinstance(info, AudioInfo)
    assert (info.rate, info.channels, info.frames, info.format, info.subtype) == (8000, 1, 4000, fmt, subtype)


@pytest.mark.parametrize("subtype,dtype", [("FLOAT", np.float32), ("DOUBLE", np.float64)])
def test_float_wav_round_trip(tmp_path, subtype, dtype):
    x = tone(8000, 8000, 250, 0.9).astype(dtype)
    x[10] = 1.5  # float files may exceed full scale; nothing is clipped
    p = tmp_path / "f.wav"
    sf.write(p, x, 8000, subtype=subtype)
    a = load_audio(p)
    np.testing.assert_allclose(a.samples, x.astype(np.float32), rtol=0, atol=1e-7)
    assert a.samples[10] == pytest.approx(1.5)


@pytest.mark.parametrize("fmt,subtype,ext,rate", [
    ("OGG", "VORBIS", "ogg", 8000), ("OGG", "VORBIS", "oga", 44100),
    ("OGG", "OPUS", "opus", 48000), ("MP3", "MPEG_LAYER_III", "mp3", 8000),
    ("MP3", "MPEG_LAYER_III", "mp3", 44100),
])
def test_lossy_formats_keep_the_tone(tmp_path, fmt, subtype, ext, rate):
    x = tone(2 * rate, rate, 440, 0.5).astype(np.float32)
    p = tmp_path / f"lossy.{ext}"
    sf.write(p, x, rate, format=fmt, subtype=subtype)
    a = load_audio(p)
    assert a.original_rate == rate and a.channels == 1
    assert abs(a.duration_s - 2.0) < 0.1  # encoder delay / padding
    mid = a.samples[len(a.samples) // 4: 3 * len(a.samples) // 4]
    assert abs(peak_hz(mid, rate) - 440) < 2 * rate / len(mid)
    assert np.sqrt(np.mean(mid.astype(np.float64) ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.1)
    assert np.isfinite(a.samples).all()


@pytest.mark.parametrize("rate", [2000, 4000, 8000, 11025, 22050, 44100, 48000, 96000, 192000])
@pytest.mark.parametrize("fmt", ["WAV", "FLAC"])
def test_rates_round_trip(tmp_path, rate, fmt):
    p = tmp_path / f"r.{fmt.lower()}"
    expected = write_int16(p, rate, seconds=0.25, fmt=fmt)
    a = load_audio(p)
    assert a.rate == a.original_rate == rate
    np.testing.assert_array_equal(a.samples, expected.astype(np.float32))
    assert audio_info(p).duration_s == pytest.approx(0.25, abs=1 / rate)


@pytest.mark.parametrize("channels", [1, 2, 3, 6, 8])
def test_channels_are_averaged(tmp_path, channels):
    p = tmp_path / "multi.wav"
    expected = write_int16(p, 16000, channels=channels, seconds=0.5)
    a = load_audio(p)
    assert a.channels == channels
    np.testing.assert_allclose(a.samples, expected, rtol=0, atol=1e-7)


def test_stereo_flac_resampled_equals_resample_of_mixdown(tmp_path):
    # 48 kHz stereo, long enough for several decode blocks, loaded at 8 kHz.
    p = tmp_path / "s.flac"
    expected = write_int16(p, 48000, channels=2, seconds=8.0, fmt="FLAC")
    assert 2 * _BLOCK_SAMPLES // 2 < 8 * 48000
    a = load_audio(p, 8000)
    assert (a.rate, a.original_rate, a.channels) == (8000, 48000, 2)
    whole = resample_poly(expected, 1, 6)
    assert len(a.samples) == len(whole) == 64000
    np.testing.assert_allclose(a.samples, whole, rtol=0, atol=1e-6)
    assert a.duration_s == pytest.approx(8.0)


def test_max_seconds_reads_only_the_start(tmp_path):
    p = tmp_path / "long.wav"
    expected = write_int16(p, 8000, seconds=5.0)
    a = load_audio(p, max_seconds=1.5)
    assert a.duration_s == pytest.approx(1.5)
    np.testing.assert_array_equal(a.samples, expected[:12000].astype(np.float32))
    # Longer than the file: the whole file.
    assert load_audio(p, max_seconds=60).duration_s == pytest.approx(5.0)
    # With resampling: the start of the first 1.5 s, resampled.
    b = load_audio(p, 4000, max_seconds=1.5)
    assert len(b.samples) == 6000
    np.testing.assert_allclose(b.samples, resample_poly(expected[:12000], 1, 2), atol=1e-6)


def test_max_seconds_checked_against_min_seconds(tmp_path):
    p = tmp_path / "a.wav"
    write_int16(p, 8000, seconds=0.5)
    expect_error(p, fragment="audio is 0.50 s long; at least 1.00 s is needed",
                 min_seconds=1.0, max_seconds=3.0)


def test_path_types_and_extension_list(tmp_path):
    p = tmp_path / "Übung ärztlich.WAV"
    expected = write_int16(p, 8000)
    for arg in (p, str(p)):
        np.testing.assert_array_equal(load_audio(arg).samples, expected.astype(np.float32))
    assert is_audio_path(p) and is_audio_path("x.flac") and not is_audio_path("x.json")
    assert all(e.startswith(".") and e == e.lower() for e in AUDIO_EXTENSIONS)
    for e in (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif"):
        assert e in AUDIO_EXTENSIONS


def test_package_import_is_light():
    # lungapp.audio must not pull in sounddevice (PortAudio) just to decode files.
    import subprocess
    import sys
    code = "import sys, lungapp.audio; print('sounddevice' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr
    assert audio_pkg.load_audio is load_audio


# --- resampling ------------------------------------------------------------------------

@pytest.mark.parametrize("from_rate,to_rate", [
    (48000, 8000), (44100, 8000), (8000, 4000), (8000, 16000), (4000, 8000), (22050, 16000),
    (96000, 44100), (7919, 8000),
])
def test_resample_keeps_a_sines_frequency(from_rate, to_rate):
    x = tone(from_rate, from_rate, 1000.0)  # 1 s of 1 kHz (below every Nyquist here)
    y = resample(x, from_rate, to_rate)
    assert y.dtype == np.float32
    assert len(y) == math.ceil(len(x) * to_rate / from_rate)
    assert abs(peak_hz(y, to_rate) - 1000.0) <= to_rate / len(y)
    core = y[len(y) // 10: -len(y) // 10]
    assert np.sqrt(np.mean(core.astype(np.float64) ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_resample_removes_what_the_new_rate_cannot_hold():
    x = tone(48000, 48000, 6000.0)  # above the 4 kHz Nyquist of 8 kHz
    y = resample(x, 48000, 8000)
    assert np.sqrt(np.mean(y[800:-800].astype(np.float64) ** 2)) < 0.01


def test_resample_equals_resample_poly_and_validates():
    x = np.random.default_rng(1).standard_normal(10001)
    np.testing.assert_allclose(resample(x, 44100, 8000), resample_poly(x, 80, 441), atol=1e-6)
    same = resample(x.astype(np.float32), 8000, 8000)
    assert same.dtype == np.float32
    np.testing.assert_array_equal(same, x.astype(np.float32))
    for bad in [(x, 0, 8000), (x, 8000, -1), (x, 8000.0, 4000), (x.reshape(1, -1), 8000, 4000)]:
        with pytest.raises(ValueError):
            resample(*bad)


@pytest.mark.parametrize("from_rate,to_rate", [
    (48000, 8000), (44100, 8000), (8000, 48000), (8000, 44100), (16000, 8000), (7919, 8000),
])
def test_chunked_resampler_equals_whole(from_rate, to_rate):
    rng = np.random.default_rng(from_rate + to_rate)
    x = rng.standard_normal(30000)
    g = math.gcd(from_rate, to_rate)
    r = _ChunkedResampler(to_rate // g, from_rate // g)
    parts, i = [], 0
    sizes = [1, 1, 2, 7, 5000, 1, 3, 12000]
    while i < len(x):
        n = sizes.pop() if sizes else int(rng.integers(1, 6000))
        parts.append(r.push(x[i:i + n]))
        i += n
    parts.append(r.finish())
    y = np.concatenate(parts)
    whole = resample_poly(x, to_rate, from_rate)
    assert len(y) == len(whole)
    np.testing.assert_allclose(y, whole, rtol=0, atol=1e-9)


def test_chunked_resampler_short_and_empty_inputs():
    r = _ChunkedResampler(1, 6)
    assert len(r.finish()) == 0
    for n in (1, 5, 6, 7, 200):
        r = _ChunkedResampler(1, 6)
        x = np.arange(n, dtype=np.float64)
        y = np.concatenate([r.push(x), r.finish()])
        np.testing.assert_allclose(y, resample_poly(x, 1, 6), atol=1e-9)


# --- memory ------------------------------------------------------------------------------

def test_long_file_memory_stays_near_output_size(tmp_path):
    """3 minutes of 48 kHz stereo (int16 WAV, 35 MB) loaded at 8 kHz: a whole-file decode
    would need >= 69 MB of float32 (138 MB in float64); block-wise needs ~the 5.8 MB
    output plus a few MB of blocks."""
    rate, seconds = 48000, 180
    p = tmp_path / "long.wav"
    with sf.SoundFile(p, "w", rate, 2, "PCM_16") as f:
        block = (np.stack([tone(rate, rate, 440), tone(rate, rate, 550)], axis=1) * 32767).astype(np.int16)
        for _ in range(seconds):
            f.write(block)
    out_bytes = seconds * 8000 * 4
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        a = load_audio(p, 8000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(a.samples) == seconds * 8000
    assert peak < out_bytes + 12 * 2 ** 20, f"peak {peak / 2**20:.1f} MiB for a {out_bytes / 2**20:.1f} MiB output"


# --- random and truncated bytes ------------------------------------------------------

@pytest.fixture
def hang_guard():
    """Kill the test process (with a traceback) if the decoder hangs inside C code,
    where hypothesis' deadline cannot interrupt it."""
    faulthandler.dump_traceback_later(300, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def _decode_or_audio_error(path):
    try:
        a = load_audio(path, min_seconds=0.0)
    except AudioError as e:
        assert str(e).startswith(f"{path}: ") and e.problem
        return
    assert a.samples.dtype == np.float32 and a.samples.ndim == 1 and len(a.samples) > 0
    assert np.isfinite(a.samples).all()
    assert 2000 <= a.rate <= 192000 and a.channels >= 1


_FUZZ = settings(max_examples=150, deadline=5000,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@_FUZZ
@given(data=st.binary(min_size=0, max_size=4096), ext=st.sampled_from(["wav", "flac", "ogg", "mp3", "aiff", "bin"]))
def test_random_bytes_never_escape(tmp_path, hang_guard, data, ext):
    p = tmp_path / f"random.{ext}"
    p.write_bytes(data)
    _decode_or_audio_error(p)
    try:
        audio_info(p)
    except AudioError:
        pass


@_FUZZ
@given(data=st.binary(min_size=1, max_size=2048), magic=st.sampled_from(
    [b"RIFF\x00\x10\x00\x00WAVEfmt ", b"fLaC\x00\x00\x00\x22", b"OggS\x00\x02", b"ID3\x04\x00", b"\xff\xfb\x90\x64",
     b"FORM\x00\x00\x10\x00AIFF", b"caff\x00\x01"]))
def test_random_bytes_after_a_real_magic_never_escape(tmp_path, hang_guard, data, magic):
    p = tmp_path / "magic.wav"
    p.write_bytes(magic + data)
    _decode_or_audio_error(p)


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("valid")
    out = {}
    x = tone(4000, 8000, 500).astype(np.float32)
    stereo = np.stack([x, -x], axis=1)
    for name, fmt, subtype, data in [
        ("a.wav", "WAV", "PCM_16", x), ("b.wav", "WAV", "FLOAT", stereo),
        ("c.flac", "FLAC", "PCM_16", x), ("d.flac", "FLAC", "PCM_24", stereo),
        ("e.ogg", "OGG", "VORBIS", x), ("f.mp3", "MP3", "MPEG_LAYER_III", x),
    ]:
        sf.write(d / name, data, 8000, format=fmt, subtype=subtype)
        out[name] = (d / name).read_bytes()
    return out


@_FUZZ
@given(st.data())
def test_truncated_and_corrupted_valid_files_never_escape(tmp_path, hang_guard, valid_files, data):
    name = data.draw(st.sampled_from(sorted(valid_files)))
    raw = bytearray(valid_files[name])
    cut = data.draw(st.integers(0, len(raw)))
    raw = raw[:cut]
    if raw:
        for _ in range(data.draw(st.integers(0, 8))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    p = tmp_path / name
    p.write_bytes(bytes(raw))
    _decode_or_audio_error(p)


# --- real data -------------------------------------------------------------------------

@pytest.mark.data
def test_sprsound_flacs_decode(sprsound_dir):
    files = (sorted((sprsound_dir / "train").glob("*.flac"))[:4]
             + sorted((sprsound_dir / "intra_test").glob("*.flac"))[:2])
    assert files
    for p in files:
        info = audio_info(p)
        assert (info.rate, info.channels, info.format, info.subtype) == (8000, 1, "FLAC", "PCM_16")
        a = load_audio(p)
        assert (a.rate, a.original_rate, a.channels) == (8000, 8000, 1)
        assert len(a.samples) == info.frames and a.duration_s == pytest.approx(info.duration_s)
        assert 0.3 <= a.duration_s <= 15.5  # the dataset's documented range
        assert np.isfinite(a.samples).all() and np.abs(a.samples).max() <= 1.0
        # 16-bit: every sample is a multiple of 1 / 32768.
        q = a.samples.astype(np.float64) * 32768
        np.testing.assert_array_equal(q, np.round(q))
        annotation = json.loads(p.with_suffix(".json").read_text())
        assert "record_annotation" in annotation
        b = load_audio(p, 4000)
        assert b.rate == 4000 and len(b.samples) == math.ceil(len(a.samples) / 2)
        np.testing.assert_allclose(b.samples, resample(a.samples, 8000, 4000), atol=1e-6)


# --- truncated files are read, and said to be truncated --------------------------------

@pytest.mark.parametrize("subtype,channels", [("PCM_16", 1), ("PCM_24", 2), ("FLOAT", 1)])
def test_a_truncated_wav_says_so(tmp_path, subtype, channels):
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (15 * 8000, channels)).astype(np.float32)
    full = tmp_path / "full.wav"
    sf.write(full, x, 8000, subtype=subtype)
    data = full.read_bytes()
    cut = tmp_path / "cut.wav"
    block = sf.info(full).channels * {"PCM_16": 2, "PCM_24": 3, "FLOAT": 4}[subtype]
    header = len(data) - 15 * 8000 * block
    cut.write_bytes(data[: header + 5 * 8000 * block])
    a = load_audio(cut)
    assert a.duration_s == pytest.approx(5.0) and a.declared_duration_s == pytest.approx(15.0)
    assert a.truncated == "truncated: the header says 15.0 s, the file holds 5.0 s"
    whole = load_audio(full)
    assert whole.declared_duration_s is None and whole.truncated == ""
    assert load_audio(cut, max_seconds=2.0).truncated == ""  # only the start was asked for


def test_a_wav_whose_header_does_not_give_its_size_is_not_called_truncated(tmp_path):
    f = tmp_path / "stream.wav"
    sf.write(f, np.zeros(8000, dtype=np.float32) + 0.1, 8000, subtype="PCM_16")
    data = bytearray(f.read_bytes())
    i = data.index(b"data")
    data[i + 4: i + 8] = b"\xff\xff\xff\xff"  # a recorder that never went back to fix the size
    f.write_bytes(bytes(data))
    assert load_audio(f).declared_duration_s is None


@pytest.mark.parametrize("name,content", [
    ("renamed.wav", b"just some notes, not a recording\n" * 40),
    ("noise.mp3", bytes(range(256)) * 4),
    ("broken.flac", b"fLaC\x00\x00\x00\x22" + b"garbage" * 10),
    ("bad.ogg", b"OggS"),
])
@pytest.mark.parametrize("func", [load_audio, audio_info])
def test_errors_never_name_the_decoding_library(tmp_path, name, content, func):
    """Issue #29: a user is told what is wrong with the file, not "libsndfile"."""
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(AudioError) as info:
        func(p)
    assert "libsndfile" not in str(info.value)
