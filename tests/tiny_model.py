"""A small real model for tests, trained in seconds on generated signals.

It is a genuine Keras model trained here (not a stand-in): normal = band-limited noise,
CAS = noise + a 400 Hz tone, DAS = noise + clicks, CAS & DAS = both. Tests use it until
(and besides) the bundled model, through ``LUNGAPP_MODEL`` or ``--model``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

RATE = 4000


def make_signal(kind: str, seconds: float, rng: np.random.Generator, rate: int = RATE) -> np.ndarray:
    n = int(seconds * rate)
    t = np.arange(n) / rate
    x = rng.normal(0, 0.05, n)
    x = np.convolve(x, np.ones(4) / 4, mode="same")
    if kind in ("CAS", "CAS & DAS"):
        x += 0.2 * np.sin(2 * np.pi * rng.uniform(350, 450) * t)
    if kind in ("DAS", "CAS & DAS"):
        for c in rng.integers(0, n - 40, size=int(8 * seconds)):
            x[c: c + 40] += 0.5 * np.exp(-np.arange(40) / 6) * np.sin(np.arange(40) * 1.3)
    return np.clip(x, -1, 1).astype(np.float32)


def build_tiny_model(out_dir: Path, seed: int = 0, onnx: bool = True) -> Path:
    """Train the tiny model into ``out_dir`` (card.json + model.keras and, with ``onnx``,
    its ONNX export, which the app runs)."""
    import keras

    from lungapp.dsp import SpectrogramConfig
    from lungapp.inference.card import FOUR_CLASSES, ModelCard, library_versions, write_card
    from lungapp.inference.features import FeatureConfig, windows_from_samples

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    fc = FeatureConfig(SpectrogramConfig(rate=RATE, win_length=128, hop_length=64, n_fft=128,
                                         scale="mel", n_mels=24), window_s=2.0, hop_s=1.0)
    X, y = [], []
    for _ in range(12):
        for ci, kind in enumerate(FOUR_CLASSES):
            w, _ = windows_from_samples(make_signal(kind, 2.0, rng), fc)
            X.append(w[0])
            y.append(ci)
    X, y = np.stack(X), np.array(y)
    model = keras.Sequential([
        keras.Input(fc.input_shape),
        keras.layers.Conv2D(8, 3, padding="same"),
        keras.layers.BatchNormalization(momentum=0.8),
        keras.layers.Activation("relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(16, 3, padding="same"),
        keras.layers.BatchNormalization(momentum=0.8),
        keras.layers.Activation("relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(4, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(0.003), loss="sparse_categorical_crossentropy")
    model.fit(X, y, epochs=30, batch_size=16, verbose=0)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(out_dir / "model.keras")
    card = ModelCard(name="tiny-test-model", version="0.0.1", task="4class", classes=list(FOUR_CLASSES),
                     features=fc, model_files=["model.keras"], threshold=0.5,
                     threshold_rule="fixed 0.5 (test model)", pooling="max",
                     versions=library_versions(), quality_gate={"enabled": False},
                     description="A tiny model trained on generated signals, for tests only.")
    write_card(out_dir, card)
    if onnx:
        from lungapp.training.export import export_model_folder

        export_model_folder(out_dir)
    return out_dir


def strip_onnx(model_dir: Path) -> Path:
    """Remove a model folder's ONNX exports and their card entries (an older model folder,
    or a hand-made one, that the Keras runtime runs until it is installed)."""
    import dataclasses

    from lungapp.inference.card import load_card, write_card

    card = load_card(model_dir)
    for entry in card.onnx.values():
        (Path(model_dir) / entry.file).unlink()
    write_card(model_dir, dataclasses.replace(card, onnx={}))
    return Path(model_dir)
