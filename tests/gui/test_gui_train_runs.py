"""The Train tab's second run and its errors (issue #29, items 11-12): an existing "Save
model to" folder gets a fresh name or is replaced (asked first), and a failure is said in
the form's words, pointing at the field, never with a CLI flag."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.gui

from test_gui_train import configure  # noqa: E402

from lungapp.gui import train_view  # noqa: E402

from train_helpers import binary_dataset  # noqa: E402


@pytest.fixture
def train_window(qtbot):
    from lungapp.gui import workers
    from lungapp.gui.app import create_window

    win = create_window([], load_model=False)
    qtbot.addWidget(win)
    qtbot.waitExposed(win)
    win.tabs.setCurrentWidget(win.train)
    yield win
    win.close()
    workers.wait_all(5000)


def test_cli_flags_become_the_forms_fields():
    text, fields = train_view.gui_terms(
        "class(es) with fewer examples than the 10 folds: CAS (6); add recordings or use fewer folds (--folds)")
    assert "--" not in text and "(the “Cross-validation folds” field)" in text
    assert fields == ["Cross-validation folds"]
    text, fields = train_view.gui_terms("output folder already exists and is not empty (use --overwrite "
                                        "to replace it once the new model is complete)")
    assert "--" not in text and "“Save model to”" in text and fields == ["Save model to"]
    text, fields = train_view.gui_terms("this folder holds spectrogram images: image models need "
                                        "resized features (use --preset seed)")
    assert "--" not in text and "choose the seed preset in “Preset”" in text and fields == ["Preset"]


def test_no_model_message_names_the_windows_places_not_cli_commands(monkeypatch):
    from lungapp.errors import LungappError
    from lungapp.gui import context
    from lungapp.inference import registry

    monkeypatch.delenv("LUNGAPP_MODEL", raising=False)
    monkeypatch.setattr(registry, "bundled_model_dir", lambda: None)
    with pytest.raises(LungappError) as info:
        registry.active_model_dir()
    text = context.gui_terms(str(info.value))
    assert "`lungapp" not in text and "Train tab" in text and "Analysis > Models" in text


def test_existing_model_folder_asks_then_a_failure_points_at_the_field(train_window, qtbot, tmp_path, monkeypatch):
    data = binary_dataset(tmp_path / "data", n_patients=3, per_class=2, seconds=2.0)
    out = tmp_path / "model"
    out.mkdir()
    (out / "card.json").write_text("{}")          # the previous run's model
    view = train_window.train
    configure(view, data, out, folds=10)
    answers = iter(["cancel", "new"])
    monkeypatch.setattr(train_view, "ask_existing_out", lambda parent, path: next(answers))
    assert not view.start() and not view.running  # cancelled: nothing started
    with qtbot.waitSignal(view.trainingFinished, timeout=300000) as sig:
        assert view.start()
    assert view.out.text() == str(tmp_path / "model-2")
    assert f"--out {tmp_path / 'model-2'}" in view.log.toPlainText().splitlines()[0]
    event = sig.args[1]
    assert event.event == "error" and "--folds" in event.message   # the CLI's words ...
    assert "--folds" not in view.stage.text() and "--folds" not in view.summary.text()
    assert "Cross-validation folds" in view.stage.text()            # ... the form's words
    assert "border" in view.folds.styleSheet() and train_window.focusWidget() is view.folds
    assert (out / "card.json").read_text() == "{}"                  # the old model untouched


def test_replace_passes_overwrite(train_window, tmp_path, monkeypatch):
    out = tmp_path / "model"
    out.mkdir()
    (out / "card.json").write_text("{}")
    data = tmp_path / "data"
    data.mkdir()
    view = train_window.train
    configure(view, data, out)
    monkeypatch.setattr(train_view, "ask_existing_out", lambda parent, path: "replace")
    started = []
    monkeypatch.setattr(view, "_make_process", lambda: started.append(1) or _NoProcess())
    assert view.start()
    line = view.log.toPlainText().splitlines()[0]
    assert f"--out {out}" in line and line.endswith("--overwrite")
    view._set_running(False)
    view.proc = None


class _NoProcess:
    """Stands in for QProcess where only the command line matters."""

    def start(self, program, args):
        self.args = args


def test_start_from_the_active_model_passes_init_from_and_shows_the_comparison(
        train_window, tmp_path, monkeypatch):
    from lungapp.training import progress as P

    data = tmp_path / "data"
    data.mkdir()
    view = train_window.train
    configure(view, data, tmp_path / "model")
    assert "--init-from" not in view.form.value().command()[1]        # a new model by default
    form = view.form
    assert form.start_help.text() == train_view.START_HELP
    form.start_from.setCurrentIndex(form.start_from.findData("active"))
    form.start_from.activated.emit(form.start_from.currentIndex())   # as a user's choice
    model_task = train_view._active_card_task()
    assert model_task and view.task.currentData() == model_task      # the task fine-tuning keeps
    monkeypatch.setattr(view, "_make_process", lambda: _NoProcess())
    assert view.start()
    line = view.log.toPlainText().splitlines()[0]
    assert line.endswith(f"--task {model_task} --folds 2 --epochs 2 --init-from active")
    assert view.settings.value("train/start") == "active"            # remembered for next time
    fig = {"auc": 0.61, "sensitivity": 1.0, "specificity": 0.1, "score": 0.55,
           "confusion": [[1, 9], [0, 10]]}
    view.handle_event(P.Done(out=str(tmp_path / "model"), wall_s=3.0, threshold=0.4,
                             metrics={**fig, "auc": 0.9, "accuracy": 0.8},
                             start_comparison={"model": "bundled", "member": "model_1.keras",
                                               "start": fig, "adapted": {**fig, "auc": 0.9}}))
    text = view.summary.text()
    assert "Fine-tuned" in text and "starting model bundled AUC 0.610" in text
    assert "adapted AUC 0.900" in text and "TN 1 FP 9" in text
    view._set_running(False)
    view.proc = None


def test_a_refused_starting_model_points_at_the_start_from_field():
    text, fields = train_view.gui_terms(
        "/m: cannot fine-tune this model: task differs: the starting model is 4class, the run "
        "binary (use --task 4class)")
    assert fields == ["Task"] and "--" not in text
    text, fields = train_view.gui_terms("--init-from bundled: this installation has no bundled model")
    assert fields == ["Start from"] and "“Start from”" in text


def test_equalise_is_passed_for_a_new_model_remembered_and_not_offered_to_a_fine_tune(
        train_window, tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    view = train_window.train
    configure(view, data, tmp_path / "model")
    form = view.form
    assert not form.equalise.isChecked() and "--equalise" not in form.value().command()[1]
    assert form.equalise.toolTip() == train_view.EQUALISE_HELP
    form.equalise.setChecked(True)
    monkeypatch.setattr(view, "_make_process", lambda: _NoProcess())
    assert view.start()
    assert view.log.toPlainText().splitlines()[0].endswith("--epochs 2 --equalise")
    assert train_view.TrainSettings.load(view.settings).equalise is True   # remembered
    view._set_running(False)
    view.proc = None
    # fine-tuning keeps the active model's input: the box is not offered, nor passed
    form.start_from.setCurrentIndex(form.start_from.findData("active"))
    assert not form.equalise.isEnabled() and "keeps the active model's" in form.equalise.toolTip()
    assert "--equalise" not in form.value().command()[1]
    # a refusal about it points at the field, whose help comes back afterwards
    text, fields = train_view.gui_terms("/m: cannot fine-tune this model: input differs: the "
                                        "starting model reads recordings as they are, the run "
                                        "equalises them (leave --equalise out)")
    assert fields == ["Input"] and "--" not in text and "untick “Equalise” in “Input”" in text
    form.mark(fields)
    assert "problem" in form.equalise.toolTip()
    form.mark([])
    assert "keeps the active model's" in form.equalise.toolTip()
