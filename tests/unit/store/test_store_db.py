"""The store: schema and migrations, records, results by model, missing files."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from lungapp import paths
from lungapp.store import ModelId, Store, StoreError, schema

from store_helpers import prediction, write_recording

# The version-1 schema exactly as the first release wrote it (copied, not imported: the
# migration must work on what is on users' disks, whatever schema.py says later).
V1_SQL = """
CREATE TABLE patients (id INTEGER PRIMARY KEY, identifier TEXT NOT NULL UNIQUE, name TEXT NOT NULL DEFAULT '',
    birth_year INTEGER, sex TEXT NOT NULL DEFAULT '', created TEXT NOT NULL);
CREATE TABLE visits (id INTEGER PRIMARY KEY, patient_id INTEGER NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
    date TEXT NOT NULL, clinician TEXT NOT NULL DEFAULT '', notes TEXT NOT NULL DEFAULT '');
CREATE TABLE recordings (id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE,
    visit_id INTEGER NOT NULL REFERENCES visits(id) ON DELETE CASCADE, path TEXT NOT NULL,
    site TEXT NOT NULL DEFAULT '', device TEXT NOT NULL DEFAULT '', sample_rate INTEGER, duration_s REAL,
    recorded_at TEXT NOT NULL);
CREATE TABLE results (id INTEGER PRIMARY KEY,
    recording_id INTEGER NOT NULL REFERENCES recordings(id) ON DELETE CASCADE, model_name TEXT NOT NULL,
    model_version TEXT NOT NULL, probabilities TEXT NOT NULL, abnormal_probability REAL NOT NULL,
    decision TEXT NOT NULL, label TEXT NOT NULL, quality TEXT, windows TEXT NOT NULL DEFAULT '[]',
    created TEXT NOT NULL);
CREATE TABLE labels (id INTEGER PRIMARY KEY,
    recording_id INTEGER NOT NULL REFERENCES recordings(id) ON DELETE CASCADE, label TEXT NOT NULL,
    confirmed_by TEXT NOT NULL, confirmed_at TEXT NOT NULL);
