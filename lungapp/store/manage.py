"""A patient's records as one document, export, deletion, and backup of the store."""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from lungapp.errors import LungappError
from lungapp.fsutil import atomic_write_json, check_output_dir, make_staging, publish_dir
from lungapp.store.db import ModelId, Store, StoreError, StoreFileError, damage, damaged_problem

# Files beside a recording that belong to it (sidecar, annotations).
SIDECAR_SUFFIXES = (".json", ".txt")


def sidecars(audio: str | os.PathLike) -> list[Path]:
    """The existing sidecar and annotation files of a recording (``NAME.json``, ``NAME.txt``)."""
    audio = Path(audio)
    return [p for p in (audio.with_suffix(s) for s in SIDECAR_SUFFIXES) if p.is_file()]


def patient_record(store: Store, identifier: str, active: ModelId | None = None) -> dict:
    """Everything the store holds about a patient, JSON-ready: the patient, and each visit
    with its recordings, each with its results and confirmed labels."""
    p = store.patient(identifier)
    visits = []
    for v in store.visits(p["id"]):
        recs = []
        for r in store.recordings(v["id"]):
            recs.append({**{k: r[k] for k in ("uid", "path", "site", "device", "sample_rate", "duration_s",
                                                "recorded_at", "missing")},
                         "owned": bool(r["owned"]),
                         "results": [_result_json(x) for x in store.results(r["uid"], active)],
                         "labels": store.labels(r["uid"])})
        visits.append({"number": v["number"], "date": v["date"], "clinician": v["clinician"],
                       "notes": v["notes"], "recordings": recs})
    return {"identifier": p["identifier"], "name": p["name"], "birth_year": p["birth_year"],
            "sex": p["sex"], "visits": visits}


def _result_json(r: dict) -> dict:
    keep = ("model_name", "model_version", "model_hash", "decision", "label", "abnormal_probability",
            "probabilities", "quality", "windows", "threshold", "created", "details", "stale")
    return {k: r[k] for k in keep if k in r}


