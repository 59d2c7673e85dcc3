"""The local store: patients, visits, recordings, results and confirmed labels in SQLite.

Audio stays in files; a recording row refers to its file by absolute path. The database
lives in the user data folder (:func:`lungapp.paths.database_path`) in WAL mode, so the
app, a second app window and a CLI command can read while one of them writes; writers wait
for each other (busy timeout) instead of failing. Every write is one ``BEGIN IMMEDIATE``
transaction (:meth:`Store.transaction`): a process killed in the middle leaves none of it.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lungapp import paths
from lungapp.errors import LungappError
from lungapp.store import schema

BUSY_TIMEOUT_MS = 30_000
# What a recording row may say about its file, with the defaults.
RECORDING_FACTS = {"site": "", "device": "", "sample_rate": None, "duration_s": None, "recorded_at": None}


class StoreError(LungappError):
    """The store cannot be opened or a record in it is not what the caller asked for."""


def now() -> str:
    """The current UTC time, ISO 8601 to the second (what every ``*_at`` column holds)."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_uid() -> str:
    """A random recording id (12 hex digits): what file names carry instead of anything
    that could identify the patient."""
    return secrets.token_hex(6)


@dataclass(frozen=True)
class ModelId:
    """Which model made a result: the card's name and version and a hash of the card
    (the card records the ONNX files' sha256, so a retrained model has another hash)."""

    name: str
    version: str
    hash: str = ""

    def text(self) -> str:
        return f"{self.name} {self.version}" + (f" ({self.hash[:8]})" if self.hash else "")


