"""The Train tab before and during a run (issue #29, item 13): the folder's summary and an
estimated run time before Start, elapsed and remaining time, the last preset and task
remembered, the active model's task offered, a loss axis in plain numbers, a legend of the
drawn curves only, axes reset for a new run, TensorFlow's stderr chatter kept out."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.gui

from lungapp.gui import train_summary, train_view  # noqa: E402
from lungapp.training import progress as P  # noqa: E402

from train_helpers import binary_dataset  # noqa: E402


def make_window(qtbot, predictor=None):
    from lungapp.gui.app import create_window

    win = create_window([], load_model=False)
    qtbot.addWidget(win)
    if predictor is not None:
        win.ctx.set_predictor(predictor)
    win.tabs.setCurrentWidget(win.train)
    return win


@pytest.fixture
def train_window(qtbot):
    from lungapp.gui import workers

    win = make_window(qtbot)
    yield win
    win.close()
    workers.wait_all(5000)


def test_folder_summary_before_start(train_window, qtbot, tmp_path):
    data = binary_dataset(tmp_path / "data", n_patients=3, per_class=2, seconds=2.0)
    view = train_window.train
    view.task.setCurrentIndex(view.task.findData("binary"))
    view.folds.setValue(4)
    view.folder.setText(str(data))
    qtbot.waitUntil(lambda: "usable recordings" in view.folder_info.text(), timeout=10000)
    text = view.folder_info.text()
    assert "12 usable recordings" in text and "Normal 6" in text and "Abnormal 6" in text
    assert "3 patients" in text and "24 s of audio" in text
    assert "Problems" in text and "4" in text          # 3 patients cannot make 4 folds
    assert "Estimated run time" in text and view.last_estimate > 0
    view.folds.setValue(2)
    qtbot.waitUntil(lambda: "Problems" not in view.folder_info.text()
                    and "usable recordings" in view.folder_info.text(), timeout=10000)
    est2 = view.last_estimate
    view.epochs.setValue(200)   # 5-10x the presets' epochs: a longer estimate
    qtbot.waitUntil(lambda: view.last_estimate is not None and view.last_estimate > est2, timeout=10000)


def test_estimate_and_remaining_time():
    startup = train_summary.STARTUP_S
    # seed: one pass over the windows per epoch, in proportion to the audio
    one_hour = train_summary.estimate_s(3600.0, "seed", 4)
    assert one_hour - startup == pytest.approx(4 * 20 * 3600 * 9 * 60 / (4 * 20) / 19366, rel=1e-6)
    assert train_summary.estimate_s(3600.0, "seed", 4, 40) - startup == pytest.approx(2 * (one_hour - startup))
    assert train_summary.estimate_s(None, "seed", 4) is None
    # recommended: fixed batches per epoch; its reference run, 4 folds x 40 epochs, 21 min
    assert train_summary.estimate_s(None, "recommended", 4) - startup == pytest.approx(21 * 60)
    assert train_summary.estimate_s(60.0, "recommended", 2, 6) - startup == pytest.approx(2 * 6 * 21 * 60 / 160)
    # bundled: the folds and the final model, 5 x 40 epochs in about 33 min
    assert train_summary.estimate_s(None, "bundled", 4) - startup == pytest.approx(33 * 60)
    assert train_summary.remaining_s(100.0, 5, 20) == pytest.approx(300.0)
    assert train_summary.remaining_s(100.0, 0, 20) is None
    assert train_summary.fmt_span(3900) == "1 h 05 min"


def test_elapsed_and_remaining_shown_while_running(train_window):
    view = train_window.train
    view._started_at = time.monotonic() - 120
    view.progress.setRange(0, 8)
    view.progress.setValue(2)
    view.progress.setFormat("fold 1, epoch 2/4")
    view._show_times()
    assert view.times.text() == "Elapsed 2 min · about 6 min left"


def test_preset_and_task_remembered_and_task_follows_the_model(qtbot, tiny_predictor):
    from lungapp.gui import workers

    win = make_window(qtbot, tiny_predictor)         # a 4-class model is active
    view = win.train
    assert view.task.currentData() == tiny_predictor.card.task == "4class"
    view.preset.setCurrentIndex(view.preset.findData("seed"))
    i = view.task.findData("binary")
    view.task.setCurrentIndex(i)
    view.task.activated.emit(i)                       # as a user's pick
    win.close()
    workers.wait_all(5000)
    win = make_window(qtbot, tiny_predictor)
    view = win.train
    assert view.preset.currentData() == "seed"
    assert view.task.currentData() == "binary"        # the user's choice beats the model's
    win.close()
    workers.wait_all(5000)


def test_loss_axis_plain_numbers_legend_of_drawn_curves_and_axes_reset(train_window, qtbot):
    plot = train_window.train.plot
    for epoch, loss in enumerate((0.75, 0.55, 0.35), 1):
        plot.add_epoch(P.EpochEnd(fold=1, epoch=epoch, epochs=3, metrics={"loss": loss}))
    plot.add_fold(P.FoldEnd(fold=1, folds=1, metrics={"auc": 0.8}))
    qtbot.wait(50)
    axis = plot.loss_plot.getAxis("left")
    assert axis.autoSIPrefixScale == 1.0 and "x0.001" not in axis.labelString()
    loss_names = [label.text for _, label in plot.legends["loss"].items]
    assert loss_names == ["training loss"]            # no validation loss: none drawn
    assert [label.text for _, label in plot.legends["auc"].items] == ["held-out fold AUC"]
    assert plot.loss_plot.viewRange()[0][1] >= 3
    plot.reset()                                       # a new (or failed) run
    qtbot.wait(50)
    assert plot.loss_plot.viewRange()[0][1] < 2 and not plot.legends["loss"].items


def test_tensorflow_noise_stays_out_of_the_log():
    noise = ["I0000 00:00:1796472322.754774   29943 port.cc:153] oneDNN custom operations are on.",
             "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
             "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild"]
    assert all(train_view.is_tf_noise(line) for line in noise)
    assert not train_view.is_tf_noise("lungapp train: /data: no usable labelled recordings")
    assert not train_view.is_tf_noise("Traceback (most recent call last):")
