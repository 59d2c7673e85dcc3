"""Export and import round trips for each format, WAV clips, and the rule that an export
never makes a folder unreadable to training."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lungapp.annotation.formats import export_labels, import_labels, parse_audacity
from lungapp.annotation.sidecar import load_sidecar
from lungapp.data import read_folder
from lungapp.errors import LungappError

ROOT = Path(__file__).resolve().parents[3]
EVENTS = [{"start": 100, "end": 800, "type": "Wheeze", "note": "left"},
          {"start": 500, "end": 1500, "type": "Fine Crackle"},
          {"start": 2000, "end": 2600, "type": "Normal"}]


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "rec"
    d.mkdir()
    for i, label in enumerate(("CAS & DAS", "Normal")):
        stem = f"10{i}_6.0_0_p1_01"
        sf.write(d / f"{stem}.wav", np.random.default_rng(i).standard_normal(12000).astype(np.float32) * 0.1,
                 4000, subtype="PCM_16")
        events = EVENTS if i == 0 else EVENTS[2:]
        (d / f"{stem}.json").write_text(json.dumps({"record_annotation": label,
                                                    "event_annotation": events}))
    return d


def _events(doc):
    return sorted((round(r.start_s, 3), round(r.end_s, 3), r.type) for r in doc.regions)


def test_sprsound_export_reads_back_the_same(folder, tmp_path):
    res = export_labels(folder, "sprsound", tmp_path / "out")
    assert len(res["written"]) == 2
    for name in ("100_6.0_0_p1_01", "101_6.0_0_p1_01"):
        a = json.loads((folder / f"{name}.json").read_text())
        b = json.loads((tmp_path / "out" / f"{name}.json").read_text())
        assert a["record_annotation"] == b["record_annotation"]
        assert [(e["start"], e["end"], e["type"]) for e in a["event_annotation"]] == \
            [(e["start"], e["end"], e["type"]) for e in b["event_annotation"]]


def test_audacity_round_trip(folder, tmp_path):
    out = tmp_path / "aud"
    export_labels(folder, "audacity", out)
    track = out / "100_6.0_0_p1_01.labels.txt"
    regions = parse_audacity(track.read_text())
    assert [(r.start_s, r.end_s, r.type, r.note) for r in regions] == [
        (0.1, 0.8, "Wheeze", "left"), (0.5, 1.5, "Fine Crackle", ""), (2.0, 2.6, "Normal", "")]
    # Import into a fresh copy of the recording: the same events come back.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "100_6.0_0_p1_01.wav").write_bytes((folder / "100_6.0_0_p1_01.wav").read_bytes())
    (res,) = import_labels([track], author="bob", audio_dir=fresh)
    assert res["format"] == "audacity" and res["added"] == 3
    doc = load_sidecar(fresh / "100_6.0_0_p1_01.wav").doc
    assert _events(doc) == _events(load_sidecar(folder / "100_6.0_0_p1_01.wav").doc)
    assert {r.author for r in doc.regions} == {"bob"}
    assert import_labels([track], audio_dir=fresh)[0]["added"] == 0  # not added twice


def test_icbhi_round_trip_keeps_flags_and_label(folder, tmp_path):
    out = tmp_path / "icbhi"
    export_labels(folder, "icbhi", out)
    lines = (out / "100_6.0_0_p1_01.txt").read_text().splitlines()
    assert lines == ["0.100\t0.800\t0\t1", "0.500\t1.500\t1\t0", "2.000\t2.600\t0\t0"]
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "100_6.0_0_p1_01.wav").write_bytes((folder / "100_6.0_0_p1_01.wav").read_bytes())
    import_labels([out / "100_6.0_0_p1_01.txt"], audio_dir=fresh)
    doc = load_sidecar(fresh / "100_6.0_0_p1_01.wav").doc
    assert doc.record_label == "CAS & DAS"
    assert _events(doc) == [(0.1, 0.8, "Wheeze"), (0.5, 1.5, "Crackle"), (2.0, 2.6, "Normal")]
    assert read_folder(fresh).examples[0].label == "CAS & DAS"


def test_csv_has_one_row_per_event(folder, tmp_path):
    export_labels(folder, "csv", tmp_path / "c")
    rows = list(csv.DictReader((tmp_path / "c" / "events.csv").open()))
    assert len(rows) == 4
    assert (rows[0]["recording"], rows[0]["type"], rows[0]["start_s"]) == ("100_6.0_0_p1_01.wav", "Wheeze", "0.100")


@pytest.mark.parametrize("fmt", ["audacity", "csv"])
def test_export_beside_the_recordings_keeps_the_folder_readable(folder, fmt):
    before = read_folder(folder)
    export_labels(folder, fmt, folder)
    after = read_folder(folder)
    assert after.layout == "sprsound" and after.examples == before.examples and not after.problems


@pytest.mark.parametrize("fmt,clips", [("icbhi", False), ("sprsound", False), ("csv", True)])
def test_exports_that_would_break_the_folder_are_refused(folder, fmt, clips):
    with pytest.raises(LungappError, match="own folder"):
        export_labels(folder, fmt, folder, clips=clips)
    assert read_folder(folder).layout == "sprsound"


def test_default_export_goes_beside_the_folder_and_clips_are_the_events(folder):
    res = export_labels(folder, "csv", clips=True)
    out = Path(res["folder"])
    assert out == folder.with_name("rec-labels-csv")
    clips = sorted(p.name for p in (out / "clips").iterdir())
    assert clips[:3] == ["100_6.0_0_p1_01_01_Wheeze.wav", "100_6.0_0_p1_01_02_Fine_Crackle.wav",
                         "100_6.0_0_p1_01_03_Normal.wav"]
    info = sf.info(out / "clips" / clips[1])
    assert info.samplerate == 4000 and info.frames == 4000  # 0.5-1.5 s


def test_icbhi_beside_its_recording_is_not_imported_into_a_mixed_folder(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(4000, np.float32), 4000)
    (tmp_path / "a.txt").write_text("0.1\t0.5\t0\t1\n")
    with pytest.raises(LungappError, match="mix two layouts"):
        import_labels([tmp_path / "a.txt"])
    assert not (tmp_path / "a.json").exists()


def test_a_region_past_the_end_of_the_recording_is_refused(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(8000, np.float32), 4000)  # 2 s
    (tmp_path / "a.labels.txt").write_text("0.1\t0.5\tWheeze\n0.5\t100\tWheeze\n")
    with pytest.raises(LungappError, match=r"a\.labels\.txt: region 2 \(0\.5-100 s\) lies past the end "
                                           r"of a\.wav \(2\.00 s\)"):
        import_labels([tmp_path / "a.labels.txt"])
    assert not (tmp_path / "a.json").exists()
    (tmp_path / "a.labels.txt").write_text("0.1\t0.5\tWheeze\n1.5\t2.01\tWheeze\n")  # rounding
    assert import_labels([tmp_path / "a.labels.txt"])[0]["added"] == 2


def test_bad_label_file_is_one_line(tmp_path):
    (tmp_path / "a.labels.txt").write_text("0.1\t0.5\tSqueak\n")
    with pytest.raises(LungappError, match=r"a\.labels\.txt: neither .* line 1: unknown event type"):
        import_labels([tmp_path / "a.labels.txt"])


def test_cli_export_and_import(folder, tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "lungapp", "labels", *a], cwd=ROOT,  # noqa: E731
                                    capture_output=True, text=True, timeout=120)
    proc = run("export", str(folder), "--format", "audacity", "--out", str(tmp_path / "x"))
    assert proc.returncode == 0, proc.stderr
    assert "wrote 2 files for 2 recordings (audacity)" in proc.stdout
    proc = run("export", str(folder), "--format", "icbhi", "--out", str(folder))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "own folder" in proc.stderr
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "101_6.0_0_p1_01.wav").write_bytes((folder / "101_6.0_0_p1_01.wav").read_bytes())
    proc = run("import", str(tmp_path / "x" / "101_6.0_0_p1_01.labels.txt"), "--audio-dir", str(fresh))
    assert proc.returncode == 0, proc.stderr
    assert "1 regions added" in proc.stdout
