"""The annotation workspace in a real X server: regions on the spectrogram by mouse and keys,
undo/redo, the record label, autosave and reopen, suggestions, and an on-disk conflict."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QMouseEvent
from PySide6.QtWidgets import QApplication

pytestmark = pytest.mark.gui

SPR_NAME = "40638274_9.7_1_p2_1801"


def _window(qtbot, predictor=None):
    from lungapp.gui.app import create_window

    win = create_window([], load_model=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    if predictor is not None:
        win.ctx.set_predictor(predictor)
    win.review.settings.setValue("annotation/annotator", "tester")
    return win


@pytest.fixture
def window(qtbot):
    from lungapp.gui import workers

    win = _window(qtbot)
    yield win
    win.close()
    workers.wait_all(5000)


def _open(qtbot, win, path: Path):
    view = win.review
    win.open_paths([str(path)])
    qtbot.waitUntil(lambda: view.plots.has_image() and view.annotation.layer.doc is not None,
                    timeout=15000)
    qtbot.wait(300)  # the layout settles (the plots' width) before mouse positions are mapped
    return view, view.annotation.layer


@pytest.fixture
def recording(tmp_path):
    p = tmp_path / "101_6.0_0_p1_01.wav"
    rng = np.random.default_rng(3)
    sf.write(p, (0.1 * rng.standard_normal(4 * 8000)).astype(np.float32), 8000, subtype="PCM_16")
    return p


# --- mouse helpers ---------------------------------------------------------------------------
def _point(view, plot, t: float) -> QPoint:
    """Widget (viewport) point of time ``t`` at mid-height of ``plot``."""
    vb = plot.getViewBox()
    y = sum(vb.viewRange()[1]) / 2
    scene = vb.mapViewToScene(QPointF(t, y))
    return view.plots.glw.mapFromScene(scene)


def _mouse(widget, kind, pos: QPoint, buttons, modifiers=Qt.KeyboardModifier.NoModifier):
    button = Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton
    ev = QMouseEvent(kind, QPointF(pos), QPointF(widget.mapToGlobal(pos)), button, buttons, modifiers)
    QApplication.sendEvent(widget, ev)


def drag(qtbot, view, plot, t0: float, t1: float, modifiers=Qt.KeyboardModifier.NoModifier):
    vp = view.plots.glw.viewport()
    a, b = _point(view, plot, t0), _point(view, plot, t1)
    left = Qt.MouseButton.LeftButton
    _mouse(vp, QEvent.Type.MouseButtonPress, a, left, modifiers)
    for k in range(1, 11):
        p = a + (b - a) * (k / 10)
        _mouse(vp, QEvent.Type.MouseMove, p, left, modifiers)
        qtbot.wait(5)
    _mouse(vp, QEvent.Type.MouseButtonRelease, b, Qt.MouseButton.NoButton, modifiers)
    qtbot.wait(50)  # the layer commits a move on the next event-loop turn


def key(qtbot, view, k, modifier=Qt.KeyboardModifier.NoModifier):
    win = view.window()
    if not win.isActiveWindow():  # shortcuts act in the active window only
        win.activateWindow()
        qtbot.waitUntil(win.isActiveWindow, timeout=3000)
    view.plots.setFocus()
    qtbot.keyClick(view.plots, k, modifier)


def _drawn(layer) -> set[int]:
    """Ids of the regions on the plots: the selected one's items and the combined items'."""
    ids = {r.id for r in layer.combined[0].regions}
    assert ids == {r.id for r in layer.combined[1].regions}
    return ids | set(layer.items)


def click(qtbot, view, plot, t: float):
    vp = view.plots.glw.viewport()
    p = _point(view, plot, t)
    _mouse(vp, QEvent.Type.MouseMove, p, Qt.MouseButton.NoButton)
    _mouse(vp, QEvent.Type.MouseButtonPress, p, Qt.MouseButton.LeftButton)
    _mouse(vp, QEvent.Type.MouseButtonRelease, p, Qt.MouseButton.NoButton)
    qtbot.wait(20)


def _regions(layer):
    return sorted((round(r.start_s, 2), round(r.end_s, 2), r.type) for r in layer.doc.regions)


# --- the tests -------------------------------------------------------------------------------
def test_sprsound_events_are_drawn_as_regions(window, qtbot, sprsound_dir, tmp_path):
    for suffix in (".flac", ".json"):
        shutil.copy(sprsound_dir / "train" / f"{SPR_NAME}{suffix}", tmp_path)
    from lungapp.data import read_folder

    (expected,) = read_folder(tmp_path).examples
    view, layer = _open(qtbot, window, tmp_path / f"{SPR_NAME}.flac")
    assert [(round(r.start_s, 3), round(r.end_s, 3), r.type) for r in
            sorted(layer.doc.regions, key=lambda r: r.start_s)] == \
        [(round(e.start_s, 3), round(e.end_s, 3), e.type) for e in expected.events]
    assert layer.items == {}  # none selected: all drawn by the combined items
    for item in layer.combined:  # on the waveform and on the spectrogram
        assert len(item.regions) == len(expected.events)
    assert {item.getViewBox() for item in layer.combined} == {view.plots.wave.getViewBox(),
                                                              view.plots.spec.getViewBox()}
    assert view.annotation.panel.record_label.currentText() == "CAS & DAS"
    model = view.annotation.panel.table.model()
    assert model.rowCount() == len(expected.events)
    first = min(expected.events, key=lambda e: (e.start_s, e.end_s))
    assert [model.index(0, c).data() for c in range(3)] == \
        [f"{first.start_s:.3f}", f"{first.end_s:.3f}", first.type]


def test_create_move_resize_delete_by_mouse_and_keys_with_undo(window, qtbot, recording):
    view, layer = _open(qtbot, window, recording)
    spec = view.plots.spec
    drag(qtbot, view, spec, 1.0, 2.0)  # a new region on the spectrogram
    assert len(layer.doc.regions) == 1
    (r,) = layer.doc.regions
    assert r.start_s == pytest.approx(1.0, abs=0.03) and r.end_s == pytest.approx(2.0, abs=0.03)
    assert r.author == "tester" and layer.selected == r.id
    drag(qtbot, view, view.plots.wave, 2.8, 1.5)  # an overlapping one, on the waveform (from outside)
    assert len(layer.doc.regions) == 2
    layer.select(r.id)
    start, end = r.start_s, r.end_s
    drag(qtbot, view, spec, 1.3, 1.8)  # drag inside the region: move it
    moved = layer.doc.region(r.id)
    assert moved.start_s == pytest.approx(start + 0.5, abs=0.03)
    assert moved.end_s - moved.start_s == pytest.approx(end - start, abs=1e-3)
    drag(qtbot, view, spec, moved.end_s, moved.end_s + 0.4)  # drag its end edge: resize
    resized = layer.doc.region(r.id)
    assert resized.start_s == pytest.approx(moved.start_s, abs=1e-3)
    assert resized.end_s == pytest.approx(moved.end_s + 0.4, abs=0.03)

    layer.select(r.id)
    key(qtbot, view, Qt.Key.Key_3)  # type Rhonchi
    assert layer.doc.region(r.id).type == "Rhonchi"
    key(qtbot, view, Qt.Key.Key_Right)  # move by 10 ms
    assert layer.doc.region(r.id).start_s == pytest.approx(resized.start_s + 0.01, abs=1e-6)
    key(qtbot, view, Qt.Key.Key_Left, Qt.KeyboardModifier.ShiftModifier)  # end edge back
    assert layer.doc.region(r.id).end_s == pytest.approx(resized.end_s, abs=1e-6)
    key(qtbot, view, Qt.Key.Key_Delete)
    assert len(layer.doc.regions) == 1 and r.id not in _drawn(layer)
    key(qtbot, view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert layer.doc.region(r.id).type == "Rhonchi" and r.id in _drawn(layer)
    for _ in range(3):
        key(qtbot, view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert layer.doc.region(r.id).type == "Wheeze"  # undone: the end edge, the move, the type
    key(qtbot, view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert layer.doc.region(r.id).type == "Rhonchi"
    saved = json.loads(recording.with_suffix(".json").read_text())  # autosaved on every edit
    assert sorted(e["type"] for e in saved["event_annotation"]) == sorted(
        x.type for x in layer.doc.regions)


def test_shift_drag_still_pans(window, qtbot, recording):
    view, layer = _open(qtbot, window, recording)
    view.plots.wave.setXRange(1.0, 2.0, padding=0)
    qtbot.wait(20)
    drag(qtbot, view, view.plots.spec, 1.6, 1.3, Qt.KeyboardModifier.ShiftModifier)
    assert layer.doc.regions == []
    assert view.plots.wave.getViewBox().viewRange()[0][0] > 1.05


def test_record_label_and_reopen_identical_and_readable(qtbot, recording):
    from lungapp.data import read_folder
    from lungapp.gui import workers

    win = _window(qtbot)
    view, layer = _open(qtbot, win, recording)
    layer.add(0.5, 1.0, "Wheeze")
    layer.add(0.8, 1.6, "Fine Crackle")
    panel = view.annotation.panel
    assert panel.suggestion.isVisible() and panel.suggestion.text() == "Regions suggest: CAS & DAS"
    panel.record_label.setCurrentText("CAS")
    assert layer.doc.record_label == "CAS" and layer.doc.record_author == "tester"
    key(qtbot, view, Qt.Key.Key_4, Qt.KeyboardModifier.ControlModifier)  # Ctrl+4: CAS & DAS
    assert layer.doc.record_label == "CAS & DAS" and not panel.suggestion.isVisible()
    panel.note.setText("end-inspiratory")
    layer.select(layer.doc.regions[1].id)
    panel.note.setText("end-inspiratory")
    panel.note.editingFinished.emit()
    before = [(r.start_s, r.end_s, r.type, r.note, r.author) for r in layer.doc.regions]
    win.close()
    workers.wait_all(5000)

    win2 = _window(qtbot)
    _, layer2 = _open(qtbot, win2, recording)
    assert [(r.start_s, r.end_s, r.type, r.note, r.author) for r in layer2.doc.regions] == before
    assert layer2.doc.record_label == "CAS & DAS"
    (ex,) = read_folder(recording.parent).examples
    assert ex.label == "CAS & DAS"
    assert [(e.start_s, e.end_s, e.type) for e in ex.events] == [(0.5, 1.0, "Wheeze"),
                                                                 (0.8, 1.6, "Fine Crackle")]
    win2.close()
    workers.wait_all(5000)


def change_on_disk(recording: Path) -> Path:
    """Another program sets the record label in the recording's sidecar; its path."""
    side = recording.with_suffix(".json")
    theirs = json.loads(side.read_text())
    theirs["record_annotation"] = "Normal"
    side.write_text(json.dumps(theirs))
    return side


