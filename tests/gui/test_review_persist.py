"""Issue #32: the Review list and its results survive a restart (results of recordings in
the store come from the store, others from the results cache; nothing is analysed again),
a file moved or deleted meanwhile is listed as missing and can be relocated or removed;
and the Review and Record plots save as PNG, as shown."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QImage

pytestmark = pytest.mark.gui

from test_gui_review import make_window, wait_displayed, write_recordings  # noqa: E402

from lungapp.gui import file_list as fl  # noqa: E402
from lungapp.store import ModelId, Store  # noqa: E402

from store_helpers import prediction, write_recording  # noqa: E402

OLD_MODEL = ModelId("old-model", "1", "0ld")


def _close(win) -> None:
    from lungapp.gui import workers

    win.close()
    workers.wait_all(5000)


def _start(qtbot, predictor):
    """A new window whose analyses are counted from before the model is ready."""
    win = make_window(qtbot)
    started: list[str] = []
    win.ctx.analysisStarted.connect(started.append)
    win.ctx.set_predictor(predictor)
    return win, started


def _first_session(qtbot, tiny_predictor, tmp_path):
    """Three loose files and one recording in the store (with an older model's result too),
    all analysed by the tiny model, then the window closed."""
    loose = write_recordings(tmp_path / "loose", n=3, seconds=3.0)
    filed = write_recording(tmp_path / "filed" / "site.wav", "CAS", seconds=3.0, seed=3)
    with Store() as s:
        uid = s.add_recording(s.add_visit(s.add_patient("P-9")), filed, site="Trachea")
        s.add_result(uid, prediction(0.9, "abnormal", "CAS"), OLD_MODEL)
    win = make_window(qtbot, tiny_predictor)
    view = win.review
    view.auto_analyse.setChecked(False)
    win.open_paths([str(p) for p in (*loose, filed)])
    view.analyse_all()
    qtbot.waitUntil(lambda: view.model.count(fl.DONE) == 4, timeout=30000)
    before = {e.path: e.prediction.abnormal_probability for e in view.model.entries}
    _close(win)
    with Store() as s:
        assert len(s.results(uid)) == 2  # the tiny model's result went into the store
    return loose, filed, uid, before


def test_list_and_results_come_back_without_analysing(qtbot, tiny_predictor, tmp_path):
    loose, filed, uid, before = _first_session(qtbot, tiny_predictor, tmp_path)
    loose[2].unlink()  # deleted meanwhile
    win, started = _start(qtbot, tiny_predictor)
    view = win.review
    assert sorted(view.model.paths()) == sorted(before)
    qtbot.waitUntil(lambda: view.model.entry(str(filed)).prediction is not None, timeout=5000)
    by_path = {e.path: e for e in view.model.entries}
    gone = by_path.pop(str(loose[2]))
    assert gone.status == fl.MISSING and gone.prediction is None
    assert view.model.data(view.model.index(view.model.row_of(gone.path), fl.RESULT_COL)) == "file moved or deleted"
    for path, e in by_path.items():
        assert e.status == fl.DONE and not e.is_stale(view.model.current_model)
        assert e.prediction.abnormal_probability == pytest.approx(before[path], abs=1e-5)
    assert by_path[str(filed)].extra["restored"] == "store"  # the active model's, not the older one
    assert by_path[str(filed)].prediction.windows[0].probabilities  # its details from the cache
    assert by_path[str(loose[0])].extra["restored"] == "cache"
    assert len(by_path[str(loose[0])].prediction.windows[0].probabilities) > 0  # the full result
    # Selecting shows the result at once; nothing is analysed again (auto-analyse is on).
    view.auto_analyse.setChecked(True)
    view.select(str(loose[0]))
    wait_displayed(qtbot, view)
    qtbot.waitUntil(lambda: view.plots.timeline_curves() > 0, timeout=5000)
    assert view.result.state in ("normal", "abnormal", "poor quality")
    view.select(str(filed))
    wait_displayed(qtbot, view)
    qtbot.wait(300)
    assert started == [] and view.model.not_analysed() == []
    # the missing row: a message in the plots, no dialog, no analysis
    view.select(gone.path)
    assert "moved or deleted" in view.plots.empty_text.textItem.toPlainText()
    assert started == [] and win.isActiveWindow() in (True, False)
    view.remove_files([gone.path])
    assert view.model.rowCount() == 3
    _close(win)


def test_results_of_another_model_are_shown_as_old_model(qtbot, tiny_predictor, tmp_path):
    """A store result of another model only: listed as "old model" (never as current)."""
    filed = write_recording(tmp_path / "x.wav", "CAS", seconds=3.0)
    with Store() as s:
        uid = s.add_recording(s.add_visit(s.add_patient("P-1")), filed)
        s.add_result(uid, prediction(0.9, "abnormal", "CAS"), OLD_MODEL)
    win, started = _start(qtbot, tiny_predictor)
    view = win.review
    view.auto_analyse.setChecked(False)  # on, selecting a stale result analyses it again
    win.open_paths([str(filed)])
    e = view.model.entry(str(filed))
    assert e.prediction is not None and e.prediction.model["name"] == "old-model"
    assert view.model.data(view.model.index(0, fl.STATUS_COL)) == fl.STALE
    assert view.model.not_analysed() == [str(filed)]
    _close(win)


def test_a_moved_file_is_relocated_from_its_context_menu(qtbot, tiny_predictor, tmp_path, monkeypatch):
    loose, filed, uid, before = _first_session(qtbot, tiny_predictor, tmp_path)
    moved_filed = tmp_path / "elsewhere" / "site.wav"
    moved_filed.parent.mkdir()
    filed.rename(moved_filed)
    moved_loose = moved_filed.with_name("rec01.wav")
    loose[1].rename(moved_loose)   # a move keeps the file's time: its cached result follows
    win, started = _start(qtbot, tiny_predictor)
    view = win.review
    assert view.model.count(fl.MISSING) == 2
    assert "2 file(s) of the list were moved or deleted" in win.statusBar().currentMessage()
    from PySide6.QtWidgets import QFileDialog

    for old, new in ((filed, moved_filed), (loose[1], moved_loose)):
        monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, new=new, **k: (str(new), ""))
        view.select(str(old))
        action = next(a for a in view.files.context_menu().actions() if a.text().startswith("Relocate"))
        assert action.isEnabled()
        action.trigger()
        e = view.model.entry(str(new))
        assert e is not None and e.status == fl.DONE and view.model.entry(str(old)) is None
        assert e.prediction.abnormal_probability == pytest.approx(before[str(old)], abs=1e-5)
    with Store() as s:
        assert s.recording(uid)["path"] == str(moved_filed)
    assert view.current_path == str(moved_loose)
    wait_displayed(qtbot, view)
    assert started == []
    _close(win)


def test_a_relocated_file_shows_its_own_labels_state(qtbot, tmp_path):
    """A file relocated while another is open: its Labels column and the progress count
    come from the sidecar at its new place (the row was rebuilt without them)."""
    first, other = write_recordings(tmp_path, n=2, seconds=2.0)
    first.with_suffix(".json").write_text('{"record_annotation": "CAS"}')
    win = make_window(qtbot)
    view = win.review
    win.open_paths([str(first), str(other)])
    qtbot.waitUntil(lambda: (view.model.entry(str(first)).labels or ("",))[0] == "reviewed", timeout=5000)
    view.select(str(other))
    moved = tmp_path / "moved" / first.name
    moved.parent.mkdir()
    for suffix in (".wav", ".json"):
        first.with_suffix(suffix).rename(moved.with_suffix(suffix))
    assert win.review_persist.relocate(str(first), str(moved))
    qtbot.waitUntil(lambda: (view.model.entry(str(moved)).labels or ("",))[0] == "reviewed", timeout=5000)
    assert view.annotation.panel.progress.text() == "1 of 2 labelled"
    _close(win)


def test_a_record_label_set_in_review_is_the_annotators_confirmed_label_in_the_store(qtbot, tmp_path):
    """The Patients view, Compare and the PDF read the store's confirmed labels: they kept
    the label from import time after an annotator changed it in Review."""
    from lungapp.report.content import site_history

    wav = write_recording(tmp_path / "site.wav", "DAS", seconds=3.0, seed=1)
    wav.with_suffix(".json").write_text('{"record_annotation": "DAS", "event_annotation": []}')
    with Store() as s:
        uid = s.add_recording(s.add_visit(s.add_patient("P-7")), wav, site="Trachea")
        s.confirm_label(uid, "DAS", "SPRSound annotation")
    win = make_window(qtbot)
    win.review.settings.setValue("annotation/annotator", "tester")
    win.open_paths([str(wav)])
    layer = win.review.annotation.layer
    qtbot.waitUntil(lambda: layer.doc is not None, timeout=10000)
    layer.set_record_label("CAS")
    layer.set_record_label("Normal")  # changed again: only the latest is theirs
    with Store() as s:
        labels = site_history(s, "P-7", "Trachea")[0]["labels"]
        assert [(lab["label"], lab["confirmed_by"]) for lab in labels] == [
            ("DAS", "SPRSound annotation"), ("Normal", "tester")]
        assert len(s.labels(uid)) == 3  # the store keeps the history
    layer.set_record_label("Normal")  # no change: nothing new
    with Store() as s:
        assert len(s.labels(uid)) == 3
    layer.set_record_label(None)  # cleared: the annotator no longer confirms a label
    with Store() as s:
        labels = site_history(s, "P-7", "Trachea")[0]["labels"]
        assert [(lab["label"], lab["confirmed_by"]) for lab in labels] == [("DAS", "SPRSound annotation")]
        assert [lab["label"] for lab in s.labels(uid)] == ["DAS", "CAS", "Normal", ""]  # the history
    layer.set_record_label("CAS")  # labelled again
    with Store() as s:
        assert [(lab["label"], lab["confirmed_by"]) for lab in s.labels(uid, current=True)] == [
            ("DAS", "SPRSound annotation"), ("CAS", "tester")]
    _close(win)


def test_an_empty_list_restarts_empty_with_the_examples_button(qtbot, tiny_predictor, tmp_path):
    (path,) = write_recordings(tmp_path, n=1, seconds=2.0)
    win = make_window(qtbot, tiny_predictor)
    win.open_paths([str(path)])
    win.review.remove_files([str(path)])
    _close(win)
    win = make_window(qtbot, tiny_predictor)
    view = win.review
    assert view.model.rowCount() == 0
    assert view.examples_btn.isVisibleTo(view) and view.empty_hint.isVisibleTo(view)
    _close(win)


# --- PNG export ----------------------------------------------------------------------------

def _not_blank(img: QImage) -> bool:
    """Many colours in the picture (a spectrogram), not one background colour."""
    # The converted image is kept while its bits are read: a temporary one is freed under
    # the array (a segmentation fault, seen once with two test workers).
    rgb = img.convertToFormat(QImage.Format.Format_RGB32)
    arr = np.frombuffer(rgb.constBits(), np.uint8).copy()
    colours = np.unique(arr.reshape(-1, 4)[::7], axis=0)
    return len(colours) > 50


def _png(path) -> QImage:
    img = QImage(str(path))
    assert not img.isNull()
    return img


def test_review_view_saves_as_png_as_shown(qtbot, tiny_predictor, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    from lungapp import paths

    (path,) = write_recordings(tmp_path / "rec", n=1, seconds=4.0)
    win = make_window(qtbot, tiny_predictor)
    view = win.review
    win.open_paths([str(path)])
    wait_displayed(qtbot, view)
    qtbot.waitUntil(lambda: view.plots.timeline_curves() > 0, timeout=15000)
    whole = view.save_view_png(str(tmp_path / "whole.png"))
    view.plots.wave.setXRange(1.0, 2.0, padding=0)
    qtbot.wait(100)
    asked = {}

    def fake_save(parent, title, start, filt):
        asked["start"] = start
        return str(tmp_path / "zoomed"), filt   # no suffix: ".png" is added

    monkeypatch.setattr(QFileDialog, "getSaveFileName", fake_save)
    menu = view.plots.context_menu()
    next(a for a in menu.actions() if a.text().startswith("Save view as PNG")).trigger()
    assert asked["start"] == str(paths.exports_dir() / "rec00-view.png")
    zoomed = _png(tmp_path / "zoomed.png")
    full = _png(whole)
    ratio = view.plots.devicePixelRatioF()
    assert (zoomed.width(), zoomed.height()) == (round(view.plots.width() * ratio),
                                                 round(view.plots.height() * ratio))
    assert _not_blank(zoomed) and _not_blank(full) and zoomed != full
    assert "Saved the view" in win.statusBar().currentMessage()
    # an unwritable place: one line naming the file, no crash
    win.tabs.setCurrentWidget(view)
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *a, **k: (str(tmp_path / "no" / "such" / "v.png"), ""))
    win.act_save_png.trigger()
    assert str(tmp_path / "no" / "such" / "v.png") in win.statusBar().currentMessage()
    _close(win)


def test_record_view_saves_its_recording_as_png(qtbot, tiny_predictor, tmp_path):
    path = write_recording(tmp_path / "made.wav", "DAS", seconds=3.0)
    win = make_window(qtbot, tiny_predictor)
    rec = win.record
    if not hasattr(rec, "save_view_png"):
        pytest.skip(f"the Record tab is unavailable here: {win.record_error}")
    win.tabs.setCurrentWidget(rec)
    rec.last_path = str(path)
    rec._show_recorded(str(path))
    qtbot.waitUntil(lambda: rec.recorded.has_image() and rec.stack.currentWidget() is rec.recorded, timeout=10000)
    out = rec.save_view_png(str(tmp_path / "record.png"))
    img = _png(out)
    ratio = rec.recorded.devicePixelRatioF()
    assert (img.width(), img.height()) == (round(rec.recorded.width() * ratio), round(rec.recorded.height() * ratio))
    assert _not_blank(img)
    _close(win)


def test_a_long_list_fills_its_results_in_a_worker(qtbot, tiny_predictor, tmp_path):
    """More rows than are looked up at once: the window opens first, the rows fill after."""
    from lungapp.gui.review_persist import SYNC_ROWS
    from lungapp.store.results_cache import ResultsCache

    files = [str(p) for p in write_recordings(tmp_path, n=SYNC_ROWS + 8, seconds=1.5)]
    d = tiny_predictor.predict_file(files[0]).to_dict()
    cache = ResultsCache()
    for p in files:
        assert cache.put(p, d)
    cache.save_list(files)
    cache.close()
    win, started = _start(qtbot, tiny_predictor)
    view = win.review
    qtbot.waitUntil(lambda: view.model.count(fl.DONE) == len(files), timeout=15000)
    assert all(e.extra["restored"] == "cache" for e in view.model.entries)
    assert started == [] and view.model.not_analysed() == []
    _close(win)


def test_a_corrupt_cache_is_kept_aside_and_the_app_starts(qtbot, tiny_predictor, tmp_path):
    from lungapp.store.results_cache import cache_path

    bad = cache_path()
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(b"not a database at all" * 100)
    (path,) = write_recordings(tmp_path, n=1, seconds=2.0)
    win = make_window(qtbot, tiny_predictor)
    assert str(bad) in win.statusBar().currentMessage() and "kept as" in win.statusBar().currentMessage()
    assert bad.with_name(bad.name + ".bad").read_bytes().startswith(b"not a database")
    win.open_paths([str(path)])
    _close(win)
    win = make_window(qtbot, tiny_predictor)
    assert win.review.model.paths() == [str(path)]   # the fresh cache works
    _close(win)


def test_the_list_is_saved_soon_after_a_change_not_only_on_close(qtbot, tiny_predictor, tmp_path):
    """A crash (no close) loses at most the last second of list changes."""
    from lungapp.gui.review_persist import SAVE_DELAY_MS
    from lungapp.store.results_cache import ResultsCache

    paths = [str(p) for p in write_recordings(tmp_path, n=2, seconds=2.0)]
    win = make_window(qtbot, tiny_predictor)
    win.open_paths(paths)

    def saved() -> list[str]:
        cache = ResultsCache()
        try:
            return cache.open_list()
        finally:
            cache.close()

    qtbot.waitUntil(lambda: sorted(saved()) == sorted(paths), timeout=SAVE_DELAY_MS + 3000)
    win.review.remove_files([paths[0]])
    qtbot.waitUntil(lambda: saved() == [paths[1]], timeout=SAVE_DELAY_MS + 3000)
    _close(win)
