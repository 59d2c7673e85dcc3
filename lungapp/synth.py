"""Synthetic lung sounds: example recordings the project generates itself.

These are *not* recordings of patients. They let a new user try the app without a
stethoscope, and they give tests signals whose content is known. The physics is a
textbook caricature, good enough to show what the sounds look like on a spectrogram:

* **normal** breath sounds: band-limited noise (about 100-800 Hz, falling steeply above
  250 Hz, as at the chest wall)
  shaped by a breathing envelope at 20-30 breaths a minute: a louder inspiration (about
  40 % of the cycle), a softer, decaying expiration, and a short pause in which the
  noise falls to ENV_FLOOR (35 %) of its inspiratory level, as at the chest wall, where
  breath sounds never stop entirely. (With a silent pause, a model trained on SPRSound
  read the rhythmic noise as a continuous adventitious sound.)
* **wheeze** (a continuous adventitious sound, CAS): tonal components of 100-1000 Hz
  (a fundamental of 200-600 Hz with two weaker harmonics) lasting 250-800 ms with a slight
  pitch glide, mostly in expiration.
* **crackles** (discontinuous, DAS): explosive transients shaped after the crackle
  literature (see CRACKLE_SHAPES): fine crackles (initial deflection 0.5-0.8 ms, two
  cycles in 4-6 ms, 6-14 late in an inspiration) or coarse ones (1.2-1.8 ms, 12-18 ms,
  2-5 early in an inspiration), each peaking 3-6 times the inspiratory breath noise's RMS.
  The bundled model does not detect these synthetic crackles (it answers Normal for the
  crackles example and CAS for the mixed one); the examples' README says so, and
  tests/unit/test_synth.py checks that it stays true.

The mix passes a gentle low-pass at 1 kHz (a stethoscope's roll-off) and is scaled to
-40 dBFS RMS, about the level of SPRSound's recordings (median -43 dBFS).

Every signal comes with SPRSound-style event annotations: one event per breathing cycle,
``{"start": ms, "end": ms, "type": ...}`` with the type ``Normal``, ``Wheeze``,
``Fine Crackle`` or ``Wheeze+Crackle``.

Regenerate the bundled examples with::

    python -m lungapp.synth resources/examples
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import numpy as np
from scipy.signal import butter, sosfiltfilt

KINDS = ("normal", "wheeze", "crackle", "wheeze+crackle")
RECORD_LABEL = {"normal": "Normal", "wheeze": "CAS", "crackle": "DAS", "wheeze+crackle": "CAS & DAS"}
EXAMPLE_FILES = {
    "normal": "synthetic_normal",
    "wheeze": "synthetic_wheeze",
    "crackle": "synthetic_crackles",
    "wheeze+crackle": "synthetic_wheeze_and_crackles",
}
RMS_DBFS = -40.0  # output level, dB re full scale (full scale = 1)
MAX_PEAK = 0.9
ENV_FLOOR = 0.35  # breath-noise level between breaths, relative to full inspiration


def _breath_noise(rng, n: int, rate: int) -> np.ndarray:
    """Unit-RMS noise band-limited to ~100-800 Hz with a gently falling spectrum."""
    white = rng.standard_normal(n + 2 * rate)  # margin so filter edges are cut off
    band = sosfiltfilt(butter(4, [100, min(800, 0.45 * rate)], btype="band", fs=rate, output="sos"), white)
    low = sosfiltfilt(butter(2, min(250, 0.45 * rate), btype="low", fs=rate, output="sos"), band)
    y = (0.3 * band + 1.0 * low)[rate: rate + n]
    return y / (np.sqrt(np.mean(y * y)) + 1e-12)


def _cycles(rng, seconds: float):
    """Breathing cycles [(start, insp_end, exp_end)] in seconds covering the signal."""
    period = 60.0 / rng.uniform(20.0, 30.0)
    t = -rng.uniform(0.0, period)  # the recording starts somewhere in a cycle
    out = []
    while t < seconds:
        p = period * rng.uniform(0.93, 1.07)
        out.append((t, t + 0.4 * p, t + 0.92 * p))
        t += p
    return out


def _envelope(cycles, n: int, rate: int) -> np.ndarray:
    tt = np.arange(n) / rate
    env = np.zeros(n)
    for start, insp_end, exp_end in cycles:
        m = (tt >= start) & (tt < insp_end)
        env[m] = np.sin(np.pi * (tt[m] - start) / (insp_end - start)) ** 0.8
        m = (tt >= insp_end) & (tt < exp_end)
        u = (tt[m] - insp_end) / (exp_end - insp_end)
        env[m] = 0.55 * np.sin(np.pi * u) ** 0.7 * (1.0 - 0.4 * u)
    return ENV_FLOOR + (1.0 - ENV_FLOOR) * env


def _wheeze(rng, dur: float, rate: int) -> np.ndarray:
    """One wheeze: a gliding tone with two harmonics under a smooth envelope."""
    k = int(dur * rate)
    u = np.arange(k) / k
    f0 = rng.uniform(200.0, 600.0)
    glide = rng.uniform(-0.08, 0.08)
    freq = f0 * (1.0 + glide * u)
    phase = 2 * np.pi * np.cumsum(freq) / rate
    tone = np.sin(phase) + 0.35 * np.sin(2 * phase + 0.3) + 0.12 * np.sin(3 * phase + 1.1)
    env = np.sin(np.pi * u) ** 0.5
    return env * tone / 1.1


# Crackle waveforms after the literature's measures (CORSA: Sovijärvi et al., Eur Respir
# Rev 2000; Hoevers & Loudon's crackle model): an explosive transient whose first
# deflection is the sharpest and whose next cycles lengthen as it decays. Fine crackles:
# initial deflection width (IDW) about 0.5-0.8 ms, two-cycle duration (2CD) about 4-6 ms,
# many, late in inspiration; coarse crackles: IDW about 1.2-1.8 ms, 2CD about 12-18 ms,
# fewer, early in inspiration.
CRACKLE_SHAPES = {"fine": ((0.5e-3, 0.8e-3), (4e-3, 6e-3)),
                  "coarse": ((1.2e-3, 1.8e-3), (12e-3, 18e-3))}
CRACKLE_AMP = (3.0, 6.0)   # peak, relative to the breath noise's inspiratory RMS
CRACKLES_PER_INSPIRATION = {"fine": (6, 14), "coarse": (2, 5)}


def _crackle(rng, rate: int, kind: str = "fine") -> np.ndarray:
    """One crackle of ``kind`` ("fine" or "coarse"), peak 1: alternating half-sine lobes,
    the first IDW long and each next one longer by a constant ratio, chosen so that the
    first four lobes (two cycles) last 2CD, under an exponential decay."""
    (idw_lo, idw_hi), (cd_lo, cd_hi) = CRACKLE_SHAPES[kind]
    idw, two_cd = rng.uniform(idw_lo, idw_hi), rng.uniform(cd_lo, cd_hi)
    ratio = _lobe_ratio(two_cd / idw)
    lobes, t0 = [], 0.0
    for k in range(8):
        width = idw * ratio ** k
        n = max(1, int(round((t0 + width) * rate)) - int(round(t0 * rate)))
        lobes.append((-1.0) ** k * np.exp(-t0 / (two_cd / 1.5)) * np.sin(np.pi * (np.arange(n) + 0.5) / n))
        t0 += width
    wave = np.concatenate(lobes)
    return wave / (np.max(np.abs(wave)) + 1e-12) * rng.choice([-1.0, 1.0])


def _lobe_ratio(span: float) -> float:
    """r with 1 + r + r^2 + r^3 = ``span`` (four lobes, the first of length 1), r >= 1."""
    lo, hi = 1.0, 4.0
    for _ in range(60):   # bisection: the sum grows with r
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if 1 + mid + mid ** 2 + mid ** 3 < span else (lo, mid)
    return lo


def _add_crackles(x: np.ndarray, rng, start: float, insp_end: float, rate: int) -> bool:
    """Crackles in one inspiration (fine late, coarse early); True when any was placed."""
    kind = "fine" if rng.random() < 0.7 else "coarse"
    lo, hi = CRACKLES_PER_INSPIRATION[kind]
    count = rng.integers(lo, hi + 1)
    where = (0.45, 0.95) if kind == "fine" else (0.05, 0.45)
    placed = 0
    for tc in start + rng.uniform(*where, count) * (insp_end - start):
        i0 = int(tc * rate)
        c = rng.uniform(*CRACKLE_AMP) * _crackle(rng, rate, kind)
        if i0 >= 0 and i0 + len(c) <= len(x):
            x[i0: i0 + len(c)] += c
            placed += 1
    return placed > 0


def render(kind: str, seconds: float = 15.0, rate: int = 8000, seed: int = 0):
    """Signal and SPRSound-style events: ``(samples float32, record_label, events)``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if not (seconds > 0 and int(rate) >= 2000):
        raise ValueError(f"need seconds > 0 and rate >= 2000 Hz (got {seconds}, {rate})")
    rate = int(rate)
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    n = int(round(seconds * rate))
    cycles = _cycles(rng, seconds)
    x = _envelope(cycles, n, rate) * _breath_noise(rng, n, rate)
    hiss = sosfiltfilt(butter(2, min(1500, 0.45 * rate), btype="low", fs=rate, output="sos"),
                       rng.standard_normal(n))
    x += 0.02 * hiss / (np.sqrt(np.mean(hiss * hiss)) + 1e-12)  # faint background noise
    has_wheeze = "wheeze" in kind
    has_crackle = "crackle" in kind
    events = []
    for start, insp_end, exp_end in cycles:
        wheeze_here = crackle_here = False
        if has_wheeze and rng.random() < 0.85:
            # mostly in expiration; occasionally late inspiration
            dur = rng.uniform(0.25, 0.8)
            if rng.random() < 0.8:
                t0 = insp_end + rng.uniform(0.05, 0.35) * (exp_end - insp_end)
            else:
                t0 = start + rng.uniform(0.3, 0.6) * (insp_end - start)
            i0 = int(t0 * rate)
            w = rng.uniform(0.9, 1.4) * _wheeze(rng, dur, rate)
            lo, hi = max(0, i0), min(n, i0 + len(w))
            if hi - lo > 0.1 * rate:
                x[lo:hi] += w[lo - i0: hi - i0]
                wheeze_here = True
        if has_crackle:
            crackle_here = _add_crackles(x, rng, start, insp_end, rate)
        ev_start, ev_end = max(0.0, start), min(seconds, exp_end)
        if ev_end - ev_start < 0.3:
            continue
        etype = ("Wheeze+Crackle" if wheeze_here and crackle_here else "Wheeze" if wheeze_here
                 else "Fine Crackle" if crackle_here else "Normal")
        events.append({"start": int(round(ev_start * 1000)), "end": int(round(ev_end * 1000)), "type": etype})
    # a stethoscope's gentle roll-off above 1 kHz
    x = sosfiltfilt(butter(2, min(1000, 0.45 * rate), btype="low", fs=rate, output="sos"), x)
    # a typical stethoscope level (SPRSound's median RMS is about -43 dBFS), never clipped
    x *= min(10 ** (RMS_DBFS / 20) / (np.sqrt(np.mean(x * x)) + 1e-12), MAX_PEAK / (np.max(np.abs(x)) + 1e-12))
    return x.astype(np.float32), RECORD_LABEL[kind], events