def test_conflicting_change_on_disk_offers_a_copy(window, qtbot, recording):
    view, layer = _open(qtbot, window, recording)
    layer.add(0.5, 1.0, "Wheeze")
    side = change_on_disk(recording)
    asked = []
    layer.ask_conflict = lambda parent, path: asked.append(path) or "copy"
    layer.add(2.0, 2.5, "Stridor")  # my edit: not written over theirs
    assert asked == [str(side)]
    assert json.loads(side.read_text())["record_annotation"] == "Normal"
    (copy,) = list(recording.parent.glob("*.json.mine-*"))
    assert [e["type"] for e in json.loads(copy.read_text())["event_annotation"]] == ["Wheeze", "Stridor"]
    assert layer.doc.record_label == "Normal" and len(layer.doc.regions) == 1  # theirs, shown


@pytest.fixture(scope="session")
def tiny_predictor(tiny_model_dir):
    from lungapp.inference.predictor import Predictor

    return Predictor.load(tiny_model_dir)


def test_suggest_regions_and_accept_one(qtbot, tiny_predictor, tmp_path):
    from lungapp.gui import workers

    from tiny_model import make_signal

    path = tmp_path / "102_6.0_0_p1_01.wav"
    sf.write(path, make_signal("CAS", 8.0, np.random.default_rng(5), 8000), 8000)
    win = _window(qtbot, tiny_predictor)
    view, layer = _open(qtbot, win, path)
    qtbot.waitUntil(lambda: view.model.entries[0].prediction is not None, timeout=20000)
    prediction = view.model.entries[0].prediction
    threshold = prediction.threshold
    if not any(w.abnormal_probability >= threshold for w in prediction.windows):
        pytest.skip("the tiny model finds nothing above threshold in this signal")
    n = view.annotation.suggest()
    assert n >= 1 and all(r.pending and r.author == "model" for r in layer.doc.regions)
    first = layer.doc.regions[0]
    layer.select(first.id)
    key(qtbot, view, Qt.Key.Key_A)
    assert layer.doc.region(first.id).accepted
    data = json.loads(path.with_suffix(".json").read_text())
    accepted = [e for e in data["event_annotation"] if e.get("suggested")]
    assert len(accepted) == 1 and accepted[0]["accepted"] is True
    assert len(data.get("suggested_events", [])) == n - 1
    assert view.annotation.suggest() == 0  # not suggested twice
    win.close()
    workers.wait_all(5000)


