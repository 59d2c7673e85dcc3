"""Small generated SPRSound-style datasets for the training-engine tests.

Recordings come from :mod:`lungapp.synth` (normal = band-limited breath noise with a
breathing envelope; wheeze = tonal 100-1000 Hz components over 100 ms; crackle = short
explosive transients), written as WAV files with SPRSound JSON sidecars named
``PATIENT_AGE_GENDER_LOCATION_NUMBER`` so the SPRSound reader finds patient ids.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import soundfile as sf

from lungapp import synth

KIND_OF = {"Normal": "normal", "CAS": "wheeze", "DAS": "crackle", "CAS & DAS": "wheeze+crackle"}


def make_dataset(folder, labels_per_patient: dict[str, list[str]], *, seconds: float = 4.0,
                 rate: int = 4000, seed: int = 0) -> Path:
    """Write one recording per label for each patient: ``{"P1": ["Normal", "CAS"], ...}``.
    Returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    k = 0
    for pid, labels in labels_per_patient.items():
        for j, label in enumerate(labels):
            k += 1
            stem = f"{pid}_6.0_{k % 2}_p{1 + j % 4}_{j + 1:02d}"
            if label == "Poor Quality":
                x = (0.3 * np.random.default_rng(seed + k).standard_normal(int(seconds * rate))).astype(np.float32)
                events = []
            else:
                x, _, events = synth.render(KIND_OF[label], seconds, rate, seed=seed * 1000 + k)
            sf.write(folder / f"{stem}.wav", x, rate, subtype="PCM_16")
            (folder / f"{stem}.json").write_text(json.dumps(
                {"record_annotation": label, "event_annotation": events}))
    return folder


def binary_dataset(folder, n_patients: int = 8, per_class: int = 2, **kw) -> Path:
    """n_patients patients, each with ``per_class`` normal and ``per_class`` wheeze recordings."""
    return make_dataset(folder, {f"{100 + i}": ["Normal"] * per_class + ["CAS"] * per_class
                                 for i in range(n_patients)}, **kw)


def clinic_csv_folder(root: Path, n_patients: int, per_patient: int = 2, shift: float = 0.0) -> Path:
    """Labelled recordings with patient ids (CSV layout): half the patients normal, half
    with wheezes; ``shift`` adds broadband noise, an "other stethoscope"."""
    from tiny_model import RATE, make_signal

    rng = np.random.default_rng(5)
    root.mkdir()
    rows = []
    for p in range(n_patients):
        label = "Normal" if p % 2 == 0 else "CAS"
        for k in range(per_patient):
            x = make_signal(label, 4, rng) + shift * rng.normal(0, 1, 4 * RATE).astype(np.float32)
            name = f"p{p}_{k}.wav"
            sf.write(root / name, np.clip(x, -1, 1), RATE)
            rows.append({"file": name, "label": label, "patient": f"P{p}"})
    with open(root / "labels.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", "label", "patient"])
        w.writeheader()
        w.writerows(rows)
    return root
