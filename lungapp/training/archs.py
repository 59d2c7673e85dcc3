"""Model architectures: the seed project's CNN, an improved compact CNN, and the seed's
transfer-learning backbones (InceptionV3, ResNet50) adapted to one-channel spectrograms.

Every builder takes the feature input shape ``(frames, bins, 1)`` and the number of
classes and returns an *uncompiled* ``keras.Model`` ending in a softmax, built from
Keras' own layers only (no ``Lambda``, no custom objects), so the saved ``.keras`` file
loads with ``safe_mode=True``.

Use :func:`build` with a name from :data:`ARCHS`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import keras
from keras import layers

from lungapp.training.recipes import ARCH_NAMES

ARCHS = ARCH_NAMES
"""Architecture names accepted by :func:`build` (and ``lungapp train --arch``), named in
the light :mod:`lungapp.training.recipes`."""

# File names keras.applications caches ImageNet "notop" weights under (~/.keras/models).
_IMAGENET_FILES = {
    "inception_v3": "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "resnet50": "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
}
# Smallest spatial size each backbone accepts; smaller inputs are resized up inside the model.
_MIN_SIDE = {"inception_v3": 75, "resnet50": 32}


@dataclass
class BuildInfo:
    """What :func:`build` did that a user must be told (e.g. random backbone weights)."""

    arch: str
    weights: str  # "random", "imagenet (cached file ...)", or "file PATH"
    note: str = ""


def seed_cnn(input_shape, n_classes: int, *, head: str = "32-16-8", name: str = "seed_cnn",
             activation: str = "softmax") -> keras.Model:
    """The seed student project's CNN (see DESIGN.md): three Conv-BN-MaxPool blocks with
    ``he_normal`` initialisation, flatten, dropout 0.5, a dense head (``"32-16-8"`` or
    ``"16"``) with BatchNorm and dropout 0.4, and a softmax over the classes."""
    init = "he_normal"
    inp = keras.Input(shape=tuple(input_shape), name="spectrogram")
    x = inp
    for filters in (32, 64, 128):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", kernel_initializer=init)(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.5)(x)
    for i, units in enumerate(int(u) for u in head.split("-")):
        x = layers.Dense(units, activation="relu", kernel_initializer=init)(x)
        if i == 0:
            x = layers.BatchNormalization()(x)
            x = layers.Dropout(0.4)(x)
    out = layers.Dense(n_classes, activation=activation, name="probs")(x)
    return keras.Model(inp, out, name=name)


def cnn4(input_shape, n_classes: int, *, width: int = 16, convs: int = 1,
         dropout: float = 0.3, name: str = "cnn4", activation: str = "softmax") -> keras.Model:
    """A compact 4-block CNN for log-spectrogram windows.

    Each block: ``convs`` x (3x3 conv -> BatchNorm -> ReLU), then 2x2 max-pool; widths
    ``width * (1, 2, 4, 8)``. Global average and global max pooling over time and
    frequency are concatenated (max pooling keeps short events such as crackles from being
    averaged away), then dropout and a softmax. About 0.1 M parameters at the defaults
    (sized for 2 shared CPU cores); the parameter count does not depend on the input size,
    so windows of any length fit.
    """
    inp = keras.Input(shape=tuple(input_shape), name="spectrogram")
    x = inp
    for mult in (1, 2, 4, 8):
        for _ in range(convs):
            x = layers.Conv2D(width * mult, 3, padding="same", use_bias=False,
                              kernel_initializer="he_normal")(x)
            # momentum 0.9: running statistics settle within ~50 steps (small datasets)
            x = layers.BatchNormalization(momentum=0.9)(x)
            x = layers.ReLU()(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.Concatenate()([layers.GlobalAveragePooling2D()(x), layers.GlobalMaxPooling2D()(x)])
    x = layers.Dropout(dropout)(x)
    out = layers.Dense(n_classes, activation=activation, name="probs")(x)
    return keras.Model(inp, out, name=name)


def lungcnn(input_shape, n_classes: int, *, width: int = 16, dropout: float = 0.3,
            name: str = "lungcnn", activation: str = "softmax") -> keras.Model:
    """The recommended window classifier (model research for the bundled model,
    docs/model.md): per-band normalisation, then a compact 4-block CNN.

    LayerNormalization over the time axis (no learned scale or offset) standardises each
    frequency band within the window, removing the recording's level and spectral tilt
    (a different stethoscope or gain). Four blocks of 3x3 conv (the first with stride 2)
    -> BatchNorm -> ReLU -> 2x2 max-pool, widths ``width * (1, 2, 4, 8)``; global average +
    max pooling, dropout, a 64-unit dense layer, dropout and a softmax. About 0.1 M
    parameters (0.5 MB); built-in layers only.
    """
    inp = keras.Input(shape=tuple(input_shape), name="spectrogram")
    x = layers.LayerNormalization(axis=1, center=False, scale=False, epsilon=1e-3,
                                  name="per_band_norm")(inp)
    for k, mult in enumerate((1, 2, 4, 8)):
        x = layers.Conv2D(width * mult, 3, strides=2 if k == 0 else 1, padding="same",
                          use_bias=False, kernel_initializer="he_normal")(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.Concatenate()([layers.GlobalAveragePooling2D()(x), layers.GlobalMaxPooling2D()(x)])
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(64, activation="relu", kernel_initializer="he_normal")(x)
    x = layers.Dropout(dropout)(x)
    out = layers.Dense(n_classes, activation=activation, name="probs")(x)
    return keras.Model(inp, out, name=name)


def imagenet_weights_file(arch: str) -> Path | None:
    """The locally cached ImageNet weights file for ``arch``, or None. Never downloads:
    the app makes no network calls."""
    name = _IMAGENET_FILES.get(arch)
    if name is None:
        return None
    base = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    path = base / "models" / name
    return path if path.is_file() else None


def backbone(arch: str, input_shape, n_classes: int, *, weights: str | os.PathLike | None = None,
             dropout: float = 0.3, name: str | None = None,
             activation: str = "softmax") -> tuple[keras.Model, BuildInfo]:
    """InceptionV3 or ResNet50 from ``keras.applications`` on a one-channel spectrogram.

    The single channel is repeated to three (how grey images are fed to ImageNet models),
    rescaled from [0, 1] to the backbone's expected input range, and resized up when
    smaller than the backbone accepts. ``weights``: a weights file (``.h5`` / ``.weights.h5``
    for the ``include_top=False`` backbone) or None; with None, cached ImageNet weights
    are used when present, else the backbone starts from random weights (reported in the
    returned :class:`BuildInfo`; offline, ImageNet weights cannot be downloaded).
    """
    if arch not in _IMAGENET_FILES:
        raise ValueError(f"unknown backbone {arch!r}")
    h, w, _ = (int(v) for v in input_shape)
    side = _MIN_SIDE[arch]
    inp = keras.Input(shape=(h, w, 1), name="spectrogram")
    x = inp
    if h < side or w < side:
        h, w = max(h, side), max(w, side)
        x = layers.Resizing(h, w, name="resize_to_backbone")(x)
    x = layers.Concatenate(name="grey_to_rgb")([x, x, x])
    if arch == "inception_v3":
        x = layers.Rescaling(2.0, offset=-1.0, name="to_backbone_range")(x)  # [-1, 1]
        cls = keras.applications.InceptionV3
    else:
        # caffe-style: 0..255 minus a mean grey level (~ImageNet's channel means)
        x = layers.Rescaling(255.0, offset=-116.0, name="to_backbone_range")(x)
        cls = keras.applications.ResNet50
    if weights is not None:
        wfile = Path(weights)
        if not wfile.is_file():
            raise FileNotFoundError(f"{wfile}: weights file not found")
        info = BuildInfo(arch, f"file {wfile}")
    else:
        wfile = imagenet_weights_file(arch)
        if wfile is not None:
            info = BuildInfo(arch, f"imagenet (cached {wfile})")
        else:
            info = BuildInfo(arch, "random", note=(
                f"{arch}: ImageNet weights are not available offline (no cached file, and "
                "lungapp makes no network calls); the backbone starts from RANDOM weights. "
                "Pass --weights FILE to start from a weights file."))
    base = cls(include_top=False, weights=None, input_shape=(h, w, 3), pooling="avg")
    if wfile is not None:
        base.load_weights(str(wfile))
    y = base(x)
    y = layers.Dropout(dropout)(y)
    out = layers.Dense(n_classes, activation=activation, name="probs")(y)
    return keras.Model(inp, out, name=name or arch), info


def build(arch: str, input_shape, n_classes: int, *, weights=None,
          name: str | None = None, activation: str = "softmax") -> tuple[keras.Model, BuildInfo]:
    """Build architecture ``arch`` (one of :data:`ARCHS`) for ``input_shape`` (frames,
    bins, 1) and ``n_classes`` outputs (``activation`` "softmax", or "sigmoid" for
    independent flags such as [CAS, DAS]). Returns the model and a :class:`BuildInfo`.
    ``name``: the model's name (ensemble members need distinct names)."""
    kw = {"name": name or arch, "activation": activation}
    if arch in _COMPACT:
        return _COMPACT[arch](input_shape, n_classes, **kw), BuildInfo(arch, "random")
    if arch in _IMAGENET_FILES:
        return backbone(arch, input_shape, n_classes, weights=weights, name=name, activation=activation)
    raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")


# The builders of ARCH_NAMES: compact CNNs built from scratch, and the keras.applications
# backbones of _IMAGENET_FILES.
_COMPACT = {"seed_cnn": seed_cnn, "cnn4": cnn4, "lungcnn": lungcnn}
if set(_COMPACT) | set(_IMAGENET_FILES) != set(ARCH_NAMES):  # a name without a builder
    raise ImportError("lungapp.training.archs: the builders do not match recipes.ARCH_NAMES")
