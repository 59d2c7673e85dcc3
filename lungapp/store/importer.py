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
    notes: list[tuple[str, str]] = field(default_factory=list)  # (file, what to know): imported anyway


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
    """Audio files under ``folder``, recursively, sorted; hidden files and folders left out.
    Linked sub-folders are followed (as linked files are taken), each real folder once."""
    found, seen = [], set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:  # a link back up, or a second link to one folder
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root, f) for f in files
                  if not f.startswith(".") and os.path.splitext(f)[1].lower() in AUDIO_EXTENSIONS]
    return sorted(found)


def annotation_label(audio: Path, problems: list[str] | None = None) -> tuple[str, str] | None:
    """(label, who) from the annotation beside ``audio``, or None when there is none. An
    annotation that cannot be read gives None too, and why goes to ``problems``: the
    recording is imported without a label, and the user told."""
    js, txt = audio.with_suffix(".json"), audio.with_suffix(".txt")
    try:
        if js.is_file():
            data = json.loads(js.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("record_annotation"):
                return parse_sprsound_annotation(data)[0], "SPRSound annotation"
        elif txt.is_file():
            return icbhi_label(parse_icbhi_cycles(txt.read_text(encoding="utf-8"))), "ICBHI annotation"
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        if problems is not None:
            where = js if js.is_file() else txt
            problems.append(f"its labels ({where.name}) cannot be read ({exc}); imported without a "
                            "confirmed label")
        return None
    return None


def import_folder(store: Store, folder: str | os.PathLike, patient: str | None = None,
                  clinician: str = "", report: ImportReport | None = None) -> ImportReport:
    """Add every audio file under ``folder`` to the store: one new visit (today) per patient
    found. Files already in the store (by any path: a linked folder is the same folder) and
    files without a patient are skipped (reported). A damaged database is refused first
    (StoreFileError): nothing is added to it. ``report``: filled as files are filed (what an
    interrupted import did); an import of the same folder run again today files into the
    visits it made."""
    folder = Path(folder)
    if patient is not None:
        patient = patient_identifier(patient)  # an empty one is refused, not taken as none
    if not folder.is_dir():
        raise StoreError("not a folder", folder)
    files = audio_files(folder)
    if not files:
        raise StoreError("no audio files in this folder", folder)
    store.check()
    report = report if report is not None else ImportReport()  # the caller's: filled as it goes
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
    if store.recording_by_path(path) is not None:  # (asked again inside the transaction)
        return _known(store, path)
    try:
        header = audio_info(path)
    except LungappError as exc:
        return exc.problem
    problems: list[str] = []
    label = annotation_label(path, problems)
    with store.transaction():
        # Another import of the folder may have filed it since (writers take turns here).
        if store.recording_by_path(path) is not None:
            return _known(store, path)
        visit = report.visits.get(pid)
        if visit is None or not store.query("SELECT 1 FROM visits WHERE id = ?", (visit,)):  # deleted meanwhile: anew
            visit = report.visits[pid] = _import_visit(store, store.ensure_patient(pid, sex=info.sex),
                                                       clinician, folder.resolve())
        uid = store.add_recording(visit, path, site=info.site, device=info.device,
                                  sample_rate=header.rate, duration_s=header.duration_s,
                                  recorded_at=_mtime(path))
        if label:
            store.confirm_label(uid, label[0], label[1])
    report.notes += [(str(path), why) for why in problems]
    report.added.append(uid)
    report.patients[pid] = report.patients.get(pid, 0) + 1
    return None


def _known(store: Store, path: Path) -> str:
    """Why a file the store already has is skipped: already in the store, or, when its
    content is not what was filed (the duration or rate differ: a stethoscope's export
    folder reuses names), that it changed, so that a new patient's recording is not taken
    for the old one's without a word."""
    row = store.recording_by_path(path)
    try:
        header = audio_info(path)
    except LungappError:
        return "already in the store"
    stored = row["duration_s"], row["sample_rate"]
    if stored[0] is not None and (abs(float(stored[0]) - header.duration_s) > 0.05
                                  or (stored[1] and int(stored[1]) != header.rate)):
        owner = store.query("SELECT p.identifier FROM visits v JOIN patients p ON p.id = v.patient_id "
                            "WHERE v.id = ?", (row["visit_id"],))
        who = f" of patient {owner[0]['identifier']}" if owner else ""
        return (f"a file of this name was imported before as recording {row['uid']}{who} "
                f"({float(stored[0]):.1f} s), and it now holds other audio ({header.duration_s:.1f} s): "
                "not imported; give the new recording a name of its own")
    return "already in the store"


def _import_visit(store: Store, patient_id: int, clinician: str, folder: Path) -> int:
    """The visit an import of ``folder`` (resolved) files a patient's recordings under:
    today's visit made by an import of the same folder (an import interrupted and run again
    goes on with it), else a new one. Such a visit is known by the notes the import gave it
    or, once the user has changed them, by a recording it holds from the folder."""
    import datetime as dt

    today, notes, inside = dt.date.today().isoformat(), f"imported from {folder}", os.path.join(folder, "")
    for v in reversed(store.visits(patient_id)):
        if v["date"] == today and (v["notes"] == notes or any(
                r["path"].startswith(inside) for r in store.recordings(v["id"]))):
            return v["id"]
    return store.add_visit(patient_id, clinician=clinician, notes=notes)


def _mtime(path: Path) -> str | None:
    """The file's modification time as the recording's time (None: none a date can hold,
    e.g. past the year 9999 on some file systems)."""
    import datetime as dt

    try:
        t = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    except (OSError, ValueError, OverflowError):
        return None
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")
