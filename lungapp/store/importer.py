"""Import a folder of existing recordings into the store.

The patient comes from ``--patient`` or else from the file name: SPRSound
(``PATIENT_AGE_GENDER_LOCATION_NUMBER``, location p1..p4) and ICBHI 2017
(``PATIENT_INDEX_LOCATION_MODE_DEVICE``, e.g. ``101_1b1_Al_sc_Meditron``) name the
patient, the chest site and (ICBHI) the device. A label file beside the audio (SPRSound
JSON ``record_annotation``, ICBHI cycle text) becomes a confirmed label by that annotation.
Imported files stay where they are and are never deleted by the app (``owned`` = 0).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from lungapp.audio import AUDIO_EXTENSIONS, audio_info
from lungapp.audio.recorder import SITE_CODES
from lungapp.data.readers import icbhi_label, parse_icbhi_cycles, parse_sprsound_annotation
from lungapp.errors import LungappError
from lungapp.store.db import Store, StoreError, patient_identifier

# SPRSound's p1..p4 in the recorder's site names (lungapp.audio.recorder.SITES).
SPRSOUND_SITES = {"p1": "Posterior left", "p2": "Lateral left", "p3": "Posterior right", "p4": "Lateral right"}
ICBHI_SITES = {code: site for site, code in SITE_CODES.items()}
ICBHI_MODES = ("sc", "mc")


@dataclass
class NameInfo:
    """What a file name tells: patient id, chest site, device, and which collection's
    convention it follows ("sprsound", "icbhi" or "")."""

    patient: str | None = None
    site: str = ""
    device: str = ""
    convention: str = ""
    sex: str = ""


@dataclass
class ImportReport:
    added: list[str] = field(default_factory=list)            # recording uids
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why)
    patients: dict[str, int] = field(default_factory=dict)    # identifier -> recordings added
    visits: dict[str, int] = field(default_factory=dict)      # identifier -> visit id


def name_info(stem: str) -> NameInfo:
    """Parse a SPRSound or ICBHI file stem; an unknown name gives an empty :class:`NameInfo`."""
    tokens = stem.split("_")
    if len(tokens) == 5 and tokens[0] and tokens[3] in SPRSOUND_SITES:
        return NameInfo(tokens[0], SPRSOUND_SITES[tokens[3]], "", "sprsound",
                        {"0": "male", "1": "female"}.get(tokens[2], ""))
    if len(tokens) == 5 and tokens[0] and tokens[3] in ICBHI_MODES:
        return NameInfo(tokens[0], ICBHI_SITES.get(tokens[2], tokens[2]), tokens[4], "icbhi")
    return NameInfo()


def audio_files(folder: str | os.PathLike) -> list[Path]:
    """Audio files under ``folder``, recursively, sorted; hidden files and folders left out."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root, f) for f in files
                  if not f.startswith(".") and os.path.splitext(f)[1].lower() in AUDIO_EXTENSIONS]
    return sorted(found)


def annotation_label(audio: Path) -> tuple[str, str] | None:
    """(label, who) from the annotation beside ``audio``, or None when there is none."""
    js, txt = audio.with_suffix(".json"), audio.with_suffix(".txt")
    try:
        if js.is_file():
            data = json.loads(js.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("record_annotation"):
                return parse_sprsound_annotation(data)[0], "SPRSound annotation"
        elif txt.is_file():
            return icbhi_label(parse_icbhi_cycles(txt.read_text(encoding="utf-8"))), "ICBHI annotation"
    except (OSError, ValueError, UnicodeDecodeError):
        return None  # an unreadable annotation: the recording is imported without a label
    return None


def import_folder(store: Store, folder: str | os.PathLike, patient: str | None = None,
                  clinician: str = "") -> ImportReport:
    """Add every audio file under ``folder`` to the store: one new visit (today) per patient
    found. Files already in the store (by any path: a linked folder is the same folder) and
    files without a patient are skipped (reported). A damaged database is refused first
    (StoreFileError): nothing is added to it."""
    folder = Path(folder)
    if patient is not None:
        patient = patient_identifier(patient)  # an empty one is refused, not taken as none
    if not folder.is_dir():
        raise StoreError("not a folder", folder)
    files = audio_files(folder)
    if not files:
        raise StoreError("no audio files in this folder", folder)
    store.check()
    report = ImportReport()
    for path in files:
        why = _import_one(store, path, patient, clinician, folder, report)
        if why:
            report.skipped.append((str(path), why))
    return report


def _import_one(store: Store, path: Path, patient: str | None, clinician: str, folder: Path,
                report: ImportReport) -> str | None:
    """Import one file (one transaction: its recording row and its label); the reason it
    was skipped, or None."""
    info = name_info(path.stem)
    try:
        pid = patient_identifier(patient or info.patient)
    except StoreError:
        return "no patient id in the file name (SPRSound or ICBHI style); give --patient"
    if store.recording_by_path(path) is not None:
        return "already in the store"
    try:
        header = audio_info(path)
    except LungappError as exc:
        return exc.problem
    label = annotation_label(path)
    with store.transaction():
        if pid not in report.visits:
            report.visits[pid] = store.add_visit(store.ensure_patient(pid, sex=info.sex), clinician=clinician,
                                                 notes=f"imported from {folder.resolve()}")
        uid = store.add_recording(report.visits[pid], path, site=info.site, device=info.device,
                                  sample_rate=header.rate, duration_s=header.duration_s,
                                  recorded_at=_mtime(path))
        if label:
            store.confirm_label(uid, label[0], label[1])
    report.added.append(uid)
    report.patients[pid] = report.patients.get(pid, 0) + 1
    return None


def _mtime(path: Path) -> str:
    import datetime as dt

    t = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")
