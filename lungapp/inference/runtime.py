"""ONNX Runtime sessions for a model card's ONNX exports (no TensorFlow, no Keras).

A model folder's ``.keras`` files are the source of truth; :mod:`lungapp.training.export`
writes each one's ONNX export beside it and records its SHA-256 in the card. Here each
export is read once, checked against that hash (:func:`lungapp.inference.card.read_onnx`)
and handed to ONNX Runtime as bytes, so the session runs exactly the bytes that were
checked. An ONNX graph holds operators only, never code: nothing in the file can run.

    model = load_onnx_model(model_dir, card, "model_1.keras")
    outputs = model(windows)      # (n, *model.input_shape[1:]) float32 -> (n, outputs)
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from lungapp.errors import ModelError
from lungapp.inference.card import ModelCard, read_onnx

#: Accepted values of ``LUNGAPP_RUNTIME`` / ``Predictor.load(runtime=...)``: "onnx" runs
#: the card's ONNX exports, "keras" its Keras files, "auto" ONNX when the card has them.
RUNTIMES = ("auto", "onnx", "keras")


def runtime_choice(runtime: str | None = None) -> str:
    """``runtime`` or ``LUNGAPP_RUNTIME`` (default "auto"), validated (ModelError)."""
    value = runtime if runtime is not None else os.environ.get("LUNGAPP_RUNTIME", "")
    value = (value or "auto").strip().lower()
    if value not in RUNTIMES:
        raise ModelError(f"unknown runtime {value!r} (LUNGAPP_RUNTIME must be one of "
                         f"{', '.join(RUNTIMES)})")
    return value


def intra_op_threads() -> int:
    """Threads ONNX Runtime splits one operator across: ``LUNGAPP_THREADS`` if set, else
    the machine's cores, at most 2. A recording's windows make small convolutions: on
    the 2-core machine two threads ran a 15-s recording's model call faster than one
    (see benchmarks/bench_predict.py ``--runtimes onnx:1,onnx``), more cores add only
    hand-over cost."""
    value = os.environ.get("LUNGAPP_THREADS", "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise ModelError(f"LUNGAPP_THREADS must be a whole number, not {value!r}") from None
    return max(1, min(2, os.cpu_count() or 1))


def session_options():
    """ONNX Runtime session options: all graph optimisations, :func:`intra_op_threads`
    threads, operators run one after the other (the graphs are chains), and no spinning:
    idle threads sleep instead of busy-waiting for the next call, which on a shared
    2-core machine would take a core from the rest of the app."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = intra_op_threads()
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3  # errors only: no optimiser chatter on the CLI
    return opts


_blas = None


def one_blas_thread():
    """Context manager: NumPy's BLAS on one thread inside (threadpoolctl, a scikit-learn
    dependency; without it, no limit). Why: after a multi-threaded matrix product (the
    spectrogram's mel projection, the quality gate's) OpenBLAS' idle threads spin for a
    while, and ONNX Runtime's threads, started right after, wait for the cores: on the
    2-core machine a 15-s recording's predict_file took 130-170 ms without the limit and
    50-55 ms with it (OPENBLAS_NUM_THREADS=1), the model call alone 35 ms either way."""
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController

            _blas = ThreadpoolController()
        except Exception:  # not installed, or a BLAS it does not know: run without a limit
            _blas = False
    if not _blas:
        return contextlib.nullcontext()
    return _blas.limit(limits=1, user_api="blas")


class OnnxModel:
    """One ONNX export in an ONNX Runtime session (CPU). ``input_shape`` and
    ``output_shape`` are Keras-style tuples with None for the batch dimension."""

    def __init__(self, data: bytes, path: Path):
        import onnxruntime as ort

        try:
            self._session = ort.InferenceSession(data, sess_options=session_options(),
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own types for a malformed graph
            raise ModelError(f"ONNX Runtime cannot load the model ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:200] if str(exc) else 'no detail'})",
                             path) from None
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"expected one input and one output, found {len(inputs)} and "
                             f"{len(outputs)}", path)
        self._input = inputs[0].name
        self.input_shape = _shape(inputs[0].shape)
        self.output_shape = _shape(outputs[0].shape)
        self.path = path

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Outputs (n, n_outputs) float32 for windows ``x`` (n, *input_shape[1:])."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        return self._session.run(None, {self._input: x})[0]


class OnnxEnsemble:
    """Members reading the same windows, their outputs averaged (as a Keras
    ``Average`` layer over the members does)."""

    def __init__(self, members: list[OnnxModel]):
        self.members = list(members)
        self.input_shape = members[0].input_shape
        self.output_shape = members[0].output_shape

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        total = self.members[0](x)
        for m in self.members[1:]:
            total = total + m(x)
        return total / np.float32(len(self.members))


def _shape(dims) -> tuple:
    """ONNX Runtime's shape (ints, and names or None for free dimensions) -> a tuple with
    None for every free dimension."""
    return tuple(d if isinstance(d, int) else None for d in dims)


def load_onnx_model(model_dir, card: ModelCard, model_file: str) -> OnnxModel:
    """``model_file``'s ONNX export as an :class:`OnnxModel`, its bytes checked against the
    card's SHA-256 first. Raises ModelError naming the file."""
    path = Path(model_dir) / card.onnx[model_file].file
    return OnnxModel(read_onnx(model_dir, card, model_file), path)


def ensemble(models: list[OnnxModel]):
    """One callable for a member group: the model itself, or an :class:`OnnxEnsemble`."""
    return models[0] if len(models) == 1 else OnnxEnsemble(models)
