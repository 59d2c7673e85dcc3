"""The Models dialog and Review's player on odd input: a card whose recalibration check
has odd figures, model names holding markup, a card.json whose number Python refuses, a
listening band a low-rate recording cannot take, and Space after "Play selection". A real
X server."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PySide6.QtCore import Qt
from test_gui_models import model_copy, strong_and_weak  # noqa: F401  (a fixture)
from test_gui_review import make_window

pytestmark = pytest.mark.gui


def _edit_card(folder, edit) -> None:
    card = json.loads((folder / "card.json").read_text())
    edit(card)
    (folder / "card.json").write_text(json.dumps(card))


def test_a_recalibration_check_with_odd_figures_shows_the_models_own(qtbot, strong_and_weak):  # noqa: F811
    # "model_threshold_score": null was a TypeError in the selection slot, and the pane
    # kept the previously selected model's figures beside the new row.
    from lungapp.gui import workers
    from lungapp.inference.predictor import Predictor

    strong, weak = strong_and_weak
    _edit_card(weak, lambda c: c.setdefault("external_checks", []).append(
        {"name": "clinic: recalibration check", "command": "lungapp recalibrate clinic", "n": 20,
         "n_abnormal": 10, "n_normal": 10, "auc": 0.8, "sensitivity": 0.8, "specificity": 0.7, "score": 0.75,
         "model_threshold_score": None, "gain_interval_90": ["a", "b"]}))
    win = make_window(qtbot, Predictor.load(strong))
    try:
        dlg = win.show_models()
        dlg.select_path(strong)
        dlg.select_path(weak)
        text = dlg.details.text()
        assert "AUC 0.78" in text and "AUC 0.93" not in text
        assert "its card does not give the check's scores" in text
        dlg.close()
    finally:
        win.close()
        workers.wait_all(5000)


def test_markup_in_a_model_name_is_shown_as_written(qtbot, strong_and_weak):  # noqa: F811
    # The name of a model recalibrated on a folder "icu <b>north</b> <!--" hid its figures
    # (the details) and the recording's line (the result panel): labels took it as HTML.
    from lungapp.gui import workers
    from lungapp.inference.predictor import Predictor

    strong, weak = strong_and_weak
    _edit_card(weak, lambda c: c.update(name="icu <b>north</b> <!--"))
    win = make_window(qtbot, Predictor.load(strong))
    try:
        dlg = win.show_models()
        dlg.select_path(weak)
        assert dlg.details.textFormat() == Qt.TextFormat.PlainText
        assert dlg.details.text().startswith("icu <b>north</b> <!--") or "icu <b>north</b> <!--" in dlg.details.text()
        assert "AUC 0.78" in dlg.details.text()
        dlg.close()
        panel = win.review.result
        assert panel.model.textFormat() == Qt.TextFormat.PlainText
    finally:
        win.close()
        workers.wait_all(5000)


def test_a_card_with_a_number_python_refuses_is_one_unreadable_model(qtbot, tiny_model_dir, lungapp_home, capsys):
    # An integer of 5000 digits: "ValueError: Exceeds the limit (4300 digits)" out of the
    # Models menu (no dialog: every model out of reach) and out of `models list`.
    from lungapp import paths
    from lungapp.cli import main
    from lungapp.gui import workers
    from lungapp.inference.predictor import Predictor

    root = paths.ensure(paths.models_dir())
    good, bad = model_copy(tiny_model_dir, root / "good", 0.9, 100), root / "bad"
    shutil.copytree(tiny_model_dir, bad)
    text = json.dumps(json.loads((bad / "card.json").read_text()))
    (bad / "card.json").write_text(text[:-1] + ', "n_big": ' + "9" * 5000 + "}")
    assert main(["models", "list"]) == 0
    out = capsys.readouterr()
    assert "holds a value that cannot be read" in out.out + out.err and "unexpected error" not in out.err
    win = make_window(qtbot, Predictor.load(good))
    try:
        dlg = win.show_models()
        rows = {r.path.name: r for r in dlg.rows if r.path is not None}
        assert rows["good"].card is not None and rows["bad"].card is None
        assert "holds a value that cannot be read" in rows["bad"].problem
        dlg.close()
    finally:
        win.close()
        workers.wait_all(5000)


def test_a_band_a_low_rate_recording_cannot_take_plays_it_as_recorded():
    # Custom 2500-3000 Hz chosen on a 44.1 kHz file, then a 4 kHz file opened: a
    # ValueError out of set_audio, and nothing to play.
    from lungapp.gui.playback import Player

    p = Player()
    said = []
    p.error.connect(said.append)
    t = np.arange(44100) / 44100
    p.set_audio(np.sin(2 * np.pi * 2700 * t).astype(np.float32), 44100)
    p.set_band((2500.0, 3000.0))
    low = np.sin(2 * np.pi * 300 * np.arange(4000) / 4000).astype(np.float32)
    p.set_audio(low, 4000)
    assert p.has_audio and np.array_equal(p._samples, low)
    assert said and said[-1].startswith("Band-pass not applied to this recording: ")
    p.set_audio(np.sin(2 * np.pi * 2700 * t).astype(np.float32), 44100)   # the band again where it fits
    assert p._band == (2500.0, 3000.0) and np.std(p._samples) > 0.5


def test_space_after_play_selection_plays_on_as_the_button_does(qtbot, tmp_path):
    from test_annotation import _open
    from test_gui_review import write_recordings

    from lungapp.gui import workers

    win = make_window(qtbot)
    try:
        rec = write_recordings(tmp_path, 1)[0]
        view, layer = _open(qtbot, win, rec)
        player = view.player
        layer.select(layer.add(0.5, 0.8))
        played = []
        player.toggle = lambda: played.append(player._range)   # what Space and the button start
        player._range = (4000, 6400)                           # the selection played once
        for press in (lambda: view.space.activated.emit(), lambda: view.files.spacePressed.emit(),
                      lambda: view.play_btn.click()):
            player._range = (4000, 6400)
            press()
        assert played == [None, None, None]
    finally:
        win.close()
        workers.wait_all(5000)