def export_patient(store: Store, identifier: str, out: str | os.PathLike,
                   missing: list[str] | None = None) -> Path:
    """Write ``out/``: ``records.json`` and ``audio/`` holding each recording (named by its
    uid) with its sidecars; returns ``out``. ``out`` must not exist or be empty, nor lie in
    a folder of the patient's recordings; the folder appears complete or not at all
    (written in a staging folder, then renamed). A place that cannot be written is refused
    before any work, naming ``out``. A recording whose file is missing is in records.json
    with ``"exported_as": null`` (its sidecars that are still there are copied), and its
    path is added to ``missing`` for the caller to say."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise StoreError("exists and is not a folder; choose a new folder", out)
    if out.exists() and any(out.iterdir()):
        raise StoreError("exists and is not empty; choose a new folder", out)
    record = patient_record(store, identifier)
    # A virtual file system, no permission, or inside a folder of the patient's recordings
    # (a training or evaluation run there would take the copies for more patients): said now.
    folders = {str(Path(rec["path"]).parent) for visit in record["visits"] for rec in visit["recordings"]}
    check_output_dir(out, model=False, data_dirs=sorted(folders))
    try:
        staging = make_staging(out)
    except OSError as exc:
        raise _export_error(exc, out) from None
    try:
        (staging / "audio").mkdir()
        for visit in record["visits"]:
            for rec in visit["recordings"]:
                rec["exported_as"] = _copy_recording(rec, staging / "audio")
        atomic_write_json(staging / "records.json", record)
        gone = [rec["path"] for visit in record["visits"] for rec in visit["recordings"]
                if not rec["exported_as"]]
        if out.exists():
            out.rmdir()  # the empty folder given (a file put there meanwhile stops here)
        publish_dir(staging, out)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise _export_error(exc, out) from None
        raise
    if missing is not None:
        missing += gone
    return out


def _export_error(exc: OSError, out: Path) -> LungappError:
    """One line for an export that could not be written: ``out`` (never the hidden staging
    folder) and the problem."""
    return LungappError(f"cannot write the export here ({exc.strerror or exc}); nothing was exported", out)


def _copy_recording(rec: dict, folder: Path) -> str | None:
    """Copy a recording and its sidecars as ``UID_NAME``; None when its file is missing
    (its sidecars still there are copied). A file that cannot be read raises LungappError
    naming it."""
    src = Path(rec["path"])
    missing = rec["missing"] or not src.is_file()
    for f in ([] if missing else [src]) + sidecars(src):
        try:  # opened first, so that a failed copy is the copy's place (a full disk names the source too)
            with open(f, "rb"):
                pass
        except OSError as exc:
            raise LungappError(f"cannot read this file ({exc.strerror or exc}); nothing was exported", f) from None
        shutil.copy2(f, folder / f"{rec['uid']}_{f.name}")
    return None if missing else f"audio/{rec['uid']}_{src.name}"


@dataclass
class DeletionPlan:
    """What deleting a patient removes: rows, and the files the app made (owned);
    ``kept`` are imported files the app does not own and leaves in place."""

    identifier: str
    n_visits: int = 0
    n_recordings: int = 0
    delete_files: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)

    def describe(self) -> str:
        return (f"patient {self.identifier}: {self.n_visits} visit(s), {self.n_recordings} recording(s) "
                f"with their results and labels; {len(self.delete_files)} file(s) the app made will be "
                f"deleted; {len(self.kept)} imported file(s) are kept where they are")


def plan_deletion(store: Store, identifier: str) -> DeletionPlan:
    """What deleting the patient removes. A damaged database is refused first (StoreFileError):
    files are deleted on its word."""
    p = store.patient(identifier)
    store.check()
    plan = DeletionPlan(p["identifier"])
    visits = store.visits(p["id"])
    plan.n_visits = len(visits)
    for r in store.patient_recordings(p["id"]):
        plan.n_recordings += 1
        files = [Path(r["path"])] + sidecars(r["path"])
        if r["owned"]:
            plan.delete_files += [f for f in files if f.exists()]
        else:
            plan.kept += [f for f in files if f.exists()]
    return plan


def delete_patient(store: Store, plan: DeletionPlan) -> list[str]:
    """Delete the patient's rows (one transaction), then the files the plan names; returns
    the files that could not be deleted (with the reason), which stay listed for the user."""
    pid = store.patient(plan.identifier)["id"]
    with store.transaction() as c:
        c.execute("DELETE FROM patients WHERE id = ?", (pid,))  # visits, recordings... cascade
    problems = []
    for f in plan.delete_files:
        try:
            f.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            problems.append(f"{f}: {exc.strerror or exc}")
    return problems


def backup(store: Store, out: str | os.PathLike) -> Path:
    """Copy the store to ``out`` with SQLite's online backup API: a consistent snapshot
    even while another process writes. ``out`` must not exist (never overwritten)."""
    out = Path(out)
    if out.exists():
        raise StoreError("already exists; not overwritten", out)
    if out.parent.exists() and not out.parent.is_dir():
        raise StoreError("is a file, not a folder: the backup cannot be written in it", out.parent)
    tmp = out.with_name(f".{out.name}.partial")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        dest = sqlite3.connect(tmp)
        try:
            store.conn.backup(dest)
            dest.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            try:
                found = damage(dest)
            except sqlite3.DatabaseError as exc:  # too damaged to be checked
                found = str(exc)
        finally:
            dest.close()
        if found:  # a copy of a damaged store would pass for a good backup
            raise StoreFileError(f"{damaged_problem(found)}; no backup was written to {out}", store.path)
        os.link(tmp, out)  # fails rather than replace a file that appeared meanwhile
    except FileExistsError:
        raise StoreError("already exists; not overwritten", out) from None
    except StoreError:
        raise
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"backup failed ({getattr(exc, 'strerror', None) or exc})", out) from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return out
