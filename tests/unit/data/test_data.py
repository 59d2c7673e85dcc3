"""Label vocabulary and labelled-folder readers (lungapp.data)."""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from lungapp.data import labels as L
from lungapp.data.readers import (
    LAYOUTS,
    Dataset,
    Event,
    Example,
    detect_layout,
    parse_icbhi_cycles,
    parse_sprsound_annotation,
    read_folder,
)
from lungapp.errors import DatasetError

# ----------------------------------------------------------------------------- helpers


def wav(path: Path, rate: int = 8000, n: int = 80) -> Path:
    """Write a tiny real audio file (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.linspace(-0.1, 0.1, n, dtype=np.float32), rate)
    return path


def png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (8, 4), 128).save(path)
    return path


def text(path: Path, content: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return path


def spr_json(path: Path, label="Normal", events=()) -> Path:
    return text(path, json.dumps({"record_annotation": label, "event_annotation": list(events)}))


def problem_for(ds: Dataset, name: str) -> str:
    """The reason recorded for the file called ``name`` (fails if none)."""
    reasons = [why for f, why in ds.problems if os.path.basename(f) == name]
    assert reasons, f"no problem recorded for {name}: {ds.problems}"
    return reasons[0]


# ----------------------------------------------------------------------------- labels


def test_vocabulary_constants():
    assert L.RECORD_LABELS == ("Normal", "CAS", "DAS", "CAS & DAS", "Poor Quality")
    assert L.CLASSES_4 == ("Normal", "CAS", "DAS", "CAS & DAS")
    assert L.CLASSES_2 == ("normal", "abnormal")
    assert (L.NORMAL, L.CAS, L.DAS, L.BOTH, L.POOR, L.ABNORMAL) == (
        "Normal", "CAS", "DAS", "CAS & DAS", "Poor Quality", "Abnormal")


@pytest.mark.parametrize("text,expected", [
    ("Normal", L.NORMAL), ("normal", L.NORMAL), ("  HEALTHY ", L.NORMAL),
    ("CAS", L.CAS), ("wheeze", L.CAS), ("Wheezes", L.CAS), ("rhonchi", L.CAS),
    ("continuous", L.CAS), ("stridor", L.CAS),
    ("DAS", L.DAS), ("crackle", L.DAS), ("Crackles", L.DAS), ("discontinuous", L.DAS),
    ("fine_crackles", L.DAS),
    ("CAS & DAS", L.BOTH), ("cas&das", L.BOTH), ("both", L.BOTH), ("Wheeze+Crackle", L.BOTH),
    ("crackles and wheezes", L.BOTH), ("wheezes / crackles", L.BOTH), ("das,cas", L.BOTH),
    ("Poor Quality", L.POOR), ("poor_quality", L.POOR), ("POOR", L.POOR), ("noisy", L.POOR),
    ("poor-quality", L.POOR),
    ("abnormal", L.ABNORMAL), ("Abnormal", L.ABNORMAL),
])
def test_normalise_label_synonyms(text, expected):
    assert L.normalise_label(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "wheez", "normal & cas", "cas and cas",
                                  "crackles and wheezes and normal", "good", "1"])
def test_normalise_label_rejects_unknown_text_naming_it(text):
    with pytest.raises(ValueError) as err:
        L.normalise_label(text)
    assert repr(text) in str(err.value)


@pytest.mark.parametrize("value", [None, 3, ["Normal"]])
def test_normalise_label_rejects_non_strings(value):
    with pytest.raises(ValueError, match="not a label"):
        L.normalise_label(value)


@given(st.text(max_size=30))
@settings(max_examples=300, deadline=None)
def test_normalise_label_returns_a_label_or_raises_value_error(text):
    try:
        assert L.normalise_label(text) in L.ALL_LABELS
    except ValueError:
        pass


@pytest.mark.parametrize("label,expected", [
    (L.NORMAL, "normal"), (L.CAS, "abnormal"), (L.DAS, "abnormal"), (L.BOTH, "abnormal"),
    (L.ABNORMAL, "abnormal"), (L.POOR, None), ("healthy", "normal"), ("wheezes", "abnormal"),
])
def test_binary_label(label, expected):
    assert L.binary_label(label) == expected


def test_binary_label_rejects_unknown():
    with pytest.raises(ValueError, match="'mystery'"):
        L.binary_label("mystery")


@pytest.mark.parametrize("cas,das,expected", [
    (False, False, L.NORMAL), (True, False, L.CAS), (False, True, L.DAS), (True, True, L.BOTH)])
def test_label_from_flags(cas, das, expected):
    assert L.label_from_flags(cas, das) == expected


@pytest.mark.parametrize("type_,flags", [
    ("Normal", (False, False)), ("Wheeze", (True, False)), ("Rhonchi", (True, False)),
    ("Stridor", (True, False)), ("Fine Crackle", (False, True)),
    ("Coarse Crackle", (False, True)), ("Wheeze+Crackle", (True, True)),
    ("fine crackle", (False, True)), ("Crackle", (False, True)), ("wheeze + crackle", (True, True)),
])
def test_event_flags(type_, flags):
    assert L.event_flags(type_) == flags


def test_event_types_all_have_flags_and_unknown_is_refused():
    assert L.EVENT_TYPES == ("Normal", "Wheeze", "Rhonchi", "Stridor", "Fine Crackle",
                             "Coarse Crackle", "Wheeze+Crackle")
    for t in L.EVENT_TYPES:
        assert L.normalise_event_type(t.upper()) == t
    with pytest.raises(ValueError, match="'Squawk'"):
        L.event_flags("Squawk")


# ----------------------------------------------------------------------------- pure parsers


def test_parse_sprsound_annotation_converts_ms_and_string_times_and_sorts():
    label, events = parse_sprsound_annotation({
        "record_annotation": "CAS & DAS",
        "event_annotation": [{"start": "2500", "end": "3000.5", "type": "Fine Crackle"},
                             {"start": 100, "end": 1200, "type": "wheeze"}]})
    assert label == L.BOTH
    assert events == (Event(0.1, 1.2, "Wheeze"), Event(2.5, 3.0005, "Fine Crackle"))


@pytest.mark.parametrize("data,reason", [
    ([], "not an object"),
    ({"event_annotation": []}, "no 'record_annotation'"),
    ({"recording_annotation": "Normal"}, "SPRSound's key is 'record_annotation'"),
    ({"record_annotation": "Sneeze"}, "'Sneeze'"),
    ({"record_annotation": "Normal", "event_annotation": {}}, "not a list"),
    ({"record_annotation": "Normal", "event_annotation": [7]}, "event 1 is not an object"),
    ({"record_annotation": "Normal", "event_annotation": [{"start": 0, "type": "Normal"}]},
     "event 1 has no 'end'"),
    ({"record_annotation": "Normal",
      "event_annotation": [{"start": "0", "end": "1x", "type": "Normal"}]},
     "event 1 end is not a number: '1x'"),
    ({"record_annotation": "Normal",
      "event_annotation": [{"start": "nan", "end": "10", "type": "Normal"}]}, "not a finite"),
    ({"record_annotation": "Normal",
      "event_annotation": [{"start": True, "end": "10", "type": "Normal"}]}, "not a number"),
    ({"record_annotation": "Normal",
      "event_annotation": [{"start": 500, "end": 100, "type": "Normal"}]}, "before it starts"),
    ({"record_annotation": "Normal",
      "event_annotation": [{"start": -5, "end": 100, "type": "Normal"}]}, "negative start"),
    ({"record_annotation": "Normal",
      "event_annotation": [{"start": 0, "end": 100, "type": "Cough"}]}, "'Cough'"),
])
def test_parse_sprsound_annotation_refusals(data, reason):
    with pytest.raises(ValueError) as err:
        parse_sprsound_annotation(data)
    assert reason in str(err.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["record_annotation", "event_annotation", "start", "end", "type"]),
        inner, max_size=5),
    max_leaves=12)


@given(json_values)
@settings(max_examples=300, deadline=None)
def test_parse_sprsound_annotation_never_crashes(data):
    try:
        label, events = parse_sprsound_annotation(data)
    except ValueError:
        return
    assert label in L.ALL_LABELS
    assert all(0 <= e.start_s <= e.end_s for e in events)


def test_parse_icbhi_cycles():
    events = parse_icbhi_cycles("0.036\t0.579\t0\t0\n\n1.2 2.5 1 1\n0.579 1.2 1 0\n2.5 3 0 1\n")
    assert events == (Event(0.036, 0.579, "Normal"), Event(0.579, 1.2, "Crackle"),
                      Event(1.2, 2.5, "Wheeze+Crackle"), Event(2.5, 3.0, "Wheeze"))


@pytest.mark.parametrize("content,reason", [
    ("", "no respiratory cycles"),
    ("0.1 0.5 0\n", "line 1: expected 'start end crackles wheezes'"),
    ("0.1 0.5 0 0\n0.5 1.0 2 0\n", "line 2: crackles flag is '2'"),
    ("a 0.5 0 0\n", "line 1 start is not a number"),
    ("0.9 0.5 0 0\n", "before it starts"),
    ("101 URTI\n", "expected 'start end crackles wheezes'"),
])
def test_parse_icbhi_cycles_refusals(content, reason):
    with pytest.raises(ValueError) as err:
        parse_icbhi_cycles(content)
    assert reason in str(err.value)


# ----------------------------------------------------------------------------- SPRSound


def make_sprsound(root: Path) -> Path:
    wav(root / "1001_5.2_1_p1_11.wav")
    spr_json(root / "1001_5.2_1_p1_11.json", "Normal",
             [{"start": "1000", "end": "2500", "type": "Normal"}])
    wav(root / "1001_5.2_1_p3_12.flac")
    spr_json(root / "1001_5.2_1_p3_12.json", "CAS",
             [{"start": "3200", "end": "4100", "type": "Wheeze"},
              {"start": 250, "end": 1750.5, "type": "Normal"}])
    wav(root / "sub" / "2002_0.8_0_p4_7.flac")
    spr_json(root / "sub" / "2002_0.8_0_p4_7.json", "CAS & DAS",
             [{"start": "0", "end": "900", "type": "Wheeze+Crackle"}])
    wav(root / "2002_0.8_0_p2_8.wav")
    spr_json(root / "2002_0.8_0_p2_8.json", "Poor Quality")
    # SPRSound's own manifest has no label column: it must not look like a CSV layout
    text(root / "manifest.csv", "file,split,patient,record_annotation\n"
                                "1001_5.2_1_p1_11.wav,train,1001,Normal\n")
    return root


def test_sprsound_reads_labels_patients_events_meta(tmp_path):
    root = make_sprsound(tmp_path / "spr")
    ds = read_folder(root)
    assert ds.layout == "sprsound" and detect_layout(root) == "sprsound"
    assert ds.root == str(root)
    assert ds.problems == [] and ds.warnings == []
    by_name = {Path(e.path).name: e for e in ds.examples}
    assert sorted(by_name) == ["1001_5.2_1_p1_11.wav", "1001_5.2_1_p3_12.flac",
                               "2002_0.8_0_p2_8.wav", "2002_0.8_0_p4_7.flac"]
    assert [e.path for e in ds.examples] == sorted(e.path for e in ds.examples)
    cas = by_name["1001_5.2_1_p3_12.flac"]
    assert cas.path == str(root / "1001_5.2_1_p3_12.flac")
    assert cas.label == L.CAS and cas.patient == "1001" and cas.kind == "audio"
    assert cas.events == (Event(0.25, 1.7505, "Normal"), Event(3.2, 4.1, "Wheeze"))
    assert cas.meta == {"age": 5.2, "gender": "female", "location": "p3",
                        "location_name": "right posterior", "number": "12"}
    nested = by_name["2002_0.8_0_p4_7.flac"]
    assert nested.label == L.BOTH and nested.patient == "2002"
    assert nested.events == (Event(0.0, 0.9, "Wheeze+Crackle"),)
    assert by_name["2002_0.8_0_p2_8.wav"].events == ()
    assert ds.has_patients and ds.patients() == {"1001", "2002"}
    assert ds.counts() == {L.NORMAL: 1, L.CAS: 1, L.BOTH: 1, L.POOR: 1}
    assert list(ds.counts()) == [L.NORMAL, L.CAS, L.BOTH, L.POOR]
    assert ds.counts()[L.DAS] == 0
    summary = json.loads(json.dumps(ds.summary()))
    assert summary["layout"] == "sprsound" and summary["n"] == 4
    assert summary["n_patients"] == 2 and summary["n_problems"] == 0
    assert summary["counts"] == {"Normal": 1, "CAS": 1, "CAS & DAS": 1, "Poor Quality": 1}
    assert summary["kind"] == "audio" and summary["n_events"] == 4


def test_sprsound_records_per_file_problems_and_keeps_the_rest(tmp_path):
    root = make_sprsound(tmp_path / "spr")
    wav(root / "3003_1_0_p1_1.wav")
    text(root / "3003_1_0_p1_1.json", "{not json")
    wav(root / "3003_1_0_p1_2.wav")
    spr_json(root / "3003_1_0_p1_2.json", "Sneezes")
    wav(root / "3003_1_0_p1_3.wav")
    spr_json(root / "3003_1_0_p1_3.json", "DAS",
             [{"start": "early", "end": "900", "type": "Fine Crackle"}])
    spr_json(root / "3003_1_0_p1_4.json", "DAS")  # no audio beside it
    wav(root / "3003_1_0_p1_5.wav")  # no JSON beside it
    wav(root / "3003_1_0_p1_6.wav")
    text(root / "3003_1_0_p1_6.json", json.dumps({"recording_annotation": "Normal"}))
    (root / "3003_1_0_p1_7.wav").write_bytes(b"")
    (root / "3003_1_0_p1_7.json").write_bytes(b"\xff\xfe\x00garbage")

    ds = read_folder(root)
    assert ds.layout == "sprsound" and len(ds.examples) == 4
    assert "not valid JSON" in problem_for(ds, "3003_1_0_p1_1.json")
    assert "'Sneezes'" in problem_for(ds, "3003_1_0_p1_2.json")
    assert "event 1 start is not a number: 'early'" in problem_for(ds, "3003_1_0_p1_3.json")
    assert "no audio file beside it" in problem_for(ds, "3003_1_0_p1_4.json")
    assert "no annotation 3003_1_0_p1_5.json" in problem_for(ds, "3003_1_0_p1_5.wav")
    assert "'record_annotation'" in problem_for(ds, "3003_1_0_p1_6.json")
    assert "not valid JSON" in problem_for(ds, "3003_1_0_p1_7.json")
    assert len(ds.problems) == 7 and ds.summary()["n_problems"] == 7
    assert all(os.path.isabs(f) for f, _ in ds.problems)


def test_sprsound_name_without_the_usual_parts(tmp_path):
    wav(tmp_path / "recording.wav")
    spr_json(tmp_path / "recording.json", "normal")
    (ex,) = read_folder(tmp_path).examples
    assert ex.patient == "recording" and ex.meta == {} and ex.label == L.NORMAL


# ----------------------------------------------------------------------------- ICBHI


def make_icbhi(root: Path) -> Path:
    cycles = {
        "101_1b1_Al_sc_Meditron": "0.036\t0.579\t0\t0\n0.579\t2.45\t1\t0\n",
        "101_1b1_Pr_sc_Meditron": "0.1\t1.2\t0\t0\n1.2\t2.2\t0\t0\n",
        "102_1b1_Ar_sc_Meditron": "0.0\t1.0\t0\t1\n1.0\t2.0\t1\t0\n",
        "103_2b2_Ar_mc_LittC2SE": "0.0\t1.5\t0\t1\n",
    }
    for stem, content in cycles.items():
        wav(root / f"{stem}.wav", rate=4000)
        text(root / f"{stem}.txt", content)
    # ICBHI's extra files are not annotations and must be ignored silently
    text(root / "ICBHI_Challenge_diagnosis.txt", "101\tURTI\n102\tHealthy\n")
    text(root / "ICBHI_challenge_train_test.txt", "101_1b1_Al_sc_Meditron\ttrain\n")
    return root


def test_icbhi_reads_labels_from_cycle_flags(tmp_path):
    root = make_icbhi(tmp_path / "icbhi")
    ds = read_folder(root)
    assert ds.layout == "icbhi"
    assert ds.problems == [] and ds.warnings == []
    by_stem = {Path(e.path).stem: e for e in ds.examples}
    assert {s: e.label for s, e in by_stem.items()} == {
        "101_1b1_Al_sc_Meditron": L.DAS, "101_1b1_Pr_sc_Meditron": L.NORMAL,
        "102_1b1_Ar_sc_Meditron": L.BOTH, "103_2b2_Ar_mc_LittC2SE": L.CAS}
    first = by_stem["101_1b1_Al_sc_Meditron"]
    assert first.patient == "101"
    assert first.events == (Event(0.036, 0.579, "Normal"), Event(0.579, 2.45, "Crackle"))
    assert first.meta == {"recording": "1b1", "location": "Al", "mode": "sc",
                          "device": "Meditron"}
    assert by_stem["102_1b1_Ar_sc_Meditron"].events[0].type == "Wheeze"
    assert ds.patients() == {"101", "102", "103"} and ds.has_patients


def test_icbhi_records_per_file_problems(tmp_path):
    root = make_icbhi(tmp_path / "icbhi")
    wav(root / "104_1b1_Al_sc_Meditron.wav")
    text(root / "104_1b1_Al_sc_Meditron.txt", "0.0 1.0 0 0\n1.0 2.0 0 yes\n")
    wav(root / "105_1b1_Al_sc_Meditron.wav")
    text(root / "105_1b1_Al_sc_Meditron.txt", "0.0 1.0\n")
    wav(root / "106_1b1_Al_sc_Meditron.wav")  # no annotation
    text(root / "107_1b1_Al_sc_Meditron.txt", "0.0 1.0 0 0\n")  # annotation, no audio
    ds = read_folder(root)
    assert len(ds.examples) == 4
    assert "wheezes flag is 'yes'" in problem_for(ds, "104_1b1_Al_sc_Meditron.txt")
    assert "line 1: expected" in problem_for(ds, "105_1b1_Al_sc_Meditron.txt")
    assert "no annotation" in problem_for(ds, "106_1b1_Al_sc_Meditron.wav")
    assert "no audio file beside it" in problem_for(ds, "107_1b1_Al_sc_Meditron.txt")
    assert len(ds.problems) == 4


# ----------------------------------------------------------------------------- class folders


def test_class_folders(tmp_path):
    root = tmp_path / "classes"
    wav(root / "normal" / "a.wav")
    wav(root / "normal" / "b.flac")
    wav(root / "Wheezes" / "deeper" / "c.wav")
    wav(root / "crackles" / "d.ogg")
    wav(root / "Poor_Quality" / "e.wav")
    text(root / "crackles" / "notes.txt", "recorded on ward 3")
    text(root / "README.txt", "my data")
    wav(root / "unsorted" / "f.wav")
    ds = read_folder(root)
    assert ds.layout == "class-folders"
    by_name = {Path(e.path).name: e for e in ds.examples}
    assert {n: e.label for n, e in by_name.items()} == {
        "a.wav": L.NORMAL, "b.flac": L.NORMAL, "c.wav": L.CAS, "d.ogg": L.DAS,
        "e.wav": L.POOR}
    assert by_name["c.wav"].path == str(root / "Wheezes" / "deeper" / "c.wav")
    assert all(e.patient is None and e.kind == "audio" for e in ds.examples)
    assert not ds.has_patients and ds.patients() == set()
    assert ds.summary()["n_patients"] == 0
    assert any("ignored 2 files outside the label folders" in w for w in ds.warnings)
    assert any("ignored 1 files in the label folders" in w for w in ds.warnings)


def test_class_folders_of_images_and_binary_labels(tmp_path):
    root = tmp_path / "classes"
    png(root / "normal" / "a.png")
    png(root / "abnormal" / "b.jpg")
    ds = read_folder(root)
    assert ds.layout == "class-folders"
    assert [(Path(e.path).name, e.label, e.kind) for e in ds.examples] == [
        ("b.jpg", L.ABNORMAL, "image"), ("a.png", L.NORMAL, "image")]
    assert ds.summary()["kind"] == "image"
    assert [L.binary_label(e.label) for e in ds.examples] == ["abnormal", "normal"]


def test_abnormal_mixed_with_fine_labels_is_warned(tmp_path):
    root = tmp_path / "classes"
    wav(root / "abnormal" / "a.wav")
    wav(root / "cas" / "b.wav")
    ds = read_folder(root)
    assert any("labelled only 'Abnormal'" in w for w in ds.warnings)


# ----------------------------------------------------------------------------- CSV manifest


def test_csv_manifest(tmp_path):
    root = tmp_path / "csvset"
    wav(root / "audio" / "a.wav")
    wav(root / "audio" / "b.flac")
    wav(root / "c.wav")
    wav(root / "d.wav")
    with open(root / "labels.csv", "w", newline="", encoding="utf-8-sig") as f:
        w = csv.writer(f)
        w.writerow(["File", " label ", "patient", "site"])
        w.writerows([["audio/a.wav", "healthy", "P1", "anterior"],
                     ["audio/b.flac", "crackles and wheezes", "P2", "posterior"],
                     ["c.wav", "CAS", "", "x"],
                     [],
                     ["missing.wav", "Normal", "P3", ""],
                     ["d.wav", "gurgle", "P4", ""],
                     ["audio/a.wav", "Normal", "P1", ""],
                     ["labels.csv", "Normal", "P1", ""],
                     ["", "Normal", "P1", ""]])
    ds = read_folder(root)
    assert ds.layout == "csv"
    by_name = {Path(e.path).name: e for e in ds.examples}
    assert {n: (e.label, e.patient) for n, e in by_name.items()} == {
        "a.wav": (L.NORMAL, "P1"), "b.flac": (L.BOTH, "P2"), "c.wav": (L.CAS, None)}
    assert by_name["a.wav"].path == str(root / "audio" / "a.wav")
    assert by_name["a.wav"].meta == {"site": "anterior"}
    assert not ds.has_patients and ds.patients() == {"P1", "P2"}
    assert "labels.csv (line 6) but not found" in problem_for(ds, "missing.wav")
    assert "'gurgle'" in problem_for(ds, "d.wav")
    assert "listed twice" in problem_for(ds, "a.wav")
    assert "not an audio or image file" in problem_for(ds, "labels.csv")
    assert any(f.endswith("labels.csv:10") and "no file name" in why for f, why in ds.problems)
    assert len(ds.problems) == 5


def test_a_file_listed_twice_with_different_labels_is_left_out(tmp_path):
    """Which row is right cannot be told: the file was scored with the first row's label.
    The same label written twice ("healthy", "Normal") keeps the file."""
    root = tmp_path / "set"
    for name in ("a.wav", "b.wav", "c.wav"):
        wav(root / name)
    (root / "m.csv").write_text("file,label\na.wav,Normal\nb.wav,healthy\na.wav,CAS\n"
                                "b.wav,Normal\nc.wav,DAS\n")
    ds = read_folder(root)
    assert sorted(Path(e.path).name for e in ds.examples) == ["b.wav", "c.wav"]
    assert "different labels ('Normal' on line 2, 'CAS' on line 4): left out" in problem_for(ds, "a.wav")
    assert problem_for(ds, "b.wav") == "listed twice in m.csv (lines 3 and 5)"


def test_csv_manifest_rows_outside_its_folder_are_refused(tmp_path):
    root = tmp_path / "set"
    wav(root / "a.wav")
    wav(tmp_path / "outside.wav")
    text(root / "m.csv", f"file,label\na.wav,normal\n../outside.wav,normal\n{tmp_path / 'outside.wav'},cas\n")
    ds = read_folder(root)
    assert [Path(e.path).name for e in ds.examples] == ["a.wav"]
    reasons = [why for _, why in ds.problems]
    assert len(reasons) == 2 and all("is outside the manifest's folder" in why for why in reasons)


def test_csv_manifest_with_semicolons(tmp_path):
    wav(tmp_path / "a.wav")
    wav(tmp_path / "b.wav")
    text(tmp_path / "m.csv", "file;label;patient\na.wav;wheeze;7\nb.wav;normal;8\n")
    ds = read_folder(tmp_path)
    assert ds.layout == "csv" and ds.has_patients
    assert [(e.label, e.patient) for e in ds.examples] == [(L.CAS, "7"), (L.NORMAL, "8")]


def test_csv_manifest_refusals(tmp_path):
    wav(tmp_path / "a.wav")
    png(tmp_path / "b.png")
    text(tmp_path / "m.csv", "file,label\na.wav,normal\nb.png,cas\n")
    with pytest.raises(DatasetError, match="mixes 1 audio files and 1 images"):
        read_folder(tmp_path)
    text(tmp_path / "m2.csv", "file,label\na.wav,normal\n")
    with pytest.raises(DatasetError, match="several CSV manifests"):
        read_folder(tmp_path)


# ----------------------------------------------------------------------------- seed images


def test_seed_images_with_per_image_label_files(tmp_path):
    root = tmp_path / "seed"
    for i, label in enumerate(["normal", "CAS", "normal\n", "Wheeze"]):
        png(root / "img" / f"spec_{i}.png")
        text(root / "img" / f"spec_{i}.txt", label)
    png(root / "img" / "unlabelled.png")
    text(root / "img" / "orphan.txt", "normal")
    text(root / "notes.txt", "spectrograms at 4 kHz")
    png(root / "img" / "bad.png")
    text(root / "img" / "bad.txt", "maybe")
    ds = read_folder(root)
    assert ds.layout == "seed-images"
    assert [(Path(e.path).name, e.label, e.kind, e.patient) for e in ds.examples] == [
        ("spec_0.png", L.NORMAL, "image", None), ("spec_1.png", L.CAS, "image", None),
        ("spec_2.png", L.NORMAL, "image", None), ("spec_3.png", L.CAS, "image", None)]
    assert "no label" in problem_for(ds, "unlabelled.png")
    assert "label file with no image" in problem_for(ds, "orphan.txt")
    assert "'maybe'" in problem_for(ds, "bad.png")
    assert len(ds.problems) == 3  # notes.txt is not a label, so not a problem


@pytest.mark.parametrize("form", ["list", "object"])
def test_seed_images_with_labels_json(tmp_path, form):
    entries = [("a.png", "normal"), ("sub/b.jpg", "cas"), ("c.png", "huh"),
               ("gone.png", "normal"), ("d.png", "normal")]
    for name, _ in entries[:3] + entries[4:]:
        png(tmp_path / name)
    text(tmp_path / "d.txt", "CAS")  # disagrees with labels.json
    png(tmp_path / "e.png")  # in neither
    data = ([{"file": f, "label": lab} for f, lab in entries] if form == "list"
            else dict(entries))
    text(tmp_path / "labels.json", json.dumps(data))
    ds = read_folder(tmp_path)
    assert ds.layout == "seed-images"
    assert [(Path(e.path).name, e.label) for e in ds.examples] == [
        ("a.png", L.NORMAL), ("b.jpg", L.CAS)]
    assert "'huh'" in problem_for(ds, "c.png")
    assert "listed there but not found" in problem_for(ds, "gone.png")
    assert "labels.json says Normal but d.txt says CAS" in problem_for(ds, "d.png")
    assert "not in labels.json" in problem_for(ds, "e.png")


@pytest.mark.parametrize("content,reason", [
    ("[1, 2", "not valid JSON"), ('"normal"', "expected a list"),
    ('[{"file": "a.png"}]', "entry 1 is not an object with 'file' and 'label'")])
def test_seed_images_broken_labels_json_is_refused(tmp_path, content, reason):
    png(tmp_path / "a.png")
    text(tmp_path / "labels.json", content)
    with pytest.raises(DatasetError) as err:
        read_folder(tmp_path)
    assert reason in str(err.value) and "labels.json" in str(err.value)


# ----------------------------------------------------------------------------- refusals


def test_missing_path_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="no such folder") as err:
        read_folder(tmp_path / "nope")
    assert err.value.path == str(tmp_path / "nope")


def test_file_instead_of_folder_is_refused(tmp_path):
    f = wav(tmp_path / "a.wav")
    with pytest.raises(DatasetError, match="is a file, not a folder") as err:
        read_folder(f)
    assert str(err.value).startswith(str(f))


def test_empty_folder_is_refused(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    text(tmp_path / ".DS_Store", "x")
    with pytest.raises(DatasetError, match="empty"):
        read_folder(tmp_path)


def test_unknown_layout_is_refused_listing_what_was_found_and_expected(tmp_path):
    wav(tmp_path / "a.wav")
    wav(tmp_path / "b.wav")
    text(tmp_path / "notes.md", "hello")
    with pytest.raises(DatasetError) as err:
        read_folder(tmp_path)
    msg = str(err.value)
    assert "no known dataset layout" in msg and "3 files (2 .wav, 1 .md)" in msg
    for layout in LAYOUTS:
        assert layout in msg


def test_mixed_layouts_are_refused_naming_them(tmp_path):
    make_sprsound(tmp_path)
    make_icbhi(tmp_path)
    with pytest.raises(DatasetError) as err:
        read_folder(tmp_path)
    msg = str(err.value)
    assert "mixes dataset layouts" in msg and "sprsound" in msg and "icbhi" in msg
    # choosing the layout explicitly reads one of them, the other's files are problems
    ds = read_folder(tmp_path, layout="icbhi")
    assert ds.layout == "icbhi" and len(ds.examples) == 4
    assert {Path(f).suffix for f, _ in ds.problems} == {".wav", ".flac"}


def test_unknown_layout_name_is_refused(tmp_path):
    wav(tmp_path / "a.wav")
    with pytest.raises(DatasetError, match="unknown layout 'kaggle'"):
        read_folder(tmp_path, layout="kaggle")


def test_folder_with_only_broken_files_is_refused_citing_problems(tmp_path):
    wav(tmp_path / "1_a.wav")
    spr_json(tmp_path / "1_a.json", "mystery")
    with pytest.raises(DatasetError) as err:
        read_folder(tmp_path)
    assert "no usable sprsound examples" in str(err.value) and "'mystery'" in str(err.value)


def test_explicit_layout_with_nothing_of_it_is_refused(tmp_path):
    wav(tmp_path / "a.wav")
    with pytest.raises(DatasetError, match="no .csv manifest"):
        read_folder(tmp_path, layout="csv")
    with pytest.raises(DatasetError, match="no usable class-folders examples"):
        read_folder(tmp_path, layout="class-folders")


def test_example_is_hashable_and_meta_not_compared():
    a = Example("/x.wav", L.CAS, "1", (Event(0.0, 1.0, "Wheeze"),), meta={"age": 3})
    b = Example("/x.wav", L.CAS, "1", (Event(0.0, 1.0, "Wheeze"),), meta={})
    assert a == b and hash(a) == hash(b)


# ----------------------------------------------------------------------------- real data


def test_real_sprsound_train_matches_its_readme(sprsound_dir):
    train = sprsound_dir / "train"
    # (Reading speed is measured by benchmarks/bench_dsp.py, not asserted here.)
    ds = read_folder(train)
    assert ds.layout == "sprsound" and ds.problems == []
    assert len(ds.examples) == 1949 and len(ds.patients()) == 251 and ds.has_patients
    assert ds.counts() == {"Normal": 1303, "CAS": 126, "DAS": 248, "CAS & DAS": 95,
                           "Poor Quality": 177}
    # every label and patient agrees with the folder's own manifest.csv
    with open(train / "manifest.csv", newline="") as f:
        manifest = {row["file"]: row for row in csv.DictReader(f)}
    for e in ds.examples:
        row = manifest[Path(e.path).name]
        assert (e.label, e.patient) == (row["record_annotation"], row["patient"])
        assert len(e.events) == int(row["events"])
        assert all(0 <= ev.end_s <= float(row["seconds"]) + 0.5 for ev in e.events)
    assert Counter(e.meta["location"] for e in ds.examples).keys() == {"p1", "p2", "p3", "p4"}


def test_csv_manifest_undecodable_after_its_header_is_refused_naming_it(tmp_path):
    wav(tmp_path / "a.wav")
    (tmp_path / "m.csv").write_bytes(b"file,label\na.wav,normal\n\xff\xfe,cas\n")
    with pytest.raises(DatasetError, match="cannot read the manifest: not UTF-8") as err:
        read_folder(tmp_path)
    assert err.value.path == str(tmp_path / "m.csv")


def test_binary_csv_is_not_taken_for_a_manifest(tmp_path):
    wav(tmp_path / "a.wav")
    (tmp_path / "m.csv").write_bytes(b"\x00\xff\x00\xfe")
    with pytest.raises(DatasetError, match="no known dataset layout"):
        read_folder(tmp_path)
