"""Annotating on careless input (a QA pass): a copy that cannot be kept in a conflict is
said and the edit not called saved; unsaved labels are not left without a word; a redraw
keeps the undo history; accepted suggestions make their annotator the owner; a drag does
not cross to the next recording; write-protected labels stay so; Suggest on read-only
labels adds nothing and says so; a region past the end can be brought back in."""

# ruff: noqa: F811  (the fixtures imported from test_annotation are used by name)
from __future__ import annotations

import errno
import json
import os
import types

import pytest

pytestmark = pytest.mark.gui

from test_annotation import _open, change_on_disk, recording, window  # noqa: E402, F401

from lungapp.annotation import sidecar as sidecar_mod  # noqa: E402


def _full_disk(*a, **k):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_copy_that_cannot_be_kept_in_a_conflict_is_said_and_not_called_saved(window, qtbot, recording,
                                                                               monkeypatch):
    view, layer = _open(qtbot, window, recording)
    layer.add(0.5, 1.0, "Wheeze")
    change_on_disk(recording)
    layer.ask_conflict = lambda parent, path: "copy"
    monkeypatch.setattr(sidecar_mod, "atomic_write_text", _full_disk)
    layer.add(2.0, 2.5, "Stridor")  # no exception out of the edit
    assert layer.save_error is not None and "could not be kept as a copy" in layer.save_error
    assert "No space left on device" in layer.save_error and len(layer.doc.regions) == 2
    view.ask_leave_unsaved = lambda parent, why: True  # the window closes at the end: unsaved, as asked


def test_labels_that_cannot_be_saved_are_not_left_without_a_word(window, qtbot, recording, tmp_path,
                                                                 monkeypatch):
    import shutil

    other = tmp_path / "other.wav"
    shutil.copy(recording, other)
    view, layer = _open(qtbot, window, recording)
    window.open_paths([str(other)])  # listed
    view.select(str(recording))
    qtbot.waitUntil(lambda: layer.sidecar is not None and str(layer.sidecar.audio) == str(recording)
                    and view.current_path == str(recording), timeout=10000)
    monkeypatch.setattr(sidecar_mod, "atomic_write_text", _full_disk)
    layer.add(0.5, 1.0, "Wheeze")
    assert layer.save_error is not None
    asked = []
    view.ask_leave_unsaved = lambda parent, why: asked.append(why) or False  # stay
    view.select(str(other))
    assert asked and view.current_path == str(recording) and len(layer.doc.regions) == 1
    monkeypatch.undo()  # space again: leaving saves them first
    view.select(str(other))
    assert view.current_path == str(other)
    assert [e["type"] for e in json.loads(recording.with_suffix(".json").read_text())["event_annotation"]] == ["Wheeze"]


def test_a_redraw_of_the_same_recording_keeps_undo_and_selection(window, qtbot, recording):
    view, layer = _open(qtbot, window, recording)
    rid = layer.add(0.5, 1.0, "Wheeze")
    stack = layer.stack
    with qtbot.waitSignal(view.displayed, timeout=10000):
        view._load_current()  # what a model whose spectrogram differs does when it loads
    assert layer.stack is stack and layer.selected == rid
    layer.undo()
    assert layer.doc.regions == []


def test_accepted_suggestions_make_their_annotator_the_owner(window, qtbot, recording):
    view, layer = _open(qtbot, window, recording)
    view.annotation.panel.annotator.setText("alice")
    view.annotation.panel.annotator.editingFinished.emit()
    w = types.SimpleNamespace(start_s=0.5, end_s=1.5, abnormal_probability=0.9, probabilities={"CAS": 0.9})
    assert layer.suggest([w], 0.5) == 1
    layer.accept(layer.doc.regions[0].id)
    view.annotation.panel.annotator.setText("bob")
    view.annotation.panel.annotator.editingFinished.emit()
    qtbot.waitUntil(lambda: layer.sidecar is not None and layer.sidecar.annotator == "bob", timeout=5000)
    assert layer.sidecar.part == "bob" and layer.doc.regions == []  # alice's region is not bob's to edit


