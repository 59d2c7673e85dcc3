"""Decode + spectrogram speed, decoder memory on 1-hour files, and the cost of the
streaming spectrogram against the batch one. Prints tables; asserts nothing.

    .venv/bin/python benchmarks/bench_dsp.py            # full run (1-hour files: ~2-4 min)
    .venv/bin/python benchmarks/bench_dsp.py --quick    # 10-minute "long" files instead

Test files are generated in a temporary folder (a tone + noise, so FLAC compresses
like real recordings do, not like silence) and deleted afterwards. Memory is measured in
a fresh child process as the growth of its peak resident set size (VmHWM) during
``load_audio``, so libsndfile's own buffers count too.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import soundfile as sf

from lungapp.audio import load_audio
from lungapp.dsp.spectrogram import SpectrogramConfig, StreamingSpectrogram, spectrogram

MODEL_RATE = 8000


def write_test_file(path: Path, rate: int, channels: int, seconds: float, fmt: str, subtype: str) -> None:
    """A tone + noise at -12 dBFS, written in 10-s blocks (never all in memory)."""
    rng = np.random.default_rng(0)
    block = 10 * rate
    with sf.SoundFile(path, "w", rate, channels, subtype, format=fmt) as f:
        done = 0
        total = int(seconds * rate)
        while done < total:
            n = min(block, total - done)
            t = (done + np.arange(n)) / rate
            tone = 0.2 * np.sin(2 * np.pi * 300 * t)
            data = np.stack([tone + 0.05 * rng.standard_normal(n) for _ in range(channels)], axis=1)
            f.write(data.astype(np.float32))
            done += n


def best_of(fn, repeats=3):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def bench_decode_spectrogram(tmp: Path, seconds: float):
    cfg = SpectrogramConfig()
    cases = [
        ("8 kHz mono FLAC -> 8 kHz", 8000, 1, "FLAC", "PCM_16", "flac"),
        ("44.1 kHz stereo WAV -> 8 kHz", 44100, 2, "WAV", "PCM_16", "wav"),
        ("48 kHz mono FLAC -> 8 kHz", 48000, 1, "FLAC", "PCM_16", "flac"),
        ("48 kHz stereo FLAC -> 8 kHz", 48000, 2, "FLAC", "PCM_24", "flac"),
    ]
    rows = []
    for name, rate, ch, fmt, sub, ext in cases:
        p = tmp / f"speed_{rate}_{ch}.{ext}"
        write_test_file(p, rate, ch, seconds, fmt, sub)
        t_dec, audio = best_of(partial(load_audio, p, MODEL_RATE))
        t_spec, spec = best_of(partial(spectrogram, audio.samples, cfg))
        minutes = seconds / 60
        rows.append((name, 1000 * t_dec / minutes, 1000 * t_spec / minutes,
                     1000 * (t_dec + t_spec) / minutes, seconds / (t_dec + t_spec)))
        p.unlink()
    print(f"\nDecode + spectrogram ({seconds / 60:.0f}-min files, best of 3; spectrogram: "
          f"{cfg.win_length}-sample window, hop {cfg.hop_length}, {cfg.scale}, at {MODEL_RATE} Hz)")
    print(f"{'file':32s} {'decode ms/min':>14s} {'spectro ms/min':>15s} {'total ms/min':>13s} {'x real time':>12s}")
    for name, d, s, t, x in rows:
        print(f"{name:32s} {d:14.1f} {s:15.1f} {t:13.1f} {x:12.0f}")


def _peak_rss() -> int:
    """This process's peak resident set size in bytes (Linux VmHWM; ru_maxrss elsewhere,
    which on Linux would include the parent's peak from before exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _child_memory(path: str, rate: int | None) -> None:
    """Child process: print JSON with the peak-RSS growth while loading ``path``."""
    try:  # reset the peak to the current RSS (Linux >= 4.0), so import peaks do not hide ours
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    before = _peak_rss()
    t0 = time.perf_counter()
    a = load_audio(path, rate)
    elapsed = time.perf_counter() - t0
    after = _peak_rss()
    print(json.dumps({"peak_growth": after - before, "output": a.samples.nbytes,
                      "seconds": elapsed, "duration": a.duration_s}))


