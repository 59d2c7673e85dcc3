"""The store against bad input: a relocation onto another recording's file or onto a file
that is not audio, patient identifiers with white space or none, a damaged database file,
and the same files reached through a symbolic link (the store's own API; the commands are
tried in tests/unit/cli/test_store_hardening_cli.py)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import pytest

from lungapp import paths
from lungapp.store import ModelId, Store, StoreError, StoreFileError
from lungapp.store.importer import import_folder
from lungapp.store.manage import backup, export_patient, patient_record, plan_deletion
from lungapp.store.recorded import file_recording

from store_helpers import prediction, write_recording

# --- relocating a recording ------------------------------------------------------------


def _two_patients(tmp_path: Path) -> tuple[str, str, Path, Path]:
    """Patient A with a recording the app made (owned) whose file is gone, patient B with an
    imported one; (A's uid, B's uid, A's old file, B's file)."""
    a_file = write_recording(tmp_path / "recs" / "a.wav")
    b_file = write_recording(tmp_path / "imported" / "b.wav", seed=1)
    with Store() as s:
        a = s.add_recording(s.add_visit(s.add_patient("A")), a_file, owned=True)
        b = s.add_recording(s.add_visit(s.add_patient("B")), b_file)
    a_file.unlink()
    return a, b, a_file, b_file


def test_relocate_refuses_a_file_another_recording_has_by_any_path(tmp_path):
    a, b, a_old, b_file = _two_patients(tmp_path)
    (tmp_path / "link").symlink_to(b_file.parent)
    os.link(b_file, tmp_path / "hard.wav")
    with Store() as s:
        for other_path in (b_file, tmp_path / "link" / "b.wav", tmp_path / "imported" / ".." / "imported" / "b.wav",
                           tmp_path / "hard.wav"):
            with pytest.raises(StoreError) as e:
                s.relocate(a, other_path)
            assert str(e.value) == (f"{other_path}: is already the file of recording {b} (patient B); "
                                    "the recording was not relocated")
            assert s.recording(a)["path"] == str(a_old)
        # Deleting A now cannot reach B's file: A still points at its own (missing) file.
        assert plan_deletion(s, "A").delete_files == []
        s.relocate(b, tmp_path / "link" / "b.wav")  # its own file by another path: fine
        assert s.recording(b)["path"] == str(b_file)


def test_relocate_refuses_a_file_that_is_not_audio(tmp_path):
    a, _, a_old, _ = _two_patients(tmp_path)
    pdf = tmp_path / "r1.pdf"
    pdf.write_bytes(b"%PDF-1.4\n" + b"x" * 2000)
    fake = tmp_path / "fake.wav"
    fake.write_bytes(b"RIFF0000WAVEjunk" * 10)
    with Store() as s:
        for bad, problem in ((pdf, "not a supported audio file"), (fake, "truncated, corrupt or unsupported WAV")):
            with pytest.raises(StoreError) as e:
                s.relocate(a, bad)
            text = str(e.value)
            assert text.startswith(f"{bad}: {problem}") and "\n" not in text
            assert text.endswith("the recording was not relocated")
            assert s.recording(a)["path"] == str(a_old)
        good = write_recording(tmp_path / "found" / "a.wav")
        s.relocate(a, good)
        assert s.recording(a)["path"] == str(good) and s.missing_recordings() == []


# --- patient identifiers ---------------------------------------------------------------


def test_identifiers_are_taken_without_surrounding_space_everywhere_and_an_empty_one_is_refused(tmp_path):
    with Store() as s:
        pid = s.ensure_patient(" NEW2 ")
        assert s.patient("NEW2")["id"] == pid and s.patient("\tNEW2\n")["id"] == pid
        assert s.ensure_patient("NEW2 ") == pid
        s.update_patient(" NEW2", name="Bob")
        assert s.patient("NEW2")["name"] == "Bob"
        assert patient_record(s, " NEW2 ")["identifier"] == "NEW2"
        assert plan_deletion(s, " NEW2 ").identifier == "NEW2"
        export_patient(s, " NEW2 ", tmp_path / "ex")
        for empty in ("", "   ", None):
            calls = (lambda e=empty: s.patient(e), lambda e=empty: s.patient(e, missing_ok=True),
                     lambda e=empty: s.ensure_patient(e), lambda e=empty: s.update_patient(e, name="x"),
                     lambda e=empty: s.add_patient(e))
            for call in calls:
                with pytest.raises(StoreError, match="^a patient needs an identifier$"):
                    call()
        assert [p["identifier"] for p in s.find_patients()] == ["NEW2"]


# --- export ----------------------------------------------------------------------------


def test_export_returns_the_folder_it_wrote(tmp_path):
    (tmp_path / "data").mkdir()  # outside the recordings' folder, as an export must be
    write_recording(tmp_path / "data" / "a.wav")
    with Store() as s:
        s.add_recording(s.add_visit(s.add_patient("P")), tmp_path / "data" / "a.wav")
        out = tmp_path / "ex1"
        assert export_patient(s, "P", out) == out
        empty = tmp_path / "empty"
        empty.mkdir()
        assert export_patient(s, "P", empty) == empty
        assert not list(tmp_path.glob("empty.replaced-*"))  # the empty folder was not "replaced"
        assert (empty / "records.json").is_file()


# --- a damaged database ----------------------------------------------------------------


def damaged_store(tmp_path: Path, folder: Path) -> Path:
    """A small store copied with the backup API, then 4 KB of junk written over the root
    page of its visits table (as a bad disk sector would), as the data folder's database;
    opened once (which puts it in WAL mode), so that from then on its bytes can be compared."""
    wav = write_recording(folder / "4001_5.0_0_p1_1.wav")
    with Store() as s:
        for i in range(3):
            v = s.add_visit(s.add_patient(f"P{i}", name=f"name {i}"), "2025-01-0" + str(i + 1), "Dr", "notes")
            s.add_result(s.add_recording(v, wav), prediction(0.2, "normal", "Normal"), ModelId("m", "1", "h"))
        source = s.path
        copy = backup(s, tmp_path / "copy.sqlite3")
    conn = sqlite3.connect(copy)
    root, page = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'visits'").fetchone()[0], \
        conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with open(copy, "r+b") as f:
        f.seek((root - 1) * page)
        f.write(bytes(range(256)) * (page // 256))
    os.replace(copy, source)
    for side in ("-wal", "-shm"):
        Path(f"{source}{side}").unlink(missing_ok=True)
    with Store() as s, pytest.raises(StoreFileError):
        s.visits(1)
    return source


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_store_operation_on_a_damaged_database_names_the_file_and_changes_nothing(tmp_path):
    db = damaged_store(tmp_path, tmp_path / "in")
    before = sha(db)
    write_recording(tmp_path / "new" / "5001_5.0_0_p1_1.wav")
    with Store() as s:
        uid = s.query("SELECT uid FROM recordings LIMIT 1")[0][0]
        operations = {
            "visits": lambda: s.visits(1),
            "visit": lambda: s.visit(1),
            "patient_recordings": lambda: s.patient_recordings(1),
            "add_visit": lambda: s.add_visit(1),
            "patient_record": lambda: patient_record(s, "P0"),
            "plan_deletion": lambda: plan_deletion(s, "P0"),
            "export_patient": lambda: export_patient(s, "P0", tmp_path / "ex"),
            "import_folder": lambda: import_folder(s, tmp_path / "new"),
            "backup": lambda: backup(s, tmp_path / "b.sqlite3"),
            "file_recording": lambda: file_recording(s, tmp_path / "new" / "5001_5.0_0_p1_1.wav", visit_id=1),
            "check": s.check,
        }
        for name, op in operations.items():
            with pytest.raises(StoreFileError) as e:
                op()
            text = str(e.value)
            assert text.startswith(f"{db}: the database is damaged ("), name
            assert "copy a backup (made with `lungapp backup`) in its place" in text and "\n" not in text, name
            # Still an SQLite error for code that catches those around the store (the GUI).
            assert isinstance(e.value, sqlite3.DatabaseError) and isinstance(e.value, StoreError)
        # Errors of the code's own making are not dressed up as a damaged file.
        with pytest.raises(sqlite3.IntegrityError):
            s.query("INSERT INTO patients (id, identifier, created) VALUES (1, 'dup', 'x')")
        # What the damage does not reach still reads.
        assert s.patient("P1")["name"] == "name 1" and s.recording(uid)["uid"] == uid
    assert sha(db) == before
    assert not (tmp_path / "ex").exists() and not (tmp_path / "b.sqlite3").exists()
    assert not list(tmp_path.glob(".b.sqlite3*")) and not list(tmp_path.glob(".ex.staging*"))


def test_a_database_locked_by_another_program_is_said_naming_the_file(tmp_path, monkeypatch):
    with Store() as s:
        s.add_patient("P")
    db = paths.database_path()
    monkeypatch.setattr("lungapp.store.db.BUSY_TIMEOUT_MS", 50)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        s = Store()
        locked = r"cannot use the database now \(database is locked: another program is writing"
        with pytest.raises(StoreFileError, match=locked) as e:
            s.add_patient("Q")
        assert str(e.value).startswith(f"{db}: ")
        assert not s.conn.in_transaction
        s.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with Store() as s:
        assert [p["identifier"] for p in s.find_patients()] == ["P"]


# --- the same files through a symbolic link --------------------------------------------


def _folder(tmp_path: Path) -> Path:
    pt = tmp_path / "pt"
    write_recording(pt / "40069321_15.3_0_p1_981.wav")
    write_recording(pt / "40069321_15.3_0_p2_982.wav", seed=1)
    write_recording(pt / "101_1b1_Al_sc_Meditron.wav", seed=2)
    (tmp_path / "ptlink").symlink_to(pt)
    return pt


def test_a_folder_imported_again_through_a_link_adds_nothing_and_notes_name_the_real_folder(tmp_path,
                                                                                        monkeypatch):
    pt = _folder(tmp_path)
    monkeypatch.chdir(tmp_path / "ptlink")
    with Store() as s:
        first = import_folder(s, ".")
        assert len(first.added) == 3
        again = import_folder(s, tmp_path / "ptlink")
        assert again.added == [] and {why for _, why in again.skipped} == {"already in the store"}
        assert import_folder(s, pt).added == []
        assert s.query("SELECT COUNT(*) FROM visits")[0][0] == 2  # one per patient, once
        assert {r["notes"] for r in s.query("SELECT notes FROM visits")} == {f"imported from {pt}"}
        assert {r["path"] for r in s.query("SELECT path FROM recordings")} == {str(p) for p in pt.iterdir()}
        link_path = tmp_path / "ptlink" / "101_1b1_Al_sc_Meditron.wav"
        assert s.recording_by_path(link_path)["path"] == str(pt / "101_1b1_Al_sc_Meditron.wav")


def test_rows_written_before_paths_were_resolved_are_still_found(tmp_path):
    """Rows of an older store hold the absolute path as given, through a link maybe: no
    migration, they are found by either path (and a linked file one added later too)."""
    pt = _folder(tmp_path)
    link = tmp_path / "ptlink"
    (tmp_path / "solo.wav").symlink_to(pt / "101_1b1_Al_sc_Meditron.wav")
    with Store() as s:
        v = s.add_visit(s.add_patient("40069321"))
        # As the previous version wrote them: os.path.abspath of the path given.
        for i, name in enumerate(("40069321_15.3_0_p1_981.wav", "40069321_15.3_0_p2_982.wav")):
            s.query("INSERT INTO recordings (uid, visit_id, path, recorded_at) VALUES (?, ?, ?, 'x')",
                    (f"old{i}", v, str(link / name)))
        assert s.recording_by_path(link / "40069321_15.3_0_p1_981.wav")["uid"] == "old0"
        assert s.recording_by_path(pt / "40069321_15.3_0_p1_981.wav")["uid"] == "old0"
        s.query("INSERT INTO recordings (uid, visit_id, path, recorded_at) VALUES ('old2', ?, ?, 'x')",
                (v, str(tmp_path / "solo.wav")))  # a linked file, added after the first look-up
        assert s.recording_by_path(pt / "101_1b1_Al_sc_Meditron.wav")["uid"] == "old2"
        report = import_folder(s, pt)
        assert report.added == [] and len(report.skipped) == 3
        # A row relocated since is not found at its old place any more.
        other = write_recording(tmp_path / "moved" / "x.wav")
        s.relocate("old1", other)
        assert s.recording_by_path(pt / "40069321_15.3_0_p2_982.wav") is None
        assert s.recording_by_path(other)["uid"] == "old1"


def test_a_file_opened_through_a_link_shows_its_stored_result_with_the_cached_details(tmp_path):
    """The Review list keeps the path it was given (a linked folder) and caches the full
    result under it; the store holds the real path: both are found for that file."""
    from lungapp.store.results_cache import ResultsCache, known_results

    real = write_recording(tmp_path / "pt" / "s.wav")
    (tmp_path / "ptlink").symlink_to(tmp_path / "pt")
    listed = str(tmp_path / "ptlink" / "s.wav")
    model = ModelId("m", "3", "abc")
    full = prediction(0.8, "abnormal", "CAS")
    full["windows"][0]["probabilities"] = {"Normal": 0.2, "CAS": 0.8}
    full["model"] = {"name": "m", "version": "3", "path": "/m"}
    with Store() as s:
        uid = s.add_recording(s.add_visit(s.add_patient("P")), listed)
        s.add_result(uid, full, model)
        assert s.recording(uid)["path"] == str(real)
    cache = ResultsCache()
    cache.put(listed, full)
    cache.close()
    (path, p, src), = known_results([listed], active=model, active_model={"path": "/m"})
    assert (path, src) == (listed, "store")
    assert p.windows[0].probabilities == {"Normal": 0.2, "CAS": 0.8}  # each class's, from the cache
