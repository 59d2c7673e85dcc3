"""The annotation document, its commands (undo/redo) and the SPRSound-compatible sidecar."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from lungapp.annotation.model import (
    AddRegion,
    Annotation,
    ChangeRegion,
    Region,
    RemoveRegion,
    SetRecordLabel,
    UndoStack,
)
from lungapp.annotation.sidecar import Sidecar, SidecarConflict, load_sidecar
from lungapp.data import read_folder
from lungapp.errors import LungappError


def _wav(path, seconds=2.0, rate=4000):
    sf.write(path, np.zeros(int(seconds * rate), np.float32), rate, subtype="PCM_16")
    return path


def test_every_edit_undoes_and_redoes():
    doc = Annotation()
    changes = []
    stack = UndoStack(doc, on_change=lambda: changes.append(1))
    r = Region(0.5, 1.0, "Wheeze")
    stack.push(AddRegion(r))
    stack.push(AddRegion(Region(0.7, 1.5, "Fine Crackle")))  # overlapping is allowed
    stack.push(ChangeRegion(doc, r.id, author="ann", start_s=0.4, type="Rhonchi"))
    stack.push(SetRecordLabel(doc, "CAS", author="ann"))
    stack.push(RemoveRegion(doc, doc.regions[1].id))
    assert [(x.start_s, x.type, x.author) for x in doc.regions] == [(0.4, "Rhonchi", "ann")]
    assert doc.record_label == "CAS" and doc.record_author == "ann" and doc.record_time
    for _ in range(5):
        assert stack.undo()
    assert doc.regions == [] and doc.record_label is None and not stack.undo()
    for _ in range(5):
        assert stack.redo()
    assert [(x.start_s, x.type) for x in doc.regions] == [(0.4, "Rhonchi")]
    assert len(changes) == 15 and not stack.redo()


def test_commands_refuse_bad_values():
    doc = Annotation()
    with pytest.raises(ValueError, match="unknown event type"):
        AddRegion(Region(0, 1, "Squeak"))
    with pytest.raises(ValueError, match="not end before"):
        AddRegion(Region(2, 1, "Wheeze"))
    with pytest.raises(ValueError, match="unknown record label"):
        SetRecordLabel(doc, "Sick")


def test_suggested_label_and_state():
    doc = Annotation(regions=[Region(0, 1, "Wheeze"), Region(1, 2, "Fine Crackle", suggested=True)])
    assert doc.suggested_label() == "CAS"  # the pending suggestion does not count
    assert doc.state() == "unlabelled"
    doc.record_label = "CAS"
    assert doc.state() == "labelled"
    doc.regions[1] = Region(1, 2, "Fine Crackle", suggested=True, accepted=True)
    assert doc.state() == "reviewed" and doc.suggested_label() == "CAS & DAS"


def test_sidecar_round_trip_keeps_unknown_fields_and_reads_back_through_the_reader(tmp_path):
    audio = _wav(tmp_path / "101_6.0_0_p1_01.wav")
    original = {"record_annotation": "Normal", "device": "Yunting", "custom": {"x": 1},
                "event_annotation": [{"start": "100", "end": "900", "type": "Normal", "tool_id": 7}]}
    (tmp_path / "101_6.0_0_p1_01.json").write_text(json.dumps(original))
    os.chmod(audio, 0o640)
    car = load_sidecar(audio)
    assert car.source == "sprsound"
    assert [(r.start_s, r.end_s, r.type) for r in car.doc.regions] == [(0.1, 0.9, "Normal")]
    stack = UndoStack(car.doc)
    stack.push(AddRegion(Region(1.0, 1.25, "Wheeze", note="faint", author="ann", suggested=True,
                                accepted=True)))
    stack.push(AddRegion(Region(1.5, 1.75, "Fine Crackle", suggested=True)))  # pending
    stack.push(SetRecordLabel(car.doc, "CAS", author="ann"))
    car.save()
    data = json.loads(car.path.read_text())
    assert data["device"] == "Yunting" and data["custom"] == {"x": 1}
    assert data["event_annotation"][0]["tool_id"] == 7
    assert data["record_annotation_author"] == "ann"
    assert [e["type"] for e in data["suggested_events"]] == ["Fine Crackle"]
    assert stat.S_IMODE(os.stat(car.path).st_mode) == 0o640
    again = load_sidecar(audio)
    assert again.doc.same_labels(car.doc) and again.doc.extra == car.doc.extra
    ds = read_folder(tmp_path)
    (ex,) = ds.examples
    assert ex.label == "CAS" and not ds.problems
    assert [(e.start_s, e.end_s, e.type) for e in ex.events] == [(0.1, 0.9, "Normal"),
                                                                 (1.0, 1.25, "Wheeze")]


def test_conflicting_change_on_disk_is_never_overwritten(tmp_path):
    audio = _wav(tmp_path / "a.wav")
    car = load_sidecar(audio)
    car.doc.record_label = "DAS"
    car.save()
    other = json.loads(car.path.read_text())
    other["record_annotation"] = "Normal"
    car.path.write_text(json.dumps(other))  # someone else's edit, same size or not
    car.doc.record_label = "CAS"
    with pytest.raises(SidecarConflict, match="a.json: changed on disk"):
        car.save()
    assert json.loads(car.path.read_text())["record_annotation"] == "Normal"
    copy = car.save_copy()
    assert json.loads(copy.read_text())["record_annotation"] == "CAS"
    assert not copy.name.endswith(".json")  # the readers ignore it
    car.reload()
    assert car.doc.record_label == "Normal"
    car.doc.record_label = "CAS"
    car.save()  # after reloading, saving works again


def test_same_size_rewrite_is_detected_by_hash(tmp_path):
    audio = _wav(tmp_path / "a.wav")
    car = load_sidecar(audio)
    car.doc.record_label = "DAS"
    car.save()
    st = os.stat(car.path)
    text = car.path.read_text().replace('"DAS"', '"CAS"')
    car.path.write_text(text)
    os.utime(car.path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime and size
    assert car.changed_on_disk()


def test_bad_sidecar_is_one_line_error_naming_it(tmp_path):
    audio = _wav(tmp_path / "a.wav")
    (tmp_path / "a.json").write_text("{not json")
    with pytest.raises(LungappError, match=r"a\.json: not valid JSON"):
        Sidecar(audio).reload()
    (tmp_path / "a.json").write_text(json.dumps({"record_annotation": "Sick"}))
    with pytest.raises(LungappError, match="unknown label 'Sick'"):
        Sidecar(audio).reload()


def test_icbhi_cycles_read_as_regions(tmp_path):
    audio = _wav(tmp_path / "101_1b1_Al_sc_Meditron.wav", seconds=4)
    (tmp_path / "101_1b1_Al_sc_Meditron.txt").write_text("0.1\t1.2\t0\t0\n1.2\t2.5\t1\t0\n")
    car = load_sidecar(audio)
    assert car.source == "icbhi" and car.doc.record_label == "DAS"
    assert [(r.start_s, r.end_s, r.type) for r in car.doc.regions] == [(0.1, 1.2, "Normal"),
                                                                       (1.2, 2.5, "Crackle")]


def test_app_recordings_without_a_label_are_left_out_not_refused(tmp_path):
    from lungapp.audio.recorder import make_sidecar

    for i in range(3):
        _wav(tmp_path / f"10{i}_6.0_0_p1_01.wav")
        label = "" if i == 0 else "Normal"
        side = make_sidecar(device="x", sample_rate=4000)
        side["record_annotation"] = label
        (tmp_path / f"10{i}_6.0_0_p1_01.json").write_text(json.dumps(side))
    ds = read_folder(tmp_path)
    assert len(ds.examples) == 2 and not ds.problems
    assert any("not labelled yet" in w and "100_6.0_0_p1_01.wav" in w for w in ds.warnings)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "move", "remove", "label", "note"]),
                          st.integers(0, 400), st.integers(1, 300)), max_size=25),
       st.sampled_from(["", "ann"]), st.booleans())
def test_a_save_writes_what_json_dumps_would_whatever_the_edits(tmp_path_factory, edits, annotator, other):
    """Saves re-encode only the regions an edit changed (a cache of the others): the file is
    byte for byte ``json.dumps(content, indent=2)``, and what the sidecar remembers as written
    is what the file decodes to, after any sequence of edits and undos, with or without
    another annotator's section and unknown fields, ASCII or not."""
    folder = tmp_path_factory.mktemp("cache")
    audio = _wav(folder / "rec.wav")
    base = {"record_annotation": "", "device": "Ünïcode ✓", "nested": {"a": [1, {"b": None}]},
            "event_annotation": [{"start": 10, "end": 20.5, "type": "Wheeze", "tool": [1, 2]}]}
    if other:
        base["annotators"] = {"zoë": {"record_annotation": "DAS", "event_annotation": []}}
    (folder / "rec.json").write_text(json.dumps(base))
    car = Sidecar(audio, annotator)
    car.reload()
    stack = UndoStack(car.doc)
    for i, (what, a, b) in enumerate(edits):
        regions = car.doc.regions
        if what == "add" or not regions:
            stack.push(AddRegion(Region(a / 100, (a + b) / 100, "Fine Crackle", note=f"n{i} é",
                                        suggested=bool(i % 3 == 0))))
        elif what == "move":
            stack.push(ChangeRegion(car.doc, regions[a % len(regions)].id, start_s=a / 1000,
                                    end_s=(a + 10 * b) / 1000))
        elif what == "remove":
            stack.push(RemoveRegion(car.doc, regions[a % len(regions)].id))
        elif what == "label":
            stack.undo() if b % 2 else stack.push(SetRecordLabel(car.doc, "CAS", author="ann"))
        else:
            stack.push(ChangeRegion(car.doc, regions[a % len(regions)].id, note=f"note {b}"))
        car.save()
        text = car.path.read_text()
        decoded = json.loads(text)
        assert text == json.dumps(decoded, indent=2) + "\n"
        assert car._base == decoded
        assert Sidecar(audio, annotator).reload().same_labels(car.doc)
