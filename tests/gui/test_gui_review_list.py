"""The Review list's housekeeping (issue #29, items 5, 7, 14): remove / clear files with the
context menu or Delete, a folder column, seeking with the arrow keys, a long file name
shortened instead of widening the window, a truncated file said so in the list."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

pytestmark = pytest.mark.gui

from test_gui_review import wait_displayed, write_recordings  # noqa: E402

from lungapp.gui import file_list as fl  # noqa: E402


def _action(menu, starts: str):
    return next(a for a in menu.actions() if a.text().startswith(starts))


def test_remove_and_clear_from_the_context_menu_keep_the_files(window, qtbot, tmp_path):
    paths = write_recordings(tmp_path, n=3, seconds=2.0)
    view = window.review
    window.open_paths([str(p) for p in paths])
    assert view.model.rowCount() == 3
    assert view.model.data(view.model.index(0, fl.FOLDER_COL)) == str(tmp_path)
    view.select(str(paths[1]))
    menu = view.files.context_menu()
    _action(menu, "Remove").trigger()
    menu.close()
    assert [e.name for e in view.model.entries] == ["rec00.wav", "rec02.wav"]
    assert view.current_path != str(paths[1]) and paths[1].exists()
    view.select(str(paths[0]))
    window.activateWindow()
    view.table.setFocus()
    qtbot.waitUntil(view.table.hasFocus, timeout=3000)
    qtbot.keyClick(view.table, Qt.Key.Key_Delete)
    assert [e.name for e in view.model.entries] == ["rec02.wav"]
    _action(view.files.context_menu(), "Clear").trigger()
    assert view.model.rowCount() == 0 and view.current_path is None
    assert view.empty_hint.isVisibleTo(view) and all(p.exists() for p in paths)


def test_context_menus_are_deleted_once_closed(window, qtbot, tmp_path):
    from PySide6.QtWidgets import QMenu

    window.open_paths([str(p) for p in write_recordings(tmp_path, n=1, seconds=2.0)])
    view = window.review
    for owner, menu in ((view.table, view.files.context_menu()), (view.plots, view.plots.context_menu())):
        menu.popup(owner.mapToGlobal(owner.rect().center()))
        qtbot.waitUntil(menu.isVisible, timeout=3000)
        menu.close()
        qtbot.waitUntil(lambda o=owner: not o.findChildren(QMenu), timeout=3000)


def test_arrow_keys_seek(window, qtbot, tmp_path):
    (path,) = write_recordings(tmp_path, n=1, seconds=8.0)
    view = window.review
    window.open_paths([str(path)])
    wait_displayed(qtbot, view)
    qtbot.waitUntil(lambda: view.player.duration > 7.9, timeout=5000)
    window.activateWindow()
    view.table.setFocus()
    qtbot.waitUntil(view.table.hasFocus, timeout=3000)
    qtbot.keyClick(view.table, Qt.Key.Key_Right)
    assert view.player.position() == pytest.approx(1.0, abs=0.01)
    qtbot.keyClick(view.table, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert view.player.position() == pytest.approx(6.0, abs=0.01)
    qtbot.keyClick(view.table, Qt.Key.Key_Left)
    assert view.player.position() == pytest.approx(5.0, abs=0.01)


def test_long_file_name_is_shortened_not_widening_the_window(window, qtbot, tmp_path):
    (path,) = write_recordings(tmp_path, n=1, seconds=2.0)
    long = path.with_name("patient_" + "very_long_recording_name_" * 8 + ".wav")
    path.rename(long)
    view = window.review
    window.resize(1280, 720)
    window.open_paths([str(long)])
    wait_displayed(qtbot, view)
    qtbot.wait(50)
    assert view.title.full_text() == long.name and view.title.toolTip() == str(long)
    shown = view.title.text()
    assert "…" in shown and len(shown) > 5 and shown.startswith("patient_")
    assert window.minimumSizeHint().width() <= 1280


def test_truncated_file_is_marked_in_the_list(window, qtbot, tmp_path):
    (path,) = write_recordings(tmp_path, n=1, seconds=4.0)
    data = path.read_bytes()
    path.write_bytes(data[:44 + (len(data) - 44) // 3])   # the header still says 4 s
    view = window.review
    window.open_paths([str(path)])
    wait_displayed(qtbot, view)
    qtbot.waitUntil(lambda: "⚠" in view.model.data(view.model.index(0, fl.DURATION_COL)), timeout=5000)
    assert "of 4.0 s" in view.model.data(view.model.index(0, fl.DURATION_COL))
    tip = view.model.data(view.model.index(0, fl.DURATION_COL), Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith("truncated: the header says 4.0 s")


def test_a_prediction_saying_truncated_marks_the_row(qtbot):
    """The analysis' own word (Prediction.truncated) marks a row never displayed."""
    from types import SimpleNamespace

    from lungapp.gui.review_view import ReviewView

    m = fl.FileListModel()
    m.add(["/x/a.wav"])
    m.entries[0].duration_s = 6.2
    pred = SimpleNamespace(truncated="truncated: the header says 15.0 s, the file holds 6.2 s",
                           declared_duration_s=15.0)
    ReviewView._note_prediction_truncated(SimpleNamespace(model=m), "/x/a.wav", pred)
    assert m.data(m.index(0, fl.DURATION_COL)) == "6.2 s of 15.0 s ⚠"
    assert m.data(m.index(0, fl.DURATION_COL), Qt.ItemDataRole.ToolTipRole).startswith("truncated")
