"""`lungapp labels` on careless and hostile input (a QA pass): collect never mixes or loses a
training folder's labels, import writes into the importer's own part and all-or-nothing,
export keeps every label and says what it leaves out."""

from __future__ import annotations

import csv
import errno
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lungapp.annotation.agreement import agreement, agreement_between
from lungapp.annotation.collect import collect
from lungapp.annotation.formats import export_labels, import_labels, parse_audacity
from lungapp.annotation.sidecar import load_sidecar
from lungapp.data.readers import parse_icbhi_cycles
from lungapp.errors import LungappError

WHEEZE = {"start": 100, "end": 900, "type": "Wheeze"}


def _wav(path: Path, seconds: float = 5.0, rate: int = 4000, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    x = np.random.default_rng(seed).standard_normal(int(seconds * rate)).astype(np.float32) * 0.1
    sf.write(path, x, rate, subtype="PCM_16")
    return path


def _rec(folder: Path, name: str, sidecar: dict | None = None, *, ext: str = ".wav", seed: int = 0,
         seconds: float = 5.0) -> Path:
    audio = _wav(folder / f"{name}{ext}", seconds, seed=seed)
    if sidecar is not None:
        (folder / f"{name}.json").write_text(json.dumps(sidecar))
    return audio


# ----------------------------------------------------------------------------- collect


def test_collect_never_gives_another_recording_s_labels_to_a_namesake(tmp_path):
    train = tmp_path / "train"
    _rec(tmp_path / "a", "X", {"record_annotation": "CAS", "event_annotation": [WHEEZE]}, ext=".flac")
    _rec(tmp_path / "b", "X", {"record_annotation": "Normal", "event_annotation": []}, seed=1)
    assert len(collect([tmp_path / "a"], train)["added"]) == 1
    res = collect([tmp_path / "b"], train)
    assert res["added"] == []
    assert "X.flac is already in the training folder" in res["skipped"][0]["reason"]
    assert sorted(p.name for p in train.iterdir()) == ["X.flac", "X.json"]
    assert json.loads((train / "X.json").read_text())["record_annotation"] == "CAS"


def test_collect_leaves_no_labels_file_of_a_recording_it_did_not_add(tmp_path):
    train = tmp_path / "train"
    train.mkdir()
    (train / "r.json").write_text('{"record_annotation": "DAS", "event_annotation": []}')
    _rec(tmp_path / "a", "r", {"record_annotation": "Normal", "event_annotation": []})
    res = collect([tmp_path / "a"], train)
    assert res["added"] == [] and "without its recording" in res["skipped"][0]["reason"]
    assert json.loads((train / "r.json").read_text())["record_annotation"] == "DAS"


def test_two_sources_with_one_name_the_first_is_kept_and_the_second_reported(tmp_path):
    _rec(tmp_path / "alice", "r1", {"record_annotation": "CAS", "event_annotation": [WHEEZE]})
    _rec(tmp_path / "bob", "r1", {"record_annotation": "Normal", "event_annotation": []})
    res = collect([tmp_path / "alice", tmp_path / "bob"], tmp_path / "train")
    assert len(res["added"]) == 1
    assert res["skipped"][0]["file"] == str(tmp_path / "bob" / "r1.wav")
    assert "collected from another source in this run" in res["skipped"][0]["reason"]
    assert json.loads((tmp_path / "train" / "r1.json").read_text())["record_annotation"] == "CAS"


def test_a_copy_that_fails_leaves_nothing_behind_and_says_where(tmp_path, monkeypatch):
    for i in range(2):
        _rec(tmp_path / "src", f"r{i}", {"record_annotation": "Normal", "event_annotation": []}, seed=i)
    real = shutil.copy2

    def full_disk(src, dst, *a, **k):
        if Path(src).name == "r1.wav":  # half the file, then no space
            Path(dst).write_bytes(Path(src).read_bytes()[:1000])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst, *a, **k)

    monkeypatch.setattr(shutil, "copy2", full_disk)
    train = tmp_path / "train"
    with pytest.raises(LungappError) as err:
        collect([tmp_path / "src"], train)
    assert str(train / "r1.wav") in str(err.value) and "No space left" in str(err.value)
    assert "the 1 added before it are complete" in str(err.value)
    assert sorted(os.listdir(train)) == ["r0.json", "r0.wav"]  # no stump, no hidden part file
    monkeypatch.setattr(shutil, "copy2", real)
    assert len(collect([tmp_path / "src"], train)["added"]) == 2  # room again: both there
    assert (train / "r1.wav").read_bytes() == (tmp_path / "src" / "r1.wav").read_bytes()


def test_collect_into_a_file_is_one_clear_error(tmp_path):
    _rec(tmp_path / "src", "r", {"record_annotation": "Normal", "event_annotation": []})
    (tmp_path / "out").write_text("x")
    with pytest.raises(LungappError, match="is a file, not a folder"):
        collect([tmp_path / "src"], tmp_path / "out")


