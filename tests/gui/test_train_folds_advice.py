"""The Train tab's advice on a folder with too few patients for its folds (under Xvfb, the
real `lungapp train` process, which refuses such a folder before TensorFlow loads): at the
form's minimum of 2 folds it says only what the user can do (add patients), in the folder
summary and when the run stops; above the minimum it still offers fewer folds."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.gui

from train_helpers import binary_dataset  # noqa: E402


@pytest.fixture
def window(qtbot):
    from lungapp.gui import workers
    from lungapp.gui.app import create_window

    win = create_window([], load_model=False)
    qtbot.addWidget(win)
    qtbot.waitExposed(win)
    if not hasattr(win.train, "running"):
        win.close()
        pytest.skip("training is unavailable in this installation")
    win.tabs.setCurrentWidget(win.train)
    yield win
    win.close()
    workers.wait_all(5000)


def configure(view, data, out, folds):
    view.folder.setText(str(data))
    view.out.setText(str(out))
    view.preset.setCurrentIndex(view.preset.findData("seed"))
    view.task.setCurrentIndex(view.task.findData("binary"))
    view.folds.setValue(folds)
    view.epochs.setValue(1)


def summary_of(qtbot, view) -> str:
    qtbot.waitUntil(lambda: view.last_summary is not None and "Problems" in view.folder_info.text(),
                    timeout=60000)
    return view.folder_info.text()


def test_one_patient_at_the_fewest_folds_is_told_to_add_patients_only(qtbot, window, tmp_path):
    data = binary_dataset(tmp_path / "data", n_patients=1, per_class=3, seconds=2.0)
    view = window.train
    assert view.folds.minimum() == 2
    configure(view, data, tmp_path / "model", folds=2)
    text = summary_of(qtbot, view)
    assert "fewer patients than the 2 folds" in text and "(add patients)" in text
    assert "fewer folds" not in text
    with qtbot.waitSignal(view.trainingFinished, timeout=120000) as sig:
        assert view.start()
    assert sig.args[1].event == "error" and "fewer folds" not in sig.args[1].message  # the CLI's words
    for shown in (view.stage.text(), view.summary.text()):
        assert "(add patients)" in shown and "fewer folds" not in shown
    assert "border" not in view.folds.styleSheet()    # the folds field is not pointed at
    # With folds above the minimum, fewer folds is advice the user can follow.
    view.last_summary = None
    view.folds.setValue(3)
    assert "fewer patients than the 3 folds" in summary_of(qtbot, view)
    assert "(add patients or use fewer folds)" in view.folder_info.text()
