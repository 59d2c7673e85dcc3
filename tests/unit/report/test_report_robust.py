"""The PDF report on what a user's data and disks hold: a full disk, long notes and names,
hostile text, a recording whose file went missing, a 15-minute recording; and the export
and backup beside it. Made through the CLI, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from test_report_pdf import lungapp, needs_poppler, pdf_text

from lungapp.store import ModelId, Store

from mount_helpers import tmpfs
from store_helpers import prediction, write_recording

MODEL = ModelId("test-model", "7", "abc")


def raw_text(pdf: Path) -> str:
    """The PDF's text as a reader copies it (no normalisation)."""
    return subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def one_recording_patient(tmp_path: Path, ident: str = "P-1", seconds: float = 4.0, **patient) -> str:
    wav = write_recording(tmp_path / f"{ident}.wav", "CAS", seconds=seconds)
    with Store() as s:
        v = s.add_visit(s.add_patient(ident, **patient), "2025-04-01", "Dr Who", "")
        uid = s.add_recording(v, wav, site="Trachea")
        s.add_result(uid, prediction(0.91, "abnormal", "CAS", seconds), MODEL)
    return uid


@needs_poppler
def test_a_full_disk_leaves_the_earlier_report_whole_and_says_so(tmp_path):
    """Qt's PDF writer said nothing of a failed write: on a full disk `report --overwrite`
    replaced a good report with a truncated one and printed "wrote"."""
    one_recording_patient(tmp_path)
    first = tmp_path / "r.pdf"
    assert lungapp("report", "P-1", "--out", str(first)).returncode == 0
    good = first.read_bytes()
    size_kib = len(good) * 3 // 2 // 1024 + 8           # room for one report, not two
    with tmpfs(tmp_path / "disk", f"{size_kib}k") as disk:
        (disk / "r.pdf").write_bytes(good)
        proc = lungapp("report", "P-1", "--out", str(disk / "r.pdf"), "--overwrite")
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert proc.stderr.strip() == (f"lungapp: {disk / 'r.pdf'}: cannot write the report "
                                       "(No space left on device); nothing was written")
        assert (disk / "r.pdf").read_bytes() == good and sorted(p.name for p in disk.iterdir()) == ["r.pdf"]
        (disk / "r.pdf").unlink()
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        (disk / "filler").write_bytes(b"\0" * (free - len(good) // 2))
        proc = lungapp("report", "P-1", "--out", str(disk / "new.pdf"))  # a new one that does not fit
        assert proc.returncode == 2 and "No space left on device" in proc.stderr
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_a_file_in_the_way_of_the_folder_is_one_line(tmp_path):
    one_recording_patient(tmp_path)
    (tmp_path / "old.pdf").write_text("x")
    proc = lungapp("report", "P-1", "--out", str(tmp_path / "old.pdf" / "new.pdf"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"lungapp: {tmp_path / 'old.pdf'}: is a file, not a folder: the "
                                   "report cannot be written in it")
    proc = lungapp("backup", "--out", str(tmp_path / "old.pdf" / "b.db"))
    assert proc.returncode == 2 and "is a file, not a folder" in proc.stderr
    proc = lungapp("export-patient", "P-1", "--out", str(tmp_path / "old.pdf"))
    assert proc.returncode == 2 and "exists and is not a folder" in proc.stderr


@needs_poppler
def test_long_notes_and_a_long_name_go_on_to_the_next_page_and_copy_as_shown(tmp_path):
    """80 lines of notes ran off page 1 (25 were printed); a long clinician's name pushed
    the body map and the results off it; "fl" of .flac and "ff" of an id were copied as
    one ligature character, so a path copied from the PDF named no file."""
    wav = write_recording(tmp_path / "rec.flac", "CAS", seconds=4.0)
    notes = "\n".join(f"note line {i}" for i in range(1, 81))
    with Store() as s:
        v = s.add_visit(s.add_patient("P-2"), "2025-04-01", "Dr " + "Verylongname " * 120, notes)
        uid = s.add_recording(v, wav, site="Trachea")
        s.add_result(uid, prediction(0.91, "abnormal", "CAS", 4.0), MODEL)
        s.confirm_label(uid, "CAS", "Dr Who")
        # an id with "ff" in it, as any of them may have
        s.conn.execute("UPDATE recordings SET uid = 'a0ffb1fflc23' WHERE uid = ?", (uid,))
        s.conn.commit()
    wav.rename(tmp_path / "moved.flac")  # a missing file: its path is printed
    assert lungapp("report", "P-2", "--out", str(tmp_path / "r.pdf")).returncode == 0
    text = pdf_text(tmp_path / "r.pdf")
    assert all(f"note line {i} " in text + " " for i in range(1, 81))
    assert "Recordings" in text and "Confirmed labels: CAS (confirmed by Dr Who" in text
    raw = raw_text(tmp_path / "r.pdf")
    assert "rec.flac" in raw and "a0ffb1fflc23" in raw


@needs_poppler
def test_control_and_direction_characters_of_a_name_do_not_garble_the_page(tmp_path):
    """A pasted right-to-left override reversed the rest of the line; an escape sequence
    printed boxes."""
    one_recording_patient(tmp_path, "P-42 \u202eevil", name="Ann\x1b[31m Lee\x07", sex="female")
    assert lungapp("report", "P-42 \u202eevil", "--out", str(tmp_path / "r.pdf")).returncode == 0
    text = pdf_text(tmp_path / "r.pdf")
    assert "Patient P-42 evil (Ann[31m Lee, female)" in text


@needs_poppler
def test_a_recording_whose_file_went_missing_keeps_its_result_and_labels(tmp_path):
    uid = one_recording_patient(tmp_path)
    with Store() as s:
        s.confirm_label(uid, "DAS", "Dr Who")
        path = Path(s.recording(uid)["path"])
    path.rename(tmp_path / "moved.wav")
    assert lungapp("report", "P-1", "--out", str(tmp_path / "r.pdf")).returncode == 0
    text = pdf_text(tmp_path / "r.pdf")
    squeezed = text.replace(" ", "")  # the path wraps at a "/"
    assert (f"Trachea[{uid}]:filemissing({path}).abnormal,CAS(abnormalprobability0.91)".replace(" ", "")
            in squeezed and "Confirmed labels: DAS (confirmed by Dr Who" in text), text
    from lungapp.report.content import gather

    with Store() as s:
        assert gather(s, "P-1").site_states() == {"Trachea": "abnormal"}  # not "missing"


@needs_poppler
def test_a_long_recording_shows_its_first_minute_and_says_so(tmp_path):
    """A 15-minute recording's timeline was drawn whole over the first minute's picture:
    every window after 60 s piled up at the right edge."""
    one_recording_patient(tmp_path, seconds=900.0)
    assert lungapp("report", "P-1", "--out", str(tmp_path / "r.pdf")).returncode == 0
    assert "the first 60 s of 15:00 shown" in pdf_text(tmp_path / "r.pdf")


def test_an_export_names_the_recordings_it_has_no_audio_of_and_stays_out_of_their_folder(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    wavs = [write_recording(data / f"r{i}.wav", "CAS", seconds=2.0, seed=i) for i in range(2)]
    for w in wavs:
        w.with_suffix(".json").write_text('{"record_annotation": "CAS", "event_annotation": []}')
    with Store() as s:
        v = s.add_visit(s.add_patient("P-3"))
        for w in wavs:
            s.add_recording(v, w, site="Trachea")
    proc = lungapp("export-patient", "P-3", "--out", str(data / "export"))
    assert proc.returncode == 2 and "lies inside the data folder" in proc.stderr
    assert sorted(p.name for p in data.iterdir()) == ["r0.json", "r0.wav", "r1.json", "r1.wav"]
    wavs[0].unlink()
    proc = lungapp("export-patient", "P-3", "--out", str(tmp_path / "export"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"exported patient P-3 to {tmp_path / 'export'}; 1 recording(s) without audio (file missing, "
        "listed in records.json)", f"  file missing: {wavs[0]}"]
    audio = sorted(p.name.split("_", 1)[1] for p in (tmp_path / "export" / "audio").iterdir())
    assert audio == ["r0.json", "r1.json", "r1.wav"]            # the missing one's labels too
    record = json.loads((tmp_path / "export" / "records.json").read_text())
    assert [r["exported_as"] is None for r in record["visits"][0]["recordings"]] == [True, False]


def test_a_report_is_refused_for_a_folder_it_would_fill_before_any_work(tmp_path):
    """Read-only: one line naming the folder, nothing left behind."""
    one_recording_patient(tmp_path)
    with tmpfs(tmp_path / "ro", read_only=True) as ro:
        proc = lungapp("report", "P-1", "--out", str(ro / "sub" / "r.pdf"))
        assert proc.returncode == 2
        assert proc.stderr.strip() == (f"lungapp: {ro / 'sub'}: cannot write the report (Read-only "
                                       "file system); nothing was written")


@pytest.fixture(autouse=True)
def _no_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
