"""Two annotators labelling the same recordings in one folder: their labels coexist in each
sidecar, one's saves never change the other's, and the agreement between two named annotators
of one folder gives the same measures as the agreement between two folders."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lungapp.annotation.agreement import agreement, agreement_between, annotators_of, parse_names
from lungapp.annotation.folder import label_state
from lungapp.annotation.model import AddRegion, ChangeRegion, Region, SetRecordLabel, UndoStack
from lungapp.annotation.sidecar import Sidecar, SidecarConflict, annotation_to_json, load_sidecar
from lungapp.data import read_folder
from lungapp.errors import LungappError

ROOT = Path(__file__).resolve().parents[3]
# The hand-made pair of test_agreement.py: kappa 10/22, Wheeze F1 0.5, Fine Crackle F1 1.
LABELS_A = ["Normal", "Normal", "CAS", "DAS", "CAS", "Normal"]
LABELS_B = ["Normal", "CAS", "CAS", "DAS", "Normal", "Normal"]
EVENTS_A = [(1.0, "Wheeze"), (3.0, "Wheeze"), (2.0, "Fine Crackle")]
EVENTS_B = [(1.15, "Wheeze"), (3.3, "Wheeze"), (2.1, "Fine Crackle")]


def _wav(path: Path, seconds: float = 4.0, rate: int = 4000) -> Path:
    sf.write(path, np.zeros(int(seconds * rate), np.float32), rate, subtype="PCM_16")
    return path


def _label(audio: Path, name: str, label: str, events=()) -> Sidecar:
    """What the Review view does for annotator ``name``: open, edit, autosave."""
    car = load_sidecar(audio, name)
    stack = UndoStack(car.doc)
    for start, type_ in events:
        stack.push(AddRegion(Region(start, start + 0.3, type_, author=name)))
    stack.push(SetRecordLabel(car.doc, label, author=name))
    car.save()
    return car


def _key(car: Sidecar):
    return car.doc.record_label, sorted((r.start_s, r.type, r.author) for r in car.doc.regions)


def test_a_second_annotator_never_changes_the_firsts_labels(tmp_path):
    audio = _wav(tmp_path / "r.wav")
    alice = _label(audio, "alice", "CAS", [(1.0, "Wheeze")])
    bob = load_sidecar(audio, "bob")
    assert bob.part == "bob" and bob.doc.record_label is None and not bob.doc.regions
    assert bob.others() == ["alice"]
    _label(audio, "bob", "DAS", [(2.0, "Fine Crackle")])
    assert _key(load_sidecar(audio, "alice")) == ("CAS", [(1.0, "Wheeze", "alice")])
    assert _key(load_sidecar(audio, "bob")) == ("DAS", [(2.0, "Fine Crackle", "bob")])
    # Training reads the first annotator's labels, unchanged; the readers ignore bob's section.
    (ex,) = read_folder(tmp_path).examples
    assert ex.label == "CAS" and [e.type for e in ex.events] == ["Wheeze"]
    # alice editing again keeps bob's section as it is.
    car = load_sidecar(audio, "alice")
    UndoStack(car.doc).push(ChangeRegion(car.doc, car.doc.regions[0].id, author="alice", start_s=1.1))
    car.save()
    assert _key(load_sidecar(audio, "bob")) == ("DAS", [(2.0, "Fine Crackle", "bob")])
    assert alice.part is None and label_state(audio) == ("reviewed", "alice, bob")


def test_unnamed_labels_are_edited_by_whoever_opens_them(tmp_path):
    audio = _wav(tmp_path / "r.wav")
    audio.with_suffix(".json").write_text(json.dumps(
        {"record_annotation": "Normal", "event_annotation": [{"start": 0, "end": 500, "type": "Normal"}]}))
    car = load_sidecar(audio, "alice")  # SPRSound's experts name no one: alice corrects them
    assert car.part is None and car.doc.record_label == "Normal"


def test_concurrent_saves_of_two_annotators_merge(tmp_path):
    audio = _wav(tmp_path / "r.wav")
    _label(audio, "alice", "CAS")
    alice, bob = load_sidecar(audio, "alice"), load_sidecar(audio, "bob")  # both windows open
    UndoStack(bob.doc).push(SetRecordLabel(bob.doc, "Normal", author="bob"))
    bob.save()
    UndoStack(alice.doc).push(AddRegion(Region(1.0, 1.5, "Wheeze", author="alice")))
    alice.save()  # the file changed on disk, but only in bob's section: no conflict
    assert _key(load_sidecar(audio, "alice")) == ("CAS", [(1.0, "Wheeze", "alice")])
    assert load_sidecar(audio, "bob").doc.record_label == "Normal"
    UndoStack(bob.doc).push(AddRegion(Region(2.0, 2.5, "Rhonchi", author="bob")))
    bob.save()  # and the other way round
    assert _key(load_sidecar(audio, "alice")) == ("CAS", [(1.0, "Wheeze", "alice")])
    assert _key(load_sidecar(audio, "bob")) == ("Normal", [(2.0, "Rhonchi", "bob")])


def test_the_same_annotators_labels_changed_on_disk_still_conflict(tmp_path):
    audio = _wav(tmp_path / "r.wav")
    _label(audio, "alice", "CAS")
    _label(audio, "bob", "DAS")
    first, second = load_sidecar(audio, "bob"), load_sidecar(audio, "bob")  # two windows
    UndoStack(first.doc).push(SetRecordLabel(first.doc, "Normal", author="bob"))
    first.save()
    UndoStack(second.doc).push(SetRecordLabel(second.doc, "Poor Quality", author="bob"))
    before = audio.with_suffix(".json").read_bytes()
    with pytest.raises(SidecarConflict, match="r.json: changed on disk"):
        second.save()
    assert audio.with_suffix(".json").read_bytes() == before
    assert load_sidecar(audio, "bob").doc.record_label == "Normal"


def test_a_bad_annotators_section_is_one_line_naming_the_file(tmp_path):
    audio = _wav(tmp_path / "r.wav")
    audio.with_suffix(".json").write_text(json.dumps({"record_annotation": "CAS",
                                                      "annotators": {"bob": [1, 2]}}))
    with pytest.raises(LungappError, match=r"r\.json: not a usable annotation: 'annotators'"):
        load_sidecar(audio, "bob")


@pytest.fixture
def shared(tmp_path):
    """One folder that alice and bob both labelled (the hand-made pair), and the same labels
    as two folders of sidecars."""
    folder = tmp_path / "shared"
    folder.mkdir()
    for i, (la, lb) in enumerate(zip(LABELS_A, LABELS_B)):
        audio = _wav(folder / f"r{i}.wav")
        _label(audio, "alice", la, EVENTS_A if i == 0 else ())
        _label(audio, "bob", lb, EVENTS_B if i == 0 else ())
    _label(_wav(folder / "only_alice.wav"), "alice", "Normal")
    return folder


def test_agreement_between_two_named_annotators_of_one_folder(shared):
    assert annotators_of(shared) == ["alice", "bob"]
    res = agreement_between(shared, ("alice", "bob"))
    assert res["n_common"] == 6 and res["only_a"] == ["only_alice"] and res["only_b"] == []
    assert res["kappa"] == pytest.approx(10 / 22)
    assert res["event_f1"]["Wheeze"] == {"tp": 1, "fp": 1, "fn": 1, "f1": pytest.approx(0.5)}
    assert res["event_f1"]["Fine Crackle"]["f1"] == pytest.approx(1.0)
    assert [d["recording"] for d in res["disagreements"]] == ["r0", "r1", "r4"]
    assert agreement_between(shared, ("alice", "bob"), 0.35)["event_f1"]["Wheeze"]["f1"] == 1.0
    swapped = agreement_between(shared, ("bob", "alice"))
    assert swapped["event_f1"]["Wheeze"]["fn"] == 1 and swapped["only_b"] == ["only_alice"]


def test_same_measures_as_two_folders(shared, tmp_path):
    for name in ("alice", "bob"):
        out = tmp_path / name
        out.mkdir()
        for audio in shared.glob("*.wav"):
            doc = load_sidecar(audio, name).doc
            if doc.record_label:
                (out / f"{audio.stem}.json").write_text(json.dumps(annotation_to_json(doc)))
    two = agreement(tmp_path / "alice", tmp_path / "bob")
    one = agreement_between(shared, ("alice", "bob"))
    for key in ("kappa", "event_f1", "event_f1_all", "disagreements", "only_a", "n_common"):
        assert one[key] == two[key], key


def test_bad_input_is_one_clear_line(shared, tmp_path):
    with pytest.raises(LungappError, match=r"shared: no labels by 'carol' here \(annotators: alice, bob\)"):
        agreement_between(shared, ("alice", "carol"))
    solo = tmp_path / "solo"
    solo.mkdir()
    _label(_wav(solo / "a.wav"), "alice", "CAS")
    with pytest.raises(LungappError, match=r"solo: agreement needs two annotators, and the labels "
                                           r"here name 1 \(alice\)"):
        agreement_between(solo, ("alice", "bob"))
    apart = tmp_path / "apart"
    apart.mkdir()
    _label(_wav(apart / "a.wav"), "alice", "CAS")
    _label(_wav(apart / "b.wav"), "bob", "CAS")
    with pytest.raises(LungappError, match="apart: alice and bob labelled no recording in common"):
        agreement_between(apart, ("alice", "bob"))
    for text in ("alice", "alice,alice", "alice,,bob", "alice,bob,carol"):
        with pytest.raises(LungappError, match="--annotators wants two different names"):
            parse_names(text)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "lungapp", "labels", "agreement", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_cli_annotators(shared):
    proc = _cli(str(shared), "--annotators", "alice,bob")
    assert proc.returncode == 0, proc.stderr
    assert "Cohen's kappa 0.455" in proc.stdout and "Wheeze          F1 0.500" in proc.stdout
    assert f"A: alice in {shared}" in proc.stdout
    res = json.loads(_cli(str(shared), "--annotators", "bob, alice", "--json").stdout)
    assert res["kappa"] == pytest.approx(10 / 22) and res["a"].startswith("bob in")
    for args, message in (((str(shared), "--annotators", "alice,carol"), "no labels by 'carol'"),
                          ((str(shared), "--annotators", "alice"), "two different names"),
                          ((str(shared),), "give two folders"),
                          ((str(shared), str(shared), "--annotators", "alice,bob"), "one folder")):
        proc = _cli(*args)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
