"""Does equalising each recording to the training recordings' balance of frequencies help
the model on other collections and devices? (docs/model_checks.md, 2026-12-07.)

Each recording, at the model's rate, is filtered by one zero-phase FFT filter whose gain is
the model's input profile mean (lungapp.inference.profile) minus the recording's band level
at each band centre, interpolated in log frequency and held flat beyond the outer centres;
the model is unchanged. Prints, for SPRSound intra_test and the ICBHI subset (all devices and
each device), AUC and score at the model's threshold, as is and equalised.

    .venv/bin/python research/equalise_transfer.py [--model resources/model] [--data ../shared/data]
    .venv/bin/python research/equalise_transfer.py --copy DIR   # an equalised copy of the data

``--copy DIR`` writes the data tree (SPRSound train and intra_test, the ICBHI subset with its
manifest) to DIR with every recording equalised at the model's rate, as 16-bit WAV beside a
copy of its labels, for training and checking on equalised recordings
(``research/leave_device_out.py --data DIR``). DIR must not exist or be empty.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def equalise(x: np.ndarray, rate: int, profile) -> np.ndarray:
    """``x`` filtered so its band levels (lungapp.inference.profile.band_levels) move to
    the profile's mean (the app's :class:`lungapp.inference.equalise.Equalisation`, whose
    target is the training recordings' mean band levels); returned as is when its levels
    cannot be measured."""
    from lungapp.inference.equalise import Equalisation

    return Equalisation(list(profile.bands_hz), list(profile.mean)).apply(x, rate)


class Equalised:
    """A predictor's stand-in for evaluate_folder: each file decoded, equalised, predicted."""

    def __init__(self, predictor):
        self.predictor, self.card = predictor, predictor.card

    def predict_file(self, path):
        from lungapp.audio import load_audio

        rate = self.card.features.rate
        x = load_audio(path, rate=rate).samples
        return self.predictor.predict_audio(equalise(x, rate, self.card.input_profile), rate, str(path))


def copy_equalised(data: Path, out: Path, profile, rate: int) -> int:
    """Write ``data``'s tree to ``out`` with every recording equalised (module docstring);
    returns how many recordings were written. Recordings that cannot be read are left out."""
    import csv
    import shutil

    import soundfile as sf

    from lungapp.audio import load_audio
    from lungapp.errors import AudioError

    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} exists and is not empty")
    n = 0

    def write(src: Path, dst: Path) -> None:
        nonlocal n
        try:
            x = load_audio(src, rate=rate).samples
        except AudioError:
            return
        y = equalise(x, rate, profile)
        peak = float(np.max(np.abs(y))) if len(y) else 0.0
        sf.write(dst.with_suffix(".wav"), y / peak * 0.9 if peak > 1.0 else y, rate, subtype="PCM_16")
        n += 1

    for split in ("train", "intra_test"):
        src = data / "sprsound" / split
        if not src.is_dir():
            continue
        dst = out / "sprsound" / split
        dst.mkdir(parents=True)
        for label in sorted(src.glob("*.json")):
            audio = next((label.with_suffix(e) for e in (".flac", ".wav") if label.with_suffix(e).is_file()), None)
            if audio is not None:
                shutil.copyfile(label, dst / label.name)
                write(audio, dst / audio.name)
    icbhi = data / "icbhi_subset"
    if (icbhi / "manifest.csv").is_file():
        dst = out / "icbhi_subset" / "audio_and_txt"
        dst.mkdir(parents=True)
        shutil.copyfile(icbhi / "manifest.csv", out / "icbhi_subset" / "manifest.csv")
        with open(icbhi / "manifest.csv", newline="") as fh:
            for row in csv.DictReader(fh):
                wav = icbhi / row["file"]
                shutil.copyfile(wav.with_suffix(".txt"), dst / wav.with_suffix(".txt").name)
                write(wav, dst / wav.name)
    return n


def collections(data: Path, tmp: Path) -> list[tuple[str, Path, str]]:
    """(name, folder, layout) of every collection found under ``data``."""
    from external_checks import device_folders

    out = []
    if (data / "sprsound" / "intra_test").is_dir():
        out.append(("SPRSound intra_test", data / "sprsound" / "intra_test", "sprsound"))
    icbhi = data / "icbhi_subset"
    if (icbhi / "manifest.csv").is_file():
        out.append(("ICBHI, all devices", icbhi / "audio_and_txt", "icbhi"))
        out += [(f"ICBHI {d}", f, "icbhi") for d, f in sorted(device_folders(icbhi, tmp).items())]
    return out


def main(argv: list[str] | None = None) -> int:
    from lungapp.errors import LungappError
    from lungapp.evaluation.folder import evaluate_folder
    from lungapp.inference.predictor import Predictor

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=ROOT / "resources" / "model")
    ap.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data")
    ap.add_argument("--copy", type=Path, default=None, help="write an equalised copy of the data here")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        predictor = Predictor.load(args.model)
        if predictor.card.input_profile is None:
            print(f"{args.model}: the model's card has no input profile", file=sys.stderr)
            return 2
        if args.copy is not None:
            try:
                n = copy_equalised(args.data.resolve(), args.copy, predictor.card.input_profile,
                                   predictor.card.features.rate)
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            print(f"{args.copy}: {n} equalised recordings")
            return 0
        f = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
        with tempfile.TemporaryDirectory() as tmp:
            found = collections(args.data.resolve(), Path(tmp))
            if not found:
                print(f"no collections found under {args.data}", file=sys.stderr)
                return 2
            print("| data | n | AUC as is | AUC equalised | score as is | score equalised |")
            print("|---|---|---|---|---|---|")
            for name, folder, layout in found:
                a = evaluate_folder(folder, predictor, layout=layout)
                b = evaluate_folder(folder, Equalised(predictor), layout=layout)
                print(f"| {name} | {a['n']} | {f(a['auc'])} | {f(b['auc'])} | {f(a['score'])} | "
                      f"{f(b['score'])} |")
    except LungappError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
