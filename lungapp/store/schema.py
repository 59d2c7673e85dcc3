"""The store's schema and its migrations.

``PRAGMA user_version`` holds the schema version; :data:`MIGRATIONS` [i] turns a version-i
database into version i + 1. A migration runs inside one transaction with the version bump,
so a database is either fully at the old version or fully at the new one. Append a step to
change the schema; never edit a step that has shipped.
"""

from __future__ import annotations

import sqlite3

# Version 1: the first release of the store.
_V1 = """
CREATE TABLE patients (
    id INTEGER PRIMARY KEY,
    identifier TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    birth_year INTEGER,
    sex TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL
);
CREATE TABLE visits (
    id INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
    date TEXT NOT NULL,
    clinician TEXT NOT NULL DEFAULT '',
    notes TEXT NOT NULL DEFAULT ''
);
CREATE TABLE recordings (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    visit_id INTEGER NOT NULL REFERENCES visits(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    site TEXT NOT NULL DEFAULT '',
    device TEXT NOT NULL DEFAULT '',
    sample_rate INTEGER,
    duration_s REAL,
    recorded_at TEXT NOT NULL
);
CREATE TABLE results (
    id INTEGER PRIMARY KEY,
    recording_id INTEGER NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    probabilities TEXT NOT NULL,
    abnormal_probability REAL NOT NULL,
    decision TEXT NOT NULL,
    label TEXT NOT NULL,
    quality TEXT,
    windows TEXT NOT NULL DEFAULT '[]',
    created TEXT NOT NULL
);
CREATE TABLE labels (
    id INTEGER PRIMARY KEY,
    recording_id INTEGER NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    confirmed_by TEXT NOT NULL,
    confirmed_at TEXT NOT NULL
);
CREATE INDEX visits_patient ON visits(patient_id);
CREATE INDEX recordings_visit ON recordings(visit_id);
CREATE INDEX results_recording ON results(recording_id);
CREATE INDEX labels_recording ON labels(recording_id);
"""

# Version 2: results name the exact model file set (two cards may share a name and
# version while their weights differ) and keep the decision threshold used; recordings
# say whether the app made the file (and so may delete it with the patient) or imported
# it from a folder it does not own.
_V2 = """
ALTER TABLE results ADD COLUMN model_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE results ADD COLUMN threshold REAL;
ALTER TABLE recordings ADD COLUMN owned INTEGER NOT NULL DEFAULT 0;
CREATE INDEX recordings_path ON recordings(path);
"""

# Version 3: results keep what the app says beside the verdict (its notes, the caution on a
# recording unlike the model's training ones, a borderline answer, the abnormal stretches
# of a long recording, a truncated file), as JSON, so a patient's record and its report
# say it after a restart too.
_V3 = """
ALTER TABLE results ADD COLUMN details TEXT NOT NULL DEFAULT '{}';
"""

MIGRATIONS: list[str] = [_V1, _V2, _V3]
VERSION = len(MIGRATIONS)


def version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Bring ``conn`` (autocommit mode) to :data:`VERSION`; returns the version it had.

    Each step runs in its own ``BEGIN IMMEDIATE`` transaction and re-reads the version
    inside it, so two processes opening a new database at once migrate it once."""
    start = version(conn)
    if start > VERSION:
        raise ValueError(f"schema version {start} is newer than this lungapp knows ({VERSION})")
    if start == VERSION:  # nothing to do: no write lock taken (opening never waits for a writer)
        return start
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = version(conn)
            if current >= VERSION:
                conn.execute("COMMIT")
                return start
            for statement in _statements(MIGRATIONS[current]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {current + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (executescript would commit on its own,
    outside our transaction). The scripts hold no ';' inside a statement."""
    return [s.strip() for s in script.split(";") if s.strip()]