def test_collected_files_get_the_usual_permissions(tmp_path):
    _rec(tmp_path / "src", "r", {"record_annotation": "Normal", "event_annotation": []})
    old = os.umask(0o022)
    try:
        collect([tmp_path / "src"], tmp_path / "train")
    finally:
        os.umask(old)
    assert (tmp_path / "train" / "r.json").stat().st_mode & 0o777 == 0o644


# ----------------------------------------------------------------------------- import


def test_import_by_a_named_annotator_goes_into_their_own_part(tmp_path):
    audio = _rec(tmp_path, "r1", {"record_annotation": "Normal", "record_annotation_author": "alice",
                                  "event_annotation": [],
                                  "annotators": {"bob": {"record_annotation": "CAS", "event_annotation": []}}})
    track = tmp_path / "r1.labels.txt"
    track.write_text("1.0\t2.0\tWheeze\n")
    import_labels([track], author="bob")
    data = json.loads(audio.with_suffix(".json").read_text())
    assert data["event_annotation"] == []  # alice's labels as they were
    assert [e["type"] for e in data["annotators"]["bob"]["event_annotation"]] == ["Wheeze"]
    res = agreement_between(tmp_path, ("alice", "bob"))
    wheeze = res["event_f1"]["Wheeze"]
    assert (wheeze["tp"], wheeze["fp"] + wheeze["fn"]) == (0, 1)  # bob's alone, not alice's


def test_import_into_a_copy_of_an_icbhi_folder_is_refused(tmp_path):
    copy = tmp_path / "copy"
    _rec(copy, "101_1b1_Al_sc_Meditron")
    (copy / "101_1b1_Al_sc_Meditron.txt").write_text("0.0\t2.0\t1\t0\n")
    label = tmp_path / "101_1b1_Al_sc_Meditron.txt"
    label.write_text("0.0\t2.0\t1\t0\n")
    with pytest.raises(LungappError, match="has ICBHI labels beside it"):
        import_labels([label], audio_dir=copy)
    assert not (copy / "101_1b1_Al_sc_Meditron.json").exists()


def test_an_imported_region_confirms_the_pending_suggestion_it_matches(tmp_path):
    audio = _rec(tmp_path, "r1", {"record_annotation": "CAS", "event_annotation": [],
                                  "suggested_events": [{"start": 1000, "end": 2000, "type": "Wheeze"}]})
    track = tmp_path / "r1.labels.txt"
    track.write_text("1.0\t2.0\tWheeze\n1.0\t2.0\tWheeze\n")  # the same line twice: one region
    assert import_labels([track], author="anna")[0]["added"] == 1
    doc = load_sidecar(audio).doc
    assert [(r.type, r.author, r.pending) for r in doc.regions] == [("Wheeze", "anna", False)]
    assert doc.state() == "reviewed"


def test_import_checks_every_file_before_writing_any(tmp_path):
    for n in ("a", "b"):
        _rec(tmp_path, n)
    (tmp_path / "a.labels.txt").write_text("1.0\t2.0\tWheeze\n")
    (tmp_path / "b.labels.txt").write_text("1.0\t2.0\tWheez\n")
    with pytest.raises(LungappError, match="b.labels.txt"):
        import_labels([tmp_path / "a.labels.txt", tmp_path / "b.labels.txt"])
    assert not (tmp_path / "a.json").exists()


