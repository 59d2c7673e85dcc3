"""The Train tab and the settings files on careless input (a QA pass): a hand-edited
lungapp.ini, a settings.json that cannot be read or written, unreadable audio in the
summary, a summary that must not go stale, the final fit of a "retrain" recipe on the bar,
and a fine-tune that starts from the model the window shows."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytestmark = pytest.mark.gui

from test_gui_train_form import make_window  # noqa: E402

from lungapp import paths, settings  # noqa: E402
from lungapp.gui import train_summary  # noqa: E402
from lungapp.training import progress as P  # noqa: E402

from train_helpers import binary_dataset  # noqa: E402


@pytest.fixture
def close_all():
    from lungapp.gui import workers

    wins = []
    yield wins
    for w in wins:
        w.close()
    workers.wait_all(5000)


def test_a_hand_edited_ini_does_not_stop_the_window_opening(qtbot, close_all):
    ini = paths.config_dir() / "lungapp.ini"
    ini.parent.mkdir(parents=True, exist_ok=True)
    ini.write_text("[train]\nfolds=four\nepochs=\nstart=sometimes\nequalise=maybe\ntask=3class\n")
    win = make_window(qtbot)
    close_all.append(win)
    view = win.train
    assert view.folds.value() == 4 and view.epochs.value() == 0
    assert view.form.start_from.currentData() == "new" and not view.form.equalise.isChecked()


def test_an_unreadable_settings_file_is_said_not_silently_replaced_by_defaults(capsys):
    from lungapp.cli import main
    from lungapp.inference.registry import missing_active_model

    p = paths.settings_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text('{"active_model": "/models/mine"}}')
    (p.parent / "settings.json.bad").write_text("an earlier bad file")
    assert settings.load() == {}
    assert (p.parent / "settings.json.bad").read_text() == "an earlier bad file"  # not overwritten
    assert (p.parent / "settings.json.bad-2").read_text() == '{"active_model": "/models/mine"}}'
    note = missing_active_model()
    assert note and str(p) in note and "settings.json.bad-2" in note and "bundled model" in note
    wav = p.parent / "a.wav"
    sf.write(wav, (0.1 * np.random.default_rng(0).standard_normal(4 * 8000)).astype(np.float32), 8000)
    assert main(["predict", str(wav), "--format", "json"]) == 0
    assert "the settings could not be read" in capsys.readouterr().err
    settings.set("recordings_folder", "/data")  # chosen anew: no longer the defaults
    assert missing_active_model() is None


def test_a_settings_file_that_is_not_an_object_is_kept_aside():
    p = paths.settings_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text('["a list"]')
    settings.set("recordings_folder", "/data")
    assert json.loads((p.parent / "settings.json.bad").read_text()) == ["a list"]
    assert settings.load() == {"recordings_folder": "/data"}


def test_a_setting_that_cannot_be_saved_is_one_line_in_the_window(qtbot, close_all, monkeypatch):
    from lungapp.errors import LungappError
    from lungapp.gui.models_dialog import ModelsDialog
    from lungapp.inference.registry import bundled_model_dir

    def read_only(*a, **k):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(settings, "atomic_write_json", read_only)
    with pytest.raises(LungappError, match="settings.json: cannot save the settings"):
        settings.set("active_model", "/x")
    win = make_window(qtbot)
    close_all.append(win)
    monkeypatch.setattr("lungapp.gui.models_dialog.confirm_switch", lambda *a: True)
    dlg = ModelsDialog(win.ctx, win)
    qtbot.addWidget(dlg)
    assert dlg._activate(bundled_model_dir()) is False
    assert "cannot save the settings (Read-only file system)" in dlg.details.text()
    view = win.train
    view._out = str(bundled_model_dir())
    view.use_btn.setEnabled(True)
    view.use_model()
    assert "cannot save the settings" in view.stage.text() and view.use_btn.isEnabled()


def _bad_audio_folder(tmp_path, bad: int) -> Path:
    data = binary_dataset(tmp_path / "data", n_patients=4, per_class=3, seconds=2.0)
    for wav in sorted(data.glob("*.wav"))[:bad]:
        wav.write_bytes(b"not audio" * 20)
    return data


def test_the_summary_counts_unreadable_audio_as_training_would(tmp_path):
    data = _bad_audio_folder(tmp_path, bad=4)  # 4 of 24: training aborts above 10 %
    sm = train_summary.folder_summary(None, str(data), "binary", 2)
    assert sm["n"] == 20 and sm["duration_s"] == pytest.approx(40.0)
    assert sm["problems"][0].startswith("4 of 24 files cannot be read: more than 10%")
    assert sum("not a supported audio file" in p for p in sm["problems"]) == 4
    sm = train_summary.folder_summary(None, str(_bad_audio_folder(tmp_path / "one", bad=1)), "binary", 2)
    assert sm["n"] == 23 and not any("training would stop" in p for p in sm["problems"])


def test_the_summary_is_not_left_stale_by_a_field_it_does_not_depend_on(qtbot, close_all, tmp_path,
                                                                        monkeypatch):
    import time

    data = binary_dataset(tmp_path / "data", n_patients=3, per_class=2, seconds=2.0)
    real = train_summary.folder_summary

    def slow_summary(*args):  # a big folder: the fields below change while it is read
        time.sleep(1.0)
        return real(*args)

    monkeypatch.setattr(train_summary, "folder_summary", slow_summary)
    win = make_window(qtbot)
    close_all.append(win)
    view = win.train
    view.folder.setText(str(data))
    qtbot.waitUntil(lambda: "Reading the folder" in view.folder_info.text(), timeout=10000)
    view.out.setText(str(tmp_path / "model"))  # typed while the summary is being read
    view.form.equalise.setChecked(True)
    qtbot.waitUntil(lambda: "usable recordings" in view.folder_info.text(), timeout=10000)


def test_the_final_fit_of_a_retrain_recipe_is_on_the_bar(qtbot, close_all):
    win = make_window(qtbot)
    close_all.append(win)
    view = win.train
    view.handle_event(P.Start(folder="f", out="o", task="binary", preset="bundled", arch="lungcnn",
                              folds=2, epochs=2, classes=["Normal", "Abnormal"]))
    for fold in (1, 2):
        for epoch in (1, 2):
            view.handle_event(P.EpochEnd(fold=fold, epoch=epoch, epochs=2, metrics={"loss": 0.5}))
        view.handle_event(P.FoldEnd(fold=fold, folds=2, metrics={"auc": 0.8}))
    view.handle_event(P.EpochEnd(fold="all", epoch=1, epochs=2, metrics={"loss": 0.5}))
    assert (view.progress.value(), view.progress.maximum()) == (5, 6)
    assert view.progress.format() == "final model (all the data), epoch 1/2"
    view._started_at -= 100
    view._show_times()
    assert "left" in view.times.text()


def test_a_fine_tune_starts_from_the_model_the_window_shows(qtbot, close_all, tiny_predictor,
                                                           monkeypatch, tmp_path):
    from PySide6.QtCore import QProcess

    monkeypatch.setenv("LUNGAPP_MODEL", os.fspath(tmp_path))  # what "active" would resolve to
    win = make_window(qtbot, tiny_predictor)
    close_all.append(win)
    view = win.train
    view.folder.setText(str(binary_dataset(tmp_path / "data", n_patients=2, per_class=2, seconds=2.0)))
    view.out.setText(str(tmp_path / "model"))
    view.form.start_from.setCurrentIndex(view.form.start_from.findData("active"))
    started = []

    def fake_process():
        proc = QProcess(view)
        proc.start = lambda program, args: started.append(args)  # never run
        return proc

    monkeypatch.setattr(view, "_make_process", fake_process)
    try:
        view.start()
    finally:
        view.proc = None  # it never ran: nothing to stop at close
        view._set_running(False)
    args = started[0]
    assert args[args.index("--init-from") + 1] == os.fspath(tiny_predictor.model_dir)


def test_a_typed_home_folder_is_expanded(qtbot, close_all, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    data = binary_dataset(tmp_path / "data", n_patients=3, per_class=2, seconds=2.0)
    win = make_window(qtbot)
    close_all.append(win)
    view = win.train
    view.folder.setText("~/data")
    assert view.form.value().folder == str(data)
    qtbot.waitUntil(lambda: "usable recordings" in view.folder_info.text(), timeout=10000)
