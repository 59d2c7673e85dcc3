"""Augmentation (signal and spectrogram) and the architectures (safe-mode loadable)."""

from __future__ import annotations

import numpy as np
import pytest

from lungapp.dsp.spectrogram import SpectrogramConfig, normalise, spectrogram
from lungapp.training import augment as A

CFG = SpectrogramConfig(rate=4000, win_length=256, hop_length=128, n_fft=256, scale="mel",
                        n_mels=32, fmin=50.0, fmax=2000.0)


def _spec01(x, cfg=CFG):
    return normalise(spectrogram(x, cfg), cfg)[None, ..., None]


def _noise(seconds=2.0, rate=4000, seed=0, level=0.05):
    return (level * np.random.default_rng(seed).standard_normal(int(seconds * rate))).astype(np.float32)


def test_spectrogram_gain_equals_gain_on_the_signal():
    x = _noise()
    X = _spec01(x)
    got = A.spec_offset_db(X, 6.0, CFG)
    want = _spec01(A.gain(x, 6.0))
    inside = (want > 0.01) & (want < 0.99)
    assert np.max(np.abs(got - want)[inside]) < 1e-3


def test_spectrogram_tilt_matches_filtering_the_signal():
    x = _noise(4.0)
    got = A.spec_offset_db(_spec01(x), A.tilt_offsets_db(1, CFG.n_bins, CFG, [4.0]), CFG)
    want = _spec01(A.eq_tilt(x, 4000, tilt_db_per_octave=4.0))
    # averaged over time, the per-band levels agree (mel bands are wide, so not exactly)
    diff_db = (got.mean(axis=1) - want.mean(axis=1)).ravel()[2:-2] * (CFG.max_db - CFG.min_db)
    assert np.max(np.abs(diff_db)) < 1.5


def test_spectrogram_noise_is_a_power_sum():
    X = np.full((1, 4, 3, 1), 0.5, dtype=np.float32)  # -50 dB everywhere
    out = A.spec_add_noise(X, -50.0, CFG)  # equal power: +3.01 dB
    assert np.allclose(out * 100 - 100, -50 + 10 * np.log10(2), atol=1e-3)


def _band_power(X, cfg=CFG):
    return 10 ** ((cfg.min_db + X[..., 0].astype(np.float64) * (cfg.max_db - cfg.min_db)) / 10)


def test_spectrogram_noise_at_snr_matches_white_noise_on_the_signal():
    rng = np.random.default_rng(1)
    noise = A.white_noise_spectrogram(CFG, seconds=10.0)
    X = _spec01(_noise(2.0))  # a white-noise "signal": 0 dB SNR doubles every band's power
    out = A.spec_noise_snr(X, 0.0, CFG, noise, rng)
    ratio = _band_power(out).mean() / _band_power(X).mean()
    assert 1.8 < ratio < 2.2
    # 10 dB SNR adds a tenth
    ratio10 = _band_power(A.spec_noise_snr(X, 10.0, CFG, noise, rng)).mean() / _band_power(X).mean()
    assert 1.05 < ratio10 < 1.15
    # texture: a tone leaves most bands at the floor; the added noise fluctuates over time
    # there (a constant floor would vanish under per-band normalisation), like real noise
    t = np.arange(8000) / 4000
    tone = _spec01((0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32))
    noisy = A.spec_noise_snr(tone, 20.0, CFG, noise, rng)
    # the same tone plus white noise 20 dB below it, made on the signal
    real = _spec01((0.3 * np.sin(2 * np.pi * 300 * t)
                    + 0.3 / np.sqrt(2) / 10 * rng.standard_normal(8000)).astype(np.float32))
    sd_db = lambda Z: (Z[0, :, -8:, 0] * (CFG.max_db - CFG.min_db)).std(axis=0).mean()  # noqa: E731
    assert tone[0, :, -8:, 0].max() == 0.0 and sd_db(noisy) > 2.0
    assert abs(sd_db(noisy) - sd_db(real)) < 1.5
    level = lambda Z: (Z[0, :, -8:, 0] * (CFG.max_db - CFG.min_db)).mean()  # noqa: E731
    assert abs(level(noisy) - level(real)) < 3.0  # in-band SNR: the tone is all in band here
    with pytest.raises(ValueError, match="do not match"):
        A.spec_noise_snr(np.zeros((1, 8, 5, 1), np.float32), 0.0, CFG, noise, rng)


def test_spectrogram_band_limit_floors_above_each_cutoff():
    X = np.full((2, 3, CFG.n_bins, 1), 0.6, dtype=np.float32)
    out = A.spec_band_limit(X, [1000.0, 1500.0], CFG)
    f = CFG.frequencies()
    assert np.all(out[0][:, f > 1000] == 0) and np.all(out[0][:, f <= 1000] == 0.6)
    assert np.all(out[1][:, f > 1500] == 0) and np.all(out[1][:, f <= 1500] == 0.6)
    assert np.all(X == 0.6)  # the input is not modified


def test_augmenter_noise_and_band_limit_policy():
    X = _spec01(_noise(2.0)).repeat(6, axis=0)
    Y = np.zeros((6, 2), np.float32)
    policy = {k: 0 for k in A.DEFAULT_POLICY if k not in ("noise_db", "snr_db", "band_limit_hz")}
    on = A.Augmenter(CFG, {**policy, "snr_prob": 1.0, "band_limit_prob": 1.0}, seed=3)
    out, _ = on(X, Y)
    assert not np.allclose(out, X) and np.all(out[:, :, CFG.frequencies() > 1999] == 0)
    again, _ = A.Augmenter(CFG, {**policy, "snr_prob": 1.0, "band_limit_prob": 1.0}, seed=3)(X, Y)
    assert np.array_equal(out, again)
    off, _ = A.Augmenter(CFG, policy, seed=3)(X, Y)
    assert np.array_equal(off, X)