def test_a_recording_name_that_is_not_utf8_imports_and_exports(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    name = os.fsdecode(b"r\xe9")  # a name from a disk of another system
    os.rename(_wav(src / "tmp.wav"), os.fsencode(src) + b"/r\xe9.wav")
    track = src / f"{name}.labels.txt"
    track.write_text("1.0\t2.0\tWheeze\n")
    assert import_labels([track])[0]["added"] == 1
    res = export_labels(src, "csv")
    text = (Path(res["folder"]) / "events.csv").read_text(encoding="utf-8", errors="surrogateescape")
    rows = list(csv.reader(text.splitlines()))
    assert rows[1][0] == f"{name}.wav" and rows[1][4] == "Wheeze"


# ----------------------------------------------------------------------------- export


def test_audacity_export_leaves_pending_suggestions_out_and_keeps_notes_on_one_line(tmp_path):
    src = tmp_path / "src"
    _rec(src, "r1", {"record_annotation": "CAS", "event_annotation": [
        {"start": 1000, "end": 2000, "type": "Wheeze", "note": "left\tbase\nthen right"}],
        "suggested_events": [{"start": 3000, "end": 3500, "type": "Fine Crackle"}]})
    res = export_labels(src, "audacity")
    text = (Path(res["folder"]) / "r1.labels.txt").read_text()
    regions = parse_audacity(text)  # lungapp reads its own export back
    assert [(r.type, r.note) for r in regions] == [("Wheeze", "left base then right")]


def test_csv_keeps_the_label_of_a_recording_without_events(tmp_path):
    src = tmp_path / "src"
    _rec(src, "r1", {"record_annotation": "Poor Quality", "event_annotation": []})
    _rec(src, "r2", {"record_annotation": "CAS", "event_annotation": [WHEEZE]}, seed=1)
    res = export_labels(src, "csv")
    rows = list(csv.DictReader((Path(res["folder"]) / "events.csv").read_text().splitlines()))
    assert [(r["recording"], r["record_label"], r["type"]) for r in rows] == [
        ("r1.wav", "Poor Quality", ""), ("r2.wav", "CAS", "Wheeze")]


def test_icbhi_export_skips_a_recording_without_events_and_says_so(tmp_path):
    src = tmp_path / "src"
    _rec(src, "r1", {"record_annotation": "Normal", "event_annotation": []})
    _rec(src, "r2", {"record_annotation": "CAS", "event_annotation": [WHEEZE]}, seed=1)
    res = export_labels(src, "icbhi")
    out = Path(res["folder"])
    assert sorted(p.name for p in out.iterdir()) == ["r2.txt"]
    parse_icbhi_cycles((out / "r2.txt").read_text())  # lungapp's own reader takes it
    assert res["skipped"][0]["file"] == str(src / "r1.wav")
    assert "no events" in res["skipped"][0]["reason"]


def test_a_broken_icbhi_file_is_named_not_dropped_silently(tmp_path):
    src = tmp_path / "src"
    _rec(src, "101_1b1_Al_sc_Meditron")
    (src / "101_1b1_Al_sc_Meditron.txt").write_text("0.0\t2.0\t1\t0\n")
    _rec(src, "102_1b1_Ar_sc_Meditron", seed=1)
    (src / "102_1b1_Ar_sc_Meditron.txt").write_text("0.0\t2.0\t1\tX\n")
    res = export_labels(src, "csv", tmp_path / "out")
    assert res["recordings"] == 1
    assert res["skipped"] == [{"file": str(src / "102_1b1_Ar_sc_Meditron.txt"),
                               "reason": pytest.approx(res["skipped"][0]["reason"])}]
    assert "not a usable ICBHI cycle file" in res["skipped"][0]["reason"]


def test_clips_past_the_end_and_an_undecodable_recording_are_reported_not_written(tmp_path):
    src = tmp_path / "src"
    _rec(src, "a", {"record_annotation": "CAS", "event_annotation": [
        {"start": 4500, "end": 7000, "type": "Wheeze"}, {"start": 8000, "end": 9000, "type": "Rhonchi"}]})
    (src / "b.wav").write_bytes(b"not audio at all" * 10)
    (src / "b.json").write_text(json.dumps({"record_annotation": "CAS", "event_annotation": [WHEEZE]}))
    _rec(src, "c", {"record_annotation": "CAS", "event_annotation": [WHEEZE]}, seed=2)
    res = export_labels(src, "csv", clips=True)
    clips = Path(res["folder"]) / "clips"
    assert sorted(p.name for p in clips.iterdir()) == ["a_01_Wheeze.wav", "c_01_Wheeze.wav"]
    assert sf.info(clips / "a_01_Wheeze.wav").duration == pytest.approx(0.5)
    reasons = [s["reason"] for s in res["skipped"]]
    assert any("runs past the recording's end" in r and "stops at 5.00 s" in r for r in reasons)
    assert any("Rhonchi" in r and "starts after the recording's end" in r for r in reasons)
    assert any(s["file"] == str(src / "b.wav") and s["reason"].startswith("no clips:")
               for s in res["skipped"])


def test_export_of_only_unreadable_sidecars_names_them(tmp_path):
    src = tmp_path / "src"
    _rec(src, "r1")
    (src / "r1.json").write_text('{"record_annotation": "CAS", "event_annotation": [}')
    with pytest.raises(LungappError) as err:
        export_labels(src, "csv")
    assert str(src / "r1.json") in str(err.value) and "not valid JSON" in str(err.value)


def test_export_of_the_root_folder_asks_for_out():
    with pytest.raises(LungappError, match="cannot go beside the root folder"):
        export_labels("/", "csv")


# ----------------------------------------------------------------------------- agreement


def test_agreement_names_a_sidecar_nested_too_deeply_and_goes_on(tmp_path):
    for side in ("A", "B"):
        (tmp_path / side).mkdir()
        (tmp_path / side / "r1.json").write_text(json.dumps({"record_annotation": "CAS",
                                                             "event_annotation": [WHEEZE]}))
    (tmp_path / "A" / "r2.json").write_text("[" * 5000 + "]" * 5000)
    (tmp_path / "B" / "r2.json").write_text(json.dumps({"record_annotation": "CAS", "event_annotation": []}))
    res = agreement(tmp_path / "A", tmp_path / "B")
    assert res["n_common"] == 1 and res["only_b"] == []  # reported once, as unreadable
    assert res["problems"] == [{"file": str(tmp_path / "A" / "r2.json"),
                                  "reason": "not a usable annotation: nested too deeply"}]
