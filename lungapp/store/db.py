"""The local store: patients, visits, recordings, results and confirmed labels in SQLite.

Audio stays in files; a recording row refers to its file by its real path (absolute,
symbolic links resolved: :func:`file_path`), so the same file is one recording whatever path
reaches it (rows written before hold an absolute path, and are found too). The database
lives in the user data folder (:func:`lungapp.paths.database_path`) in WAL mode, so the
app, a second app window and a CLI command can read while one of them writes; writers wait
for each other (busy timeout) instead of failing. Every write is one ``BEGIN IMMEDIATE``
transaction (:meth:`Store.transaction`): a process killed in the middle leaves none of it.

SQLite's errors that mean the database file itself cannot be used (damaged, unreadable,
full, read-only, locked) become :class:`StoreFileError`, one line naming the file, from
every store operation; the file is never repaired or replaced here.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lungapp import paths
from lungapp.errors import LungappError
from lungapp.store import schema

BUSY_TIMEOUT_MS = 30_000
#: Store._linked_rows's rows of each database (by real path): (last row id read, {real path: id}).
_LINKED: dict[str, tuple[int, dict[str, int]]] = {}
_LINKED_LOCK = threading.Lock()
# What a recording row may say about its file, with the defaults.
RECORDING_FACTS = {"site": "", "device": "", "sample_rate": None, "duration_s": None, "recorded_at": None}


def _fold(text):
    """Python's case folding, for SQL (None stays None)."""
    return text.casefold() if isinstance(text, str) else text


class StoreError(LungappError):
    """The store cannot be opened or a record in it is not what the caller asked for."""


class StoreFileError(StoreError, sqlite3.DatabaseError):
    """The database file cannot be used: damaged, unreadable, full, read-only, locked.
    Also a :class:`sqlite3.DatabaseError`, so code that catches SQLite's errors around the
    store (the GUI's Review list) still does."""


#: SQLite's (primary) result codes saying the database file is damaged.
_DAMAGED = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
#: ... and those saying it cannot be used now (disk, permissions, another program's lock).
#: Other codes (constraints, SQL errors, misuse) are the code's business and pass as they are.
_UNUSABLE = frozenset({sqlite3.SQLITE_PERM, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_READONLY,
                       sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN,
                       sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOLFS})


def damaged_problem(what: str) -> str:
    """The one line said of a damaged database (``what``: SQLite's words)."""
    return (f"the database is damaged ({what}); to recover, close lungapp, move this file aside and "
            "copy a backup (made with `lungapp backup`) in its place")


def damage(conn: sqlite3.Connection) -> str | None:
    """SQLite's ``quick_check`` of ``conn``: None for a sound database, else its first
    finding, one line (and how many more there are)."""
    rows = [str(r[0]) for r in conn.execute("PRAGMA quick_check").fetchall()]
    if rows == ["ok"]:
        return None
    lines = [ln for r in rows for ln in r.splitlines() if ln.strip() and not ln.startswith("***")]
    more = f" and {len(lines) - 1} more problem(s)" if len(lines) > 1 else ""
    return (lines or ["quick_check failed"])[0] + more


def file_error(exc: sqlite3.Error, path: str | os.PathLike) -> StoreFileError | None:
    """The :class:`StoreFileError` naming ``path`` for an error of SQLite that says the
    database file cannot be used; None for any other error (a constraint, a bug)."""
    if isinstance(exc, StoreError):
        return None
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    what = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if primary in _DAMAGED:
        problem = damaged_problem(what)
    elif primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        problem = f"cannot use the database now ({what}: another program is writing to it; try again)"
    elif primary in _UNUSABLE or type(exc) is sqlite3.DatabaseError:
        problem = f"cannot use the database ({what})"
    else:
        return None
    out = StoreFileError(problem, path)
    out.sqlite_errorcode, out.sqlite_errorname = code, getattr(exc, "sqlite_errorname", None)
    return out


def patient_identifier(identifier: str | None) -> str:
    """A patient identifier as the store keeps and looks it up: without surrounding white
    space (what every method taking one uses). An empty one raises StoreError."""
    text = str(identifier if identifier is not None else "").strip()
    if not text:
        raise StoreError("a patient needs an identifier")
    return text


