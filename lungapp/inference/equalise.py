"""Each recording equalised to the training recordings' balance of frequencies before the
model reads it (a card's ``equalisation``; ``lungapp train --equalise``).

A stethoscope colours what it records: its chest piece, filter mode and microphone lift some
frequencies and damp others. A model trained on one device learns that device's colour along
with the sounds. Equalising every recording, in training and in the app alike, to one
balance of frequencies takes the colour out of what the model reads:

* the recording's **band levels** are measured as the input profile measures them
  (:func:`lungapp.inference.profile.band_levels` of the quality check's mean spectrum: ten
  half-octave bands from 62.5 Hz to 2 kHz, in dB, minus their mean);
* the **target** is the training recordings' mean band levels (:func:`fit_equalisation`);
  a fine-tuned model keeps the target of the model it starts from;
* the recording is filtered by one zero-phase FFT filter whose gain (dB) is the target minus
  the recording's level at each band centre, interpolated in log frequency between the
  centres and held flat beyond the outer ones. Its overall level is unchanged on average
  (both curves have zero mean).

The quality check, the input-profile caution and the recording the user hears all keep the
recording as it was: only the model's input is equalised. A recording whose levels cannot be
measured (silent, or sampled too low for the bands) is left as it is.

Checked before it was built (docs/model_checks.md, 2026-12-07): the ``recommended`` recipe
trained on SPRSound alone, on equalised recordings, ranked two of three ICBHI devices it
never saw better in each of three seeds (judged on seeds 1 and 2: Littmann 3200 +0.07, AKG
C417L +0.09 AUC on average) for 0.007-0.009 less AUC on SPRSound intra_test. Neither of the
bundled model's recipes gained (one seed each; 2-s: Meditron -0.05, the others +0.02-0.03;
4-s: Littmann 3200 +0.005, AKG C417L +0.04, Meditron unchanged), so the bundled model does
not equalise.

The filter works on the whole recording at once, so a model that equalises holds the
decoded recording in memory (4 bytes a sample at the model's rate: about 115 MB for an hour
at 8 kHz).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lungapp.inference.profile import BAND_EDGES_HZ, band_levels, finite_numbers


@dataclass
class Equalisation:
    """A card's ``equalisation``: the band edges (Hz), the target level of each band (dB
    relative to the bands' mean), and what the target was measured on."""

    bands_hz: list[float]
    target_db: list[float]
    recordings: int = 0
    source: str = ""

    def problems(self) -> list[str]:
        p = []
        if not finite_numbers(self.bands_hz):
            p.append("equalisation.bands_hz must be a list of finite numbers")
        if not finite_numbers(self.target_db):
            p.append("equalisation.target_db must be a list of finite numbers")
        if p:
            return p
        if len(self.bands_hz) < 3 or any(not 0 < b < c for b, c in zip(self.bands_hz[:-1], self.bands_hz[1:])):
            p.append("equalisation.bands_hz must be at least 3 positive increasing band edges")
        elif len(self.target_db) != len(self.bands_hz) - 1:
            p.append(f"equalisation.target_db must hold one value per band ({len(self.bands_hz) - 1})")
        elif max(abs(v) for v in self.target_db) > 60:
            p.append("equalisation.target_db must lie within +-60 dB")
        if not (isinstance(self.recordings, int) and not isinstance(self.recordings, bool)
                and self.recordings >= 0):
            p.append("equalisation.recordings must be a whole number >= 0")
        if not isinstance(self.source, str):
            p.append("equalisation.source must be a string")
        return p

    def to_dict(self) -> dict:
        # not rounded: the app must filter exactly as training did (JSON keeps every float)
        return {"bands_hz": [float(v) for v in self.bands_hz],
                "target_db": [float(v) for v in self.target_db],
                "recordings": int(self.recordings), "source": self.source}

    @classmethod
    def from_dict(cls, d) -> Equalisation:
        if not isinstance(d, dict):
            raise ValueError(f"equalisation must be an object, not {type(d).__name__}")
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown equalisation keys: {sorted(unknown)}")
        missing = {"bands_hz", "target_db"} - set(d)
        if missing:
            raise ValueError(f"equalisation lacks {sorted(missing)}")
        return cls(**d)

    def gain_db(self, levels: np.ndarray, freqs_hz: np.ndarray) -> np.ndarray:
        """The filter's gain (dB) at ``freqs_hz`` for a recording of band ``levels``."""
        edges = np.asarray(self.bands_hz, dtype=np.float64)
        centres = np.sqrt(edges[:-1] * edges[1:])
        return np.interp(np.log(np.maximum(freqs_hz, 1.0)), np.log(centres),
                         np.asarray(self.target_db, dtype=np.float64) - levels)

    def apply(self, x: np.ndarray, rate: int) -> np.ndarray:
        """``x`` (mono, at ``rate`` Hz) filtered so its band levels move to the target
        (float32, same length); returned as it is when its levels cannot be measured."""
        from lungapp.inference.quality import mean_spectrum

        x = np.asarray(x, dtype=np.float32)
        levels = band_levels(*mean_spectrum(x, rate), self.bands_hz) if len(x) else None
        if levels is None:
            return x
        gain = 10 ** (self.gain_db(levels, np.fft.rfftfreq(len(x), 1.0 / rate)) / 20)
        # single precision throughout (numpy's FFT keeps float32 input in complex64), as the
        # model reads float32 anyway: about half the time of double precision
        y = np.fft.irfft(np.fft.rfft(x) * gain.astype(np.float32), n=len(x))
        return np.asarray(y, dtype=np.float32)


def fit_equalisation(spectra, *, edges=BAND_EDGES_HZ, source: str = "") -> Equalisation:
    """The target of training recordings given as (mean power spectrum, bin spacing Hz)
    pairs (:func:`lungapp.inference.quality.mean_spectrum`): their mean band levels.
    Recordings whose levels cannot be measured are left out; raises ValueError when none
    can be."""
    levels = [lv for lv in (band_levels(s, hz, edges) for s, hz in spectra) if lv is not None]
    if not levels:
        raise ValueError("no recording's band levels could be measured for the equalisation")
    return Equalisation(bands_hz=[float(e) for e in edges],
                        target_db=np.mean(levels, axis=0).tolist(), recordings=len(levels),
                        source=source)
