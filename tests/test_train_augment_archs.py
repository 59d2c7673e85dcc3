"""Augmentation (signal and spectrogram) and the architectures (safe-mode loadable)."""

from __future__ import annotations

import numpy as np
import pytest

from lungapp.dsp.spectrogram import SpectrogramConfig, normalise, spectrogram
from lungapp.model import augment as A

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

@pytest.mark.parametrize("arch,shape", [("seed_cnn", (64, 64, 1)), ("cnn4", (46, 32, 1))])
def test_small_archs_train_save_and_load_in_safe_mode(tmp_path, arch, shape):
    import keras

    from lungapp.model.archs import build

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


def test_backbone_offline_says_random_and_takes_a_weights_file(tmp_path, monkeypatch):
    import keras

    from lungapp.model.archs import build

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


def test_inception_resizes_small_inputs():
    from lungapp.model.archs import build

    model, _ = build("inception_v3", (64, 64, 1), 2)
    assert model.input_shape == (None, 64, 64, 1) and model.output_shape == (None, 2)
    assert any(type(l).__name__ == "Resizing" for l in model.layers)


def test_unknown_arch():
    from lungapp.model.archs import build

    with pytest.raises(ValueError, match="unknown architecture"):
        build("vgg", (64, 64, 1), 2)