def test_no_suggestions_on_a_recording_that_could_not_be_judged(qtbot, tmp_path):
    """The model's output on silence means nothing: Suggest regions says why it drafts none
    (the bundled model: the tiny test model's card runs no quality check)."""
    from lungapp.gui import workers
    from lungapp.inference.predictor import Predictor

    path = tmp_path / "102_6.0_0_p1_02.wav"
    sf.write(path, np.zeros(8 * 8000, dtype=np.float32), 8000)
    win = _window(qtbot, Predictor.load())
    view, layer = _open(qtbot, win, path)
    qtbot.waitUntil(lambda: view.model.entries[0].prediction is not None, timeout=20000)
    assert view.model.entries[0].prediction.decision == "poor quality"
    said = []
    view.statusMessage.connect(lambda text, *_: said.append(text))
    assert view.annotation.suggest() == 0 and layer.doc.regions == []
    assert said and said[-1].startswith("No suggestions: the recording could not be judged (no signal")
    win.close()
    workers.wait_all(5000)


def test_file_list_label_states_progress_filter_and_keys(window, qtbot, tmp_path):
    from lungapp.gui.file_list import LABELS_COLUMN

    rng = np.random.default_rng(1)
    sides = {"a": {"record_annotation": "DAS", "record_annotation_author": "anna",
                   "event_annotation": []},
             "b": None,
             "c": {"record_annotation": "CAS", "event_annotation": [],
                   "suggested_events": [{"start": 0, "end": 500, "type": "Wheeze"}]},
             "d": {"record_annotation": "", "event_annotation": []}}
    for stem, side in sides.items():
        sf.write(tmp_path / f"{stem}.wav", (0.1 * rng.standard_normal(8000)).astype(np.float32), 8000)
        if side is not None:
            (tmp_path / f"{stem}.json").write_text(json.dumps(side))
    view = window.review
    view.annotation.layer.settings.setValue("annotation/annotator", "anna")  # the list is anna's
    window.open_paths([str(tmp_path)])
    model = view.model
    qtbot.waitUntil(lambda: model.rowCount() == 4 and all(e.labels for e in model.entries), timeout=10000)
    text = {Path(e.path).stem: model.data(model.index(i, LABELS_COLUMN)) for i, e in enumerate(model.entries)}
    assert text == {"a": "reviewed (anna)", "b": "unlabelled", "c": "labelled", "d": "unlabelled"}
    panel = view.annotation.panel
    assert panel.progress.text() == "2 of 4 labelled"
    qtbot.waitUntil(lambda: view.current_path is not None, timeout=5000)
    view.select(str(tmp_path / "a.wav"))
    qtbot.waitUntil(lambda: view.annotation.layer.doc is not None
                    and view.annotation.layer.sidecar.audio.stem == "a", timeout=5000)
    key(qtbot, view, Qt.Key.Key_PageDown, Qt.KeyboardModifier.ShiftModifier)  # next unlabelled
    assert Path(view.current_path).stem == "b"
    key(qtbot, view, Qt.Key.Key_PageDown)
    assert Path(view.current_path).stem == "c"
    key(qtbot, view, Qt.Key.Key_PageUp)
    assert Path(view.current_path).stem == "b"
    panel.show_filter.setCurrentText("unlabelled")
    hidden = {Path(e.path).stem for i, e in enumerate(model.entries) if view.table.isRowHidden(i)}
    assert hidden == {"a", "c"}
    qtbot.waitUntil(lambda: view.annotation.layer.doc is not None
                    and view.annotation.layer.sidecar.audio.stem == "b", timeout=5000)
    view.annotation.layer.set_record_label("Normal")  # labelling b moves the count on
    assert panel.progress.text() == "3 of 4 labelled"
    assert model.entry(str(tmp_path / "b.wav")).labels == ("reviewed", "anna")
    # Another annotator sees their own labels (none yet) and who else labelled each recording.
    panel.annotator.setText("bob")
    panel.annotator.editingFinished.emit()
    qtbot.waitUntil(lambda: model.entry(str(tmp_path / "a.wav")).labels == ("unlabelled", "anna"),
                    timeout=5000)
    assert view.annotation.layer.sidecar.part == "bob" and view.annotation.layer.doc.record_label is None
    assert model.entry(str(tmp_path / "b.wav")).labels == ("unlabelled", "anna")
    assert panel.progress.text() == "1 of 4 labelled"  # c's labels name no one: bob's to edit