def bench_memory(tmp: Path, seconds: float):
    cases = [
        ("8 kHz mono FLAC at 8 kHz", 8000, 1, "FLAC", "PCM_16", "flac", MODEL_RATE),
        ("48 kHz stereo FLAC at 8 kHz", 48000, 2, "FLAC", "PCM_16", "flac", MODEL_RATE),
        ("48 kHz stereo WAV at 8 kHz", 48000, 2, "WAV", "PCM_16", "wav", MODEL_RATE),
    ]
    rows = []
    for name, rate, ch, fmt, sub, ext, to in cases:
        p = tmp / f"mem_{rate}_{ch}.{ext}"
        t0 = time.perf_counter()
        write_test_file(p, rate, ch, seconds, fmt, sub)
        t_write = time.perf_counter() - t0
        out = subprocess.run([sys.executable, __file__, "--child-memory", str(p), str(to)],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        naive = rate * seconds * ch * 8  # soundfile.read of the whole file as float64
        rows.append((name, p.stat().st_size, r["output"], r["peak_growth"], naive, r["seconds"], t_write))
        p.unlink()
    mib = 2 ** 20
    print(f"\nDecoder peak memory, {seconds / 60:.0f}-minute files "
          "(growth of a fresh process's peak RSS during load_audio)")
    print(f"{'file':30s} {'file MiB':>9s} {'output MiB':>11s} {'peak MiB':>9s} {'peak/output':>12s} "
          f"{'whole-file f64 MiB':>19s} {'load s':>7s}")
    for name, size, outb, peak, naive, secs, _ in rows:
        print(f"{name:30s} {size / mib:9.0f} {outb / mib:11.0f} {peak / mib:9.0f} {peak / outb:12.2f} "
              f"{naive / mib:19.0f} {secs:7.1f}")


def bench_streaming(seconds: float = 60.0):
    rows = []
    configs = [("linear 256/64", SpectrogramConfig()),
               ("mel 64, 256/64", SpectrogramConfig(scale="mel")),
               ("linear 512/128 @16k", SpectrogramConfig(rate=16000, win_length=512, hop_length=128, n_fft=512))]
    for name, cfg in configs:
        x = np.random.default_rng(0).standard_normal(int(seconds * cfg.rate)) * 0.1
        block = cfg.rate // 100  # 10 ms
        t_batch, ref = best_of(partial(spectrogram, x, cfg))

        def run_stream(x=x, cfg=cfg, block=block):
            s = StreamingSpectrogram(cfg)
            return np.concatenate([s.push(x[i:i + block]) for i in range(0, len(x), block)])

        t_stream, got = best_of(run_stream)
        assert np.allclose(got, ref, atol=1e-5)  # the benchmark measures equal work
        rows.append((name, 1000 * t_batch / seconds * 60, 1000 * t_stream / seconds * 60,
                     t_stream / t_batch, 1e6 * t_stream / (len(x) / block), seconds / t_stream))
    print(f"\nStreaming (10 ms blocks) vs batch spectrogram, {seconds:.0f} s of audio, best of 3")
    print(f"{'config':22s} {'batch ms/min':>13s} {'stream ms/min':>14s} {'stream/batch':>13s} "
          f"{'us per block':>13s} {'stream x real time':>19s}")
    for name, b, s, ratio, per_block, rt in rows:
        print(f"{name:22s} {b:13.1f} {s:14.1f} {ratio:13.1f} {per_block:13.1f} {rt:19.0f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10-minute memory files instead of 1-hour")
    ap.add_argument("--child-memory", nargs=2, metavar=("PATH", "RATE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_memory:
        _child_memory(args.child_memory[0], int(args.child_memory[1]))
        return
    print(f"lungapp DSP benchmark  (numpy {np.__version__}, soundfile {sf.__version__}, "
          f"libsndfile {sf.__libsndfile_version__}, {os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory(prefix="lungapp_bench_") as d:
        tmp = Path(d)
        bench_decode_spectrogram(tmp, seconds=300.0)
        bench_streaming()
        bench_memory(tmp, seconds=600.0 if args.quick else 3600.0)


if __name__ == "__main__":
    main()
