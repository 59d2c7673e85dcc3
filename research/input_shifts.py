"""Does the recording's level, bandwidth or coloration explain why a model's answers do not
transfer to other devices?

Each labelled folder (SPRSound intra_test, each ICBHI device) is scored by the app's own
predictor as it is and after one change applied to every recording before the analysis:

- ``level``: scaled to SPRSound train's median RMS level (a per-recording level normalisation);
- ``4khz``: sent through a 4-kHz sample rate (as a 4-kHz stethoscope would record it);
- ``tilt+3`` / ``tilt-3``: tilted by +-3 dB per octave around 400 Hz (another response).

Printed per folder and change: AUC, sensitivity, specificity and score at the model's own
threshold, the median probability of the normal recordings, and the median and largest
change of a recording's probability. The RMS levels per folder come first.

    .venv/bin/python research/input_shifts.py [--model resources/model] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "research"))

from external_checks import device_folders  # noqa: E402

REFERENCE_DB = -43.0  # SPRSound train's median RMS level (dBFS) over its 1949 recordings: -43.4 by rms_db


def rms_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.asarray(x, dtype=np.float64) ** 2) + 1e-20))


def _level(x, rate):
    return (x * 10 ** ((REFERENCE_DB - rms_db(x)) / 20)).astype(np.float32), rate


def _through_4khz(x, rate):
    from scipy.signal import resample_poly

    x8 = resample_poly(x, 8000, rate) if rate != 8000 else x
    return resample_poly(resample_poly(x8, 1, 2), 2, 1).astype(np.float32), 8000


def _tilt(db):
    from lungapp.training.augment import eq_tilt

    return lambda x, rate: (eq_tilt(x, rate, tilt_db_per_octave=db), rate)


CHANGES = {"as is": lambda x, rate: (x, rate), "level": _level, "4khz": _through_4khz,
           "tilt+3": _tilt(3.0), "tilt-3": _tilt(-3.0)}


def folders(data: Path, tmp: Path) -> list[tuple[str, list]]:
    """intra_test and each ICBHI device's recordings (the manifest's device column, as
    external_checks.py reads it), Poor Quality left out."""
    from lungapp.data import read_folder

    devices = device_folders(data / "icbhi_subset", tmp)
    out = [("SPRSound intra_test", read_folder(data / "sprsound" / "intra_test", layout="sprsound").examples)]
    for device in ("Meditron", "Litt3200", "AKGC417L"):
        out.append((f"ICBHI {device}", read_folder(devices[device], layout="icbhi").examples))
    return [(name, [e for e in exs if e.label != "Poor Quality"]) for name, exs in out]


def score_folder(examples, predictor) -> tuple[np.ndarray, dict[str, np.ndarray], list[float]]:
    from lungapp.audio import load_audio

    y, probs, levels = [], {k: [] for k in CHANGES}, []
    for e in examples:
        a = load_audio(e.path)
        x = np.asarray(a.samples, dtype=np.float32)
        y.append(int(e.label != "Normal"))
        levels.append(rms_db(x))
        for k, change in CHANGES.items():
            xx, rate = change(x, a.rate)
            probs[k].append(predictor.predict_audio(xx, rate).abnormal_probability)
    return np.array(y), {k: np.array(v) for k, v in probs.items()}, levels


def main(argv: list[str] | None = None) -> int:
    from lungapp.evaluation.metrics import binary_metrics
    from lungapp.inference.predictor import Predictor

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(ROOT / "resources" / "model"))
    ap.add_argument("--data", default=str(ROOT / ".." / "shared" / "data"))
    args = ap.parse_args(argv)
    predictor = Predictor.load(Path(args.model))
    t = predictor.card.threshold
    print("| data | change | n | RMS dBFS (median) | AUC | sens | spec | score | median p, normal | "
          "median / max change of p |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, examples in folders(Path(args.data).resolve(), Path(tmp)):
            y, probs, levels = score_folder(examples, predictor)
            for k, p in probs.items():
                m = binary_metrics(y, p, t)
                d = np.abs(p - probs["as is"])
                print(f"| {name} | {k} | {len(y)} | {np.median(levels):.1f} | {m['auc']:.3f} | "
                      f"{m['sensitivity']:.3f} | {m['specificity']:.3f} | {m['score']:.3f} | "
                      f"{np.median(p[y == 0]):.3f} | {np.median(d):.3f} / {d.max():.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
