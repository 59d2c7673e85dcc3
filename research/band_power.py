"""Where SPRSound's power is: the share of each recording's power in frequency bands.

    python research/band_power.py [../shared/data/sprsound/train] [--every N]

For every recording (or every N-th, sorted by name): Welch's power spectral density
(512-point Hann segments, half overlap, the recording's own rate), normalised to a share
of the recording's total power; prints the median, 10th and 90th percentile share per
band over the recordings, and the band's level below the recording's strongest band (dB).
SPRSound's stethoscope passes almost nothing above 800 Hz; whether the bundled model should
look only below 1 kHz was measured with it (see FINE_FEATURES in lungapp.training.recipes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import welch

ROOT = Path(__file__).resolve().parents[1]
BANDS = ((0, 100), (100, 200), (200, 400), (400, 800), (800, 1000), (1000, 1500),
         (1500, 2000), (2000, 4000))


def band_shares(path: Path) -> np.ndarray | None:
    x, rate = sf.read(str(path), dtype="float64", always_2d=True)
    x = x.mean(axis=1)
    if len(x) < 512 or not np.any(x):
        return None
    f, p = welch(x - x.mean(), rate, nperseg=512)
    total = p.sum()
    return np.array([p[(f >= lo) & (f < hi)].sum() / total for lo, hi in BANDS])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", default=str(ROOT / ".." / "shared" / "data" / "sprsound" / "train"))
    ap.add_argument("--every", type=int, default=1, help="measure every N-th recording (default all)")
    args = ap.parse_args()
    files = sorted(Path(args.folder).rglob("*.flac")) + sorted(Path(args.folder).rglob("*.wav"))
    files = files[:: max(1, args.every)]
    if not files:
        print(f"{args.folder}: no .flac or .wav recordings", file=sys.stderr)
        return 1
    rows = [s for s in map(band_shares, files) if s is not None]
    S = np.array(rows)
    print(f"{len(S)} recordings of {args.folder}")
    print(f"{'band (Hz)':>12} | {'median share':>12} | {'p10':>10} | {'p90':>10} | {'median dB below peak band':>26}")
    peak = S.max(axis=1, keepdims=True)
    db = 10 * np.log10(np.maximum(S, 1e-30) / peak)
    for j, (lo, hi) in enumerate(BANDS):
        p10, p50, p90 = np.percentile(S[:, j], [10, 50, 90])
        print(f"{lo:>5}-{hi:<6} | {p50:12.2e} | {p10:10.2e} | {p90:10.2e} | {np.median(db[:, j]):26.1f}")
    for edge in (800, 1000):
        below = S[:, [hi <= edge for _, hi in BANDS]].sum(axis=1)
        print(f"share of power below {edge} Hz: median {np.median(below):.6f}, 1st percentile "
              f"{np.percentile(below, 1):.6f}, minimum {below.min():.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
