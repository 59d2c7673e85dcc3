"""How often the recording-quality check refuses or warns, on collections and devices it
was not fitted on.

Groups: SPRSound intra_test; the ICBHI 2017 subset, per device; copies of intra_test made
here (a simulated other stethoscope (lungapp.training.augment.device_shift), white noise at
10 dB SNR, a 100-1000 Hz band limit, a round trip through 4 kHz); and SPRSound's Poor Quality
recordings (train and intra_test). All but the last were labelled by experts as usable.
Every recording is checked at the model's rate (8 kHz), as the app does.
Prints one row per group: recordings, refused, warned, the refusal reasons, how many of
those not refused the model's input profile calls unlike its training recordings
(:mod:`lungapp.inference.profile`; "-" when the model's card has none), and the check's
median time per recording (and per 15 s of audio).

    python benchmarks/quality_transfer.py [--data ../shared/data] [--limit N] [--model DIR]
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.signal import butter, resample_poly, sosfilt

from lungapp.audio import load_audio
from lungapp.errors import ModelError
from lungapp.inference.card import load_card
from lungapp.inference.quality import REFUSE, WARN, assess
from lungapp.training.augment import device_shift

RATE = 8000


def _white_noise(x, rng, snr_db=10.0):
    n = rng.standard_normal(len(x)).astype(np.float32)
    return x + n * np.sqrt(np.mean(x ** 2) / np.mean(n ** 2) / 10 ** (snr_db / 10))


_BAND = butter(4, [100, 1000], btype="band", fs=RATE, output="sos")
COPIES = {
    "device-shifted": lambda x, rng: device_shift(x, RATE, rng),
    "white noise 10 dB": _white_noise,
    "band 100-1000 Hz": lambda x, rng: sosfilt(_BAND, x),
    "through 4 kHz": lambda x, rng: resample_poly(resample_poly(x, 1, 2), 2, 1),
}


def recordings(data: Path, limit: int | None):
    """(group, samples at 8 kHz) for every recording checked."""
    rng = np.random.default_rng(0)
    intra = sorted((data / "sprsound" / "intra_test").glob("*.flac"))[:limit]
    for f in intra:
        label = json.loads(f.with_suffix(".json").read_text())["record_annotation"]
        x = load_audio(f, rate=RATE).samples
        if label == "Poor Quality":
            yield "SPRSound Poor Quality (train + intra_test)", x
            continue
        yield "SPRSound intra_test", x
        for name, make in COPIES.items():
            yield f"intra_test, {name}", np.asarray(make(x, rng), dtype=np.float32)
    icbhi = data / "icbhi_subset"
    if (icbhi / "manifest.csv").is_file():
        with open(icbhi / "manifest.csv", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))[:limit]
        for r in rows:
            yield f"ICBHI {r['device']}", load_audio(icbhi / r["file"], rate=RATE).samples
    for f in sorted((data / "sprsound" / "train").glob("*.json")):
        if json.loads(f.read_text())["record_annotation"] == "Poor Quality":
            x = load_audio(f.with_suffix(".flac"), rate=RATE).samples
            yield "SPRSound Poor Quality (train + intra_test)", x


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    ap.add_argument("--limit", type=int, default=None, help="at most N recordings per collection")
    ap.add_argument("--model", type=Path, default=Path(__file__).resolve().parents[1] / "resources" / "model",
                    help="the model whose input profile is checked (default: the bundled one)")
    args = ap.parse_args(argv)
    try:
        profile = load_card(args.model).input_profile
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not (args.data / "sprsound" / "intra_test").is_dir():
        print(f"no SPRSound data at {args.data}", file=sys.stderr)
        return 2
    stats = collections.defaultdict(lambda: {"n": 0, "refused": 0, "warned": 0, "reasons": collections.Counter(),
                                             "unfamiliar": 0, "ms": [], "ms15": []})
    for group, x in recordings(args.data, args.limit):
        t = time.perf_counter()
        v = assess(x, RATE)
        ms = 1000 * (time.perf_counter() - t)
        s = stats[group]
        s["n"] += 1
        s["refused"] += v.level == REFUSE
        s["warned"] += v.level == WARN
        if v.level == REFUSE:
            s["reasons"][v.reason.split(" (")[0]] += 1
        elif profile is not None:
            s["unfamiliar"] += profile.check(v.spectrum, v.spectrum_bin_hz) is not None
        s["ms"].append(ms)
        s["ms15"].append(ms * 15.0 * RATE / max(len(x), 1))
    print("| recordings | n | refused | warned | refusal reasons | unlike training | check, ms (per 15 s) |")
    print("|---|---|---|---|---|---|---|")
    for group, s in stats.items():
        reasons = ", ".join(f"{k} {v}" for k, v in s["reasons"].most_common()) or "-"
        judged = s["n"] - s["refused"]
        unlike = "-" if profile is None else f"{s['unfamiliar']} ({s['unfamiliar'] / max(judged, 1):.1%})"
        print(f"| {group} | {s['n']} | {s['refused']} ({s['refused'] / s['n']:.1%}) | "
              f"{s['warned']} ({s['warned'] / s['n']:.1%}) | {reasons} | {unlike} | "
              f"{np.median(s['ms']):.1f} ({np.median(s['ms15']):.1f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