def _long(tmp_path, n=110):
    path = tmp_path / "long.wav"
    sf.write(path, (0.05 * np.random.default_rng(0).standard_normal(60 * 4000)).astype(np.float32), 4000)
    events = [{"start": 500 * i, "end": 500 * i + 300, "type": "Wheeze"} for i in range(n)]
    path.with_suffix(".json").write_text(json.dumps({"record_annotation": "CAS", "event_annotation": events}))
    return path


def test_many_regions_pan_and_zoom_build_no_items(window, qtbot, tmp_path):
    view, layer = _open(qtbot, window, _long(tmp_path))
    assert layer.items == {} and len(layer.combined[0].in_view()) == 110  # zoomed out: all painted
    layer.select(layer.doc.regions[50].id)  # the selected one is an editable pair
    pair = layer.items[layer.selected]
    counts = [len(p.items) for p in (view.plots.wave, view.plots.spec)]
    scene_items = len(view.plots.glw.scene().items())
    for lo, hi in [(10.0, 14.0), (11.0, 15.0), (0.0, 60.0), (24.0, 26.0), (30.0, 40.0)]:
        view.plots.wave.setXRange(lo, hi, padding=0)
        view.plots.glw.viewport().repaint()
        painted = [layer.combined[0].regions[i].start_s for i in layer.combined[0].in_view()]
        expect = [r.start_s for r in sorted(layer.doc.regions, key=lambda r: r.start_s)
                  if r.end_s >= lo and r.start_s <= hi and r.id != layer.selected]
        assert painted == pytest.approx(expect)
    assert [len(p.items) for p in (view.plots.wave, view.plots.spec)] == counts
    assert len(view.plots.glw.scene().items()) == scene_items and layer.items[layer.selected] is pair
    view.plots.wave.setXRange(10.0, 14.0, padding=0)
    drag(qtbot, view, view.plots.spec, 12.05 + 0.32, 12.05 + 0.45)  # between two regions
    assert len(layer.doc.regions) == 111


def test_regions_too_narrow_on_screen_are_painted_without_edges(window, qtbot, tmp_path):
    """Zoomed out over a long recording, regions a few pixels wide are fills only (their
    edges would hide the spectrogram); zoomed in, each gets both edges."""
    window.resize(1000, 700)  # the plots ~500 px wide: a 0.3-s region of the minute is ~3 px
    view, layer = _open(qtbot, window, _long(tmp_path))
    item = layer.combined[1]  # the spectrogram's

    def edge_xs():
        rect = item.viewRect()
        px = item.getViewBox().width() / rect.width()
        lines = [ln for _, group in item.edges(item.in_view(), rect, px).values() for ln in group]
        return sorted(round(ln.x1(), 3) for ln in lines), px

    xs, px = edge_xs()  # the whole minute: 0.3-s regions are ~3 px wide
    assert 0.3 * px < item.MIN_EDGE_PX and len(item.in_view()) == 110 and xs == []
    view.plots.wave.setXRange(10.0, 14.0, padding=0)
    qtbot.wait(50)  # the linked plots follow the range
    xs, px = edge_xs()
    assert 0.3 * px >= item.MIN_EDGE_PX
    expect = sorted(round(x, 3) for r in layer.doc.regions for x in (r.start_s, r.end_s) if 10.0 <= x <= 14.0)
    assert xs == expect and len(xs) >= 14


def _column_changed(before, after, x: int, y0: int, y1: int) -> bool:
    return any(before.pixel(x, y) != after.pixel(x, y) for y in range(y0, y1))


def test_combined_item_paints_every_unselected_region_in_view(window, qtbot, tmp_path):
    from lungapp.gui.annotation_layer import _brush_of

    view, layer = _open(qtbot, window, _long(tmp_path))
    view.plots.wave.setXRange(10.0, 16.0, padding=0)
    layer.select(layer.doc.regions[25].id)  # 12.5-12.8 s: its own item, not the combined one's
    qtbot.wait(50)
    wave = view.plots.wave
    rect = view.plots.glw.mapFromScene(wave.getViewBox().sceneBoundingRect()).boundingRect()
    y0, y1 = rect.top() + 2, rect.bottom() - 2
    with_regions = view.plots.glw.grab().toImage()
    layer.combined[0].hide()
    without = view.plots.glw.grab().toImage()
    layer.combined[0].show()
    for r in layer.doc.regions:
        if r.start_s > 10.0 and r.end_s < 16.0:
            centre, gap = _point(view, wave, (r.start_s + r.end_s) / 2).x(), _point(view, wave, r.end_s + 0.1).x()
            assert _column_changed(without, with_regions, centre, y0, y1) == (r.id != layer.selected)
            assert not _column_changed(without, with_regions, gap, y0, y1)
            if r.id != layer.selected:  # its colour laid "over" what is under it, at its alpha
                fill = _brush_of(r.type, r.pending, layer.combined[0].alpha).color()
                a, y = fill.alphaF(), (y0 + y1) // 2
                under, got = QColor(without.pixel(centre, y)), QColor(with_regions.pixel(centre, y))
                for ch in ("red", "green", "blue"):
                    expect = getattr(fill, ch)() * a + getattr(under, ch)() * (1 - a)
                    assert abs(getattr(got, ch)() - expect) <= 2, (r.type, ch, got.name(), under.name())


