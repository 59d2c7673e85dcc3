"""The Train tab drives the real ``lungapp train`` CLI in a separate process: live
curves from its JSON lines, cancel = terminate, failures shown, one-click use."""

from __future__ import annotations

from pathlib import Path

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
    win.tabs.setCurrentWidget(win.train)
    yield win
    win.close()
    workers.wait_all(5000)


def configure(view, data, out, folds=2, epochs=2):
    view.folder.setText(str(data))
    view.out.setText(str(out))
    view.preset.setCurrentIndex(view.preset.findData("seed"))
    view.task.setCurrentIndex(view.task.findData("binary"))
    view.folds.setValue(folds)
    view.epochs.setValue(epochs)


@pytest.mark.slow
def test_training_shows_curves_then_model_can_be_used(window, qtbot, tmp_path):
    data = binary_dataset(tmp_path / "data", n_patients=6, per_class=2, seconds=4.0)
    out = tmp_path / "model"
    view = window.train
    configure(view, data, out)
    with qtbot.waitSignal(view.trainingFinished, timeout=600000) as sig:
        assert view.start()
        assert view.cancel_btn.isEnabled() and not view.start_btn.isEnabled()
    folder, event = sig.args
    assert event.event == "done", view.stage.text() + "\n" + view.log.toPlainText()
    assert Path(folder, "card.json").is_file()
    xs, ys = view._curves["loss"]
    # 2 folds x 2 epochs, with a gap (NaN) between the folds' curves
    assert xs == [1, 2, 2.5, 3, 4]
    assert all(y > 0 for i, y in enumerate(ys) if i != 2) and ys[2] != ys[2]
    xs, ys = view._curves["heldout"]  # each fold's held-out AUC at its last epoch
    assert xs == [2, 4] and all(0.0 <= y <= 1.0 for y in ys)
    assert "AUC" in view.summary.text()
    assert view.use_btn.isEnabled()
    view.use_btn.click()
    qtbot.waitUntil(lambda: window.ctx.model_state() != "loading", timeout=120000)
    assert window.ctx.model_state() == "ready", window.ctx.model_message()
    from lungapp import settings

    assert settings.get("active_model") == str(out)


def test_cancel_terminates_the_run_and_writes_nothing(window, qtbot, tmp_path):
    data = binary_dataset(tmp_path / "data", n_patients=6, per_class=2, seconds=4.0)
    out = tmp_path / "model"
    view = window.train
    configure(view, data, out, epochs=50)
    assert view.start()
    qtbot.waitUntil(lambda: view._last_event is not None, timeout=300000)
    with qtbot.waitSignal(view.trainingFinished, timeout=60000):
        view.cancel_btn.click()
    assert "Cancelled" in view.stage.text()
    assert not out.exists()
    assert view.start_btn.isEnabled() and not view.cancel_btn.isEnabled()
    assert window.isVisible()


def test_unusable_folder_is_reported_not_crashed(window, qtbot, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    view = window.train
    configure(view, empty, tmp_path / "model")
    with qtbot.waitSignal(view.trainingFinished, timeout=300000) as sig:
        view.start()
    assert sig.args[1].event == "error" and sig.args[1].kind == "dataset"
    assert view.stage.text().startswith("Training failed:")
    assert str(empty) in view.stage.text()


def test_not_a_folder_is_refused_before_starting(window, tmp_path):
    view = window.train
    configure(view, tmp_path / "missing", tmp_path / "model")
    assert not view.start()
    assert "Not a folder" in view.stage.text()
    assert not view.running


def test_the_train_tab_offers_every_preset(window):
    from lungapp.training.recipes import PRESETS

    combo = window.train.preset
    assert sorted(combo.itemData(i) for i in range(combo.count())) == sorted(PRESETS)