def generate(kind: str, seconds: float = 15.0, rate: int = 8000, seed: int = 0) -> np.ndarray:
    """A synthetic recording of ``kind`` ("normal", "wheeze", "crackle", "wheeze+crackle"):
    mono float32 at about -40 dBFS RMS (peak <= 0.9), deterministic for a given seed."""
    return render(kind, seconds, rate, seed)[0]


def write_examples(folder, seconds: float = 15.0, rate: int = 8000, seed: int = 0) -> list[Path]:
    """Write the four examples (16-bit WAV + SPRSound-style JSON sidecar) and a README."""
    import soundfile as sf

    from lungapp.fsutil import atomic_write_bytes, atomic_write_text

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, stem in EXAMPLE_FILES.items():
        x, label, events = render(kind, seconds, rate, seed)
        buf = io.BytesIO()
        sf.write(buf, x, rate, format="WAV", subtype="PCM_16")
        wav = folder / f"{stem}.wav"
        atomic_write_bytes(wav, buf.getvalue())
        meta = {"record_annotation": label, "event_annotation": events, "synthetic": True,
                "generator": "lungapp.synth", "kind": kind, "seed": seed, "seconds": seconds,
                "sample_rate": rate,
                "note": "Synthetic signal made by lungapp.synth, not a recording of a patient."
                + (" " + CRACKLE_NOTE if "crackle" in kind else "")}
        atomic_write_text(folder / f"{stem}.json", json.dumps(meta, indent=1) + "\n")
        written += [wav, folder / f"{stem}.json"]
    atomic_write_text(folder / "README.md", _README)
    written.append(folder / "README.md")
    for path in written:  # shipped resources: readable by everyone
        os.chmod(path, 0o644)
    return written


