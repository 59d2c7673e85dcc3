"""The Labels panel's event editor (lungapp/gui/event_list.py) driven by keys in a real X
server: a half-typed note or time is kept when a key moves to another recording or sets the
record label, the focus stays in the Review view across recordings, and typed times are kept
inside the recording and at least the minimum region length long."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import Qt

pytestmark = pytest.mark.gui

CTRL = Qt.KeyboardModifier.ControlModifier
SECONDS = 4.0


@pytest.fixture
def window(bare_window):
    return bare_window  # tests/gui/conftest.py


@pytest.fixture
def recordings(tmp_path) -> list[Path]:
    rng = np.random.default_rng(5)
    paths = []
    for name in ("a", "b", "c"):
        p = tmp_path / f"{name}.wav"
        sf.write(p, (0.1 * rng.standard_normal(int(SECONDS * 8000))).astype(np.float32), 8000,
                 subtype="PCM_16")
        paths.append(p)
    return paths


def _shown(view, path: Path) -> bool:
    layer = view.annotation.layer
    return (view.current_path == str(path) and view.plots.has_image() and layer.doc is not None
            and layer.sidecar.audio == path)


def _open(qtbot, win, paths: list[Path], show: int = 0):
    """Open ``paths`` in the list and show ``paths[show]``; the window active (keys reach the
    view's shortcuts only in the active window)."""
    view = win.review
    win.open_paths([str(p) for p in paths])
    view.select(str(paths[show]))
    qtbot.waitUntil(lambda: _shown(view, paths[show]), timeout=15000)
    if not win.isActiveWindow():
        win.activateWindow()
        qtbot.waitUntil(win.isActiveWindow, timeout=3000)
    return view, view.annotation.layer, view.annotation.panel


def _events(path: Path) -> list[dict]:
    return json.loads(path.with_suffix(".json").read_text())["event_annotation"]


def _messages(view) -> list[str]:
    said: list[str] = []
    view.statusMessage.connect(lambda text, _ms: said.append(text))
    return said


def _type_into(qtbot, widget, text: str) -> None:
    """Focus ``widget`` and type ``text`` over what it shows, without Enter."""
    widget.setFocus()
    qtbot.waitUntil(widget.hasFocus, timeout=3000)
    line = widget.lineEdit() if hasattr(widget, "lineEdit") else widget
    line.selectAll()
    qtbot.keyClicks(line, text)


def _focused(win):
    return win.focusWidget()


# --- bug 1: a half-typed value survives PageDown and Ctrl+0..5 --------------------------------
def test_a_note_typed_without_enter_is_saved_before_pagedown_moves_on(window, qtbot, recordings):
    view, layer, panel = _open(qtbot, window, recordings)
    rid = layer.add(1.0, 2.0, "Wheeze")
    _type_into(qtbot, panel.note, "faint")
    qtbot.keyClick(panel.note, Qt.Key.Key_PageDown)
    qtbot.waitUntil(lambda: _shown(view, recordings[1]), timeout=15000)
    assert [(e["start"], e.get("note")) for e in _events(recordings[0])] == [(1000, "faint")]
    assert rid not in [r.id for r in layer.doc.regions]  # the next recording's doc is shown


def test_a_time_typed_without_enter_is_saved_before_pageup_moves_on(window, qtbot, recordings):
    view, layer, panel = _open(qtbot, window, recordings, show=1)
    layer.add(1.0, 2.0, "Wheeze")
    _type_into(qtbot, panel.end, "3")
    qtbot.keyClick(panel.end, Qt.Key.Key_PageUp)
    qtbot.waitUntil(lambda: _shown(view, recordings[0]), timeout=15000)
    assert [(e["start"], e["end"]) for e in _events(recordings[1])] == [(1000, 3000)]


def test_a_note_typed_without_enter_is_kept_when_ctrl_digit_sets_the_record_label(
        window, qtbot, recordings):
    view, layer, panel = _open(qtbot, window, recordings)
    rid = layer.add(1.0, 2.0, "Wheeze")
    _type_into(qtbot, panel.note, "loud")
    qtbot.keyClick(panel.note, Qt.Key.Key_2, CTRL)  # CAS
    assert layer.doc.record_label == "CAS" and layer.doc.region(rid).note == "loud"
    assert panel.note.text() == "loud"
    saved = json.loads(recordings[0].with_suffix(".json").read_text())
    assert saved["record_annotation"] == "CAS" and saved["event_annotation"][0]["note"] == "loud"
    layer.undo()  # the note was committed before the label changed: undo takes the label back
    assert layer.doc.record_label is None and layer.doc.region(rid).note == "loud"


def test_leaving_a_time_box_untouched_changes_nothing(window, qtbot, recordings):
    view, layer, panel = _open(qtbot, window, recordings)
    rid = layer.add(1.0014, 2.0029, "Wheeze")  # more decimals than the boxes show
    panel.start.setFocus()
    qtbot.waitUntil(panel.start.hasFocus, timeout=3000)
    panel.note.setFocus()  # the Start box's editingFinished
    qtbot.waitUntil(panel.note.hasFocus, timeout=3000)
    r = layer.doc.region(rid)
    assert (r.start_s, r.end_s) == (1.0014, 2.0029)
    layer.undo()  # the only edit was the add
    assert layer.doc.regions == []


# --- bug 2: the focus stays in the Review view across recordings ------------------------------
@pytest.mark.parametrize("field", ["note", "table", "type", "record_label", "start"])
def test_focus_stays_in_the_view_after_pagedown(window, qtbot, recordings, field):
    view, layer, panel = _open(qtbot, window, recordings)
    layer.add(1.0, 2.0, "Wheeze")
    widget = getattr(panel, field)
    widget.setFocus()
    qtbot.waitUntil(widget.hasFocus, timeout=3000)
    qtbot.keyClick(_focused(window), Qt.Key.Key_PageDown)
    qtbot.waitUntil(lambda: _shown(view, recordings[1]), timeout=15000)
    focus = _focused(window)
    assert focus is not None and view.isAncestorOf(focus)
    if field in ("table", "record_label"):  # enabled again with the next recording: given back
        assert focus is widget
    qtbot.keyClick(focus, Qt.Key.Key_3, CTRL)  # the view's keys work without a click
    assert layer.doc.record_label == "DAS"
    qtbot.keyClick(_focused(window), Qt.Key.Key_PageDown)
    qtbot.waitUntil(lambda: _shown(view, recordings[2]), timeout=15000)


# --- bug 3: typed times are fitted into the recording -----------------------------------------
def test_typed_end_past_the_recording_is_clamped_and_said(window, qtbot, recordings):
    view, layer, panel = _open(qtbot, window, recordings)
    said = _messages(view)
    rid = layer.add(1.0, 2.0, "Wheeze")
    _type_into(qtbot, panel.end, "500")
    qtbot.keyClick(panel.end.lineEdit(), Qt.Key.Key_Return)
    r = layer.doc.region(rid)
    assert (r.start_s, r.end_s) == (1.0, SECONDS)
    assert panel.end.value() == SECONDS
    assert said and said[-1].startswith("End 500.000 s is past the end of the recording (4.000 s)")
    assert [(e["start"], e["end"]) for e in _events(recordings[0])] == [(1000, 4000)]


def test_typed_end_at_or_before_the_start_keeps_the_minimum_length(window, qtbot, recordings):
    from lungapp.gui.annotation_layer import MIN_REGION_S

    view, layer, panel = _open(qtbot, window, recordings)
    said = _messages(view)
    rid = layer.add(1.5, 2.0, "Wheeze")
    for typed in ("1.5", "1"):  # End = Start, then End before Start
        _type_into(qtbot, panel.end, typed)
        qtbot.keyClick(panel.end.lineEdit(), Qt.Key.Key_Return)
        r = layer.doc.region(rid)
        assert (r.start_s, r.end_s) == (1.5, round(1.5 + MIN_REGION_S, 4))
        assert said[-1].startswith(f"End {float(typed):.3f} s is not at least 20 ms after the start")
    assert [(e["start"], e["end"]) for e in _events(recordings[0])] == [(1500, 1520)]
    _type_into(qtbot, panel.start, "9")  # Start past the end: at least 20 ms before it
    qtbot.keyClick(panel.start.lineEdit(), Qt.Key.Key_Return)
    r = layer.doc.region(rid)
    assert (r.start_s, r.end_s) == (1.5, 1.52) and said[-1].startswith("Start 9.000 s is")


def test_a_zero_length_event_of_an_existing_sidecar_opens_and_can_be_edited(
        window, qtbot, recordings):
    """Such events are accepted on reading (Audacity point labels import as them): the
    minimum length binds typed times only."""
    recordings[0].with_suffix(".json").write_text(json.dumps(
        {"record_annotation": "", "event_annotation": [{"start": 1000, "end": 1000, "type": "Wheeze"}]}))
    view, layer, panel = _open(qtbot, window, recordings)
    (r,) = layer.doc.regions
    assert (r.start_s, r.end_s) == (1.0, 1.0)
    layer.select(r.id)
    _type_into(qtbot, panel.note, "point")
    qtbot.keyClick(panel.note, Qt.Key.Key_Return)
    assert layer.doc.region(r.id).note == "point"
    _type_into(qtbot, panel.end, "1.005")
    qtbot.keyClick(panel.end.lineEdit(), Qt.Key.Key_Return)
    assert (layer.doc.region(r.id).start_s, layer.doc.region(r.id).end_s) == (1.0, 1.02)


def test_fit_times():
    from lungapp.gui.event_list import fit_times

    assert fit_times(1.0, 500.0, "end", 8.0) == (1.0, 8.0)
    assert fit_times(1.0, 1.0, "end", 8.0) == (1.0, pytest.approx(1.02))
    assert fit_times(1.0, 0.5, "end", 8.0) == (1.0, pytest.approx(1.02))
    assert fit_times(3.0, 2.0, "start", 8.0) == (pytest.approx(1.98), 2.0)
    assert fit_times(7.995, 8.0, "start", 8.0) == (pytest.approx(7.98), 8.0)
    assert fit_times(7.99, 7.995, "end", 8.0) == (pytest.approx(7.98), 8.0)  # no room: start moves
    assert fit_times(0.0, 0.005, "end", 8.0) == (0.0, pytest.approx(0.02))
    assert fit_times(0.01, 0.02, "start", 8.0) == (0.0, pytest.approx(0.02))
    assert fit_times(1.0, 500.0, "end", None) == (1.0, 500.0)  # duration unknown: no upper bound
    assert fit_times(1.25, 2.0, "start", 8.0) == (1.25, 2.0)  # already fine: unchanged