def test_click_and_drag_on_combined_item_select_and_edit_the_region(window, qtbot, recording):
    recording.with_suffix(".json").write_text(json.dumps({"record_annotation": "CAS", "event_annotation": [
        {"start": 1000, "end": 2000, "type": "Wheeze"}, {"start": 1500, "end": 2500, "type": "Stridor"}]}))
    view, layer = _open(qtbot, window, recording)
    spec = view.plots.spec
    a, b = sorted(layer.doc.regions, key=lambda r: r.start_s)
    assert layer.selected == -1 and layer.items == {}
    table = view.annotation.panel.table
    resets = []
    table.model().modelReset.connect(lambda: resets.append(1))
    click(qtbot, view, spec, 1.2)
    assert layer.selected == a.id and set(layer.items) == {a.id}
    assert [i.row() for i in table.selectionModel().selectedRows()] == [0]
    assert resets == []  # a selection moves the row highlight, refills no rows
    assert view.annotation.panel.start.value() == pytest.approx(1.0)
    assert layer.combined[1].regions == [b]
    click(qtbot, view, spec, 2.2)  # only b there
    assert layer.selected == b.id
    click(qtbot, view, spec, 1.7)  # both there: the selected one (drawn on top) keeps it
    assert layer.selected == b.id
    layer.select(-1)
    click(qtbot, view, spec, 1.7)  # both unselected: the latest start (painted on top)
    assert layer.selected == b.id
    _mouse(view.plots.glw.viewport(), QEvent.Type.MouseMove, _point(view, spec, 1.2), Qt.MouseButton.NoButton)
    assert layer.combined[1].toolTip() == "Wheeze"  # hover names the region under the pointer
    layer.select(-1)
    drag(qtbot, view, spec, 1.2, 0.7)  # inside an unselected region: selects and moves it
    moved = layer.doc.region(a.id)
    assert layer.selected == a.id and moved.start_s == pytest.approx(0.5, abs=0.03)
    assert moved.end_s == pytest.approx(1.5, abs=0.03) and len(layer.doc.regions) == 2
    layer.select(b.id)
    drag(qtbot, view, spec, moved.start_s, 0.2)  # the start edge of an unselected region: resize
    resized = layer.doc.region(a.id)
    assert resized.start_s == pytest.approx(0.2, abs=0.03) and resized.end_s == pytest.approx(moved.end_s)


def test_icbhi_cycles_are_shown_read_only(window, qtbot, tmp_path, recwarn):
    path = tmp_path / "101_1b1_Al_sc_Meditron.wav"
    sf.write(path, (0.05 * np.random.default_rng(0).standard_normal(4 * 4000)).astype(np.float32), 4000)
    path.with_suffix(".txt").write_text("0.2\t1.5\t0\t1\n1.5\t3.0\t1\t0\n")
    messages = []
    window.review.statusMessage.connect(lambda text, ms: messages.append(text))
    view, layer = _open(qtbot, window, path)
    assert _regions(layer) == [(0.2, 1.5, "Wheeze"), (1.5, 3.0, "Crackle")]
    assert view.annotation.panel.record_label.currentText() == "CAS & DAS"
    drag(qtbot, view, view.plots.spec, 3.2, 3.8)
    assert len(layer.doc.regions) == 2 and not path.with_suffix(".json").exists()
    assert any("read-only" in m for m in messages)
    assert layer.selected == -1 and layer.add(0.5, 0.9) == -1 and len(layer.doc.regions) == 2
    # pyqtgraph reports an exception in a mouse handler as a warning, not as a failure
    assert not [w for w in recwarn if "Error sending" in str(w.message)], [str(w.message) for w in recwarn]


def test_bundled_examples_are_shown_read_only(window, qtbot):
    """The examples' labels ship with lungapp (tracked files in a checkout, not writable in an
    installed app): shown, never edited in place, with a message saying how to label a copy."""
    from lungapp.paths import resources_dir

    wav = resources_dir() / "examples" / "synthetic_wheeze.wav"
    before = wav.with_suffix(".json").read_bytes()
    messages = []
    window.review.statusMessage.connect(lambda text, ms: messages.append(text))
    view, layer = _open(qtbot, window, wav)
    n = len(layer.doc.regions)
    assert n > 0 and layer.read_only_reason() is not None
    assert layer.add(0.5, 0.9) == -1 and len(layer.doc.regions) == n
    view.annotation.panel.record_label.setCurrentText("Poor Quality")
    assert view.annotation.panel.record_label.currentText() == layer.doc.record_label != "Poor Quality"
    assert wav.with_suffix(".json").read_bytes() == before
    assert any("bundled example" in m and "copy" in m for m in messages)


def test_two_recordings_sharing_one_sidecar_are_shown_read_only(window, qtbot, recording):
    """NAME.wav and NAME.flac both read NAME.json: editing one would overwrite the other's
    labels, so neither is edited, and opening one says why."""
    x, rate = sf.read(recording, dtype="float32")
    twin = recording.with_suffix(".flac")
    sf.write(twin, x[::-1].copy(), rate)
    sidecar = recording.with_suffix(".json")
    sidecar.write_text(json.dumps({"record_annotation": "CAS", "event_annotation": [
        {"start": 500, "end": 1500, "type": "Wheeze"}]}))
    before = sidecar.read_bytes()
    messages = []
    window.review.statusMessage.connect(lambda text, ms: messages.append(text))
    for path in (twin, recording):
        view, layer = _open(qtbot, window, path)
        assert layer.read_only_reason() is not None
        assert any("shared by" in m and twin.name in m and recording.name in m for m in messages)
        assert layer.add(2.0, 2.6) == -1
        view.annotation.panel.record_label.setCurrentText("Poor Quality")
        assert sidecar.read_bytes() == before
        messages.clear()
    twin.unlink()  # once the name is its own again, its labels can be edited
    layer.open(str(recording))
    assert layer.read_only_reason() is None and layer.add(2.0, 2.6) != -1