def test_masks_roll_mixup():
    rng = np.random.default_rng(0)
    X = rng.random((8, 40, 32, 1), dtype=np.float32)
    M = A.time_freq_masks(X, rng, time_masks=1, freq_masks=1, max_time_frac=0.25, max_freq_frac=0.25)
    assert M.shape == X.shape and not np.array_equal(M, X)
    assert np.array_equal(np.sort(A.time_roll(X, rng).ravel()), np.sort(X.ravel()))
    Y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, 8)]
    Xm, Ym = A.mixup(X, Y, rng, 0.4)
    assert np.allclose(Ym.sum(axis=1), 1) and Ym.min() >= 0
    assert np.all(Ym.max(axis=1) >= 0.5 - 1e-6)
    assert Xm.min() >= 0 and Xm.max() <= 1


def test_seed_image_augment_is_mild_and_identity_without_range():
    rng = np.random.default_rng(0)
    X = np.zeros((4, 64, 64, 1), dtype=np.float32)
    X[:, 20:44, 20:44] = 1.0
    same = A.seed_image_augment(X, rng, rotation_deg=0, zoom=0, shift=0)
    assert np.allclose(same, X, atol=1e-5)
    moved = A.seed_image_augment(X, rng)
    assert moved.shape == X.shape and not np.allclose(moved, X)
    # rotation <= 5 deg, zoom <= 10 %, shift <= 10 %: the square's mass stays similar
    assert np.all(np.abs(moved.sum(axis=(1, 2, 3)) - X.sum(axis=(1, 2, 3))) < 0.35 * X[0].sum())


def test_augmenter_is_deterministic_and_none_is_identity():
    X = np.random.default_rng(1).random((6, 30, 32, 1), dtype=np.float32)
    Y = np.eye(2, dtype=np.float32)[[0, 1, 0, 1, 0, 1]]
    a1 = A.Augmenter(CFG, dict(A.DEFAULT_POLICY), seed=3)(X, Y)
    a2 = A.Augmenter(CFG, dict(A.DEFAULT_POLICY), seed=3)(X, Y)
    assert np.array_equal(a1[0], a2[0]) and np.array_equal(a1[1], a2[1])
    assert a1[0].min() >= 0 and a1[0].max() <= 1
    ident = A.Augmenter(CFG, None)(X, Y)
    assert ident[0] is X and ident[1] is Y
    with pytest.raises(ValueError, match="unknown augmentation"):
        A.Augmenter(CFG, {"gian_db": 3})


def test_device_shift_removes_the_band_above_2khz():
    rate = 8000
    t = np.arange(2 * rate) / rate
    x = (0.1 * np.sin(2 * np.pi * 400 * t) + 0.1 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32)
    y = A.device_shift(x, rate, np.random.default_rng(0), snr_db=60)
    f = np.fft.rfftfreq(len(y), 1 / rate)
    spec = np.abs(np.fft.rfft(y))
    assert spec[np.argmin(np.abs(f - 3000))] < 0.01 * spec[np.argmin(np.abs(f - 400))]
    assert len(y) == len(x) and y.dtype == np.float32


# ------------------------------------------------------------------------------ archs

@pytest.mark.slow
@pytest.mark.parametrize("arch,shape", [("seed_cnn", (64, 64, 1)), ("cnn4", (46, 32, 1))])
def test_small_archs_train_save_and_load_in_safe_mode(tmp_path, arch, shape):
    import keras

    from lungapp.training.archs import build

    model, info = build(arch, shape, 4, name=f"{arch}_x")
    assert model.output_shape == (None, 4) and info.weights == "random"
    assert not any(type(l).__name__ == "Lambda" for l in model.layers)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x = np.random.default_rng(0).random((8, *shape), dtype=np.float32)
    model.train_on_batch(x, np.eye(4, dtype=np.float32)[[0, 1, 2, 3] * 2])
    p = np.asarray(model(x, training=False))
    assert np.allclose(p.sum(axis=1), 1, atol=1e-5)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", compile=False, safe_mode=True)
    assert np.allclose(np.asarray(loaded(x, training=False)), p, atol=1e-5)


@pytest.mark.slow
def test_backbone_offline_says_random_and_takes_a_weights_file(tmp_path, monkeypatch):
    import keras

    from lungapp.training.archs import build

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "no_cache"))
    model, info = build("resnet50", (40, 32, 1), 2)
    assert info.weights == "random" and "RANDOM" in info.note and "offline" in info.note
    assert model.output_shape == (None, 2)
    base = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(40, 32, 3),
                                       pooling="avg")
    wfile = tmp_path / "resnet.weights.h5"
    base.save_weights(wfile)
    model2, info2 = build("resnet50", (40, 32, 1), 2, weights=wfile)
    assert info2.weights == f"file {wfile}"
    inner = next(l for l in model2.layers if isinstance(l, keras.Model))
    assert all(np.array_equal(a, b) for a, b in zip(inner.get_weights(), base.get_weights()))
    with pytest.raises(FileNotFoundError):
        build("resnet50", (40, 32, 1), 2, weights=tmp_path / "missing.h5")


@pytest.mark.slow
def test_inception_resizes_small_inputs():
    from lungapp.training.archs import build

    model, _ = build("inception_v3", (64, 64, 1), 2)
    assert model.input_shape == (None, 64, 64, 1) and model.output_shape == (None, 2)
    assert any(type(l).__name__ == "Resizing" for l in model.layers)


def test_unknown_arch():
    from lungapp.training.archs import build

    with pytest.raises(ValueError, match="unknown architecture"):
        build("vgg", (64, 64, 1), 2)