def file_path(path: str | os.PathLike) -> str:
    """How a recording's file is kept: absolute, symbolic links resolved."""
    return os.path.realpath(path)


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
            converted = file_error(exc, self.path)
            if converted is not None and type(exc) is not sqlite3.DatabaseError:
                raise converted from None  # locked, read-only, a disk error
            raise StoreFileError(f"not a usable lungapp store ({exc})", self.path) from None
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
    def errors(self) -> Iterator[None]:
        """SQLite's errors saying the database file cannot be used, raised inside, become
        :class:`StoreFileError` naming it (others pass as they are)."""
        try:
            yield
        except sqlite3.Error as exc:
            converted = file_error(exc, self.path)
            if converted is None:
                raise
            raise converted from exc

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (IMMEDIATE), so two writers queue on the
        busy timeout instead of one failing when it upgrades a read lock. Inside an open
        transaction it joins that one, so several writes can be made one unit."""
        if self.conn.in_transaction:
            yield self.conn
            return
        with self.errors():
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
                self.conn.execute("COMMIT")
            except BaseException:
                # SQLite ends the transaction itself after some errors (a damaged page, a
                # full disk): a ROLLBACK then would hide the error that says why.
                if self.conn.in_transaction:
                    try:
                        self.conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                raise

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        with self.errors():
            return self.conn.execute(sql, params).fetchall()

    def _one(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        with self.errors():
            return self.conn.execute(sql, params).fetchone()

    def check(self) -> None:
        """Raise StoreFileError when SQLite's ``quick_check`` finds the database damaged.
        It reads every page: run before bulk or destructive work, not on every open."""
        with self.errors():
            found = damage(self.conn)
        if found:
            raise StoreFileError(damaged_problem(found), self.path)

    # --- patients and visits ----------------------------------------------------------

    def add_patient(self, identifier: str, name: str = "", birth_year: int | None = None,
                    sex: str = "") -> int:
        identifier = patient_identifier(identifier)
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
        with self.transaction():  # looked up again: another process may have added them
            row = self.patient(identifier, missing_ok=True)
            return row["id"] if row is not None else self.add_patient(identifier, **fields)

    def patient(self, identifier: str, missing_ok: bool = False) -> sqlite3.Row | None:
        """The patient's row (``identifier`` as :func:`patient_identifier` makes it); an
        unknown one raises StoreError, or gives None with ``missing_ok``."""
        identifier = patient_identifier(identifier)
        row = self._one("SELECT * FROM patients WHERE identifier = ?", (identifier,))
        if row is None and not missing_ok:
            raise StoreError(f"no patient {identifier!r} in the store", self.path)
        return row

    def find_patients(self, text: str = "") -> list[sqlite3.Row]:
        """Patients whose identifier or name contains ``text`` (case-insensitive), by identifier."""
        # "_" and "%" are characters here, not LIKE's wildcards ("A_1" is not "AB1")
        # SQLite's LIKE folds ASCII only ("émile" would not find "Émile"): both sides are
        # folded by Python's casefold first.
        escaped = text.strip().casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = f"%{escaped}%"
        self.conn.create_function("lungapp_fold", 1, _fold, deterministic=True)
        return self.query("SELECT * FROM patients WHERE lungapp_fold(identifier) LIKE ? ESCAPE '\\' "
                          "OR lungapp_fold(name) LIKE ? ESCAPE '\\' ORDER BY identifier", (like, like))

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

    def visit(self, patient_id: int, number: int | None = None, *, visit_id: int | None = None) -> dict:
        """Visit ``number`` (1 = first) of a patient; None: the latest. ``visit_id``: the
        visit of that id, whatever its number is now (a visit filed since on an earlier day
        moves the later ones' numbers)."""
        visits = self.visits(patient_id)
        if visit_id is not None:
            found = next((v for v in visits if v["id"] == visit_id), None)
            if found is None:
                raise StoreError("the visit is no longer in the store (deleted elsewhere?)", self.path)
            return found
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
                      (uid, visit_id, file_path(path), row["site"], row["device"], row["sample_rate"],
                       row["duration_s"], row["recorded_at"] or now(), int(owned)))
        return uid

    def file_under(self, uid: str, visit_id: int, site: str) -> None:
        """Put recording ``uid`` under ``visit_id`` at ``site`` (a guided exam files each
        recording under its visit and the site it asked for)."""
        with self.transaction() as c:
            c.execute("UPDATE recordings SET visit_id = ?, site = ? WHERE uid = ?", (visit_id, site, uid))

    def recording(self, uid: str) -> sqlite3.Row:
        row = self._one("SELECT * FROM recordings WHERE uid = ?", (uid,))
        if row is None:
            raise StoreError(f"no recording {uid!r} in the store", self.path)
        return row

    def recording_by_path(self, path: str | os.PathLike) -> sqlite3.Row | None:
        """The recording whose file ``path`` is, whatever path reaches it (a symbolic link,
        a linked folder, a hard link); the oldest when several are. Rows hold the real path;
        rows written before hold the absolute one, maybe through a link: found as given, or
        by their real path (:meth:`_linked_rows`)."""
        real, absolute = file_path(path), os.path.abspath(path)
        row = self._one("SELECT * FROM recordings WHERE path IN (?, ?) ORDER BY id LIMIT 1", (real, absolute))
        if row is not None:
            return row
        rid = self._linked_rows().get(real)
        row = None if rid is None else self._one("SELECT * FROM recordings WHERE id = ?", (rid,))
        # Checked again: the row may have been relocated (or deleted) since the map was made.
        if row is not None and file_path(row["path"]) == real:
            return row
        try:  # a file with other names (hard links) may be filed under one of them
            linked = os.stat(real).st_nlink > 1
        except OSError:
            return None
        other = self._recording_of_file(real, besides="") if linked else None
        return None if other is None else self.recording(other["uid"])

    def _linked_rows(self) -> dict[str, int]:
        """{real path: row id} of the rows whose path is not their real path (written before
        paths were resolved, through a symbolic link). Kept per database for the process
        and brought up to date with the rows added since (one ``lstat`` per new row, each
        folder resolved once): only the first look-up reads every row. An entry may be out
        of date (the row relocated or deleted since): the caller checks the row it finds."""
        key = file_path(self.path)
        with _LINKED_LOCK:
            last, linked = _LINKED.get(key, (0, {}))
        rows = self.query("SELECT id, path FROM recordings WHERE id > ? ORDER BY id", (last,))
        if rows:
            linked, real_dirs = dict(linked), {}
            for r in rows:
                folder, name = os.path.split(r["path"])
                if folder not in real_dirs:
                    real_dirs[folder] = file_path(folder)
                real = file_path(r["path"]) if os.path.islink(r["path"]) else os.path.join(real_dirs[folder], name)
                if real != r["path"]:
                    linked.setdefault(real, r["id"])
            with _LINKED_LOCK:
                _LINKED[key] = (rows[-1]["id"], linked)
        return linked

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
        """Point recording ``uid`` at its file's new place. Refused (StoreError naming the
        file): no such file, a file that is another recording's in the store (deleting a
        patient deletes the files the app made: it must never reach another one's), a
        file that is not readable audio, audio whose duration or sample rate is not the
        recording's (its results were made from other audio)."""
        from lungapp.audio import audio_info

        if not os.path.isfile(new_path):
            raise StoreError("no such file; the recording was not relocated", new_path)
        rec = self.recording(uid)
        try:
            info = audio_info(new_path)
        except LungappError as exc:
            raise StoreError(f"{exc.problem}; the recording was not relocated", new_path) from None
        stored_s, stored_rate = rec["duration_s"], rec["sample_rate"]
        if (stored_s is not None and abs(float(stored_s) - info.duration_s) > 0.05) or \
                (stored_rate and int(stored_rate) != info.rate):
            raise StoreError(f"is not recording {uid}'s audio ({info.duration_s:.1f} s at {info.rate} Hz; "
                             f"the recording was {float(stored_s or 0):.1f} s at {stored_rate} Hz); "
                             "the recording was not relocated", new_path)
        with self.transaction() as c:  # checked and changed at once: no other writer in between
            other = self._recording_of_file(new_path, besides=uid)
            if other is not None:
                raise StoreError(f"is already the file of recording {other['uid']} (patient "
                                 f"{other['identifier']}); the recording was not relocated", new_path)
            c.execute("UPDATE recordings SET path = ? WHERE uid = ?", (file_path(new_path), uid))

    def _recording_of_file(self, path: str | os.PathLike, besides: str) -> sqlite3.Row | None:
        """Another recording than ``besides`` whose file is ``path`` (an existing file): the
        same file on disk, whatever path reaches it (the same real path, a symbolic link, a
        hard link: one ``stat`` per row, cheaper than resolving each row's path)."""
        real, here = file_path(path), os.stat(path)
        rows = self.query("SELECT r.uid, r.path, p.identifier FROM recordings r JOIN visits v ON v.id = r.visit_id "
                          "JOIN patients p ON p.id = v.patient_id WHERE r.uid != ? ORDER BY r.id", (besides,))
        for r in rows:
            if r["path"] == real:
                return r
            try:
                if os.path.samestat(os.stat(r["path"]), here):
                    return r
            except OSError:  # its file is missing (or unreadable): not this one
                continue
        return None

    def add_result(self, uid: str, prediction: dict, model: ModelId) -> int:
        """Store a prediction (:meth:`Prediction.to_dict`) of recording ``uid`` by ``model``."""
        with self.transaction() as c:
            rec_id = self.recording(uid)["id"]  # in the transaction: not deleted under it
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
        return [_decode_result(r, active, self.path) for r in rows]

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

    def labels(self, uid: str, current: bool = False) -> list[dict]:
        """The recording's confirmed labels, oldest first: every one ever confirmed, or with
        ``current`` each confirmer's latest (what the views and the report show: a label an
        annotator changed is no longer theirs), leaving out a confirmer whose latest is a
        withdrawal (an empty label, :meth:`withdraw_label`)."""
        rec_id = self.recording(uid)["id"]
        latest = (" AND id = (SELECT MAX(id) FROM labels AS l WHERE l.recording_id = labels.recording_id"
                  " AND l.confirmed_by = labels.confirmed_by) AND label != ''") if current else ""
        return [dict(r) for r in self.query("SELECT label, confirmed_by, confirmed_at FROM labels "
                                            f"WHERE recording_id = ?{latest} ORDER BY confirmed_at, id",
                                            (rec_id,))]

    def confirm_label_if_changed(self, uid: str, label: str, confirmed_by: str,
                                 confirmed_at: str | None = None) -> bool:
        """Confirm ``label`` unless it is already ``confirmed_by``'s latest; whether it was."""
        with self.transaction():
            mine = [lab for lab in self.labels(uid, current=True) if lab["confirmed_by"] == confirmed_by]
            if mine and mine[-1]["label"] == label:
                return False
            self.confirm_label(uid, label, confirmed_by, confirmed_at)
            return True

    def withdraw_label(self, uid: str, confirmed_by: str, at: str | None = None) -> bool:
        """``confirmed_by`` no longer confirms any label of the recording (they cleared it in
        Review): an empty label is added to the history, so their earlier one stops being
        current; whether they had one."""
        with self.transaction():
            if not any(lab["confirmed_by"] == confirmed_by for lab in self.labels(uid, current=True)):
                return False
            self.confirm_label(uid, "", confirmed_by, at)
            return True

    def integrity(self) -> str:
        """``PRAGMA integrity_check``: "ok" for a sound database."""
        return self._one("PRAGMA integrity_check")[0]


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


def _decode_result(row: sqlite3.Row, active: ModelId | None, path) -> dict:
    """A result row with its JSON columns read; one that cannot be read (a damaged page
    SQLite's checks do not see, another program's write) is StoreFileError naming ``path``."""
    d = dict(row)
    try:
        d["probabilities"] = json.loads(d["probabilities"])
        d["quality"] = json.loads(d["quality"]) if d["quality"] else None
        d["windows"] = json.loads(d["windows"])
        d["details"] = json.loads(d.get("details") or "{}")
    except (TypeError, ValueError) as exc:
        raise StoreFileError(damaged_problem(f"result {d.get('id')} cannot be read: {exc}"), path) from None
    d["model"] = ModelId(d["model_name"], d["model_version"], d["model_hash"]).text()
    if active is not None:
        d["stale"] = (d["model_name"], d["model_version"], d["model_hash"]) != (active.name, active.version,
                                                                                active.hash)
    return d