def test_labels_on_a_read_only_disk_are_shown_read_only(window, qtbot, recording, tmp_path):
    """Edits there looked made ("saved to NAME.json") and vanished on the next recording:
    now they are refused, and opening the recording says why."""
    import subprocess

    from mount_helpers import tmpfs

    with tmpfs(tmp_path / "ro", size="4m") as where:
        audio = where / recording.name
        shutil.copy(recording, audio)
        audio.with_suffix(".json").write_text(json.dumps({"record_annotation": "CAS"}))
        subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
        messages = []
        window.review.statusMessage.connect(lambda text, ms: messages.append(text))
        view, layer = _open(qtbot, window, audio)
        assert "read-only" in (layer.read_only_reason() or "")
        assert any("cannot be written here" in m and audio.with_suffix(".json").name in m for m in messages)
        assert layer.add(1.0, 1.6) == -1 and layer.doc.record_label == "CAS"
        assert "saved to" not in view.annotation.panel.state.text()
        window.review.remove_files([str(audio)])  # the list lets go of the file before unmounting


def test_a_failed_save_is_kept_until_one_succeeds(window, qtbot, recording, tmp_path):
    """A full disk: the save fails, and the layer keeps saying so (the panel shows it) until
    a later save works."""
    from mount_helpers import tmpfs

    with tmpfs(tmp_path / "small", size="200k") as where:
        audio = where / recording.name
        shutil.copy(recording, audio)
        view, layer = _open(qtbot, window, audio)
        filler = where / "filler"
        with open(filler, "wb", buffering=0) as f:  # fill the disk
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
        layer.add(1.0, 1.6)
        assert layer.save_error is not None and "cannot save the labels" in layer.save_error
        state = view.annotation.panel.state
        assert "NOT SAVED" in state.text() and "saved to" not in state.text()
        filler.unlink()
        layer.add(2.0, 2.6)
        assert layer.save_error is None and state.text().endswith(f"saved to {audio.stem}.json")
        assert len(json.loads(audio.with_suffix(".json").read_text())["event_annotation"]) == 2
        window.review.remove_files([str(audio)])


def test_nudging_an_edge_keeps_the_minimum_region_length(window, qtbot, recording):
    """Ctrl+Left/Right and Shift+Left/Right move an edge; they stopped only at zero length."""
    from lungapp.gui.annotation_layer import MIN_REGION_S

    view, layer = _open(qtbot, window, recording)
    rid = layer.add(1.0, 1.1)
    layer.select(rid)
    for which, delta in (("end", -0.01), ("start", 0.01)):
        for _ in range(20):
            layer.nudge(which, delta)
        r = layer.doc.region(rid)
        assert r.end_s - r.start_s >= MIN_REGION_S - 1e-9, (which, r)
    layer.nudge("end", 0.5)  # growing is always allowed
    assert layer.doc.region(rid).end_s - layer.doc.region(rid).start_s > 0.5


def test_player_plays_a_range_once_or_looped_with_gain_and_band(qtbot):
    import sounddevice as sd

    from lungapp.gui.playback import SPEEDS, Player

    assert min(SPEEDS) == 0.25
    p = Player()
    ramp = np.linspace(-0.5, 0.5, 100, dtype=np.float32)
    p.set_audio(ramp, 100)
    p._range, p._loop, p._pos = (10, 20), True, 10
    out = np.zeros((25, 1), np.float32)
    p._callback(out, 25, None, None)
    assert np.allclose(out[:, 0], np.concatenate([ramp[10:20], ramp[10:20], ramp[10:15]]))
    p._loop, p._pos = False, 15
    with pytest.raises(sd.CallbackStop):
        p._callback(out, 25, None, None)
    assert np.allclose(out[:5, 0], ramp[15:20]) and not out[5:].any()
    p.set_gain_db(20.0)  # x10, clipped to the output's range
    p._range, p._pos = None, 0
    p._callback(out, 25, None, None)
    assert np.allclose(out[:, 0], np.clip(ramp[:25] * 10, -1, 1))
    rate = 8000
    t = np.arange(rate) / rate
    p.set_audio((np.sin(2 * np.pi * 50 * t) + np.sin(2 * np.pi * 1500 * t)).astype(np.float32), rate)
    p.set_band((20.0, 200.0))  # the bell: the 1500 Hz tone goes
    assert np.std(p._samples) == pytest.approx(np.sqrt(0.5), rel=0.1)
    p.set_band(None)
    assert np.std(p._samples) == pytest.approx(1.0, rel=0.05)
    with pytest.raises(ValueError, match="no band left"):
        p.set_band((5000.0, 6000.0))


def test_listening_bar_drives_the_player(window, qtbot, recording):
    view, layer = _open(qtbot, window, recording)
    bar, player = view.annotation.listening, view.player
    bar.preset.setCurrentText("Diaphragm 100-1000 Hz")
    assert player._band == (100.0, 1000.0)
    bar.preset.setCurrentText("Custom")
    assert bar.low.isVisible() and player._band == (100.0, 2000.0)
    bar.preset.setCurrentText("Off")
    assert player._band is None
    bar.gain.setValue(6.0)
    assert player._gain == pytest.approx(1.995, abs=1e-3)
    played = []
    player.play_range = lambda a, b, loop=False: played.append((a, b, loop)) or True
    assert not view.annotation.play_selection()  # nothing selected
    rid = layer.add(1.0, 1.5, "Wheeze")
    bar.loop.setChecked(True)
    bar.play_sel.click()
    panel = view.annotation.panel
    panel.table.clicked.emit(panel.table.model().index(0, 0))  # clicking an event plays it
    assert played == [(1.0, 1.5, True), (1.0, 1.5, False)] and layer.selected == rid