class Store:
    """One connection to the store. Use as a context manager or call :meth:`close`."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else paths.database_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                                        isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the store ({exc})", self.path) from None
        self.conn.row_factory = sqlite3.Row
        try:
            self._configure()
            schema.migrate(self.conn)
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise StoreError(f"not a usable lungapp store ({exc})", self.path) from None
        except ValueError as exc:
            self.conn.close()
            raise StoreError(str(exc), self.path) from None

    def _configure(self) -> None:
        self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self.conn.execute("PRAGMA journal_mode = WAL")
        # FULL: a committed transaction survives a power cut, not only a killed process.
        self.conn.execute("PRAGMA synchronous = FULL")
        self.conn.execute("PRAGMA foreign_keys = ON")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (IMMEDIATE), so two writers queue on the
        busy timeout instead of one failing when it upgrades a read lock. Inside an open
        transaction it joins that one, so several writes can be made one unit."""
        if self.conn.in_transaction:
            yield self.conn
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    # --- patients and visits ----------------------------------------------------------

    def add_patient(self, identifier: str, name: str = "", birth_year: int | None = None,
                    sex: str = "") -> int:
        identifier = identifier.strip()
        if not identifier:
            raise StoreError("a patient needs an identifier")
        with self.transaction() as c:
            if c.execute("SELECT 1 FROM patients WHERE identifier = ?", (identifier,)).fetchone():
                raise StoreError(f"patient {identifier!r} already exists", self.path)
            return c.execute("INSERT INTO patients (identifier, name, birth_year, sex, created) "
                             "VALUES (?, ?, ?, ?, ?)", (identifier, name, birth_year, sex, now())).lastrowid

    def ensure_patient(self, identifier: str, **fields) -> int:
        """The patient's row id, adding the patient when new (one transaction)."""
        row = self.patient(identifier, missing_ok=True)
        if row is not None:
            return row["id"]
        try:
            return self.add_patient(identifier, **fields)
        except StoreError:  # another process added them in between
            return self.patient(identifier)["id"]

    def patient(self, identifier: str, missing_ok: bool = False) -> sqlite3.Row | None:
        row = self.conn.execute("SELECT * FROM patients WHERE identifier = ?", (identifier,)).fetchone()
        if row is None and not missing_ok:
            raise StoreError(f"no patient {identifier!r} in the store", self.path)
        return row

    def find_patients(self, text: str = "") -> list[sqlite3.Row]:
        """Patients whose identifier or name contains ``text`` (case-insensitive), by identifier."""
        like = f"%{text.strip()}%"
        return self.query("SELECT * FROM patients WHERE identifier LIKE ? OR name LIKE ? "
                          "ORDER BY identifier", (like, like))

    def update_patient(self, identifier: str, **fields) -> None:
        """Change a patient's ``name``, ``birth_year`` and/or ``sex``."""
        allowed = {"name", "birth_year", "sex"}
        if set(fields) - allowed:
            raise ValueError(f"unknown patient fields: {set(fields) - allowed}")
        pid = self.patient(identifier)["id"]
        with self.transaction() as c:
            for key, value in fields.items():  # key is one of `allowed`: safe in the SQL text
                c.execute(f"UPDATE patients SET {key} = ? WHERE id = ?", (value, pid))

    def add_visit(self, patient_id: int, date: str | None = None, clinician: str = "",
                  notes: str = "") -> int:
        with self.transaction() as c:
            return c.execute("INSERT INTO visits (patient_id, date, clinician, notes) VALUES (?, ?, ?, ?)",
                             (patient_id, date or _dt.date.today().isoformat(), clinician, notes)).lastrowid

    def visits(self, patient_id: int) -> list[dict]:
        """A patient's visits, oldest first; ``number`` is 1 for the first visit."""
        rows = self.query("SELECT * FROM visits WHERE patient_id = ? ORDER BY date, id", (patient_id,))
        return [_with(r, number=i) for i, r in enumerate(rows, 1)]

    def visit(self, patient_id: int, number: int | None = None) -> dict:
        """Visit ``number`` (1 = first) of a patient; None: the latest."""
        visits = self.visits(patient_id)
        if not visits:
            raise StoreError("the patient has no visits", self.path)
        if number is None:
            return visits[-1]
        if not 1 <= number <= len(visits):
            raise StoreError(f"no visit {number}: the patient has {len(visits)} visit(s)", self.path)
        return visits[number - 1]

    def set_visit_notes(self, visit_id: int, notes: str) -> None:
        with self.transaction() as c:
            c.execute("UPDATE visits SET notes = ? WHERE id = ?", (notes, visit_id))

    # --- recordings, results, labels ---------------------------------------------------

    def add_recording(self, visit_id: int, path: str | os.PathLike, *, owned: bool = False,
                      uid: str | None = None, **facts) -> str:
        """Add a recording (its file stays where it is); returns its random uid. ``owned``:
        the app made the file, so deleting the patient deletes it too. ``facts``: any of
        ``site``, ``device``, ``sample_rate`` (Hz), ``duration_s``, ``recorded_at`` (ISO
        time; default now)."""
        unknown = set(facts) - set(RECORDING_FACTS)
        if unknown:
            raise TypeError(f"unknown recording facts: {sorted(unknown)}")
        row = {**RECORDING_FACTS, **{k: v for k, v in facts.items() if v is not None}}
        uid = uid or new_uid()
        with self.transaction() as c:
            c.execute("INSERT INTO recordings (uid, visit_id, path, site, device, sample_rate, duration_s, "
                      "recorded_at, owned) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (uid, visit_id, os.path.abspath(path), row["site"], row["device"], row["sample_rate"],
                       row["duration_s"], row["recorded_at"] or now(), int(owned)))
        return uid

    def file_under(self, uid: str, visit_id: int, site: str) -> None:
        """Put recording ``uid`` under ``visit_id`` at ``site`` (a guided exam files each
        recording under its visit and the site it asked for)."""
        with self.transaction() as c:
            c.execute("UPDATE recordings SET visit_id = ?, site = ? WHERE uid = ?", (visit_id, site, uid))

    def recording(self, uid: str) -> sqlite3.Row:
        row = self.conn.execute("SELECT * FROM recordings WHERE uid = ?", (uid,)).fetchone()
        if row is None:
            raise StoreError(f"no recording {uid!r} in the store", self.path)
        return row

    def recording_by_path(self, path: str | os.PathLike) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM recordings WHERE path = ?",
                                 (os.path.abspath(path),)).fetchone()

    def recordings(self, visit_id: int) -> list[dict]:
        """A visit's recordings (oldest first), each with ``missing`` (its file is gone)."""
        rows = self.query("SELECT * FROM recordings WHERE visit_id = ? ORDER BY recorded_at, id", (visit_id,))
        return [_with(r, missing=not os.path.isfile(r["path"])) for r in rows]

    def patient_recordings(self, patient_id: int) -> list[dict]:
        """All of a patient's recordings with their visit's date and number."""
        out = []
        for v in self.visits(patient_id):
            out += [dict(r, visit_number=v["number"], visit_date=v["date"]) for r in self.recordings(v["id"])]
        return out

    def missing_recordings(self) -> list[dict]:
        """Recordings whose file was moved or deleted outside the app."""
        return [dict(r) for r in self.query("SELECT * FROM recordings ORDER BY id") if not os.path.isfile(r["path"])]

    def relocate(self, uid: str, new_path: str | os.PathLike) -> None:
        """Point recording ``uid`` at its file's new place."""
        if not os.path.isfile(new_path):
            raise StoreError("no such file; the recording was not relocated", new_path)
        self.recording(uid)
        with self.transaction() as c:
            c.execute("UPDATE recordings SET path = ? WHERE uid = ?", (os.path.abspath(new_path), uid))

    def add_result(self, uid: str, prediction: dict, model: ModelId) -> int:
        """Store a prediction (:meth:`Prediction.to_dict`) of recording ``uid`` by ``model``."""
        rec_id = self.recording(uid)["id"]
        with self.transaction() as c:
            return c.execute(
                "INSERT INTO results (recording_id, model_name, model_version, model_hash, probabilities, "
                "abnormal_probability, decision, label, quality, windows, threshold, created, details) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (rec_id, model.name, model.version, model.hash, json.dumps(prediction["probabilities"]),
                 float(prediction["abnormal_probability"]), prediction["decision"], prediction["label"],
                 json.dumps(prediction.get("quality")), json.dumps(_timeline(prediction)),
                 prediction.get("threshold"), now(),
                 json.dumps({k: prediction[k] for k in DETAILS if prediction.get(k) is not None}))).lastrowid

    def results(self, uid: str, active: ModelId | None = None) -> list[dict]:
        """Recording ``uid``'s results, newest first, decoded; with ``active``, each says
        whether it is ``stale`` (made by another model than the active one)."""
        rec_id = self.recording(uid)["id"]
        rows = self.query("SELECT * FROM results WHERE recording_id = ? ORDER BY created DESC, id DESC", (rec_id,))
        return [_decode_result(r, active) for r in rows]

    def latest_result(self, uid: str, active: ModelId | None = None) -> dict | None:
        """The newest result, preferring one of the active model: a stale one only when the
        active model has none (it is then marked ``stale``, never passed off as current)."""
        results = self.results(uid, active)
        current = [r for r in results if not r.get("stale")]
        return (current or results or [None])[0]

    def stale_recordings(self, active: ModelId, patient_id: int | None = None) -> list[dict]:
        """Recordings with results, none of them by the ``active`` model: what
        "re-analyse" runs on (recordings never analysed are not stale)."""
        sql = ("SELECT r.* FROM recordings r JOIN visits v ON v.id = r.visit_id"
               + (" WHERE v.patient_id = ?" if patient_id is not None else "") + " ORDER BY r.id")
        rows = self.query(sql, (patient_id,) if patient_id is not None else ())
        out = []
        for r in rows:
            latest = self.latest_result(r["uid"], active)
            if latest is not None and latest["stale"]:
                out.append(dict(r))
        return out

    def unanalysed_recordings(self, patient_id: int | None = None) -> list[str]:
        """The uids of recordings without any result (of a patient, or everyone's)."""
        sql = ("SELECT r.uid FROM recordings r JOIN visits v ON v.id = r.visit_id WHERE NOT EXISTS "
               "(SELECT 1 FROM results x WHERE x.recording_id = r.id)"
               + (" AND v.patient_id = ?" if patient_id is not None else "") + " ORDER BY r.id")
        return [r["uid"] for r in self.query(sql, (patient_id,) if patient_id is not None else ())]

    def confirm_label(self, uid: str, label: str, confirmed_by: str, confirmed_at: str | None = None) -> int:
        rec_id = self.recording(uid)["id"]
        with self.transaction() as c:
            return c.execute("INSERT INTO labels (recording_id, label, confirmed_by, confirmed_at) "
                             "VALUES (?, ?, ?, ?)", (rec_id, label, confirmed_by, confirmed_at or now())).lastrowid

    def labels(self, uid: str) -> list[dict]:
        rec_id = self.recording(uid)["id"]
        return [dict(r) for r in self.query("SELECT label, confirmed_by, confirmed_at FROM labels "
                                            "WHERE recording_id = ? ORDER BY confirmed_at, id", (rec_id,))]

    def integrity(self) -> str:
        """``PRAGMA integrity_check``: "ok" for a sound database."""
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0]


def _with(row: sqlite3.Row, **extra) -> dict:
    d = dict(row)
    d.update(extra)
    return d


#: What a result keeps beside its verdict (Prediction.to_dict keys): the sentences shown
#: with it and what they are made from.
DETAILS = ("notes", "unfamiliar", "borderline", "borderline_margin", "abnormal_ranges", "segments",
           "peaks", "truncated")


def _timeline(prediction: dict) -> list[list[float]]:
    """The per-window abnormal probability, compact: [[start_s, end_s, p], ...]."""
    return [[w["start_s"], w["end_s"], w["abnormal_probability"]] for w in prediction.get("windows", [])]


def _decode_result(row: sqlite3.Row, active: ModelId | None) -> dict:
    d = dict(row)
    d["probabilities"] = json.loads(d["probabilities"])
    d["quality"] = json.loads(d["quality"]) if d["quality"] else None
    d["windows"] = json.loads(d["windows"])
    d["details"] = json.loads(d.get("details") or "{}")
    d["model"] = ModelId(d["model_name"], d["model_version"], d["model_hash"]).text()
    if active is not None:
        d["stale"] = (d["model_name"], d["model_version"], d["model_hash"]) != (active.name, active.version,
                                                                                active.hash)
    return d
