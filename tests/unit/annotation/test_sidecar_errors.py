"""Sidecars that cannot be read, and hand-written ones with nulls or text where JSON has
other types: one clear error naming the file and the problem (never a traceback), the file is
never overwritten, the other recordings of the folder are unaffected, and nothing is silently
reinterpreted ("None" as a note, "false" as true)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lungapp.annotation.folder import annotated, label_state, label_states
from lungapp.annotation.formats import export_labels
from lungapp.annotation.model import AddRegion, Region, UndoStack
from lungapp.annotation.sidecar import Sidecar, SidecarConflict, Stamp, load_sidecar
from lungapp.errors import LungappError

GOOD = {"record_annotation": "CAS", "event_annotation": [{"start": 100, "end": 900, "type": "Wheeze"}]}
HUGE_INT = b'{"record_annotation": "CAS", "event_annotation": [{"start": 0, "end": 1' + b"0" * 400 + \
    b', "type": "Wheeze"}]}'
DEEP = b"[" * 100_000 + b"]" * 100_000


def _wav(path: Path, seconds: float = 2.0, rate: int = 4000) -> Path:
    sf.write(path, np.zeros(int(seconds * rate), np.float32), rate, subtype="PCM_16")
    return path


def _bad_sidecar(audio: Path, kind: str) -> Path:
    """``audio``'s sidecar made unreadable in one way; returns its path."""
    path = audio.with_suffix(".json")
    if kind == "folder":  # the same path (open() fails) as a file without read permission
        path.mkdir()
    else:
        path.write_bytes({"huge int": HUGE_INT, "deep": DEEP}[kind])
    return path


UNREADABLE = [("folder", r"cannot be read \(Is a directory\)"),
              ("huge int", "event_annotation 1 end is too large to be a time"),
              ("deep", "nested too deeply")]


@pytest.mark.parametrize(("kind", "problem"), UNREADABLE)
def test_an_unreadable_sidecar_is_one_line_naming_it(tmp_path, kind, problem):
    audio = _wav(tmp_path / "a.wav")
    path = _bad_sidecar(audio, kind)
    before = None if path.is_dir() else path.read_bytes()
    with pytest.raises(LungappError, match=rf"^{re.escape(str(tmp_path / 'a.json'))}: .*{problem}") as err:
        Sidecar(audio, "ann").reload()
    assert "\n" not in str(err.value)
    state, why = label_state(audio, "ann")
    assert state == "unreadable" and why == err.value.problem
    assert path.is_dir() if before is None else path.read_bytes() == before


@pytest.mark.parametrize(("kind", "problem"), UNREADABLE)
def test_an_unreadable_sidecar_leaves_the_rest_of_the_folder_alone(tmp_path, kind, problem):
    good = _wav(tmp_path / "a.wav")
    good.with_suffix(".json").write_text(json.dumps(GOOD))
    bad = _wav(tmp_path / "z.wav")
    _bad_sidecar(bad, kind)
    states = label_states(None, [str(good), str(bad)], "ann")
    assert states[0] == (str(good), ("reviewed", ""))
    assert states[1][0] == str(bad) and states[1][1][0] == "unreadable"
    items, problems = annotated(tmp_path)
    assert [i.rel for i in items] == ["a.wav"]
    ((file, why),) = problems
    assert file == str(bad.with_suffix(".json")) and re.search(problem, why)
    summary = export_labels(tmp_path, "csv", tmp_path.parent / f"{tmp_path.name}-out")
    assert summary["recordings"] == 1 and [s["file"] for s in summary["skipped"]] == [file]


def test_a_sidecar_gone_unreadable_while_being_read_is_one_line(tmp_path, monkeypatch):
    audio = _wav(tmp_path / "a.wav")
    _bad_sidecar(audio, "folder")
    # The file was a readable one when its stamp was taken, a folder when read just after.
    monkeypatch.setattr(Stamp, "of", classmethod(lambda cls, path: Stamp(1, 2, "0" * 64)))
    with pytest.raises(LungappError, match=r"a\.json: cannot be read \(Is a directory\)"):
        Sidecar(audio).reload()


