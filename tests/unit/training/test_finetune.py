"""Fine-tuning (``lungapp train --init-from``): a real short run starting from the tiny
model, the card and the comparison with the starting model, and the refusals of a model
that does not fit the recipe."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lungapp.cli.train import EXIT_OK, EXIT_USAGE, main
from lungapp.errors import LungappError
from lungapp.inference.card import load_card
from lungapp.inference.registry import bundled_model_dir
from lungapp.training.finetune import load_start, pick_member
from lungapp.training.recipes import TrainOptions

from train_helpers import make_dataset  # noqa: E402

LABELS = ["Normal", "CAS", "DAS", "CAS & DAS"]
QUICK = ["--folds", "2", "--epochs", "1", "--steps-per-epoch", "3", "--batch-size", "8",
         "--no-device-shift", "--progress", "none"]


@pytest.fixture(scope="module")
def clinic_folder(tmp_path_factory):
    """Six patients, each with one recording of each class (3 s, 4 kHz: the tiny model's rate)."""
    return make_dataset(tmp_path_factory.mktemp("clinic"), {f"P{i}": LABELS for i in range(6)},
                        seconds=3.0)


@pytest.fixture
def card_only_model(tmp_path):
    """A model folder whose card is the tiny model's (4 classes, softmax, 24 mel bands) and
    whose model file is never loaded: a refusal happens before any model is read."""
    from lungapp.inference.card import FOUR_CLASSES, ModelCard, write_card
    from lungapp.inference.features import FeatureConfig, SpectrogramConfig

    folder = tmp_path / "start"
    folder.mkdir()
    (folder / "model.keras").write_bytes(b"")
    fc = FeatureConfig(SpectrogramConfig(rate=4000, win_length=128, hop_length=64, n_fft=128,
                                         scale="mel", n_mels=24), window_s=2.0, hop_s=1.0)
    write_card(folder, ModelCard(name="start", version="1", task="4class",
                                 classes=list(FOUR_CLASSES), features=fc,
                                 model_files=["model.keras"], threshold=0.5))
    return folder


def _kernels(model) -> list[np.ndarray]:
    return [w.numpy() for w in model.weights if w.path.endswith("kernel")]


@pytest.mark.slow
def test_fine_tuned_run_starts_from_the_model_and_compares_with_it(tiny_model_dir, clinic_folder,
                                                                   tmp_path, capsys):
    from lungapp.evaluation.metrics import binary_metrics
    from lungapp.inference.predictor import Predictor, load_keras_model

    out = tmp_path / "adapted"
    # A learning rate so small that the fold models keep the starting weights: their
    # kernels must be the tiny model's (random initial weights would be far from them).
    code = main([str(clinic_folder), "--out", str(out), "--init-from", str(tiny_model_dir),
                 "--finetune-lr", "1e-7", "--pooling", "max", *QUICK])
    assert code == EXIT_OK
    card = load_card(out)
    start = load_keras_model(tiny_model_dir / "model.keras")
    for fold in ("fold1.keras", "fold2.keras"):
        for a, b in zip(_kernels(load_keras_model(out / fold)), _kernels(start), strict=True):
            np.testing.assert_allclose(a, b, atol=1e-4)
    # the recipe took the starting model's task, outputs and features
    assert (card.task, card.output_kind, card.features) == ("4class", "softmax",
                                                           load_card(tiny_model_dir).features)
    opts = card.training.options
    assert opts["init_from"] == str(tiny_model_dir) and opts["finetune_lr"] == 1e-7
    assert "fine-tuned from tiny-test-model" in card.description
    # the threshold is chosen again on the out-of-fold predictions (the tiny model's is 0.5)
    # (stored on the calibrated scale the app shows, where the card has a calibration)
    assert card.threshold == pytest.approx(card.calibrate(card.metrics.threshold))
    assert "out-of-fold" in card.threshold_rule

    comp = card.metrics.start_comparison
    assert comp.start["name"] == "tiny-test-model" and comp.start["member"] == "model.keras"
    assert comp.adapted_overall.to_dict() == card.metrics.overall.to_dict()
    # the starting model's figures are the app's own predictions on the same 24 recordings
    predictor = Predictor.load(tiny_model_dir)
    files = sorted(clinic_folder.glob("*.wav"))
    y = [0 if json.loads(f.with_suffix(".json").read_text())["record_annotation"] == "Normal"
         else 1 for f in files]
    p = [predictor.predict_file(f).abnormal_probability for f in files]
    want = binary_metrics(np.array(y), np.array(p), 0.5)
    got = comp.start_overall
    assert got.n == 24 and got.confusion == want["confusion"]
    assert got.auc == pytest.approx(want["auc"])
    assert [f["n"] for f in comp.per_fold] == [f["n_test"] for f in card.training.cv.folds]
    assert comp.start_recalibrated.n == 24 and comp.adapted_recalibrated.n == 24
    # the tiny model has one member, read on the same windows and pooled by the same rule
    # (its card's "max", given as --pooling): alone it scores as the app does
    assert comp.start_member_recalibrated.auc == pytest.approx(got.auc)
    assert [f["start_member_auc"] for f in comp.per_fold] == pytest.approx(
        [f["start_auc"] for f in comp.per_fold])
    # the card's text shows the comparison
    from lungapp.training.card_text import card_markdown

    text = card_markdown(card)
    assert "## Fine-tuned from" in text and "| starting model, its own threshold | " in text
    # and the summary says both, on one line
    err = capsys.readouterr().err
    assert "starting model tiny-test-model AUC" in err and "; adapted AUC" in err
    assert "(its member model.keras alone: AUC" in err


@pytest.mark.parametrize("extra, words", [
    (["--task", "binary"], "task differs: the starting model is 4class, the run binary"),
    (["--outputs", "flags"], "outputs differ: the starting model has softmax"),
    (["--features", json.dumps({"spectrogram": {"rate": 4000, "win_length": 128, "hop_length": 64,
                                                "n_fft": 128, "scale": "mel", "n_mels": 32},
                                "window_s": 2.0, "hop_s": 1.0})],
     "features differ from its member model.keras: spectrogram n_mels 32 vs 24"),
    (["--equalise"], "input differs: the starting model reads recordings as they are, the run "
                     "equalises them"),
])
def test_a_model_that_does_not_fit_is_refused_in_one_line(card_only_model, clinic_folder, tmp_path,
                                                          capsys, extra, words):
    out = tmp_path / "adapted"
    code = main([str(clinic_folder), "--out", str(out), "--init-from", str(card_only_model),
                 *QUICK, *extra])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0] and str(card_only_model) in err[0]
    assert not out.exists()


