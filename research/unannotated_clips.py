"""A training folder of SPRSound train with its normal recordings' unannotated stretches
added again as clips of their own: do more of the stretches annotators did not mark as
breaths, taught as normal, stop the model firing on intra_test's?

(``research/session_pairs.py``: intra_test's normal recordings hold more windows that no
annotated event covers than train's, and the model fires on those more; on annotated
breaths it fires as often on both.)

Every recording of TRAIN and its label are linked into OUT unchanged (not its manifest). For
each Normal recording with annotated events, the runs of consecutive model windows (the
``bundled`` recipe's 2-s windows every 0.5 s) that annotated events cover by less than
``--max-cover`` (10 %) become one clip each (from the run's first window start to its last
window's end), written as 16-bit FLAC named ``PATIENT_AGE_GENDER_LOCATION_NUMBERuK`` (the
same patient, so patient-grouped folds keep it with its recording) with a Normal label and
no events. Training then draws those windows about twice as often.

    .venv/bin/python research/unannotated_clips.py OUT [--train ../shared/data/sprsound/train]
                                                   [--max-cover 0.1]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from session_pairs import event_coverage  # noqa: E402


def unannotated_runs(starts: np.ndarray, cover: np.ndarray, window_s: float,
                     max_cover: float) -> list[tuple[float, float]]:
    """(start s, end s) of each run of consecutive windows covered by less than
    ``max_cover``: from its first window's start to its last window's end."""
    out = []
    low = np.asarray(cover) < max_cover
    i = 0
    while i < len(low):
        if not low[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(low) and low[j + 1]:
            j += 1
        out.append((float(starts[i]), float(starts[j]) + window_s))
        i = j + 1
    return out


def build(train: Path, out: Path, max_cover: float = 0.1) -> dict:
    """Link TRAIN into OUT and write the clips; returns counts."""
    import soundfile as sf

    from lungapp.audio import load_audio
    from lungapp.data import read_folder
    from lungapp.errors import LungappError
    from lungapp.inference.features import windows_from_samples
    from lungapp.training.recipes import TrainOptions

    if out.exists() and any(out.iterdir()):
        raise LungappError("the output folder is not empty", out)
    ds = read_folder(train, "sprsound")
    out.mkdir(parents=True, exist_ok=True)
    for f in sorted(train.iterdir()):
        if f.is_file() and f.suffix in (".flac", ".wav", ".json"):  # not the manifest
            (out / f.name).symlink_to(f.resolve())
    fc = TrainOptions.from_preset("bundled").features
    n_clips = clip_s = 0
    for ex in ds.examples:
        if ex.label != "Normal" or not ex.events:
            continue
        x = load_audio(ex.path, rate=fc.rate).samples
        _, starts = windows_from_samples(x, fc)
        cover = event_coverage(starts, fc.window_s, [(e.start_s, e.end_s) for e in ex.events])
        for k, (a, b) in enumerate(unannotated_runs(starts, cover, fc.window_s, max_cover), start=1):
            clip = x[int(round(a * fc.rate)):int(round(b * fc.rate))]
            if len(clip) < fc.window_samples:
                continue
            stem = f"{Path(ex.path).stem}u{k}"
            sf.write(out / f"{stem}.flac", clip, fc.rate, subtype="PCM_16")
            (out / f"{stem}.json").write_text(json.dumps(
                {"record_annotation": "Normal", "event_annotation": []}))
            n_clips += 1
            clip_s += len(clip) / fc.rate
    return {"recordings": len(ds.examples), "clips": n_clips, "clip_seconds": round(clip_s, 1)}


def main(argv: list[str] | None = None) -> int:
    from lungapp.errors import LungappError

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--train", type=Path,
                    default=ROOT.parent / "shared" / "data" / "sprsound" / "train")
    ap.add_argument("--max-cover", type=float, default=0.1)
    a = ap.parse_args(argv)
    if not a.train.is_dir():
        print(f"no SPRSound train folder at {a.train}", file=sys.stderr)
        return 1
    try:
        res = build(a.train.resolve(), a.out, a.max_cover)
    except LungappError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{res['recordings']} recordings linked; {res['clips']} clips of unannotated stretches "
          f"({res['clip_seconds']} s) written to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
