"""The card's input profile (:mod:`lungapp.inference.profile`) of a model's training data.

``lungapp train`` fits it from the recordings it trained on (:func:`profile_of_recordings`).
For a model folder made before, this module's command measures a labelled folder and writes
the profile into the folder's card (it changes nothing else):

    python -m lungapp.training.profile MODEL_DIR DATA_FOLDER [--layout L] [--source TEXT]

The data folder must be the one the model was trained on: the profile says what recordings
the model has seen.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

from lungapp.errors import LungappError
from lungapp.inference.profile import InputProfile, band_levels, fit_profile


def profile_of_spectra(spectra, patients=None, source: str = "") -> InputProfile | None:
    """The profile of recordings' (mean power spectrum, bin Hz) pairs; None when too few
    of them can be measured (under 20, or under 4 patients) or the bands do not fit
    their sample rate, so a small run trains without one."""
    levels, groups = [], []
    for i, sp in enumerate(spectra):
        v = None if sp is None else band_levels(*sp)
        if v is not None:
            levels.append(v)
            groups.append(None if patients is None else patients[i])
    try:
        return fit_profile(np.asarray(levels), None if patients is None else groups, source=source)
    except ValueError:
        return None


def profile_of_recordings(recs, patients=None, source: str = "") -> InputProfile | None:
    """:func:`profile_of_spectra` of training Recordings (their ``spectrum``)."""
    return profile_of_spectra([r.spectrum for r in recs], patients, source)


def profile_of_folder(folder, rate: int, layout: str | None = None, source: str = "") -> InputProfile:
    """Measure every readable, labelled recording of ``folder`` at ``rate`` Hz (Poor
    Quality ones left out, as training leaves them) and fit the profile. Raises
    LungappError when it cannot be fitted."""
    from lungapp.audio import load_audio
    from lungapp.data import POOR, read_folder
    from lungapp.errors import AudioError
    from lungapp.inference.quality import mean_spectrum

    ds = read_folder(folder, layout=layout)
    spectra, patients = [], []
    for ex in ds.examples:
        if ex.label is None or ex.label == POOR or ex.kind != "audio":
            continue
        try:
            x = load_audio(ex.path, rate=rate).samples
        except AudioError:
            continue
        spectra.append(mean_spectrum(x, rate))
        patients.append(ex.patient if ex.patient is not None else ex.path)
    profile = profile_of_spectra(spectra, patients, source or str(folder))
    if profile is None:
        raise LungappError(f"cannot fit an input profile: {len(spectra)} usable recordings "
                           "(at least 20, of 4 patients, are needed)", str(folder))
    return profile


def main(argv=None) -> int:
    from lungapp.inference.card import load_card, write_card

    ap = argparse.ArgumentParser(description="Write the input profile of a model's training "
                                             "folder into the model's card.")
    ap.add_argument("model", type=Path, help="the model folder (its card.json is rewritten)")
    ap.add_argument("data", type=Path, help="the labelled folder the model was trained on")
    ap.add_argument("--layout", default=None, help="the folder's layout (default: detected)")
    ap.add_argument("--source", default="", help="the data, in words, for the card")
    args = ap.parse_args(argv)
    try:
        card = load_card(args.model)
        profile = profile_of_folder(args.data, card.features.rate, args.layout, args.source)
        write_card(args.model, dataclasses.replace(card, input_profile=profile))
    except LungappError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.model}: input profile of {profile.recordings} recordings of {profile.patients} "
          f"patients; {len(profile.axes)} axes, threshold {profile.threshold:.2f}, "
          f"{100 * profile.held_out_unfamiliar:.1f} % of held-out training recordings unfamiliar")
    return 0


if __name__ == "__main__":
    sys.exit(main())
