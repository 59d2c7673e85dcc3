"""``lungapp train --real-noise``: the noise the recipe adds to training windows is taken
from the folder's own Poor Quality recordings (issue #28's "real noise textures") instead of
white noise: the bank, its refusals, the option's checks, the augmenter using it, and a run
that records it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import soundfile as sf
from test_train import TINY_FC, tiny_options  # noqa: E402

from lungapp.audio import load_audio
from lungapp.data import POOR, read_folder
from lungapp.dsp.spectrogram import spectrogram
from lungapp.errors import DatasetError
from lungapp.training import augment as A
from lungapp.training.dataset import poor_quality_noise
from lungapp.training.recipes import ROBUST_POLICY, TrainOptions

from train_helpers import make_dataset  # noqa: E402

NO_STOP = dict(should_stop=lambda: False)


def _folder(tmp_path, poor_per_patient=1):
    return make_dataset(tmp_path / "d", {f"{100 + i}": ["Normal", "CAS"] + [POOR] * poor_per_patient
                                         for i in range(3)}, seconds=3.0)


def test_the_bank_is_the_poor_quality_recordings_spectrograms(tmp_path):
    data = _folder(tmp_path)
    examples = read_folder(data).examples
    opts = tiny_options(real_noise=True, augment=dict(ROBUST_POLICY))
    bank, n = poor_quality_noise(examples, opts, root=str(data), **NO_STOP)
    poor = sorted(str(e.path) for e in examples if e.label == POOR)
    assert n == len(poor) == 3
    cfg = TINY_FC.spectrogram
    each = [10.0 ** (spectrogram(load_audio(p, rate=cfg.rate).samples, cfg).astype(np.float64) / 10.0)
            for p in poor]
    assert bank.shape == (sum(len(e) for e in each), cfg.n_bins) and bank.dtype == np.float32
    assert any(np.allclose(bank[:len(e)], e, rtol=1e-5) for e in each)   # one of them, whole
    # another seed draws another order of the same recordings; the same seed, the same bank
    other, _ = poor_quality_noise(examples, dataclasses.replace(opts, seed=5), root=str(data), **NO_STOP)
    again, _ = poor_quality_noise(examples, opts, root=str(data), **NO_STOP)
    assert np.array_equal(bank, again) and np.isclose(other.sum(), bank.sum(), rtol=1e-5)


def test_a_folder_without_enough_poor_quality_audio_is_refused_naming_it(tmp_path):
    opts = tiny_options(real_noise=True, augment=dict(ROBUST_POLICY))
    data = _folder(tmp_path, poor_per_patient=0)
    with pytest.raises(DatasetError, match="the folder has none") as exc:
        poor_quality_noise(read_folder(data).examples, opts, root=str(data), **NO_STOP)
    assert str(data) in str(exc.value)
    short = tmp_path / "short"
    make_dataset(short, {"100": ["Normal"], "101": ["CAS"]}, seconds=3.0)
    sf.write(short / "102_6.0_0_p1_09.wav", np.full(2000, 0.1, np.float32), 4000)   # 0.5 s
    (short / "102_6.0_0_p1_09.json").write_text('{"record_annotation": "Poor Quality"}')
    with pytest.raises(DatasetError, match="hold 0.5 s, less than one 2-s window"):
        poor_quality_noise(read_folder(short).examples, opts, root=str(short), **NO_STOP)


def test_the_option_needs_added_noise_and_is_recorded_only_when_set():
    opts = TrainOptions.from_preset("recommended", real_noise=True)
    assert opts.to_dict()["real_noise"] is True
    assert "real_noise" not in TrainOptions.from_preset("recommended").to_dict()
    with pytest.raises(ValueError, match="adds none"):
        dataclasses.replace(opts, augment={**ROBUST_POLICY, "snr_prob": 0.0}).validate()
    with pytest.raises(ValueError, match="adds none"):
        dataclasses.replace(opts, augment=None).validate()


def test_the_augmenter_adds_the_banks_noise_not_white_noise():
    """A bank with power in one band only adds noise in that band only."""
    cfg = TINY_FC.spectrogram
    X = np.full((4, TINY_FC.window_frames, cfg.n_bins, 1), 0.3, np.float32)
    Y = np.zeros((4, 2), np.float32)
    policy = {k: 0 for k in A.DEFAULT_POLICY if k not in ("noise_db", "snr_db", "band_limit_hz")}
    policy.update(snr_prob=1.0, snr_db=[0.0, 0.0])
    bank = np.zeros((500, cfg.n_bins), np.float32)
    bank[:, 7] = 1.0
    out, _ = A.Augmenter(cfg, policy, seed=1, noise_power=bank)(X, Y)
    changed = np.flatnonzero(np.any(out != X, axis=(0, 1, 3)))
    assert changed.tolist() == [7]
    white, _ = A.Augmenter(cfg, policy, seed=1)(X, Y)
    assert np.all(np.any(white != X, axis=(0, 1, 3)))        # white noise reaches every band


@pytest.mark.slow
def test_a_run_with_real_noise_logs_and_records_it(tmp_path):
    from lungapp.inference.card import load_card
    from lungapp.training import progress as P
    from lungapp.training.train import train

    data = make_dataset(tmp_path / "d", {f"{100 + i}": ["Normal", "CAS", POOR] for i in range(4)},
                        seconds=3.0)
    events = []
    train(data, tmp_path / "m", tiny_options(epochs=1, real_noise=True, augment=dict(ROBUST_POLICY)),
          progress=events.append)
    logs = [e.message for e in events if isinstance(e, P.Log)]
    assert any(m.startswith("added noise textured with 4 Poor Quality recordings") for m in logs), logs
    card = load_card(tmp_path / "m")
    assert card.training.options["real_noise"] is True
    assert card.metrics.device_shift.augmentation == "on, its added noise from the folder's Poor Quality recordings"
    with pytest.raises(ValueError, match="adds none"):       # no augmentation, no noise to texture
        train(data, tmp_path / "m2", tiny_options(epochs=1, real_noise=True))
