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
import functools
import math
import os
import threading
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


def model_threads() -> int:
    """Threads the model calls of one prediction run on: ``LUNGAPP_THREADS`` if set, else
    the machine's cores, at most 2. Each ONNX Runtime call runs on one thread and the
    calls (members, and pieces of a recording's windows) share the threads
    (:func:`run_parallel`): on the 2-core machine that took less CPU time than ONNX
    Runtime splitting each call's small convolutions across two threads, and a thread
    the machine's other work holds up delays only its own calls instead of every
    operator of every call (docs/benchmarks.md#prediction)."""
    value = os.environ.get("LUNGAPP_THREADS", "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise ModelError(f"LUNGAPP_THREADS must be a whole number, not {value!r}") from None
    return max(1, min(2, os.cpu_count() or 1))


def session_options():
    """ONNX Runtime session options: all graph optimisations, one thread per call (the
    calls run side by side instead, :func:`model_threads`), operators run one after the
    other (the graphs are chains), and no spinning (no thread pool to spin, and none
    busy-waiting for the next call on a shared 2-core machine)."""
    import onnxruntime as ort

    model_threads()  # a bad LUNGAPP_THREADS is refused when the model loads, not mid-prediction
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3  # errors only: no optimiser chatter on the CLI
    return opts


_POOL = None


def worker_pool():
    """The process's helper threads for a prediction (:func:`model_threads` minus the
    caller's own, at least one): the quality check runs on them while the caller makes
    the features, then they take model calls (:func:`run_parallel`)."""
    global _POOL
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(max_workers=max(1, model_threads() - 1),
                                   thread_name_prefix="lungapp-predict")
    return _POOL


class _Calls:
    """Zero-argument calls taken one at a time, in order, by any number of threads."""

    def __init__(self, calls: list):
        self.calls = calls
        self.results: list = [None] * len(calls)
        self.error: BaseException | None = None
        self._next = 0
        self._left = len(calls)
        self._lock = threading.Lock()
        self._done = threading.Event()
        if not calls:
            self._done.set()

    def drain(self) -> None:
        """Run the calls no thread has started yet, until none is left."""
        while True:
            with self._lock:
                i = self._next
                if i >= len(self.calls):
                    return
                self._next += 1
            try:
                self.results[i] = self.calls[i]()
            except BaseException as exc:  # re-raised on the caller's thread
                self.error = self.error or exc
            with self._lock:
                self._left -= 1
                if self._left == 0:
                    self._done.set()

    def wait(self) -> list:
        self._done.wait()
        if self.error is not None:
            raise self.error
        return self.results


def run_parallel(calls: list) -> list:
    """The results of ``calls`` (zero-argument callables), in order. The calling thread
    and :func:`worker_pool`'s threads each take the next call not yet started, so a
    helper still busy (e.g. with the quality check) joins in when it is free, and a
    thread held up by other work on the machine leaves its share to the others. ONNX
    Runtime releases the GIL while it runs. The first error raised is raised here."""
    batch = _Calls(list(calls))
    for _ in range(min(model_threads() - 1, len(batch.calls) - 1)):
        worker_pool().submit(batch.drain)
    batch.drain()
    return batch.wait()


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
        return ensemble_outputs([(self.members, x)])[0]


def members(model) -> list[OnnxModel]:
    """The sessions of a member group's callable (:func:`ensemble`)."""
    return list(model.members) if isinstance(model, OnnxEnsemble) else [model]


#: Input values of one model call at most: 8 of the bundled model's 4-s windows (499 x 64
#: x 1, 1 MB). ONNX Runtime's arena keeps the largest call's activations for the session's
#: life, and two calls run at once, so the size of a call sets a long recording's peak
#: memory: a 10-min recording peaked at 192 MB with 8 such windows, 228 MB with 16, 188 MB
#: before the calls ran side by side (16 windows, one at a time); the CPU time of a 15-s
#: recording was the same with 8 and 16 (docs/benchmarks.md#prediction).
BATCH_VALUES = 8 * 499 * 64


def call_pieces(n: int, values_per_window: int, n_members: int) -> list[slice]:
    """The windows ``0..n`` of a member group cut into the pieces each member is called
    on: none above :data:`BATCH_VALUES` input values, and at least enough that every
    model thread has a call (a group of one member on two threads: two pieces), of
    nearly equal sizes."""
    k = max(math.ceil(n * values_per_window / BATCH_VALUES), math.ceil(model_threads() / n_members))
    edges = np.linspace(0, n, max(1, min(k, n)) + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def ensemble_outputs(jobs: list[tuple[list[OnnxModel], np.ndarray]]) -> list[np.ndarray]:
    """For each ``(members, X)``: the members' outputs on windows X averaged, (n,
    n_outputs) float32, as :class:`OnnxEnsemble` gives them. Every member's call on every
    piece of X (:func:`call_pieces`) of every job is one call of :func:`run_parallel`,
    the largest first, so the threads finish together. A window's outputs do not depend
    on the other windows of its call, so the pieces' outputs are the whole batch's."""
    xs = [np.ascontiguousarray(X, dtype=np.float32) for _, X in jobs]
    tasks = []  # (input values, job, member, piece)
    for j, ((models, _), x) in enumerate(zip(jobs, xs)):
        per_window = int(np.prod(x.shape[1:]))
        for piece in call_pieces(len(x), per_window, len(models)):
            tasks += [((piece.stop - piece.start) * per_window, j, k, piece) for k in range(len(models))]
    tasks.sort(key=lambda t: -t[0])
    results = run_parallel([functools.partial(jobs[j][0][k], xs[j][piece]) for _, j, k, piece in tasks])
    outs: list[list[list]] = [[[] for _ in models] for models, _ in jobs]
    for (_, j, k, _piece), r in sorted(zip(tasks, results), key=lambda tr: tr[0][3].start):
        outs[j][k].append(r)
    averaged = []
    for per_member in outs:
        total = np.concatenate(per_member[0])
        for pieces in per_member[1:]:  # summed in member order, as OnnxEnsemble always did
            total = total + np.concatenate(pieces)
        averaged.append(total / np.float32(len(per_member)) if len(per_member) > 1 else total)
    return averaged


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
