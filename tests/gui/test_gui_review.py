"""The Review view in a real X server (pytest-xvfb): open, see, hear, analyse, export.

Analyses use the tiny real model from tests/tiny_model.py (loaded once per session and
handed to the window with ``AppContext.set_predictor``, so each test stays fast)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import Qt

pytestmark = pytest.mark.gui

from tiny_model import make_signal  # noqa: E402

KINDS = ("Normal", "CAS", "DAS", "CAS & DAS")


def write_recordings(folder: Path, n: int = 4, seconds: float = 4.0, rate: int = 8000) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        p = folder / f"rec{i:02d}.wav"
        sf.write(p, make_signal(KINDS[i % 4], seconds, rng, rate), rate)
        out.append(p)
    return out


def write_corrupt(folder: Path) -> Path:
    p = folder / "broken.wav"
    p.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(range(64)))
    return p


@pytest.fixture(scope="session")
def tiny_predictor(tiny_model_dir):
    from lungapp.inference.predictor import Predictor

    return Predictor.load(tiny_model_dir)


def make_window(qtbot, predictor=None, load=False):
    from lungapp.gui.app import create_window

    win = create_window([], load_model=load)
    qtbot.addWidget(win)
    qtbot.waitExposed(win)
    if predictor is not None:
        win.ctx.set_predictor(predictor)
    return win


@pytest.fixture
def window(qtbot, tiny_predictor):
    from lungapp.gui import workers

    win = make_window(qtbot, tiny_predictor)
    yield win
    win.close()
    workers.wait_all(5000)


def wait_displayed(qtbot, view, timeout=10000):
    qtbot.waitUntil(lambda: view.plots.has_image(), timeout=timeout)


def test_open_file_shows_spectrogram_result_and_timeline(window, qtbot, tmp_path):
    (path,) = write_recordings(tmp_path, n=1)
    view = window.review
    window.open_paths([str(path)])
    assert view.model.rowCount() == 1
    wait_displayed(qtbot, view)
    qtbot.waitUntil(lambda: view.model.entries[0].prediction is not None, timeout=15000)
    qtbot.waitUntil(lambda: view.plots.timeline_curves() > 0, timeout=5000)
    img = view.plots.image.image
    assert img.ndim == 2 and img.shape[0] > 100 and np.isfinite(img).all()
    # time axis in seconds: the image spans the recording
    rect = view.plots.image.mapRectToParent(view.plots.image.boundingRect())
    assert rect.right() == pytest.approx(4.0, abs=0.1)
    e = view.model.entries[0]
    assert e.status == "done" and e.duration_s == pytest.approx(4.0, abs=0.01)
    assert view.result.state in ("normal", "abnormal", "poor quality")
    assert "tiny-test-model" in view.result.model.text()
    assert view.model.data(view.model.index(0, 3)) == e.result_text() != ""


def test_open_folder_lists_files_with_durations_and_errors(window, qtbot, tmp_path):
    write_recordings(tmp_path / "sub", n=3, seconds=2.0)
    bad = write_corrupt(tmp_path)
    (tmp_path / "notes.txt").write_text("not audio")
    view = window.review
    window.open_paths([str(tmp_path)])
    qtbot.waitUntil(lambda: view.model.rowCount() == 4, timeout=5000)
    qtbot.waitUntil(lambda: all(e.duration_s is not None or e.status == "error"
                                for e in view.model.entries), timeout=5000)
    by_name = {e.name: e for e in view.model.entries}
    assert by_name["rec00.wav"].duration_s == pytest.approx(2.0, abs=0.01)
    assert by_name[bad.name].status == "error"
    assert "WAV" in by_name[bad.name].error or "corrupt" in by_name[bad.name].error
    # sortable by duration (and back), the selection follows its row
    selected = view.current_path
    view.table.sortByColumn(1, Qt.SortOrder.AscendingOrder)
    assert view.model.data(view.model.index(0, 0)) == bad.name  # no duration sorts first
    view.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
    assert view.model.data(view.model.index(0, 0)) == "rec02.wav"
    assert view.current_path == selected
    row = view.table.selectionModel().currentIndex().row()
    assert view.model.entries[row].path == selected


def test_corrupt_file_shows_reason_and_app_keeps_running(window, qtbot, tmp_path):
    bad = write_corrupt(tmp_path)
    view = window.review
    window.open_paths([str(bad)])
    qtbot.waitUntil(lambda: view.model.entries[0].status == "error", timeout=5000)
    qtbot.waitUntil(lambda: view.result.state == "error", timeout=5000)
    assert str(bad) in window.statusBar().currentMessage() or bad.name in window.statusBar().currentMessage()
    qtbot.wait(500)  # a queued analysis being dropped must not hide the error
    e = view.model.entries[0]
    assert e.status == "error" and view.result.state == "error"
    assert not e.error.startswith(str(bad)) and "WAV" in e.error
    assert not view.play_btn.isEnabled()
    # still usable: a good file afterwards opens and displays
    (good,) = write_recordings(tmp_path / "ok", n=1)
    window.open_paths([str(good)])
    wait_displayed(qtbot, view)
    assert window.isVisible()


def test_analyse_all_with_cancel_then_complete_and_export(window, qtbot, tmp_path):
    files = write_recordings(tmp_path, n=8, seconds=3.0)
    view = window.review
    view.auto_analyse.setChecked(False)
    window.open_paths([str(tmp_path)])
    qtbot.waitUntil(lambda: view.model.rowCount() == 8, timeout=5000)

    first_done = []
    window.ctx.analysisFinished.connect(lambda p, pr: (first_done.append(p), view.cancel_batch())
                                        if not first_done else None)
    with qtbot.waitSignal(view.batchFinished, timeout=20000) as blocker:
        view.analyse_all_btn.click()
        assert view.progress.isVisible() and view.cancel_btn.isEnabled()
    done, total = blocker.args
    assert done == total == 8
    statuses = [e.status for e in view.model.entries]
    assert statuses.count("done") >= 1
    assert statuses.count("cancelled") >= 5, statuses
    assert not view.cancel_btn.isEnabled()

    # analyse the rest
    with qtbot.waitSignal(view.batchFinished, timeout=30000):
        view.analyse_all()
    assert [e.status for e in view.model.entries] == ["done"] * 8

    out = tmp_path / "results.csv"
    assert view.export_csv(str(out)) == 8
    rows = list(csv.DictReader(out.open()))
    assert {r["file"] for r in rows} == {str(f) for f in files}
    assert all(r["label"] and 0 <= float(r["abnormal_probability"]) <= 1 for r in rows)
    assert all(r["model_name"] == "tiny-test-model" for r in rows)
    assert {f"p_{k}" for k in KINDS} <= set(rows[0])


def test_recording_finished_is_listed_and_analysed(window, qtbot, tmp_path):
    (path,) = write_recordings(tmp_path, n=1)
    view = window.review
    with qtbot.waitSignal(window.ctx.analysisFinished, timeout=15000):
        window.ctx.recordingFinished.emit(str(path))
    assert view.model.entries[0].status == "done"


def test_drop_files_opens_them(window, qtbot, tmp_path):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    (path,) = write_recordings(tmp_path, n=1)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    ev = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                    Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.review.dropEvent(ev)
    assert window.review.model.paths() == [str(path)]
    wait_displayed(qtbot, window.review)
    assert window.recent()[0] == str(path)


def test_click_seeks_and_db_range_and_colormap_apply(window, qtbot, tmp_path):
    (path,) = write_recordings(tmp_path, n=1)
    view = window.review
    window.open_paths([str(path)])
    wait_displayed(qtbot, view)
    view.plots.seekRequested.emit(2.5)
    assert view.player.position() == pytest.approx(2.5, abs=0.01)
    assert view.plots.cursor() == pytest.approx(2.5, abs=0.01)
    view.min_db.setValue(-80)
    view.max_db.setValue(-20)
    assert tuple(view.plots.image.levels) == (-80, -20)
    view.cmap.setCurrentText("cividis")
    assert view.plots.colormap == "cividis"
    # zoom: the three plots share the time axis; reset shows the whole recording
    view.plots.wave.setXRange(1.0, 2.0, padding=0)
    assert view.plots.timeline.viewRange()[0] == pytest.approx([1.0, 2.0], abs=1e-6)
    view.plots.reset_view()
    assert view.plots.spec.viewRange()[0] == pytest.approx([0.0, 4.0], abs=1e-3)


@pytest.mark.audio
def test_play_through_null_sink_moves_cursor(pulse_sink, window, qtbot, tmp_path):
    (path,) = write_recordings(tmp_path, n=1, seconds=3.0)
    view = window.review
    qtbot.waitUntil(lambda: view.player.available or view.player.unavailable_reason
                    not in ("", "checking the audio output…"), timeout=10000)
    if not view.player.available:
        pytest.skip(f"no audio output through PortAudio: {view.player.unavailable_reason}")
    window.open_paths([str(path)])
    wait_displayed(qtbot, view)
    qtbot.waitUntil(view.play_btn.isEnabled, timeout=3000)
    view.play_btn.click()
    assert view.player.playing
    qtbot.waitUntil(lambda: view.plots.cursor() > 0.3, timeout=20000)
    # Space pauses (the shortcut works with focus in the list)
    view.table.setFocus()
    qtbot.keyClick(view.table, Qt.Key.Key_Space)
    assert not view.player.playing
    paused_at = view.plots.cursor()
    qtbot.wait(300)
    assert view.plots.cursor() == pytest.approx(paused_at, abs=1e-6)
    # double speed plays on to the end and stops by itself
    view.speed.setCurrentIndex(view.speed.findData(2.0))
    view.plots.seekRequested.emit(2.0)
    view.player.play()
    # generous: the null sink stalls for seconds on a loaded CI machine
    qtbot.waitUntil(lambda: not view.player.playing, timeout=20000)
    assert view.plots.cursor() == pytest.approx(3.0, abs=0.05)


def test_no_output_device_disables_playback_with_reason(qtbot, tmp_path, monkeypatch):
    import sounddevice as sd

    from lungapp.gui import workers

    def no_device(*a, **kw):
        raise sd.PortAudioError("Error querying device -1")

    monkeypatch.setattr(sd, "query_devices", no_device)
    win = make_window(qtbot)
    view = win.review
    qtbot.waitUntil(lambda: "no audio output" in view.play_btn.toolTip(), timeout=5000)
    (path,) = write_recordings(tmp_path, n=1)
    view.auto_analyse.setChecked(False)
    win.open_paths([str(path)])
    wait_displayed(qtbot, view)
    assert not view.play_btn.isEnabled()
    assert view.play_btn.toolTip().startswith("Playback unavailable: no audio output device")
    win.close()
    workers.wait_all(5000)


def test_first_run_offers_the_example_recordings(window, qtbot):
    from lungapp.paths import resources_dir

    view = window.review
    assert view.examples_btn.isVisible() and view.empty_hint.isVisible()
    view.examples_btn.click()
    expected = sorted(p.name for p in (resources_dir() / "examples").glob("*.wav"))
    qtbot.waitUntil(lambda: view.model.rowCount() == len(expected), timeout=5000)
    assert sorted(e.name for e in view.model.entries) == expected
    assert not view.examples_btn.isVisible() and not view.empty_hint.isVisible()
    wait_displayed(qtbot, view)
