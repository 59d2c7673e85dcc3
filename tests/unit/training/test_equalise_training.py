"""``lungapp train --equalise``: the recordings' target measured on the training folder,
the windows made of the equalised recordings, the card carrying it, a fine-tune keeping it,
and an ensemble refusing members that read their recordings differently."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_train import TINY_FC, tiny_options  # noqa: E402

from lungapp.audio import load_audio
from lungapp.data import read_folder
from lungapp.errors import LungappError
from lungapp.inference.card import load_card
from lungapp.inference.equalise import Equalisation, fit_equalisation
from lungapp.inference.features import windows_from_samples
from lungapp.inference.profile import BAND_EDGES_HZ
from lungapp.inference.quality import mean_spectrum
from lungapp.training.dataset import _windows, fit_training_equalisation

from train_helpers import binary_dataset  # noqa: E402

TILT = [3.0 * (i - 4.5) for i in range(10)]


def test_the_target_is_the_training_recordings_mean_and_unreadable_files_pass(tmp_path):
    data = binary_dataset(tmp_path / "d", n_patients=3, per_class=1, seconds=3.0)
    (data / "broken.wav").write_bytes(b"not audio")
    examples = read_folder(data).examples
    eq = fit_training_equalisation(examples, tiny_options(equalise=True), should_stop=lambda: False,
                                   root=str(data))
    spectra = [mean_spectrum(load_audio(e.path, rate=4000).samples, 4000)
               for e in examples if not e.path.endswith("broken.wav")]
    assert eq == fit_equalisation(spectra, source="the training folder d") and eq.recordings == 6


def test_a_folder_whose_levels_cannot_be_measured_is_named(tmp_path):
    import soundfile as sf

    from lungapp.errors import DatasetError

    data = tmp_path / "quiet"
    data.mkdir()
    for i in range(2):
        sf.write(data / f"P{i}_6.0_0_p1_01.wav", np.zeros(4000 * 3, dtype=np.float32), 4000)
        (data / f"P{i}_6.0_0_p1_01.json").write_text('{"record_annotation": "Normal"}')
    with pytest.raises(DatasetError, match="no recording's band levels") as exc:
        fit_training_equalisation(read_folder(data, "sprsound").examples, tiny_options(equalise=True),
                                  should_stop=lambda: False, root=str(data))
    assert str(data) in str(exc.value)


def test_training_windows_are_made_of_the_equalised_recording(tmp_path):
    data = binary_dataset(tmp_path / "d", n_patients=1, per_class=1, seconds=3.0)
    ex = read_folder(data).examples[0]
    eq = Equalisation(list(BAND_EDGES_HZ), TILT)
    X, starts, dur, _, spectrum = _windows(ex, tiny_options(device_shift=False), eq)
    x = load_audio(ex.path, rate=TINY_FC.rate).samples
    np.testing.assert_array_equal(X, windows_from_samples(eq.apply(x, TINY_FC.rate), TINY_FC)[0])
    # the spectrum kept for the input profile is the recording's own
    np.testing.assert_array_equal(spectrum[0], mean_spectrum(x, TINY_FC.rate)[0])
    plain, *_ = _windows(ex, tiny_options(device_shift=False))
    assert not np.allclose(plain, X)


def test_an_ensemble_refuses_members_that_read_recordings_differently(tmp_path):
    from lungapp.inference.registry import bundled_model_dir
    from lungapp.training.combine import check_members

    card = load_card(bundled_model_dir())
    other = dataclasses.replace(card, equalisation=Equalisation(list(BAND_EDGES_HZ), TILT))
    with pytest.raises(LungappError, match="member differs .* in equalisation"):
        check_members([card, other], [tmp_path / "a", tmp_path / "b"], one_model=False)


@pytest.mark.slow
def test_a_run_with_equalise_carries_its_target_and_a_fine_tune_keeps_it(tmp_path):
    from lungapp.cli.train import EXIT_OK, main
    from lungapp.inference.predictor import Predictor
    from lungapp.training.train import train

    data = binary_dataset(tmp_path / "d", n_patients=4, per_class=2, seconds=3.0)
    out = tmp_path / "m"
    train(data, out, tiny_options(epochs=1, device_shift=False, equalise=True))
    card = load_card(out)
    assert card.equalisation is not None and card.equalisation.recordings == 16
    assert card.training.options["equalise"] is True
    from lungapp.training.card_text import card_markdown

    assert card_markdown(card).count("## Equalised input") == 1
    pred = Predictor.load(out)
    assert 0 <= pred.predict_file(next(data.glob("*.wav"))).abnormal_probability <= 1
    # a fine-tune keeps the starting model's target, measured on other recordings
    clinic = binary_dataset(tmp_path / "c", n_patients=4, per_class=1, seconds=3.0, seed=5)
    adapted = tmp_path / "adapted"
    assert main([str(clinic), "--out", str(adapted), "--init-from", str(out), "--folds", "2",
                 "--epochs", "1", "--batch-size", "8", "--no-device-shift", "--progress", "none"]) == EXIT_OK
    assert load_card(adapted).equalisation == card.equalisation
