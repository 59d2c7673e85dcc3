"""Import of folders (SPRSound and ICBHI names), export, deletion and backup, through the CLI."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from lungapp.cli import main
from lungapp.store import Store
from lungapp.store.importer import name_info

from store_helpers import write_recording

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"


def test_name_info_reads_sprsound_and_icbhi_names():
    sp = name_info("40638274_9.7_1_p2_1729")
    assert (sp.patient, sp.site, sp.convention, sp.sex) == ("40638274", "Lateral left", "sprsound", "female")
    ic = name_info("101_1b1_Al_sc_Meditron")
    assert (ic.patient, ic.site, ic.device, ic.convention) == ("101", "Anterior left", "Meditron", "icbhi")
    assert name_info("my recording").patient is None


def test_import_files_by_name_with_labels_and_skips_what_it_cannot_file(tmp_path, capsys):
    folder = tmp_path / "in"
    write_recording(folder / "1001_5.0_0_p1_1.wav", "CAS", annotation="CAS")
    write_recording(folder / "sub" / "1001_5.0_0_p3_2.wav", "Normal", seed=1, annotation="Normal")
    write_recording(folder / "202_1b1_Pr_sc_Litt3200.wav", seed=2)
    (folder / "202_1b1_Pr_sc_Litt3200.txt").write_text("0.1\t1.5\t0\t1\n1.5\t2.9\t0\t0\n")
    write_recording(folder / "unnamed.wav", seed=3)
    assert main(["import", str(folder)]) == 0
    out, errs = capsys.readouterr()
    assert "imported 3 recording(s) of 2 patient(s); 1 skipped" in out
    assert "unnamed.wav: skipped: no patient id in the file name" in errs
    with Store() as s:
        recs = s.patient_recordings(s.patient("1001")["id"])
        assert sorted(r["site"] for r in recs) == ["Posterior left", "Posterior right"]
        assert all(r["owned"] == 0 and r["sample_rate"] == 4000 for r in recs)
        assert {s.labels(r["uid"])[0]["label"] for r in recs} == {"CAS", "Normal"}
        (icbhi,) = s.patient_recordings(s.patient("202")["id"])
        assert icbhi["device"] == "Litt3200" and s.labels(icbhi["uid"])[0]["label"] == "CAS"
    assert main(["import", str(folder), "--patient", "X9"]) == 0  # the rest are already in
    assert "imported 1 recording(s) of 1 patient(s); 3 skipped" in capsys.readouterr().out
    assert main(["patients", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["identifier"], r["recordings"]) for r in rows] == [("1001", 2), ("202", 1), ("X9", 1)]


def test_import_refuses_a_folder_without_audio_in_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["import", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err == f"lungapp: {tmp_path / 'empty'}: no audio files in this folder\n"


def _patient_with_owned_and_imported(tmp_path) -> tuple[Path, Path]:
    imported = write_recording(tmp_path / "src" / "imp.wav", annotation="Normal")
    owned = write_recording(tmp_path / "home_recs" / "4f2a.wav", seed=5)
    owned.with_suffix(".json").write_text("{}")
    with Store() as s:
        v = s.add_visit(s.add_patient("P7"), "2025-02-01", "Dr C", "wheezy")
        s.add_recording(v, imported, site="Trachea")
        s.add_recording(v, owned, site="Anterior left", owned=True)
    return imported, owned


def test_export_patient_writes_audio_sidecars_and_records_and_refuses_a_full_folder(tmp_path, capsys):
    _patient_with_owned_and_imported(tmp_path)
    out = tmp_path / "export"
    assert main(["export-patient", "P7", "--out", str(out)]) == 0
    record = json.loads((out / "records.json").read_text())
    assert record["identifier"] == "P7" and record["visits"][0]["notes"] == "wheezy"
    recs = record["visits"][0]["recordings"]
    for r in recs:
        assert (out / r["exported_as"]).is_file()
    names = sorted(p.name.split("_", 1)[1] for p in (out / "audio").iterdir())
    assert names == ["4f2a.json", "4f2a.wav", "imp.json", "imp.wav"]
    assert main(["export-patient", "P7", "--out", str(out)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert main(["export-patient", "nobody", "--out", str(tmp_path / "e2")]) == 2
    assert not (tmp_path / "e2").exists()


def test_delete_patient_names_what_goes_deletes_owned_files_and_keeps_imported_ones(tmp_path, capsys,
                                                                                    monkeypatch):
    imported, owned = _patient_with_owned_and_imported(tmp_path)
    with open(os.devnull) as no_terminal:  # no terminal: must not delete without --yes
        monkeypatch.setattr("sys.stdin", no_terminal)
        assert main(["delete-patient", "P7"]) == 130
    out = capsys.readouterr().out
    assert "1 visit(s), 2 recording(s)" in out and f"delete {owned}" in out and f"keep   {imported}" in out
    assert owned.exists()
    assert main(["delete-patient", "P7", "--yes"]) == 0
    assert "kept 2 imported file(s)" in capsys.readouterr().out
    assert not owned.exists() and not owned.with_suffix(".json").exists()
    assert imported.exists() and imported.with_suffix(".json").exists()
    with Store() as s:
        assert s.find_patients() == []
        for table in ("visits", "recordings", "results", "labels"):
            assert s.query(f"SELECT COUNT(*) FROM {table}")[0][0] == 0


def test_backup_is_a_complete_store_and_never_overwrites(tmp_path, capsys):
    _patient_with_owned_and_imported(tmp_path)
    out = tmp_path / "b" / "copy.sqlite3"
    assert main(["backup", "--out", str(out)]) == 0
    conn = sqlite3.connect(out)
    assert conn.execute("SELECT identifier FROM patients").fetchall() == [("P7",)]
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    assert main(["backup", "--out", str(out)]) == 2
    assert "already exists; not overwritten" in capsys.readouterr().err


def test_relocate_finds_moved_files_by_name(tmp_path, capsys):
    imported, _ = _patient_with_owned_and_imported(tmp_path)
    new_home = tmp_path / "moved" / "deeper"
    new_home.mkdir(parents=True)
    imported.rename(new_home / imported.name)
    assert main(["relocate"]) == 2
    assert f"missing  {imported}" in capsys.readouterr().out
    assert main(["relocate", "--search", str(tmp_path / "moved")]) == 0
    assert "found" in capsys.readouterr().out
    with Store() as s:
        assert s.missing_recordings() == []


@pytest.mark.data
def test_import_the_icbhi_subset(capsys):
    folder = DATA / "icbhi_subset" / "audio_and_txt"
    if not folder.is_dir():
        pytest.skip(f"ICBHI subset not found at {folder}")
    assert main(["import", str(folder)]) == 0
    assert "imported 101 recording(s) of 39 patient(s); 0 skipped" in capsys.readouterr().out
    with Store() as s:
        devices = {r["device"] for r in s.query("SELECT device FROM recordings")}
        assert devices == {"Meditron", "LittC2SE", "Litt3200", "AKGC417L"}
        assert s.query("SELECT COUNT(*) FROM labels")[0][0] == 101


@pytest.mark.slow  # the tiny model trains with TensorFlow first
def test_import_analyse_then_reanalyse_with_another_model(tmp_path, capsys, tiny_model_dir):
    folder = tmp_path / "in"
    write_recording(folder / "1001_5.0_0_p1_1.wav", "CAS", seconds=5.0)
    write_recording(folder / "1001_5.0_0_p3_2.wav", "Normal", seconds=5.0, seed=1)
    assert main(["import", str(folder), "--analyse"]) == 0  # the active (bundled) model
    assert "analysed 2 recording(s) with lungapp-sprsound" in capsys.readouterr().out
    assert main(["reanalyse", "--model", str(tiny_model_dir)]) == 0
    assert "analysed 2 recording(s)" in capsys.readouterr().out
    assert main(["reanalyse", "1001", "--model", str(tiny_model_dir)]) == 0  # nothing stale any more
    assert "analysed 0 recording(s)" in capsys.readouterr().out
    with Store() as s:
        for r in s.patient_recordings(s.patient("1001")["id"]):
            models = [x["model_name"] for x in s.results(r["uid"])]
            assert sorted(models) == sorted(["lungapp-sprsound", _card_name(tiny_model_dir)])


def _card_name(model_dir: Path) -> str:
    return json.loads((model_dir / "card.json").read_text())["name"]


def test_edit_patient_adds_or_changes_details_and_refuses_an_implausible_year(capsys):
    assert main(["edit-patient", "Z1", "--name", "Zoe Roe", "--birth-year", "2019", "--sex", "female"]) == 0
    assert json.loads(capsys.readouterr().out) == {"identifier": "Z1", "name": "Zoe Roe", "birth_year": 2019,
                                                   "sex": "female"}
    assert main(["edit-patient", "Z1", "--name", "Zoe Doe"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "Zoe Doe"
    assert main(["edit-patient", "Z1", "--birth-year", "1066"]) == 2
    assert "birth year 1066 is not plausible" in capsys.readouterr().err
    assert main(["patients", "zoe", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["birth_year"], row["name"]) == (2019, "Zoe Doe")