def test_labels_menu_export_import_agreement_collect(window, qtbot, tmp_path):
    rng = np.random.default_rng(2)
    src = tmp_path / "src"
    src.mkdir()
    for i, label in enumerate(("CAS", "Normal", "")):
        stem = f"10{i}_6.0_0_p1_01"
        sf.write(src / f"{stem}.wav", (0.1 * rng.standard_normal(8000)).astype(np.float32), 4000)
        (src / f"{stem}.json").write_text(json.dumps({"record_annotation": label, "event_annotation": [
            {"start": 100, "end": 400, "type": "Wheeze"}] if label == "CAS" else []}))
    view, layer = _open(qtbot, window, src / "100_6.0_0_p1_01.wav")
    menu = view.annotation.menu
    messages = []
    view.statusMessage.connect(lambda text, ms: messages.append(text))
    answers = iter([str(src), ""])  # export: the folder, then Cancel: the default beside it
    menu.ask_folder = lambda title, start: next(answers)
    menu.ask_format = lambda: "audacity"
    menu.export()
    track = tmp_path / "src-labels-audacity" / "100_6.0_0_p1_01.labels.txt"
    qtbot.waitUntil(track.exists, timeout=5000)
    qtbot.waitUntil(lambda: any(m.startswith("Exported the labels of 3") for m in messages), timeout=5000)

    # An edited track, beside its recording, imported back into the open recording's sidecar.
    track.write_text(track.read_text() + "0.500000\t0.900000\tStridor | imported\n")
    shutil.copy(track, src / track.name)
    menu.ask_files = lambda title, start: [str(src / track.name)]
    menu.import_files()
    qtbot.waitUntil(lambda: any(r.type == "Stridor" for r in (layer.doc.regions if layer.doc else [])),
                    timeout=5000)
    assert any(m == "Imported 1 regions from 1 file(s)" for m in messages)

    other = tmp_path / "other"
    other.mkdir()
    for p in src.glob("*.json"):
        shutil.copy(p, other / p.name)
    (other / "101_6.0_0_p1_01.json").write_text(json.dumps({"record_annotation": "DAS"}))
    answers = iter([str(src), str(other)])
    menu.ask_folder = lambda title, start: next(answers)
    menu.agreement()
    qtbot.waitUntil(lambda: getattr(menu, "report", None) is not None, timeout=5000)
    text = menu.report.layout().itemAt(0).widget().toPlainText()
    assert "101_6.0_0_p1_01: record label Normal vs DAS" in text
    menu.report.close()

    train = tmp_path / "train"
    menu.ask_folder = lambda title, start: str(train)
    menu.collect()
    qtbot.waitUntil(lambda: any(m.startswith("Added 2 confirmed") for m in messages), timeout=5000)
    assert sorted(p.name for p in train.glob("*.wav")) == ["100_6.0_0_p1_01.wav", "101_6.0_0_p1_01.wav"]
    assert window.train.folder.text() == str(train)


def test_labels_menu_names_the_recordings_it_left_out(window, qtbot, tmp_path):
    """Export and "Add confirmed recordings" name a sidecar they could not read (the CLI lists
    them too), and count the recordings not yet reviewed."""
    src = tmp_path / "src"
    src.mkdir()
    noise = (0.1 * np.random.default_rng(4).standard_normal(8000)).astype(np.float32)
    for stem, sidecar in (("100_6.0_0_p1_01", {"record_annotation": "Normal"}),
                          ("101_6.0_0_p1_01", {"record_annotation": ""}), ("102_6.0_0_p1_01", None)):
        sf.write(src / f"{stem}.wav", noise, 4000)
        (src / f"{stem}.json").write_text(json.dumps(sidecar) if sidecar else "{not json")
    view, _ = _open(qtbot, window, src / "100_6.0_0_p1_01.wav")
    menu = view.annotation.menu
    messages = []
    view.statusMessage.connect(lambda text, ms: messages.append(text))
    answers = iter([str(src), str(tmp_path / "out")])
    menu.ask_folder = lambda title, start: next(answers)
    menu.ask_format = lambda: "csv"
    menu.export()
    qtbot.waitUntil(lambda: any(m.startswith("Exported") for m in messages), timeout=5000)
    assert any("skipped" in m and "102_6.0_0_p1_01.json" in m and "JSON" in m for m in messages), messages
    menu.ask_folder = lambda title, start: str(tmp_path / "train")
    menu.collect()
    qtbot.waitUntil(lambda: any(m.startswith("Added 1 confirmed") for m in messages), timeout=5000)
    added = next(m for m in messages if m.startswith("Added"))
    assert "1 not labelled" in added and "could not add" in added and "102_6.0_0_p1_01.json" in added


def test_annotator_name_is_set_once_and_kept(qtbot, recording):
    from lungapp.gui import workers

    win = _window(qtbot)
    view, layer = _open(qtbot, win, recording)
    panel = view.annotation.panel
    panel.annotator.setText("  Dr Chen ")
    panel.annotator.editingFinished.emit()
    rid = layer.add(0.5, 1.0, "Stridor")
    assert layer.doc.region(rid).author == "Dr Chen"
    win.close()
    workers.wait_all(5000)
    from lungapp.gui.app import create_window

    win2 = create_window([], load_model=False)  # a new session reads the stored name
    qtbot.addWidget(win2)
    assert win2.review.annotation.panel.annotator.text() == "Dr Chen"
    assert win2.review.annotation.layer.annotator() == "Dr Chen"
    win2.close()
    workers.wait_all(5000)