PRAGMA user_version = 1;
"""


def test_new_store_is_in_the_data_folder_in_wal_mode_at_the_latest_version():
    with Store() as s:
        assert s.path == paths.database_path() and s.path.is_file()
        assert s.query("PRAGMA journal_mode")[0][0] == "wal"
        assert s.query("PRAGMA user_version")[0][0] == schema.VERSION == 3
        assert s.query("PRAGMA busy_timeout")[0][0] >= 10_000
        assert s.integrity() == "ok"


def test_a_version_1_database_is_migrated_keeping_its_rows(tmp_path):
    db = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(db)
    conn.executescript(V1_SQL)
    conn.execute("INSERT INTO patients VALUES (1, 'P1', 'Ann', 2015, 'female', '2024-01-01T00:00:00Z')")
    conn.execute("INSERT INTO visits VALUES (1, 1, '2024-01-01', 'Dr B', 'cough')")
    conn.execute("INSERT INTO recordings VALUES (1, 'abc', 1, '/x/a.wav', 'Trachea', 'dev', 8000, 9.5, 't')")
    conn.execute("INSERT INTO results VALUES (1, 1, 'old-model', '3', '{\"Normal\": 0.9}', 0.1, 'normal', "
                 "'Normal', NULL, '[]', '2024-01-01T00:00:00Z')")
    conn.commit()
    conn.close()
    with Store(db) as s:
        assert s.query("PRAGMA user_version")[0][0] == 3
        rec = s.recording("abc")
        assert rec["path"] == "/x/a.wav" and rec["owned"] == 0  # v2 column, default for old rows
        (res,) = s.results("abc", ModelId("old-model", "3", ""))
        assert res["model_hash"] == "" and res["threshold"] is None and res["stale"] is False
        assert res["details"] == {}  # v3 column, default for old rows
        assert s.patient("P1")["name"] == "Ann" and s.visits(1)[0]["notes"] == "cough"
        assert s.integrity() == "ok"
    with Store(db) as s:  # opening again migrates nothing more
        assert s.query("PRAGMA user_version")[0][0] == 3


def test_a_store_newer_than_this_app_or_not_a_database_is_refused_in_one_line(tmp_path):
    newer = tmp_path / "newer.sqlite3"
    conn = sqlite3.connect(newer)
    conn.execute(f"PRAGMA user_version = {schema.VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this lungapp") as e:
        Store(newer)
    assert str(newer) in str(e.value) and "\n" not in str(e.value)
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable lungapp store"):
        Store(junk)


def test_patients_visits_recordings_results_and_labels(tmp_path):
    wav = write_recording(tmp_path / "a.wav")
    with Store() as s:
        pid = s.add_patient("P-1", name="Ann Lee", birth_year=2016, sex="female")
        with pytest.raises(StoreError, match="already exists"):
            s.add_patient("P-1")
        v1 = s.add_visit(pid, "2025-01-10", "Dr A", "first")
        v2 = s.add_visit(pid, "2025-03-02")
        assert [v["number"] for v in s.visits(pid)] == [1, 2] and s.visit(pid)["id"] == v2
        with pytest.raises(StoreError, match="no visit 3"):
            s.visit(pid, 3)
        uid = s.add_recording(v1, wav, site="Trachea", device="mic", sample_rate=4000, duration_s=3.0)
        assert len(uid) == 12 and s.recordings(v1)[0]["missing"] is False
        s.add_result(uid, prediction(0.8, "abnormal", "CAS"), ModelId("m", "1", "h1"))
        s.confirm_label(uid, "CAS", "Dr A")
        r = s.latest_result(uid, ModelId("m", "1", "h1"))
        assert r["decision"] == "abnormal" and r["probabilities"]["CAS"] == pytest.approx(0.8)
        assert r["windows"][0] == [0.0, 2.0, 0.8] and r["threshold"] == 0.5 and r["stale"] is False
        assert s.labels(uid)[0]["label"] == "CAS" and s.labels(uid)[0]["confirmed_by"] == "Dr A"
        assert [p["identifier"] for p in s.find_patients("lee")] == ["P-1"]
        assert [p["identifier"] for p in s.find_patients("p-")] == ["P-1"]
        assert s.find_patients("nobody") == []


def test_search_takes_underscore_percent_and_backslash_as_characters():
    with Store() as s:
        for ident in ("A_1", "AB1", "100%", "1000", "X\\Y", "XZY"):
            s.add_patient(ident)
        find = lambda text: [p["identifier"] for p in s.find_patients(text)]  # noqa: E731
        assert find("A_1") == ["A_1"] and find("100%") == ["100%"] and find("X\\Y") == ["X\\Y"]
        assert find("_") == ["A_1"] and find("%") == ["100%"] and sorted(find("a")) == ["AB1", "A_1"]


def test_results_name_their_model_and_stale_ones_are_never_passed_off_as_current(tmp_path):
    wav = write_recording(tmp_path / "a.wav")
    old, new = ModelId("m", "1", "aaa"), ModelId("m", "1", "bbb")  # same name, other weights
    with Store() as s:
        v = s.add_visit(s.add_patient("P"))
        uid = s.add_recording(v, wav)
        other = s.add_recording(v, wav)
        assert s.unanalysed_recordings() == [uid, other]
        s.add_result(uid, prediction(0.9, "abnormal", "CAS"), old)
        latest = s.latest_result(uid, new)
        assert latest["stale"] is True and latest["model"] == "m 1 (aaa)"
        assert [r["uid"] for r in s.stale_recordings(new)] == [uid]
        s.add_result(uid, prediction(0.1, "normal", "Normal"), new)
        assert s.latest_result(uid, new)["decision"] == "normal"
        assert s.latest_result(uid, old)["decision"] == "abnormal"  # each model's own result
        assert s.stale_recordings(new) == [] and s.unanalysed_recordings() == [other]


def test_a_moved_recording_is_reported_missing_and_can_be_relocated(tmp_path):
    wav = write_recording(tmp_path / "a.wav")
    with Store() as s:
        v = s.add_visit(s.add_patient("P"))
        uid = s.add_recording(v, wav)
        moved = tmp_path / "elsewhere" / "a.wav"
        moved.parent.mkdir()
        wav.rename(moved)
        assert s.recordings(v)[0]["missing"] is True
        assert [r["uid"] for r in s.missing_recordings()] == [uid]
        with pytest.raises(StoreError, match="no such file"):
            s.relocate(uid, tmp_path / "nope.wav")
        s.relocate(uid, moved)
        assert s.missing_recordings() == [] and s.recording(uid)["path"] == str(moved)


def test_a_failed_transaction_leaves_nothing(tmp_path):
    with Store() as s:
        with pytest.raises(RuntimeError), s.transaction():
            v = s.add_visit(s.add_patient("P"))
            s.add_recording(v, tmp_path / "x.wav")
            raise RuntimeError("crash in the middle")
        assert s.find_patients() == [] and s.query("SELECT COUNT(*) FROM recordings")[0][0] == 0


def test_a_recording_the_app_made_is_filed_under_todays_visit_with_its_results(tmp_path):
    import datetime as dt

    from lungapp.audio.recorder import Recording, RecordingSettings
    from lungapp.audio.ringbuffer import RingBuffer
    from lungapp.store.recorded import file_recording, save_result

    ring = RingBuffer(4000)
    rec = Recording(ring, 4000, RecordingSettings(site="Trachea", patient_id="K-77", device_name="steth"))
    ring.write(np.zeros(400, dtype=np.float32))
    result = rec.stop()
    anonymous = Recording(RingBuffer(4000), 4000, RecordingSettings(site="Trachea")).stop()
    with Store() as s:
        uid = file_recording(s, result.path)
        assert uid == rec.recording_id and "K-77" not in result.path.name
        assert file_recording(s, result.path) == uid  # filed once
        assert file_recording(s, anonymous.path) is None  # no patient named: not filed
        row = s.recording(uid)
        assert row["owned"] == 1 and row["site"] == "Trachea" and row["device"] == "steth"
        (visit,) = s.visits(s.patient("K-77")["id"])
        assert visit["date"] == dt.date.today().isoformat()
        assert save_result(s, result.path, prediction(0.2, "normal", "Normal"), ModelId("m", "1")) == uid
        assert save_result(s, tmp_path / "other.wav", prediction(0.2, "normal", "Normal"), ModelId("m", "1")) is None
        assert s.latest_result(uid)["decision"] == "normal"


def test_a_result_keeps_what_is_said_beside_its_verdict(tmp_path):
    """The caution on a recording unlike the training ones, a borderline answer and the
    notes survive in the store, and the Review list rebuilds them from it alone."""
    from lungapp.inference.profile import Unfamiliar
    from lungapp.store.results_cache import prediction_from_store

    wav = write_recording(tmp_path / "a.wav")
    u = Unfamiliar(9.1, 7.4, ((177.0, 250.0, 18.0), (250.0, 353.6, 17.5)))
    pred = {**prediction(0.52, "abnormal", "CAS"), "unfamiliar": u.to_dict(), "borderline": True,
            "borderline_margin": 0.05, "peaks": [{"time_s": 1.0, "abnormal_probability": 0.6}],
            "notes": [u.sentence(), "Borderline: listen again"], "truncated": None}
    with Store() as s:
        uid = s.add_recording(s.add_visit(s.add_patient("P-9"), "2025-01-10"), wav, site="Trachea")
        s.add_result(uid, pred, ModelId("m", "1", "h1"))
        r = s.latest_result(uid, ModelId("m", "1", "h1"))
        assert r["details"]["unfamiliar"]["distance"] == pytest.approx(9.1)
        assert r["details"]["notes"] == pred["notes"] and "truncated" not in r["details"]
        again = prediction_from_store(r, dict(s.recording(uid)))
    assert again.unfamiliar is not None and again.borderline
    assert again.notes()[0] == u.sentence() and again.notes()[1].startswith("Borderline: listen again")


def test_a_withdrawn_label_is_no_longer_current_and_stays_in_the_history(tmp_path):
    wav = write_recording(tmp_path / "a.wav")
    with Store() as s:
        uid = s.add_recording(s.add_visit(s.add_patient("P-9")), wav, site="Trachea")
        assert s.withdraw_label(uid, "Dr A") is False          # nothing of theirs to withdraw
        s.confirm_label(uid, "CAS", "Dr A")
        s.confirm_label(uid, "DAS", "Dr B")
        assert s.withdraw_label(uid, "Dr A") is True
        assert s.withdraw_label(uid, "Dr A") is False          # already withdrawn
        assert [(lab["label"], lab["confirmed_by"]) for lab in s.labels(uid, current=True)] == [("DAS", "Dr B")]
        assert [lab["label"] for lab in s.labels(uid)] == ["CAS", "DAS", ""]
        assert s.confirm_label_if_changed(uid, "CAS", "Dr A") is True   # the same label again
        assert [lab["confirmed_by"] for lab in s.labels(uid, current=True)] == ["Dr B", "Dr A"]