def test_write_protected_labels_are_shown_read_only_and_stay_protected(window, qtbot, recording):
    side = recording.with_suffix(".json")
    side.write_text(json.dumps({"record_annotation": "CAS", "event_annotation": []}))
    os.chmod(side, 0o444)
    view, layer = _open(qtbot, window, recording)
    assert "write-protected" in layer.read_only_reason()
    assert layer.add(0.5, 1.0, "Wheeze") == -1
    assert os.stat(side).st_mode & 0o777 == 0o444 and json.loads(side.read_text())["event_annotation"] == []


def test_suggest_on_read_only_labels_adds_nothing(window, qtbot, recording):
    recording.with_suffix(".txt").write_text("0.0\t2.0\t1\t0\n")  # ICBHI cycles: read-only
    view, layer = _open(qtbot, window, recording)
    w = types.SimpleNamespace(start_s=2.5, end_s=3.5, abnormal_probability=0.9, probabilities={"CAS": 0.9})
    assert layer.suggest([w], 0.5) == 0 and len(layer.doc.regions) == 1


def test_a_region_past_the_end_can_be_brought_back_in(window, qtbot, recording):
    recording.with_suffix(".json").write_text(json.dumps({"record_annotation": "CAS", "event_annotation": [
        {"start": 3500, "end": 4500, "type": "Wheeze"}]}))  # an import: ends 0.5 s past the 4-s end
    view, layer = _open(qtbot, window, recording)
    layer.select(layer.doc.regions[0].id)
    layer.nudge("end", -0.1)
    assert layer.doc.regions[0].end_s == pytest.approx(4.4)
    layer.nudge("end", 0.2)  # outwards again: refused, and said
    assert layer.doc.regions[0].end_s == pytest.approx(4.4)


def test_a_drag_started_on_one_recording_makes_nothing_on_the_next(window, qtbot, recording, tmp_path):
    import shutil

    other = tmp_path / "other.wav"
    shutil.copy(recording, other)
    view, layer = _open(qtbot, window, recording)

    class Ev:
        def __init__(self, start, finish):
            self._start, self._finish = start, finish

        def buttonDownScenePos(self):
            return view.plots.spec.getViewBox().mapViewToScene(__import__("PySide6.QtCore").QtCore.QPointF(0.5, 0))

        def scenePos(self):
            return view.plots.spec.getViewBox().mapViewToScene(__import__("PySide6.QtCore").QtCore.QPointF(1.5, 0))

        def isStart(self):
            return self._start

        def isFinish(self):
            return self._finish

    vb = view.plots.spec.getViewBox()
    layer._drag_create(vb, Ev(True, False))
    window.open_paths([str(other)])
    view.select(str(other))
    qtbot.waitUntil(lambda: layer.sidecar is not None and str(layer.sidecar.audio) == str(other), timeout=10000)
    layer._drag_create(vb, Ev(False, True))
    assert layer.doc.regions == [] and not other.with_suffix(".json").exists()


def test_an_emptied_annotator_field_names_who_the_labels_now_go_to(window, qtbot, recording):
    view, layer = _open(qtbot, window, recording)
    field = view.annotation.panel.annotator
    field.setText("anna")
    field.editingFinished.emit()
    field.setText("")
    field.editingFinished.emit()
    assert layer.annotator() != "anna" and field.placeholderText().endswith(f"now: {layer.annotator()})")


def test_closing_the_window_with_labels_that_cannot_be_saved_asks(window, qtbot, recording, monkeypatch):
    from PySide6.QtGui import QCloseEvent

    view, layer = _open(qtbot, window, recording)
    monkeypatch.setattr(sidecar_mod, "atomic_write_text", _full_disk)
    layer.add(0.5, 1.0, "Wheeze")
    asked = []
    view.ask_leave_unsaved = lambda parent, why: asked.append(why) or False  # stay
    event = QCloseEvent()
    window.closeEvent(event)
    assert asked and not event.isAccepted() and window.isVisible()
    monkeypatch.undo()
    event = QCloseEvent()
    window.closeEvent(event)  # space again: saved, then closed
    assert event.isAccepted() and json.loads(recording.with_suffix(".json").read_text())["event_annotation"]
