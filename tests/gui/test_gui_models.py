"""Models in the GUI: results carry the model that made them, a model change marks them
"old model" and Analyse all analyses them again; the Models dialog lists, uses and
restores models, and asks before switching to a much weaker one (issue #29, items 3-4)."""

from __future__ import annotations

import dataclasses
import shutil
from types import SimpleNamespace

import pytest
from PySide6.QtCore import Qt

pytestmark = pytest.mark.gui

from test_gui_review import make_window, write_recordings  # noqa: E402

from lungapp.gui import file_list as fl  # noqa: E402


def model_copy(src, dest, auc: float, recordings: int):
    """A copy of the tiny model whose card reports ``auc`` and ``recordings``."""
    from lungapp.inference.card import load_card, write_card

    shutil.copytree(src, dest)
    card = load_card(dest)
    card = dataclasses.replace(
        card, name=dest.name, metrics={"overall": {"auc": auc, "sensitivity": 0.8, "specificity": 0.85}},
        training={"data": {"n_recordings": recordings, "n_patients": recordings // 5}})
    write_card(dest, card)
    return dest


@pytest.fixture
def strong_and_weak(tiny_model_dir, lungapp_home):
    from lungapp import paths

    root = paths.ensure(paths.models_dir())
    return (model_copy(tiny_model_dir, root / "strong", 0.93, 1772),
            model_copy(tiny_model_dir, root / "weak", 0.78, 55))


def _pred(label, decision, ab, model=None):
    return SimpleNamespace(label=label, decision=decision, abnormal_probability=ab,
                           probabilities={"Normal": 1 - ab, label: ab}, model=model or {})


def test_result_text_says_what_the_percentage_means():
    e = fl.Entry("/x/a.wav", status=fl.DONE, prediction=_pred("CAS", "abnormal", 0.62))
    assert e.result_text() == "CAS · abnormal 62 %"
    e.prediction = _pred("Normal", "normal", 0.2)
    assert e.result_text() == "Normal · abnormal 20 %"
    e.prediction = _pred("Abnormal", "abnormal", 0.7)   # binary model: no "abnormal" twice
    assert e.result_text() == "Abnormal · 70 %"
    e.prediction = _pred("Normal", "normal", 0.2)
    e.prediction.quality = SimpleNamespace(level="warn", reason="noisy recording: interpret with "
                                           "care (noise in parts; noisy: 3.0-5.0 s)")
    assert e.result_text() == "Normal · abnormal 20 % · noisy"     # the tooltip says where
    m = fl.FileListModel()
    m.add(["/x/a.wav"])
    m.update("/x/a.wav", status=fl.DONE, prediction=e.prediction)
    tip = m.data(m.index(0, fl.RESULT_COL), Qt.ItemDataRole.ToolTipRole)
    assert "Quality: noisy recording: interpret with care (noise in parts; noisy: 3.0-5.0 s)" in tip


def test_a_model_retrained_into_the_same_folder_makes_the_old_results_stale(qtbot, tiny_model_dir, tmp_path):
    """Same name, version and folder, another card (retrained with --overwrite, or
    recalibrated): Review showed the old model's cached result as current."""
    import json

    import numpy as np
    import soundfile as sf

    from lungapp.gui.context import AppContext
    from lungapp.inference.predictor import Predictor

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    wav = tmp_path / "a.wav"
    sf.write(wav, (0.1 * np.random.default_rng(0).standard_normal(4 * 8000)).astype(np.float32), 8000)
    ctx = AppContext()
    ctx.set_predictor(Predictor.load(folder))
    pred = ctx.predictor().predict_file(str(wav))
    m = fl.FileListModel()
    m.add([str(wav)])
    m.update(str(wav), status=fl.DONE, prediction=pred)
    assert m.set_current_model(ctx.model_key()) == 0 and m.stale() == []
    card = json.loads((folder / "card.json").read_text())
    card["threshold"] = round(card["threshold"] * 0.9, 6)  # as a recalibration would
    (folder / "card.json").write_text(json.dumps(card))
    before = ctx.predictor().card_digest
    assert ctx.predictor().predict_file(str(wav)).model["card"] == before  # the card it loaded
    ctx.set_predictor(Predictor.load(folder))
    assert ctx.predictor().card_digest != before
    assert ctx.predictor().name == pred.model["name"] and ctx.predictor().model_dir == folder
    assert m.set_current_model(ctx.model_key()) == 1 and m.stale() == [str(wav)]
    # A result kept before results named their card is taken as the folder's model's.
    old = dataclasses.replace(pred, model={k: v for k, v in pred.model.items() if k != "card"})
    m.update(str(wav), prediction=old)
    assert m.set_current_model(ctx.model_key()) == 0 and m.stale() == []


def test_list_marks_results_of_another_model_stale(qtbot):
    m = fl.FileListModel()
    m.add(["/x/a.wav", "/x/b.wav"])
    old = {"name": "m", "version": "1", "path": "/models/m1"}
    m.update("/x/a.wav", status=fl.DONE, prediction=_pred("CAS", "abnormal", 0.6, old))
    m.set_current_model(fl.model_key(old))
    assert m.not_analysed() == ["/x/b.wav"] and m.stale() == []
    assert m.data(m.index(0, fl.STATUS_COL)) == fl.DONE
    assert "Model: m 1" in m.data(m.index(0, fl.RESULT_COL), fl.Qt.ItemDataRole.ToolTipRole)
    n = m.set_current_model(fl.model_key({"name": "m", "version": "1", "path": "/models/other"}))
    assert n == 1 and m.stale() == ["/x/a.wav"]
    assert m.data(m.index(0, fl.STATUS_COL)) == fl.STALE
    assert m.not_analysed() == ["/x/a.wav", "/x/b.wav"]
    assert m.data(m.index(0, fl.FOLDER_COL)) == "/x"


def test_model_change_marks_results_stale_and_analyse_all_redoes_them(
        qtbot, tmp_path, tiny_predictor, strong_and_weak):
    from lungapp.gui import workers
    from lungapp.inference.predictor import Predictor

    win = make_window(qtbot, tiny_predictor)
    view = win.review
    try:
        paths = write_recordings(tmp_path / "recs", n=2, seconds=3.0)
        win.open_paths([str(p) for p in paths])
        view.analyse_all()
        qtbot.waitUntil(lambda: view.model.count(fl.DONE) == 2, timeout=20000)
        win.ctx.set_predictor(Predictor.load(strong_and_weak[0]))
        assert sorted(view.model.stale()) == sorted(map(str, paths))
        assert view.model.data(view.model.index(0, fl.STATUS_COL)) == fl.STALE
        view.analyse_all()
        qtbot.waitUntil(lambda: not view.model.stale() and view.model.count(fl.DONE) == 2, timeout=20000)
        assert all(e.prediction.model["name"] == "strong" for e in view.model.entries)
    finally:
        win.close()
        workers.wait_all(5000)


def test_models_dialog_asks_before_a_much_weaker_model_then_restores_bundled(
        qtbot, monkeypatch, strong_and_weak):
    from lungapp import settings
    from lungapp.gui import models_dialog, workers
    from lungapp.inference.predictor import Predictor
    from lungapp.inference.registry import bundled_model_dir

    strong, weak = strong_and_weak
    win = make_window(qtbot, Predictor.load(strong))
    try:
        dlg = win.show_models()
        names = [r.card.name for r in dlg.rows if r.card is not None]
        assert "strong" in names and "weak" in names
        questions = []
        monkeypatch.setattr(models_dialog, "ask", lambda parent, text: questions.append(text) or False)
        dlg.select_path(weak)
        assert "AUC 0.78" in dlg.details.text()
        assert dlg.use_selected() is False          # the user said no: nothing changes
        assert "0.78" in questions[0] and "0.93" in questions[0] and "55 recordings" in questions[0]
        assert not settings.get("active_model")
        monkeypatch.setattr(models_dialog, "ask", lambda parent, text: True)
        assert dlg.use_selected() is True
        assert settings.get("active_model") == str(weak.resolve())
        qtbot.waitUntil(lambda: win.ctx.model_state() == "ready", timeout=20000)
        assert win.ctx.predictor().card.name == "weak"
        if bundled_model_dir() is None:
            pytest.skip("no bundled model in this copy")
        assert dlg.restore_bundled() is True       # stronger: no question asked
        assert not settings.get("active_model")
        qtbot.waitUntil(lambda: win.ctx.model_state() == "ready", timeout=30000)
        assert win.ctx.predictor().model_dir.resolve() == bundled_model_dir().resolve()
        dlg.close()
    finally:
        win.close()
        workers.wait_all(5000)


def _clinic_folder(root, n_patients: int, noise: float = 0.08):
    """Labelled recordings with patient ids (CSV layout); with ``noise``, of an "other
    stethoscope": broadband noise added to the generated normal and wheeze signals."""
    import csv

    import numpy as np
    import soundfile as sf

    from tiny_model import RATE, make_signal

    rng = np.random.default_rng(5)
    root.mkdir()
    rows = []
    for p in range(n_patients):
        label = "Normal" if p % 2 == 0 else "CAS"
        for k in range(2):
            x = make_signal(label, 4, rng) + noise * rng.normal(0, 1, 4 * RATE).astype(np.float32)
            sf.write(root / f"p{p}_{k}.wav", np.clip(x, -1, 1), RATE)
            rows.append({"file": f"p{p}_{k}.wav", "label": label, "patient": f"P{p}"})
    with open(root / "labels.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", "label", "patient"])
        w.writeheader()
        w.writerows(rows)
    return root


def test_models_dialog_recalibrates_the_selected_model_to_a_clinic_folder(
        qtbot, monkeypatch, tmp_path, strong_and_weak):
    from lungapp import settings
    from lungapp.gui import models_dialog, workers
    from lungapp.inference.card import load_card
    from lungapp.inference.predictor import Predictor
    from lungapp.inference.registry import installed_models

    strong, _ = strong_and_weak
    win = make_window(qtbot, Predictor.load(strong))
    try:
        dlg = win.show_models()
        dlg.select_path(strong)
        assert dlg.recal_btn.isEnabled() and "labelled recordings" in dlg.recal_btn.toolTip()
        # too few recordings: refused in the dialog, naming the folder; nothing installed
        small = _clinic_folder(tmp_path / "small", 4)
        before = set(installed_models())
        assert dlg.start_recalibration(small) is True
        assert not dlg.recal_btn.isEnabled() and not dlg.use_btn.isEnabled()   # busy
        qtbot.waitUntil(lambda: dlg.recal_task is None, timeout=60000)
        assert "Cannot recalibrate" in dlg.details.text() and str(small) in dlg.details.text()
        assert "needs at least 12" in dlg.details.text() and set(installed_models()) == before
        assert dlg.recal_btn.isEnabled()
        # a usable folder: the check's figures are shown, a new model is installed with
        # the same model files and a threshold fitted on the folder; used when the user says so
        questions = []
        monkeypatch.setattr(models_dialog, "ask_use", lambda parent, text: questions.append(text) or True)
        clinic = _clinic_folder(tmp_path / "clinic", 10)
        assert dlg.start_recalibration(clinic) is True
        qtbot.waitUntil(lambda: dlg.recal_task is None, timeout=60000)
        new = set(installed_models()) - before
        assert len(new) == 1, dlg.details.text()
        target = new.pop()
        assert target.name == "strong-recalibrated-clinic"
        card, old = load_card(target), load_card(strong)
        assert card.model_files == old.model_files and card.calibration is not None
        assert "recordings of clinic (lungapp recalibrate)" in card.calibration.fitted_on
        assert "recalibration check" in card.external_checks[-1].name
        text = dlg.details.text()
        assert "model's own threshold:" in text and "recalibrated threshold:" in text
        assert "Installed as strong-recalibrated-clinic" in text
        # the noise makes the model's own threshold call every recording abnormal; the
        # refitted one does better on held-out patients, so the dialog offers it
        check = card.external_checks[-1]
        assert check.score > check.extra["model_threshold_score"]
        assert len(questions) == 1 and "Use it now?" in questions[0]
        assert settings.get("active_model") == str(target.resolve()) and "now in use" in dlg.details.text()
        assert dlg.selected().path == target
        dlg.select_path(strong)
        dlg.select_path(target)     # its figures say what the recalibration changed
        assert f"score {check.score:.3f} at the new threshold" in dlg.details.text()
        assert "Recalibrated: on 20 recordings of held-out patients (clinic)" in dlg.details.text()
        lo, hi = check.extra["gain_interval_90"]
        assert lo <= check.score - check.extra["model_threshold_score"] <= hi
        assert f"(gain {lo:+.3f} to {hi:+.3f}, 90 % interval)" in dlg.details.text()
        qtbot.waitUntil(lambda: win.ctx.model_state() == "ready", timeout=20000)
        # recordings like the model's own: the refitted threshold does no better, so the
        # model is installed but not offered
        questions.clear()
        dlg.select_path(strong)
        plain = _clinic_folder(tmp_path / "plain", 10, noise=0.0)
        assert dlg.start_recalibration(plain) is True
        qtbot.waitUntil(lambda: dlg.recal_task is None, timeout=60000)
        text = dlg.details.text()
        assert "did no better" in text and "not in use" in text and "Installed as strong-recalibrated-plain" in text
        assert not questions and settings.get("active_model") == str(target.resolve())
        dlg.close()
    finally:
        win.close()
        workers.wait_all(5000)


def test_closing_the_models_dialog_cancels_a_recalibration(qtbot, tmp_path, strong_and_weak):
    from lungapp.gui import workers
    from lungapp.inference.predictor import Predictor
    from lungapp.inference.registry import installed_models

    strong, _ = strong_and_weak
    win = make_window(qtbot, Predictor.load(strong))
    try:
        dlg = win.show_models()
        dlg.select_path(strong)
        before = set(installed_models())
        assert dlg.start_recalibration(_clinic_folder(tmp_path / "clinic", 10)) is True
        task = dlg.recal_task
        dlg.close()
        qtbot.waitUntil(lambda: task.is_done, timeout=60000)
        assert task.cancelled and set(installed_models()) == before
    finally:
        win.close()
        workers.wait_all(5000)


def test_one_file_reached_through_a_symbolic_link_is_listed_once(qtbot, tmp_path):
    """A recordings folder opened through a symbolic link, then a recording of it opened
    from the Patients tab (the store keeps real paths), listed the file twice."""
    real = tmp_path / "recordings"
    real.mkdir()
    for name in ("a.wav", "b.wav", "c.wav"):
        (real / name).write_bytes(b"")
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    via = [str(tmp_path / "link" / n) for n in ("a.wav", "b.wav", "c.wav")]
    m = fl.FileListModel()
    assert m.add(via) == via
    assert m.add([str(real / "b.wav"), str(real / "a.wav")]) == []       # the same files
    assert m.paths() == via                                              # as first listed
    assert m.row_of(str(real / "c.wav")) == 2 and m.entry(str(real / "a.wav")).path == via[0]
    m.update(str(real / "b.wav"), status=fl.ERROR, error="x")           # by either path
    assert m.entries[1].status == fl.ERROR
    m.sort(0, Qt.SortOrder.DescendingOrder)                            # by name
    assert m.paths() == via[::-1] and m.row_of(str(real / "a.wav")) == 2
    assert m.relocate(via[2], str(real / "a.wav")) is False             # a.wav is listed
    (real / "d.wav").write_bytes(b"")
    assert m.relocate(str(real / "c.wav"), str(real / "d.wav")) is True
    assert m.row_of(via[2]) == -1 and m.row_of(str(tmp_path / "link" / "d.wav")) == 0
    assert m.remove([str(real / "b.wav")]) == [via[1]]                  # the listed path
    assert m.paths() == [str(real / "d.wav"), via[0]]
    assert m.add([via[1]]) == [via[1]]                                   # listed again
