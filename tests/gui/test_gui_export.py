"""Export CSV (issue #29, item 10, the GUI side): the dialog starts outside the data
folders (the app's exports folder), and saving among the listed recordings asks first (a
CSV there makes train / evaluate read the folder as a CSV layout)."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.gui

from test_gui_review import write_recordings  # noqa: E402


def test_export_defaults_outside_data_and_asks_before_writing_into_it(window, qtbot, tmp_path, monkeypatch):
    from lungapp import paths
    from lungapp.gui import review_view

    data = tmp_path / "data"
    paths_ = write_recordings(data, n=2, seconds=2.0)
    view = window.review
    view._remember_folder(str(data))           # the last opened folder: the data folder
    window.open_paths([str(p) for p in paths_])
    offered = []
    answer = {"target": str(data / "results.csv")}
    monkeypatch.setattr(review_view.QFileDialog, "getSaveFileName",
                        lambda parent, title, start, filt: (offered.append(start), (answer["target"], filt))[1])
    asked = []
    monkeypatch.setattr(review_view, "ask_export_into_data", lambda parent, target: asked.append(target) or False)
    view.export_dialog()
    assert os.path.dirname(offered[0]) == str(paths.exports_dir())   # not the data folder
    assert asked == [str(data / "results.csv")] and not (data / "results.csv").exists()
    answer["target"] = str(tmp_path / "elsewhere" / "results.csv")
    (tmp_path / "elsewhere").mkdir()
    view.export_dialog()
    assert len(asked) == 1 and (tmp_path / "elsewhere" / "results.csv").is_file()
    view.export_dialog()                          # the next export starts where the last went
    assert os.path.dirname(offered[-1]) == str(tmp_path / "elsewhere")