def test_label_states_carry_on_past_an_unforeseen_failure(tmp_path, monkeypatch):
    good = _wav(tmp_path / "a.wav")
    good.with_suffix(".json").write_text(json.dumps(GOOD))
    bad = _wav(tmp_path / "b.wav")
    reload = Sidecar.reload

    def failing(self):  # a bug in reading one file, not a bad file (not a LungappError)
        if self.audio.name == "b.wav":
            raise RuntimeError("boom")
        return reload(self)

    monkeypatch.setattr(Sidecar, "reload", failing)
    assert label_states(None, [str(bad), str(good)]) == [
        (str(bad), ("unreadable", "RuntimeError: boom")), (str(good), ("reviewed", ""))]


@pytest.mark.parametrize("disk", ["folder", "deep"])
def test_a_sidecar_turned_unreadable_on_disk_is_a_conflict_not_a_crash(tmp_path, disk):
    audio = _wav(tmp_path / "a.wav")
    audio.with_suffix(".json").write_text(json.dumps(GOOD))
    car = load_sidecar(audio)
    audio.with_suffix(".json").unlink()
    path = _bad_sidecar(audio, disk)
    UndoStack(car.doc).push(AddRegion(Region(1.0, 1.5, "Wheeze")))
    with pytest.raises(SidecarConflict, match="a.json: changed on disk"):
        car.save()
    assert path.is_dir() if disk == "folder" else path.read_bytes() == DEEP


def test_null_texts_are_absent_not_none(tmp_path):
    audio = _wav(tmp_path / "a.wav")
    path = audio.with_suffix(".json")
    path.write_text(json.dumps({
        "record_annotation": "CAS", "record_annotation_author": None, "record_annotation_time": None,
        "event_annotation": [{"start": 100, "end": 900, "type": "Wheeze", "note": None,
                              "author": None, "time": None}]}))
    car = load_sidecar(audio, "ann")
    # Labels no one is named on are edited by whoever opens them (no annotator "None").
    assert car.part is None and car.others() == []
    assert (car.doc.record_author, car.doc.record_time) == ("", "")
    ((r,),) = [car.doc.regions]
    assert (r.note, r.author, r.time) == ("", "", "")
    assert label_state(audio, "ann") == ("reviewed", "")
    UndoStack(car.doc).push(AddRegion(Region(1.0, 1.5, "Rhonchi", author="ann")))
    car.save()
    data = json.loads(path.read_text())
    assert "None" not in path.read_text() and "annotators" not in data
    assert data["event_annotation"][0] == {"start": 100, "end": 900, "type": "Wheeze"}


@pytest.mark.parametrize("value", ["false", "true", 0, 1, [], {}])
@pytest.mark.parametrize("key", ["suggested", "accepted"])
def test_flags_that_are_not_booleans_are_refused_naming_the_field(tmp_path, key, value):
    audio = _wav(tmp_path / "a.wav")
    event = {"start": 100, "end": 900, "type": "Wheeze", "suggested": False, "accepted": False}
    text = json.dumps({"record_annotation": "CAS", "event_annotation": [dict(event, **{key: value})]})
    audio.with_suffix(".json").write_text(text)
    with pytest.raises(LungappError, match=rf"a\.json: not a usable annotation: event_annotation 1 "
                                           rf"'{key}' is not true or false: "):
        Sidecar(audio).reload()
    assert label_state(audio)[0] == "unreadable"
    assert audio.with_suffix(".json").read_text() == text


def test_boolean_and_null_flags_are_read_as_written(tmp_path):
    audio = _wav(tmp_path / "a.wav")
    audio.with_suffix(".json").write_text(json.dumps({"record_annotation": "CAS", "event_annotation": [
        {"start": 100, "end": 900, "type": "Wheeze", "suggested": None, "accepted": None},
        {"start": 1000, "end": 1200, "type": "Rhonchi", "suggested": True, "accepted": True},
        {"start": 1300, "end": 1400, "type": "Stridor", "suggested": False, "accepted": False}]}))
    car = load_sidecar(audio)
    assert [(r.suggested, r.accepted) for r in car.doc.regions] == [(False, False), (True, True),
                                                                    (False, False)]
    car.save()
    events = json.loads(audio.with_suffix(".json").read_text())["event_annotation"]
    assert [(e.get("suggested"), e.get("accepted")) for e in events] == [(None, None), (True, True),
                                                                         (None, None)]
