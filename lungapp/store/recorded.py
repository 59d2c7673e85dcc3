"""Filing what the app records and analyses into the store (the GUI's Record view and
Review call these; no Qt here)."""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path

from lungapp.audio.recorder import sidecar_path
from lungapp.store.db import ModelId, Store


def _sidecar(path: str | os.PathLike) -> dict:
    try:
        data = json.loads(sidecar_path(Path(path)).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def todays_visit(store: Store, patient_id: int, clinician: str = "", day: _dt.date | None = None) -> int:
    """The patient's visit of today (``day``: of that day; the latest one), made when there
    is none yet."""
    today = (day or _dt.date.today()).isoformat()
    visits = [v for v in store.visits(patient_id) if v["date"] == today]
    return visits[-1]["id"] if visits else store.add_visit(patient_id, today, clinician)


def _recorded_on(meta: dict) -> _dt.date | None:
    """The local date a recording was started on, from its sidecar's ``start_time`` (None
    when it has none): a recording recovered the next day belongs to the day it was made."""
    try:
        start = _dt.datetime.fromisoformat(str(meta.get("start_time") or "").replace("Z", "+00:00"))
    except ValueError:
        return None
    return (start.astimezone() if start.tzinfo else start).date()


def recording_site(path: str | os.PathLike) -> str:
    """The chest site a recording the app made names in its sidecar ("" when none)."""
    return str(_sidecar(path).get("site") or "").strip()


def file_recording(store: Store, path: str | os.PathLike, visit_id: int | None = None) -> str | None:
    """Add a recording the app made (its sidecar names the patient and site) to the
    store, under ``visit_id`` or the patient's visit of today; returns its uid, or None
    when the sidecar names no patient. A file already in the store keeps its row."""
    existing = store.recording_by_path(path)
    if existing is not None:
        return existing["uid"]
    meta = _sidecar(path)
    patient = str(meta.get("patient_id") or "").strip()
    if not patient and visit_id is None:
        return None
    uid = str(meta.get("recording_id") or "") or None
    with store.transaction():
        if visit_id is None:
            visit_id = todays_visit(store, store.ensure_patient(patient), day=_recorded_on(meta))
        if uid and store.query("SELECT 1 FROM recordings WHERE uid = ?", (uid,)):
            uid = None  # a copy of a file already filed: a new id
        return store.add_recording(visit_id, path, site=str(meta.get("site") or ""),
                                   device=str(meta.get("device") or ""), sample_rate=meta.get("sample_rate"),
                                   duration_s=meta.get("duration_s"), recorded_at=meta.get("start_time"),
                                   owned=True, uid=uid)


def save_result(store: Store, path: str | os.PathLike, prediction: dict, model: ModelId) -> str | None:
    """Store an analysis of ``path`` when the file is a recording in the store; its uid
    (None: not in the store, nothing written)."""
    row = store.recording_by_path(path)
    if row is None:
        return None
    store.add_result(row["uid"], prediction, model)
    return row["uid"]


def confirm_label(store: Store, path: str | os.PathLike, label: str, who: str,
                  at: str | None = None) -> str | None:
    """Record ``who``'s record label of ``path`` (an annotator's, set in Review) as a
    confirmed label when the file is a recording in the store and the label is not already
    their latest; an empty ``label`` (they cleared it) withdraws their current one. Its uid
    (None: not in the store, or nothing new)."""
    row = store.recording_by_path(path)
    if row is None or not who:
        return None
    if not label:
        return row["uid"] if store.withdraw_label(row["uid"], who, at) else None
    return row["uid"] if store.confirm_label_if_changed(row["uid"], label, who, at) else None
