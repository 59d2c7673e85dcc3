"""The patient store's commands on careless input (a QA pass): no recording filed under the
wrong patient by a reused or shared file name, no file filed twice by imports side by side,
linked sub-folders and unreadable labels said, an interrupted import resumed in its visit,
a deletion beside an import or a re-analysis not fatal, relocate's arguments checked,
search folding non-ASCII letters."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lungapp.cli import main
from lungapp.store import Store, importer
from lungapp.store.importer import ImportReport, import_folder

from store_helpers import prediction, write_recording


def _rows(store: Store) -> list:
    return store.query("SELECT r.path, r.visit_id, p.identifier FROM recordings r JOIN visits v "
                       "ON v.id = r.visit_id JOIN patients p ON p.id = v.patient_id ORDER BY r.id")


def test_a_reused_file_name_with_other_audio_is_not_taken_for_the_old_recording(tmp_path):
    rec = write_recording(tmp_path / "stetho" / "REC001.wav", seconds=3.0)
    with Store() as store:
        import_folder(store, rec.parent, patient="P1")
        write_recording(rec, seconds=5.0, seed=1)  # the device's next session, the same name
        report = import_folder(store, rec.parent, patient="P2")
        assert report.added == [] and len(_rows(store)) == 1
        (f, why), = report.skipped
        assert "imported before as recording" in why and "of patient P1" in why
        assert "(3.0 s), and it now holds other audio (5.0 s): not imported" in why


def test_a_file_another_import_filed_meanwhile_is_not_filed_twice(tmp_path, monkeypatch):
    rec = write_recording(tmp_path / "in" / "A_1_0_p1_1.wav")
    with Store() as store:
        import_folder(store, rec.parent)
        real = Store.recording_by_path
        calls = []

        def first_misses(self, path):  # the check before the transaction ran before the other import
            calls.append(path)
            return None if len(calls) == 1 else real(self, path)

        monkeypatch.setattr(Store, "recording_by_path", first_misses)
        report = import_folder(store, rec.parent)
        assert report.added == [] and report.skipped == [(str(rec), "already in the store")]
        assert len(_rows(store)) == 1


def test_linked_sub_folders_are_imported_once_and_a_link_back_up_ends(tmp_path):
    elsewhere = write_recording(tmp_path / "elsewhere" / "B_1_0_p1_1.wav").parent
    top = tmp_path / "top"
    write_recording(top / "A_1_0_p1_1.wav")
    (top / "linked").symlink_to(elsewhere)
    (top / "again").symlink_to(elsewhere)
    (top / "up").symlink_to(top)
    found = importer.audio_files(top)
    assert [p.name for p in found] == ["A_1_0_p1_1.wav", "B_1_0_p1_1.wav"]


def test_an_unreadable_label_file_is_said_and_the_recording_imported(tmp_path):
    rec = write_recording(tmp_path / "in" / "A_1_0_p1_1.wav")
    rec.with_suffix(".json").write_text('{"record_annotation": "CAS", ')
    with Store() as store:
        report = import_folder(store, rec.parent)
    assert len(report.added) == 1
    (f, why), = report.notes
    assert f == str(rec) and "its labels (A_1_0_p1_1.json) cannot be read" in why


def test_an_import_run_again_today_files_into_its_visit_and_a_deleted_visit_is_made_anew(tmp_path):
    folder = tmp_path / "in"
    write_recording(folder / "A_1_0_p1_1.wav")
    with Store() as store:
        first = import_folder(store, folder)
        write_recording(folder / "A_1_0_p1_2.wav", seed=1)  # what an interrupted import left
        import_folder(store, folder)
        assert {r["visit_id"] for r in _rows(store)} == {first.visits["A"]}
        write_recording(folder / "A_1_0_p1_3.wav", seed=2)
        report = ImportReport(visits={"A": 99999})  # its visit deleted under the import
        import_folder(store, folder, report=report)
        assert len(report.added) == 1 and report.visits["A"] != 99999


def test_an_import_run_again_today_finds_its_visit_after_its_notes_were_edited(tmp_path):
    # The import knew its visit only by the notes it wrote ("imported from ..."): notes the
    # user typed in the Patients tab made the next import that day open a second visit.
    folder = tmp_path / "in"
    write_recording(folder / "A_1_0_p1_1.wav")
    with Store() as store:
        first = import_folder(store, folder)
        store.set_visit_notes(first.visits["A"], "Wheeze right anterior; follow up in 2 weeks.")
        write_recording(folder / "A_1_0_p1_2.wav", seed=1)
        again = import_folder(store, folder)
        assert again.visits["A"] == first.visits["A"] and len(again.added) == 1
        assert len(store.visits(store.patient("A")["id"])) == 1
        other = tmp_path / "other"          # another folder the same day: a visit of its own
        write_recording(other / "A_1_0_p1_9.wav", seed=3)
        assert import_folder(store, other).visits["A"] != first.visits["A"]


def test_a_hard_linked_copy_of_an_imported_folder_is_not_imported_again(tmp_path):
    # Symbolic links were followed to the file the store had; a hard-linked copy (what
    # `cp -al` or a backup tool makes) was filed a second time.
    folder = tmp_path / "in"
    rec = write_recording(folder / "A_1_0_p1_1.wav")
    copy = tmp_path / "copy"
    copy.mkdir()
    os.link(rec, copy / rec.name)
    with Store() as store:
        first = import_folder(store, folder)
        again = import_folder(store, copy)
        assert again.added == [] and again.skipped == [(str(copy / rec.name), "already in the store")]
        assert store.recording_by_path(copy / rec.name)["uid"] == first.added[0]


def test_a_file_date_no_calendar_holds_is_no_date(monkeypatch):
    class Far:
        def stat(self):
            return os.stat_result((0, 0, 0, 0, 0, 0, 0, 0, 10 ** 12, 0))

    assert importer._mtime(Far()) is None


def test_an_analysis_goes_on_past_a_recording_deleted_under_it(tmp_path):
    from lungapp.store.analysis import analyse

    recs = [write_recording(tmp_path / "in" / f"{p}_1_0_p1_1.wav", seed=i) for i, p in enumerate("ABC")]
    with Store() as store:
        import_folder(store, tmp_path / "in")
        uids = [store.recording_by_path(r)["uid"] for r in recs]

        class Deleting:  # B's patient deleted while A is analysed, as delete-patient beside it
            name, version, card_sha256 = "m", "1", "x"

            def predict_file(self, path):
                if "A_" in str(path):
                    with store.transaction() as c:
                        c.execute("DELETE FROM patients WHERE identifier = 'B'")

                class P:
                    @staticmethod
                    def to_dict():
                        return prediction(0.2, "normal", "Normal")
                return P()

        problems = analyse(store, uids, Deleting())
        assert list(problems) == [uids[1]] and "no recording" in problems[uids[1]]
        assert store.latest_result(uids[0]) is not None and store.latest_result(uids[2]) is not None


def test_relocate_search_takes_no_file_two_recordings_could_own(tmp_path, capsys):
    a = write_recording(tmp_path / "P1" / "left.wav", seconds=3.0)
    b = write_recording(tmp_path / "P2" / "left.wav", seconds=4.0, seed=1)
    c = write_recording(tmp_path / "P3" / "right.wav", seconds=3.0, seed=2)
    with Store() as store:
        for rec, pid in ((a, "P1"), (b, "P2"), (c, "P3")):
            import_folder(store, rec.parent, patient=pid)
        uid = {pid: store.recording_by_path(r)["uid"] for r, pid in ((a, "P1"), (b, "P2"), (c, "P3"))}
    a.unlink()
    (tmp_path / "new").mkdir()
    b.parent.rename(tmp_path / "new" / "P2")   # P2's folder moved: its left.wav is the only one
    write_recording(tmp_path / "new" / "right.wav", seconds=6.0, seed=3)  # another right.wav
    c.unlink()
    assert main(["relocate", "--search", str(tmp_path / "new")]) == 2
    out, err = capsys.readouterr()
    assert f"{uid['P2']}  found  {tmp_path / 'new' / 'P2' / 'left.wav'}" in out  # its folder's name tells
    assert f"{uid['P1']}  missing" in out and "could be any of 2" in err          # P1's is not taken
    assert f"{uid['P3']}  missing" in out and f"is not recording {uid['P3']}'s audio (6.0 s" in err


def test_relocate_to_a_file_of_other_audio_is_refused(tmp_path, capsys):
    # --to once took any audio: the recording's results, made from the old audio, then
    # stood beside a file they were not made from.
    rec = write_recording(tmp_path / "P1" / "left.wav", seconds=3.0)
    with Store() as store:
        import_folder(store, rec.parent, patient="P1")
        uid = store.recording_by_path(rec)["uid"]
    moved = tmp_path / "moved" / "left.wav"
    moved.parent.mkdir()
    rec.rename(moved)
    other = write_recording(tmp_path / "other" / "left.wav", seconds=5.0, seed=4)
    assert main(["relocate", "--recording", uid, "--to", str(other)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"lungapp: {other}: is not recording {uid}'s audio (5.0 s at 4000 Hz; the recording was 3.0 s "
        "at 4000 Hz); the recording was not relocated")
    with Store() as store:
        assert store.recording(uid)["path"] == str(rec)
    assert main(["relocate", "--recording", uid, "--to", str(moved)]) == 0
    with Store() as store:
        assert store.recording(uid)["path"] == str(moved)


@pytest.mark.parametrize("args,message", [
    (["--search", "/no/such/folder"], "/no/such/folder: no such folder"),
    (["--to", "x.wav"], "--to needs --recording UID"),
    (["--recording", "abc"], "--recording needs --to FILE"),
    (["--recording", "abc", "--to", "/"], "/: is a folder: give the recording's file")])
def test_relocate_arguments_are_checked(args, message, capsys):
    assert main(["relocate", *args]) == 2
    assert message in capsys.readouterr().err


def test_delete_patient_with_its_listing_cut_short_still_deletes(tmp_path, lungapp_home):
    for i in range(1500):  # a listing longer than a pipe holds
        write_recording(tmp_path / "in" / f"BIG_1_0_p1_{i}.wav", seconds=0.1, seed=i)
    with Store() as store:
        import_folder(store, tmp_path / "in")
    cmd = f"{sys.executable} -m lungapp delete-patient BIG --yes | head -1"
    subprocess.run(["sh", "-c", cmd], check=True, env={**os.environ, "LUNGAPP_HOME": str(lungapp_home)},
                   capture_output=True)
    with Store() as store:
        assert store.find_patients("BIG") == []


def test_search_folds_letters_beyond_ascii():
    with Store() as store:
        store.add_patient("P1", name="Émile Zoë")
        assert [p["identifier"] for p in store.find_patients("émile")] == ["P1"]
        assert [p["identifier"] for p in store.find_patients("ZOË")] == ["P1"]
        assert store.find_patients("a_b") == []


def test_import_analyse_that_fails_is_not_success(tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    folder = tmp_path / "in"
    folder.mkdir()
    sf.write(folder / "A_1_0_p1_1.wav", np.zeros(1000, dtype=np.float32), 4000)  # 0.25 s: too short
    assert main(["import", str(folder), "--analyse"]) == 2
    assert "not analysed" in capsys.readouterr().err
