"""The patient-store commands against bad input, as a QA pass found them: `relocate` onto
another patient's file or a PDF (then `delete-patient` deleted that file), identifiers with
space around them or none, `export-patient` saying "to None" or naming its hidden staging
folder, a database with a damaged page giving "unexpected error", and a folder imported
twice through a symbolic link."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from lungapp.cli import main
from lungapp.store import Store, StoreError

from mount_helpers import tmpfs  # noqa: E402
from store_helpers import write_recording  # noqa: E402


def _one_line(err: str, prefix: str) -> str:
    """The single stderr line, checked to start with ``lungapp: prefix``."""
    assert err.count("\n") == 1 and err.startswith(f"lungapp: {prefix}"), err
    assert "unexpected error" not in err and "Traceback" not in err
    return err


# --- relocate --------------------------------------------------------------------------


def _a_and_b(tmp_path: Path) -> tuple[str, str, Path]:
    """Patient A: a recording the app made (owned), its file gone; patient B: an imported
    file. (A's uid, B's uid, B's file)."""
    a_file = write_recording(tmp_path / "recs" / "b.wav")  # the same name as B's: --search finds B's
    b_file = write_recording(tmp_path / "pt" / "b.wav", seed=1)
    with Store() as s:
        a = s.add_recording(s.add_visit(s.add_patient("A")), a_file, owned=True)
        b = s.add_recording(s.add_visit(s.add_patient("B")), b_file)
    a_file.unlink()
    return a, b, b_file


def test_relocate_refuses_another_patients_file_and_a_pdf_so_delete_patient_keeps_them(tmp_path, capsys):
    a, b, b_file = _a_and_b(tmp_path)
    pdf = tmp_path / "r1.pdf"
    pdf.write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + b"0" * 4000)
    (tmp_path / "ptlink").symlink_to(tmp_path / "pt")
    for target in (b_file, tmp_path / "ptlink" / "b.wav"):
        assert main(["relocate", "--recording", a, "--to", str(target)]) == 2
        err = capsys.readouterr().err
        assert err == (f"lungapp: {target}: is already the file of recording {b} (patient B); "
                       "the recording was not relocated\n")
    assert main(["relocate", "--recording", a, "--to", str(pdf)]) == 2
    _one_line(capsys.readouterr().err, f"{pdf}: not a supported audio file")
    assert main(["delete-patient", "A", "--yes"]) == 0
    assert "0 file(s) the app made will be deleted" in capsys.readouterr().out
    assert b_file.is_file() and pdf.is_file()
    with Store() as s:
        assert s.recording(b)["path"] == str(b_file)


def test_relocate_search_says_a_refused_file_and_relocates_the_others(tmp_path, capsys):
    a, b, b_file = _a_and_b(tmp_path)
    c_file = write_recording(tmp_path / "recs" / "c.wav", seed=2)
    with Store() as s:
        c = s.add_recording(s.add_visit(s.patient("A")["id"]), c_file)
    c_file.rename(tmp_path / "pt" / "c.wav")
    assert main(["relocate", "--search", str(tmp_path / "pt")]) == 2
    out, err = capsys.readouterr()
    _one_line(err, f"{a}  not relocated: {b_file}: is already the file of recording {b}")
    assert f"{c}  found  {tmp_path / 'pt' / 'c.wav'}" in out
    with Store() as s:
        assert [r["uid"] for r in s.missing_recordings()] == [a]
        assert s.recording(c)["path"] == str(tmp_path / "pt" / "c.wav")


# --- edit-patient ----------------------------------------------------------------------


def test_edit_patient_takes_an_identifier_without_its_spaces_and_refuses_an_empty_one(capsys):
    assert main(["edit-patient", " NEW2 ", "--name", "Bob"]) == 0
    assert json.loads(capsys.readouterr().out) == {"identifier": "NEW2", "name": "Bob", "birth_year": None,
                                                   "sex": ""}
    assert main(["edit-patient", "NEW2  ", "--sex", "male"]) == 0
    assert json.loads(capsys.readouterr().out)["sex"] == "male"
    for empty in ("", "   "):
        assert main(["edit-patient", empty, "--name", "X"]) == 2
        assert capsys.readouterr().err == "lungapp: a patient needs an identifier\n"
    assert main(["patients", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["identifier"], r["name"], r["sex"]) for r in rows] == [("NEW2", "Bob", "male")]


def test_edit_patient_leaves_nothing_when_a_step_fails(capsys, monkeypatch):
    def fail(self, identifier, **fields):
        raise StoreError("cannot change this patient now")

    monkeypatch.setattr(Store, "update_patient", fail)
    assert main(["edit-patient", "NEW3", "--name", "Bob"]) == 2
    assert capsys.readouterr().err == "lungapp: cannot change this patient now\n"
    with Store() as s:
        assert s.patient("NEW3", missing_ok=True) is None  # not added half made


# --- export-patient --------------------------------------------------------------------


def _patient(tmp_path: Path, seconds: float = 3.0) -> None:
    wav = write_recording(tmp_path / "src" / "p.wav", seconds=seconds)
    with Store() as s:
        s.add_recording(s.add_visit(s.add_patient("40069321")), wav)


