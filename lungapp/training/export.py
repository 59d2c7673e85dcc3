"""Export a model folder's Keras files to ONNX, the format the app runs.

The ``.keras`` files stay the source of truth. Each is loaded in safe mode, exported with
Keras' own ``model.export(format="onnx")`` (tf2onnx on the TensorFlow backend, offline),
checked against Keras on a random batch, and written beside it under the same stem
(``model_1.keras`` -> ``model_1.onnx``); the card then lists each export and its SHA-256,
which the app checks whenever it loads one (:mod:`lungapp.inference.runtime`).

    card = export_model_folder("runs/my-model")      # ModelError if an export differs

This module imports TensorFlow (through Keras) inside its functions: training side only.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

import numpy as np

from lungapp.errors import ModelError
from lungapp.fsutil import atomic_write_bytes
from lungapp.inference.card import ModelCard, OnnxFile, load_card, sha256_hex, write_card

#: Largest absolute difference allowed between the ONNX export's outputs and Keras's.
TOLERANCE = 1e-5
#: Windows in the random batch an export is checked on.
CHECK_BATCH = 4
#: ONNX operator set of the exports (ONNX Runtime 1.17, the oldest the app accepts,
#: runs up to 20).
OPSET = 17


def export_model_folder(model_dir) -> ModelCard:
    """Export every Keras file of the model folder ``model_dir`` to ONNX beside it, check
    each export against Keras (:data:`TOLERANCE`), and rewrite ``card.json`` atomically
    with the exports' file names and SHA-256 (card field ``onnx``). Returns the updated
    card. Raises ModelError naming the file when a model cannot be loaded or exported, or
    when its export's outputs differ from Keras's."""
    model_dir = Path(model_dir)
    card = load_card(model_dir)
    onnx = {}
    for fc, files in card.member_groups():
        for f in files:
            onnx[f] = export_file(model_dir / f, tuple(fc.input_shape))
    card = dataclasses.replace(card, onnx=onnx)
    write_card(model_dir, card)
    return card


def export_file(keras_path: Path, input_shape: tuple) -> OnnxFile:
    """Export one ``.keras`` file (reading windows of ``input_shape``, without the batch
    dimension) to ``<stem>.onnx`` beside it, after checking the export against Keras.
    Returns the export's card entry."""
    from lungapp.inference.predictor import load_keras_model

    keras_path = Path(keras_path)
    model = load_keras_model(keras_path)
    data = onnx_bytes(model, keras_path)
    check_export(model, data, input_shape, keras_path)
    target = keras_path.with_suffix(".onnx")
    atomic_write_bytes(target, data)
    return OnnxFile(target.name, sha256_hex(data))


def onnx_bytes(model, keras_path: Path) -> bytes:
    """The ONNX export of the Keras ``model`` (loaded from ``keras_path``) as bytes, with a
    free batch dimension. tf2onnx writes only to a file: a temporary one beside the model."""
    import keras

    spec = keras.InputSpec(shape=(None, *model.input_shape[1:]), dtype="float32",
                           name=model.inputs[0].name)
    tmp = keras_path.with_name(f".{keras_path.stem}.{os.getpid()}.onnx.tmp")
    try:
        with warnings.catch_warnings():
            # Keras' tf2onnx shim warns about NumPy 2 aliases it patches in itself.
            warnings.simplefilter("ignore", FutureWarning)
            _inference_model(model).export(str(tmp), format="onnx", verbose=False,
                                           input_signature=[spec], opset_version=OPSET)
        return tmp.read_bytes()
    except Exception as exc:  # tf2onnx raises many types for an op it cannot convert
        raise ModelError(f"cannot export the model to ONNX ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200] if str(exc) else 'no detail'})",
                         keras_path) from None
    finally:
        tmp.unlink(missing_ok=True)


def _inference_model(model):
    """``model`` called with ``training=False``, as a Keras model to export. Keras'
    export traces ``model(x)`` with training unset, and a nested model (the
    InceptionV3/ResNet50 backbone) then ran its BatchNormalization on the batch's own
    statistics: outputs 0.3 away from Keras'. Fixing inference mode here is exact."""
    import keras

    class Inference(keras.Model):
        def __init__(self, inner):
            super().__init__(name=f"{inner.name}_inference")
            self.inner = inner
            self.built = True  # no weights of its own; the inner model is built

        def call(self, x):
            return self.inner(x, training=False)

    return Inference(model)


def check_export(model, data: bytes, input_shape: tuple, keras_path: Path) -> float:
    """Largest absolute difference between the Keras ``model`` and its ONNX export
    ``data`` on a random batch of :data:`CHECK_BATCH` windows of ``input_shape``. Raises
    ModelError naming ``keras_path`` when it exceeds :data:`TOLERANCE` or the shapes
    differ."""
    from lungapp.inference.runtime import OnnxModel

    x = np.random.default_rng(0).normal(size=(CHECK_BATCH, *input_shape)).astype(np.float32)
    want = np.asarray(model.predict_on_batch(x), dtype=np.float64)
    got = np.asarray(OnnxModel(data, keras_path.with_suffix(".onnx"))(x), dtype=np.float64)
    if got.shape != want.shape:
        raise ModelError(f"the ONNX export outputs shape {got.shape}, Keras {want.shape}", keras_path)
    diff = float(np.max(np.abs(got - want))) if want.size else 0.0
    if not diff <= TOLERANCE:
        raise ModelError(f"the ONNX export's outputs differ from Keras's by {diff:.3g} "
                         f"(more than {TOLERANCE:g}); the model is not exported", keras_path)
    return diff