def test_a_missing_starting_model_is_refused(clinic_folder, tmp_path, capsys):
    code = main([str(clinic_folder), "--out", str(tmp_path / "m"), "--init-from",
                 str(tmp_path / "nowhere"), *QUICK])
    assert code == EXIT_USAGE
    assert "nowhere: model folder not found" in capsys.readouterr().err


@pytest.mark.slow
def test_an_active_model_whose_folder_is_gone_is_said_not_silently_replaced(clinic_folder, tmp_path,
                                                                            capsys):
    from lungapp import settings

    settings.set("active_model", str(tmp_path / "gone"))
    main([str(clinic_folder), "--out", str(tmp_path / "m"), "--init-from", "active", *QUICK])
    err = capsys.readouterr().err
    assert f"{tmp_path / 'gone'}: the active model's folder is missing; using the bundled model" in err


def test_the_library_refuses_before_reading_the_folder(card_only_model, tmp_path):
    from lungapp.training.train import train

    opts = TrainOptions.from_preset("recommended", task="binary", init_from=str(card_only_model))
    with pytest.raises(LungappError, match="task differs"):
        train(tmp_path / "no-such-folder", tmp_path / "out", opts)


def test_the_member_reading_the_recipes_window_is_chosen():
    folder = bundled_model_dir()
    if folder is None:
        pytest.skip("no bundled model in this copy")
    card = load_card(folder)
    assert pick_member(card, 2.0)[1] == "model_1.keras"
    assert pick_member(card, 4.0)[1] == "model_2.keras"
    opts = TrainOptions.from_preset("bundled-4s", task="4class", init_from="bundled")
    start = load_start("bundled", opts)
    assert start.member == "model_2.keras" and start.features.window_s == 4.0
    # the recommended recipe's spectrogram (32-ms frames) is not the bundled model's (16 ms)
    with pytest.raises(LungappError, match="spectrogram win_length 256 vs 128"):
        load_start("bundled", TrainOptions.from_preset("recommended", task="4class"))