def test_filter_by_result(window, qtbot, tmp_path):
    from types import SimpleNamespace

    rng = np.random.default_rng(4)
    for stem in ("a", "b", "c"):
        sf.write(tmp_path / f"{stem}.wav", (0.1 * rng.standard_normal(8000)).astype(np.float32), 8000)
    view = window.review
    window.open_paths([str(tmp_path)])
    model = view.model
    qtbot.waitUntil(lambda: model.rowCount() == 3 and view.current_path is not None, timeout=10000)
    for stem, decision in (("a", "normal"), ("b", "abnormal")):  # results as the analysis stores them
        model.update(str(tmp_path / f"{stem}.wav"), prediction=SimpleNamespace(
            decision=decision, label=decision, abnormal_probability=0.5, probabilities={}))
    view.select(str(tmp_path / "c.wav"))
    panel = view.annotation.panel
    shown = lambda: {Path(e.path).stem for i, e in enumerate(model.entries)  # noqa: E731
                     if not view.table.isRowHidden(i)}
    panel.result_filter.setCurrentText("abnormal")
    assert shown() == {"b", "c"}  # c: the open recording stays shown
    panel.result_filter.setCurrentText("not analysed")
    assert shown() == {"c"}
    panel.result_filter.setCurrentText("any result")
    assert shown() == {"a", "b", "c"}


def test_a_binary_label_is_shown_and_kept(window, qtbot, recording):
    recording.with_suffix(".json").write_text(json.dumps({"record_annotation": "abnormal"}))
    view, layer = _open(qtbot, window, recording)
    combo = view.annotation.panel.record_label
    assert combo.currentText() == "Abnormal" and layer.doc.record_label == "Abnormal"
    layer.add(0.5, 1.0, "Wheeze")  # an edit saves the label as it was
    assert json.loads(recording.with_suffix(".json").read_text())["record_annotation"] == "Abnormal"
    combo.setCurrentText("CAS")
    assert layer.doc.record_label == "CAS"


def test_typing_a_note_is_not_taken_by_the_keys(window, qtbot, recording):
    view, layer = _open(qtbot, window, recording)
    rid = layer.add(1.0, 1.5, "Wheeze")
    played = []
    view.player.play_range = lambda a, b, loop=False: played.append((a, b, loop)) or True
    key(qtbot, view, Qt.Key.Key_P)  # P plays the selected region
    assert played == [(1.0, 1.5, False)]
    note = view.annotation.panel.note
    note.setFocus()
    qtbot.keyClicks(note, "3 pa")  # digits, letters and Delete/arrows belong to the text
    qtbot.keyClick(note, Qt.Key.Key_Left)
    qtbot.keyClick(note, Qt.Key.Key_Delete)
    qtbot.keyClick(note, Qt.Key.Key_Return)
    r = layer.doc.region(rid)
    assert (r.note, r.type, r.start_s, len(played)) == ("3 p", "Wheeze", 1.0, 1)


def test_delete_in_the_file_list_removes_the_file_not_the_region(window, qtbot, recording, tmp_path):
    other = tmp_path / "other.wav"
    sf.write(other, np.zeros(8000, dtype=np.float32), 8000)
    window.open_paths([str(other)])
    view, layer = _open(qtbot, window, recording)
    rid = layer.add(1.0, 1.5, "Wheeze")
    assert layer.selected == rid
    window.activateWindow()
    view.table.setFocus()
    qtbot.waitUntil(view.table.hasFocus, timeout=3000)
    qtbot.keyClick(view.table, Qt.Key.Key_Delete)  # the list's key, not the region shortcut
    assert [e.name for e in view.model.entries] == ["other.wav"] and recording.exists()
    saved = json.loads(recording.with_suffix(".json").read_text())  # autosaved on every edit
    assert [(e["start"], e["type"]) for e in saved["event_annotation"]] == [(1000, "Wheeze")]


def test_agreement_between_two_annotators_of_one_folder_in_the_gui(window, qtbot, tmp_path):
    from lungapp.annotation.model import SetRecordLabel, UndoStack
    from lungapp.annotation.sidecar import load_sidecar

    for stem, labels in (("r0", ("CAS", "CAS")), ("r1", ("Normal", "DAS"))):
        sf.write(tmp_path / f"{stem}.wav", np.zeros(4000, np.float32), 4000)
        for name, label in zip(("alice", "bob"), labels):
            car = load_sidecar(tmp_path / f"{stem}.wav", name)
            UndoStack(car.doc).push(SetRecordLabel(car.doc, label, author=name))
            car.save()
    menu, messages, offered = window.review.annotation.menu, [], []
    window.review.statusMessage.connect(lambda text, ms: messages.append(text))
    menu.ask_folder = lambda title, start: str(tmp_path)
    menu.ask_names = lambda names: offered.append(names) or ("alice", "bob")
    menu.agreement_between()
    qtbot.waitUntil(lambda: getattr(menu, "report", None) is not None, timeout=5000)
    text = menu.report.layout().itemAt(0).widget().toPlainText()
    assert offered == [["alice", "bob"]] and f"A: alice in {tmp_path}" in text
    assert "r1: record label Normal vs DAS" in text and "recordings in both: 2" in text
    menu.report.close()
    solo = tmp_path / "solo"
    solo.mkdir()
    menu.ask_folder = lambda title, start: str(solo)
    menu.agreement_between()
    qtbot.waitUntil(lambda: any("agreement needs two annotators" in m for m in messages), timeout=5000)
    assert offered == [["alice", "bob"]]  # no names to choose from: not asked
