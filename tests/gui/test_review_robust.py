"""Review's batch and output features on careless input (a QA pass): PNG and CSV written
whole and honest, names that are not UTF-8 refused in one line, no result kept for content
it was not made of, a file that comes back no longer missing, a damaged list not fatal,
playback not cut by a redraw, odd window arguments not dropped."""

from __future__ import annotations

import csv
import errno
import os

import numpy as np
import pytest
import soundfile as sf

pytestmark = pytest.mark.gui

from test_gui_review import wait_displayed, write_recordings  # noqa: E402

from lungapp.gui import file_list as fl  # noqa: E402
from lungapp.store.results_cache import ResultsCache  # noqa: E402


def _shown(qtbot, window, path):
    view = window.review
    window.open_paths([str(path)])
    qtbot.waitUntil(lambda: view.current_path == str(path), timeout=10000)
    wait_displayed(qtbot, view)
    return view


def test_a_png_that_cannot_be_written_leaves_the_earlier_one_as_it_was(window, qtbot, tmp_path, monkeypatch):
    from lungapp import fsutil
    from lungapp.errors import LungappError
    from lungapp.gui.png_export import save_png

    view = _shown(qtbot, window, write_recordings(tmp_path / "rec", n=1)[0])
    target = tmp_path / "view.png"
    target.write_bytes(b"my earlier figure")

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fsutil, "atomic_write_bytes", full)
    with pytest.raises(LungappError, match="No space left on device"):
        save_png(view.plots, str(target))
    assert target.read_bytes() == b"my earlier figure"


def test_a_png_name_typed_without_its_suffix_asks_before_replacing(window, qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    view = _shown(qtbot, window, write_recordings(tmp_path / "rec", n=1)[0])
    (tmp_path / "view.png").write_bytes(b"my earlier figure")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "view"), "PNG (*.png)"))
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.No)
    assert view.save_view_png() is None
    assert "view.png already exists" in asked[0] and (tmp_path / "view.png").read_bytes() == b"my earlier figure"


def test_a_refused_recording_has_no_probabilities_in_the_csv_or_the_tooltip(window, qtbot, tmp_path):
    from lungapp.gui.export import export_csv
    from lungapp.inference.predictor import Predictor

    window.ctx.set_predictor(Predictor.load(None))  # the bundled model: its quality check
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(8000 * 4, dtype=np.float32), 8000)
    view = _shown(qtbot, window, silent)
    view.analyse(str(silent))
    qtbot.waitUntil(lambda: view.model.entry(str(silent)).prediction is not None, timeout=20000)
    e = view.model.entry(str(silent))
    assert e.prediction.quality.level == "refuse"
    export_csv(tmp_path / "r.csv", [e])
    (row,) = csv.DictReader((tmp_path / "r.csv").read_text().splitlines())
    assert row["abnormal_probability"] == "" and all(row[k] == "" for k in row if k.startswith("p_"))
    assert "Class probabilities" not in view.model._result_tooltip(e)
    assert view.model.sort_key(e, fl.RESULT_COL) == -1.0


def test_a_file_name_with_a_carriage_return_reads_back_as_one_row(tmp_path):
    from lungapp.gui.export import export_csv

    export_csv(tmp_path / "r.csv", [fl.Entry(path="/data/left\rright.flac")])
    with open(tmp_path / "r.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["file"] for r in rows] == ["/data/left\rright.flac"]


def test_a_name_that_is_not_utf8_is_refused_in_one_line(window, qtbot, tmp_path):
    (good,) = write_recordings(tmp_path / "rec", n=1)
    os.rename(good, os.fsencode(good.parent) + b"/caf\xe9.wav")
    view = window.review
    said = []
    view.statusMessage.connect(lambda text, ms: said.append(text))
    bad = os.fsdecode(os.fsencode(good.parent) + b"/caf\xe9.wav")
    view.open_paths([bad])
    assert view.model.rowCount() == 0
    assert any("its name is not valid UTF-8" in s for s in said)


def test_no_result_is_kept_for_content_it_was_not_made_of(tmp_path):
    (rec,) = write_recordings(tmp_path / "rec", n=1)
    cache = ResultsCache(tmp_path / "cache.sqlite3")
    st = os.stat(rec)
    assert cache.put(str(rec), {"model": {}}, key=(st.st_size + 1, st.st_mtime_ns)) is False
    assert cache.get(str(rec)) is None
    assert cache.put(str(rec), {"model": {}}, key=(st.st_size, st.st_mtime_ns)) is True


def test_a_damaged_open_list_is_not_a_reason_not_to_start(tmp_path):
    cache = ResultsCache(tmp_path / "cache.sqlite3")
    cache.conn.execute("INSERT INTO open_list VALUES (?, ?)", (0, b"\x00blob"))
    cache.conn.execute("INSERT INTO open_list VALUES (?, ?)", (1, 7))
    cache.conn.execute("INSERT INTO open_list VALUES (?, ?)", (2, "/data/a.wav"))
    assert cache.open_list() == ["/data/a.wav"]


def test_a_missing_file_that_comes_back_is_read_again(window, qtbot, tmp_path):
    (rec,) = write_recordings(tmp_path / "rec", n=1)
    view = window.review
    view.list_remembered([str(rec)], missing=[str(rec)])  # its drive was not mounted at start
    assert view.model.entry(str(rec)).status == fl.MISSING
    view.open_paths([str(rec)])
    assert view.model.entry(str(rec)).status != fl.MISSING
    qtbot.waitUntil(lambda: view.model.entry(str(rec)).duration_s is not None, timeout=10000)


def test_a_redraw_of_the_same_recording_keeps_playback_where_it_is(window, qtbot, tmp_path):
    view = _shown(qtbot, window, write_recordings(tmp_path / "rec", n=1, seconds=6.0)[0])
    view.player.seek(3.0)
    with qtbot.waitSignal(view.displayed, timeout=10000):
        view._load_current()  # what a new model's spectrogram settings do
    assert view.player.position() == pytest.approx(3.0, abs=0.05)


def test_window_arguments_are_paths_or_said():
    from lungapp.gui.app import window_paths

    assert window_paths(["a.wav", "--", "-3dB.flac"]) == ["a.wav", "-3dB.flac"]
    assert window_paths(["--bogus-option"]) is None