CRACKLE_NOTE = ("The bundled model does not detect these synthetic crackles: it answers Normal "
                "for synthetic_crackles and CAS (wheeze only) for synthetic_wheeze_and_crackles.")

_README = """# Example recordings (synthetic)

**These are synthetic signals, not recordings of patients.** They were generated by the
project's own generator, `lungapp.synth`, so a new user can try lungapp without a
stethoscope. They imitate what lung sounds look like on a spectrogram; they are not
clinical material and must not be used to judge the model's accuracy.

| file | content | label |
|---|---|---|
| synthetic_normal.wav | breath sounds only (band-limited noise, 20-30 breaths/min) | Normal |
| synthetic_wheeze.wav | breath sounds + wheezes (tones of 200-600 Hz with harmonics, 250-800 ms, mostly in expiration) | CAS |
| synthetic_crackles.wav | breath sounds + crackles (fine or coarse explosive transients in inspiration, after the crackle literature's waveform measures) | DAS |
| synthetic_wheeze_and_crackles.wav | both | CAS & DAS |

**The bundled model misses the synthetic crackles.** It answers Normal for
`synthetic_crackles.wav` and CAS (wheeze only) for `synthetic_wheeze_and_crackles.wav`
(its figures on real recordings are in docs/model.md). Check it with
`python -m lungapp predict resources/examples/*.wav`. Use these two files to see what
crackles look like on the spectrogram, not to judge the model.

Each file is mono, 8000 Hz, 16-bit PCM, 15 s. The JSON beside each file follows SPRSound's
layout (`record_annotation`, `event_annotation` with one event per breathing cycle, times in ms)
and says `"synthetic": true, "generator": "lungapp.synth"`.

Regenerate them (deterministic, seed 0) with:

    python -m lungapp.synth resources/examples
"""


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: python -m lungapp.synth OUTPUT_FOLDER", file=sys.stderr)
        return 2
    for path in write_examples(argv[0]):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