def test_export_patient_says_the_folder_it_wrote(tmp_path, capsys):
    _patient(tmp_path)
    out = tmp_path / "ex1"
    assert main(["export-patient", " 40069321 ", "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"exported patient 40069321 to {out}\n"
    assert (out / "records.json").is_file()


def test_export_patient_to_a_place_it_cannot_write_names_that_place(tmp_path, capsys):
    _patient(tmp_path)
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    for out, problem in (("/proc/xx", "is on a virtual file system"),
                         (str(a_file / "sub"), "cannot write the output folder here")):
        assert main(["export-patient", "40069321", "--out", out]) == 2
        err = _one_line(capsys.readouterr().err, f"{out}: {problem}")
        assert ".staging" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "src"]


def test_export_patient_onto_a_full_disk_names_the_folder_and_leaves_nothing(tmp_path, capsys):
    _patient(tmp_path, seconds=20.0)  # 160 kB: more than the disk holds
    with tmpfs(tmp_path / "small", size="64k") as disk:
        out = disk / "ex"
        assert main(["export-patient", "40069321", "--out", str(out)]) == 2
        err = _one_line(capsys.readouterr().err, f"{out}: cannot write the export here (No space left on device)")
        assert ".staging" not in err
        assert list(disk.iterdir()) == []


# --- a damaged database ----------------------------------------------------------------


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def damaged_home(tmp_path, monkeypatch, capsys):
    """As the QA pass made it: a small store saved with `lungapp backup`, 4 KB of junk
    written at offset 12288 (the root page of its visits table), used as a data folder's
    database; opened once (which puts it in WAL mode). (database, a folder to import)."""
    folder = tmp_path / "pt"
    write_recording(folder / "40069321_15.3_0_p1_981.wav")
    write_recording(folder / "40069321_15.3_0_p2_982.wav", seed=1)
    write_recording(folder / "101_1b1_Al_sc_Meditron.wav", seed=2)
    assert main(["import", str(folder)]) == 0
    copy = tmp_path / "b1.sqlite"
    assert main(["backup", "--out", str(copy)]) == 0
    conn = sqlite3.connect(copy)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'visits'").fetchone()[0]
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    assert (root - 1) * page == 12288  # where the QA pass wrote the junk
    with open(copy, "r+b") as f:
        f.seek(12288)
        f.write(b"\xde\xad\xbe\xef" * 1024)  # no valid page starts so
    home = tmp_path / "h_corrupt"
    home.mkdir()
    db = home / "lungapp.sqlite3"
    copy.rename(db)
    monkeypatch.setenv("LUNGAPP_HOME", str(home))
    assert main(["relocate"]) == 0  # reads only what the damage does not reach
    capsys.readouterr()
    return db, folder


def test_commands_on_a_damaged_database_say_so_in_one_line_and_leave_it_as_it_is(damaged_home, tmp_path,
                                                                               capsys):
    db, folder = damaged_home
    before = _sha(db)
    new = write_recording(tmp_path / "more" / "5001_5.0_0_p1_1.wav")
    commands = [["patients"], ["report", "40069321", "--out", str(tmp_path / "r.pdf")],
                ["export-patient", "40069321", "--out", str(tmp_path / "ex")],
                ["import", str(folder)], ["import", str(new.parent)],
                ["edit-patient", "40069321", "--name", "X"], ["edit-patient", "NEWP", "--name", "X"],
                ["delete-patient", "101", "--yes"], ["backup", "--out", str(tmp_path / "bb.sqlite")]]
    for cmd in commands:
        assert main(cmd) == 2, cmd
        out, err = capsys.readouterr()
        err = _one_line(err, f"{db}: the database is damaged (")
        assert "copy a backup (made with `lungapp backup`) in its place" in err, cmd
        assert "skipped" not in out + err and "deleted" not in out, cmd
        assert _sha(db) == before, cmd
    for made in ("r.pdf", "ex", "bb.sqlite"):
        assert not (tmp_path / made).exists()
    assert sorted(p.name for p in db.parent.iterdir() if not p.name.endswith(("-wal", "-shm"))) == \
        ["lungapp.sqlite3"]
    assert all(p.is_file() for p in folder.iterdir())


# --- import through a symbolic link ----------------------------------------------------


def test_a_folder_imported_through_a_link_is_not_imported_twice(tmp_path, capsys, monkeypatch):
    pt = tmp_path / "pt"
    for i, name in enumerate(("40069321_15.3_0_p1_981", "40069321_15.3_0_p2_982", "101_1b1_Al_sc_Meditron",
                              "104_1b1_Ar_sc_Litt3200")):
        write_recording(pt / f"{name}.wav", seed=i)
    (tmp_path / "ptlink").symlink_to(pt)
    monkeypatch.chdir(pt)
    assert main(["import", "."]) == 0
    assert "imported 4 recording(s) of 3 patient(s); 0 skipped" in capsys.readouterr().out
    assert main(["import", str(tmp_path / "ptlink")]) == 2  # nothing added, all skipped
    out, err = capsys.readouterr()
    assert "imported 0 recording(s) of 0 patient(s); 4 skipped" in out
    assert err.count("skipped: already in the store") == 4
    with Store() as s:
        assert s.query("SELECT COUNT(*) FROM recordings")[0][0] == 4
        assert [r["notes"] for r in s.query("SELECT notes FROM visits")] == [f"imported from {pt}"] * 3
