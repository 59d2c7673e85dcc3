"""A small NumPy inference runtime for lungapp's own Keras models (no TensorFlow).

Importing TensorFlow takes seconds and hundreds of MB; the app's models are small CNNs
built from a handful of Keras layers. This module reads a ``.keras`` file (a zip holding
``config.json``, the functional or sequential model config, and ``model.weights.h5``),
builds an execution plan from the layer graph (topological order over the layers'
inbound nodes) and runs it in NumPy, float32, matching Keras' inference arithmetic
(``"same"`` padding as TensorFlow pads it, BatchNormalization with moving statistics,
Dropout as identity).

Supported layers (channels_last only): InputLayer, LayerNormalization, Conv2D,
BatchNormalization, ReLU, Activation, MaxPooling2D, AveragePooling2D,
GlobalAveragePooling2D, GlobalMaxPooling2D, Concatenate, Dropout, Flatten, Dense, with
activations linear, relu, sigmoid and softmax: what :mod:`lungapp.training.archs`'
``seed_cnn``, ``cnn4`` and ``lungcnn`` are made of. Anything else (an unknown layer, a
nested model such as an InceptionV3/ResNet50 backbone, an option this module does not
implement, mixed precision) raises :class:`UnsupportedModel`, and the caller
(:class:`lungapp.inference.predictor.Predictor`) uses Keras instead. Nothing in the file is
ever executed: a Lambda layer or a custom (registered) object is refused outright with
:class:`UnsafeModel`, as Keras' safe mode refuses it.

Convolutions are im2col (``sliding_window_view``, no Python loop over windows) + one
BLAS matmul per layer, a few windows of the batch at a time so the patch matrix stays in
cache. When the plan is built, a BatchNormalization and a ReLU directly after a linear
convolution or dense layer are folded into it, and a convolution's bias and ReLU move
behind the max-pool that follows (exact: both commute with max). Ensemble members
(:class:`NumpyEnsemble`) share what does not depend on their weights (a parameter-free
LayerNormalization, the first convolution's patch matrix). BLAS runs single-threaded
during a call (see :data:`BLAS_THREADS`); instead the batch is split across
:data:`CALL_THREADS` threads.

    model = load("fold1.keras")          # UnsupportedModel / UnsafeModel / ModelError
    probs = model(windows)               # (n, *model.input_shape[1:]) -> (n, outputs)
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import threading
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from lungapp.errors import ModelError

__all__ = ["NumpyModel", "NumpyEnsemble", "UnsupportedModel", "UnsafeModel", "load", "SUPPORTED_LAYERS",
           "BLAS_THREADS", "CALL_THREADS"]

#: BLAS threads while a model runs. The matrices here are small and skinny (e.g. 50 000 x 9
#: by 9 x 16 for a first convolution): on the 2-core machine, with another process busy,
#: one OpenBLAS thread ran them 2-10x faster than two (threads waiting for each other).
#: Also, after a multi-threaded call OpenBLAS' idle workers spin for a while (~0.1 s):
#: a model call right after the spectrogram's matrix products ran ~2x slower until the
#: Predictor ran the whole recording's pipeline under this limit. None leaves the BLAS
#: library's own setting.
BLAS_THREADS: int | None = 1
_controller = None


def _default_threads() -> int:
    try:
        return max(1, int(os.environ.get("LUNGAPP_THREADS", "") or min(4, os.cpu_count() or 1)))
    except ValueError:
        return 1


#: Threads a call splits its batch (the windows of a recording) across: each runs the whole
#: plan on its share with single-threaded BLAS, so the threads never wait for each other
#: inside a matrix product (NumPy and BLAS release the GIL in the heavy steps). Every op
#: works window by window, so the split does not change the result. The machine's cores
#: (at most 4) by default; LUNGAPP_THREADS overrides it (1 turns the split off).
CALL_THREADS: int = _default_threads()
#: Fewer windows than this per thread are not worth handing to a thread.
MIN_WINDOWS_PER_THREAD = 4
_pool = None
_pool_size = 0
_pool_lock = threading.Lock()


def _split_run(fn, x: np.ndarray) -> np.ndarray:
    """``fn(x)``, with the batch split across CALL_THREADS threads when it is large enough
    (the calling thread takes the first share)."""
    global _pool, _pool_size
    k = min(CALL_THREADS, len(x) // MIN_WINDOWS_PER_THREAD)
    if k < 2:
        return fn(x)
    with _pool_lock:
        if _pool_size < k - 1:
            from concurrent.futures import ThreadPoolExecutor

            _pool = ThreadPoolExecutor(max_workers=k - 1, thread_name_prefix="lungapp-npruntime")
            _pool_size = k - 1
        pool = _pool
    parts = np.array_split(x, k)
    futures = [pool.submit(fn, p) for p in parts[1:]]
    first = fn(parts[0])
    return np.concatenate([first] + [f.result() for f in futures], axis=0)


def blas_limit():
    """Context manager limiting BLAS threads to BLAS_THREADS (threadpoolctl, a
    scikit-learn dependency; without it, no limit). Nests; restores the setting on exit."""
    global _controller
    if BLAS_THREADS is None:
        return contextlib.nullcontext()
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController

            _controller = ThreadpoolController()
        except Exception:  # not installed, or an unusual BLAS: run without a limit
            _controller = False
    if not _controller:
        return contextlib.nullcontext()
    return _controller.limit(limits=BLAS_THREADS, user_api="blas")


class UnsupportedModel(ModelError):
    """A well-formed Keras file that this runtime cannot run (use Keras for it)."""


class UnsafeModel(ModelError):
    """The file holds custom code (Lambda, custom objects): refused, never run."""


# --- reading the file -----------------------------------------------------------------

def _read_keras_file(path: Path) -> tuple[dict, dict[str, list[np.ndarray]]]:
    """(model config, {layer name: [weight arrays in Keras' order]}) of a .keras file."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if "config.json" not in names:
                raise ModelError("cannot load the Keras model file (no config.json in it)", path)
            config = json.loads(zf.read("config.json").decode("utf-8"))
            weights_blob = zf.read("model.weights.h5") if "model.weights.h5" in names else None
    except ModelError:
        raise
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"cannot load the Keras model file ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200] if str(exc) else 'no detail'})", path) from None
    if not isinstance(config, dict):
        raise ModelError("cannot load the Keras model file (config.json is not an object)", path)
    weights: dict[str, list[np.ndarray]] = {}
    if weights_blob is not None:
        import h5py  # a Keras dependency; reads HDF5 from memory (no temp file)

        try:
            with h5py.File(io.BytesIO(weights_blob), "r") as h5:
                if "layers" in h5:
                    for group in h5["layers"].values():
                        _collect_weights(group, weights, path)
        except ModelError:
            raise
        except Exception as exc:  # h5py raises OSError/KeyError/ValueError for bad files
            raise ModelError(f"cannot load the Keras model file (weights: {type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:200] if str(exc) else 'no detail'})", path) from None
    return config, weights


def _collect_weights(group, out: dict, path: Path) -> None:
    """One ``layers/<saved name>`` group: Keras stores the layer's variables as
    ``vars/0..n-1`` and the layer's own name as the ``name`` attribute of ``vars``."""
    import h5py

    if not isinstance(group, h5py.Group):
        return
    if any(k not in ("vars",) for k in group.keys()):
        # nested layers/sub-objects (a nested model, a layer holding layers): not ours
        raise UnsupportedModel(f"weights group {group.name!r} holds nested objects", path)
    if "vars" not in group:
        return
    vars_ = group["vars"]
    name = vars_.attrs.get("name")
    if isinstance(name, bytes):
        name = name.decode("utf-8")
    if not isinstance(name, str):
        raise UnsupportedModel(f"weights group {group.name!r} does not name its layer", path)
    n = len(vars_.keys())
    if set(vars_.keys()) != {str(i) for i in range(n)}:
        raise UnsupportedModel(f"weights group {group.name!r} has unexpected entries", path)
    if name in out:
        raise UnsupportedModel(f"two weight groups name the layer {name!r}", path)
    out[name] = [np.asarray(vars_[str(i)][()]) for i in range(n)]


# --- layer configs --------------------------------------------------------------------

# Config keys that do not change inference (training-time settings, initialisers...).
_IGNORED = {"name", "trainable", "dtype", "kernel_initializer", "bias_initializer",
            "kernel_regularizer", "bias_regularizer", "activity_regularizer",
            "kernel_constraint", "bias_constraint", "beta_initializer", "gamma_initializer",
            "beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint",
            "moving_mean_initializer", "moving_variance_initializer", "momentum",
            "synchronized", "renorm_momentum", "rate", "seed", "noise_shape"}
# Keys accepted only with these values (a feature this runtime does not implement).
_MUST_BE = {"groups": 1, "renorm": False, "renorm_clipping": None, "rms_scaling": False,
            "quantization_config": None, "lora_rank": None, "lora_alpha": None,
            "sparse": False, "ragged": False, "optional": False, "max_value": None,
            "dilation_rate": [1, 1]}
_ACTIVATIONS = ("linear", "relu", "sigmoid", "softmax")


class _Ctx:
    """Per-layer parsing context: the config dict, used keys, errors naming the layer."""

    def __init__(self, layer_cfg: dict, path: Path):
        self.cls = layer_cfg.get("class_name")
        self.cfg = layer_cfg.get("config") or {}
        self.name = self.cfg.get("name") or layer_cfg.get("name") or "?"
        self.path = path
        self.used: set[str] = set()

    def fail(self, what: str) -> UnsupportedModel:
        return UnsupportedModel(f"layer {self.name!r} ({self.cls}): {what} is not supported by "
                                "the NumPy runtime", self.path)

    def get(self, key, default=None):
        self.used.add(key)
        return self.cfg.get(key, default)

    def finish(self) -> None:
        """Refuse options this runtime does not know (they might change the output)."""
        for key, value in self.cfg.items():
            if key in self.used or key in _IGNORED:
                continue
            if key in _MUST_BE:
                want = _MUST_BE[key]
                got = list(value) if isinstance(value, tuple) else value
                if got != want:
                    raise self.fail(f"{key}={value!r}")
                continue
            raise self.fail(f"option {key!r}")
        dtype = self.cfg.get("dtype")
        if isinstance(dtype, dict):
            dtype = (dtype.get("config") or {}).get("name")
        if dtype not in (None, "float32"):
            raise self.fail(f"dtype policy {dtype!r}")

    def pair(self, key, default=None) -> tuple[int, int]:
        v = self.get(key, default)
        if isinstance(v, int) and not isinstance(v, bool):
            v = (v, v)
        if (not isinstance(v, (list, tuple)) or len(v) != 2
                or not all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in v)):
            raise self.fail(f"{key}={v!r}")
        return int(v[0]), int(v[1])

    def channels_last(self) -> None:
        fmt = self.get("data_format", "channels_last")
        if fmt not in (None, "channels_last"):
            raise self.fail(f"data_format={fmt!r}")

    def padding(self) -> str:
        p = self.get("padding", "valid")
        if not isinstance(p, str) or p.lower() not in ("same", "valid"):
            raise self.fail(f"padding={p!r}")
        return p.lower()

    def activation(self, key="activation") -> str:
        a = self.get(key, "linear")
        if a is None:
            a = "linear"
        if not isinstance(a, str) or a not in _ACTIVATIONS:
            raise self.fail(f"activation {a!r}")
        return a

    def number(self, key, default) -> float:
        v = self.get(key, default)
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise self.fail(f"{key}={v!r}")
        return float(v)

    def flag(self, key, default) -> bool:
        v = self.get(key, default)
        if not isinstance(v, bool):
            raise self.fail(f"{key}={v!r}")
        return v


def _activate(x: np.ndarray, kind: str, inplace: bool = False) -> np.ndarray:
    """Apply an activation; ``inplace`` when ``x`` is a fresh array nobody else holds."""
    if kind == "linear":
        return x
    if kind == "relu":
        return np.maximum(x, 0, out=x) if inplace else np.maximum(x, 0)
    if kind == "sigmoid":
        # 0.5 (1 + tanh(x / 2)): no overflow warnings for large |x|
        return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32, copy=False)
    if kind == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32, copy=False)
    raise AssertionError(kind)


def _same_pad(size: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow's SAME padding: output ceil(size / s); the odd pixel goes after."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _pad_hw(x: np.ndarray, ph: tuple[int, int], pw: tuple[int, int], fill: float) -> np.ndarray:
    """Pad axes 1 and 2 of (n, h, w, c) with ``fill`` (np.pad's general machinery cost
    ~9 ms per 4-model call in small pads)."""
    n, h, w, c = x.shape
    out = np.empty((n, h + ph[0] + ph[1], w + pw[0] + pw[1], c), dtype=x.dtype)
    if ph[0]:
        out[:, :ph[0]] = fill
    if ph[1]:
        out[:, ph[0] + h:] = fill
    if pw[0]:
        out[:, :, :pw[0]] = fill
    if pw[1]:
        out[:, :, pw[0] + w:] = fill
    out[:, ph[0]: ph[0] + h, pw[0]: pw[0] + w] = x
    return out


def _out_size(size, k: int, s: int, padding: str):
    if size is None:
        return None
    if padding == "same":
        return -(-size // s)
    return (size - k) // s + 1 if size >= k else 0


# --- operations -----------------------------------------------------------------------
# Each op: n_weights (expected), shape(in_shapes) -> out_shape (validating weights),
# __call__(*arrays) -> array. Shapes include the batch axis (None).

class _Op:
    n_inputs = 1
    #: Hashable description of a weight-free op (same sig + same input = same output,
    #: so ensemble members can share the result); None for ops with weights.
    sig = None

    def __init__(self, ctx: _Ctx):
        self.name = ctx.name
        self.kind = ctx.cls
        self.ctx_path = ctx.path
        self._ctx = ctx

    def set_weights(self, ws: list[np.ndarray]) -> None:
        if ws:
            raise self._ctx.fail(f"{len(ws)} weight arrays (expected none)")

    def fail(self, what: str) -> UnsupportedModel:
        return self._ctx.fail(what)


class _Input(_Op):
    def __init__(self, ctx):
        super().__init__(ctx)
        shape = ctx.get("batch_shape", None)
        if shape is None:
            shape = ctx.get("batch_input_shape", None)
        if not isinstance(shape, (list, tuple)) or len(shape) < 2:
            raise ctx.fail(f"input shape {shape!r}")
        self.shape = tuple(None if d is None else int(d) for d in shape)
        dtype = ctx.get("dtype", "float32")
        if isinstance(dtype, dict):
            dtype = (dtype.get("config") or {}).get("name")
        if dtype not in (None, "float32"):
            raise ctx.fail(f"input dtype {dtype!r}")
        ctx.get("input_tensor")
        if ctx.cfg.get("input_tensor") is not None:
            raise ctx.fail("input_tensor")


class _Identity(_Op):  # Dropout at inference
    sig = "identity"

    def shape(self, s):
        return s[0]

    def __call__(self, x):
        return x


class _Activation(_Op):
    def __init__(self, ctx):
        super().__init__(ctx)
        self.act = ctx.activation()
        self.sig = ("activation", self.act)

    def shape(self, s):
        return s[0]

    def __call__(self, x):
        return _activate(x, self.act)


class _ReLU(_Op):
    def __init__(self, ctx):
        super().__init__(ctx)
        mv = ctx.get("max_value", None)
        self.max_value = None if mv is None else ctx.number("max_value", None)
        self.slope = ctx.number("negative_slope", 0.0)
        self.threshold = ctx.number("threshold", 0.0)
        self.sig = ("relu", self.max_value, self.slope, self.threshold)

    def shape(self, s):
        return s[0]

    def __call__(self, x):
        # keras.activations.relu: x above threshold else 0, clipped to max_value,
        # minus negative_slope * relu(threshold - x)
        if self.threshold == 0.0:
            y = np.maximum(x, 0)
        else:
            y = np.where(x > self.threshold, x, 0).astype(np.float32)
        if self.max_value is not None:
            y = np.minimum(y, np.float32(self.max_value))
        if self.slope != 0.0:
            y = y - np.float32(self.slope) * np.maximum(np.float32(self.threshold) - x, 0)
        return y.astype(np.float32, copy=False)


class _Dense(_Op):
    def __init__(self, ctx):
        super().__init__(ctx)
        self.units = int(ctx.number("units", 0))
        self.act = ctx.activation()
        self.use_bias = ctx.flag("use_bias", True)

    def set_weights(self, ws):
        if len(ws) != (2 if self.use_bias else 1):
            raise self.fail(f"{len(ws)} weight arrays")
        self.w = np.ascontiguousarray(ws[0], dtype=np.float32)
        self.b = np.asarray(ws[1], dtype=np.float32) if self.use_bias else None
        if self.w.ndim != 2 or self.w.shape[1] != self.units or (
                self.b is not None and self.b.shape != (self.units,)):
            raise self.fail(f"kernel shape {self.w.shape}")

    def shape(self, s):
        s = s[0]
        if s[-1] != self.w.shape[0]:
            raise self.fail(f"input shape {s} with kernel {self.w.shape}")
        return (*s[:-1], self.units)

    def fold_affine(self, scale, shift):
        self.w = np.ascontiguousarray(self.w * scale[None, :], dtype=np.float32)
        b = self.b if self.b is not None else np.zeros(self.units, np.float32)
        self.b = (b * scale + shift).astype(np.float32)

    def __call__(self, x):
        y = x @ self.w
        if self.b is not None:
            y += self.b
        return _activate(y, self.act, inplace=True)


class _Conv2D(_Op):
    def __init__(self, ctx):
        super().__init__(ctx)
        self.filters = int(ctx.number("filters", 0))
        self.k = ctx.pair("kernel_size")
        self.s = ctx.pair("strides", (1, 1))
        self.padding = ctx.padding()
        ctx.channels_last()
        if "dilation_rate" in ctx.cfg and ctx.pair("dilation_rate") != (1, 1):
            raise ctx.fail(f"dilation_rate={ctx.cfg['dilation_rate']!r}")
        self.act = ctx.activation()
        self.use_bias = ctx.flag("use_bias", True)
        self.deferred = False

    def set_weights(self, ws):
        if len(ws) != (2 if self.use_bias else 1):
            raise self.fail(f"{len(ws)} weight arrays")
        kern = np.asarray(ws[0], dtype=np.float32)
        if kern.shape[:2] != self.k or kern.ndim != 4 or kern.shape[3] != self.filters:
            raise self.fail(f"kernel shape {kern.shape}")
        self.cin = kern.shape[2]
        # (kh, kw, cin, f) -> (kh * kw * cin, f): the im2col column order below
        self.w = np.ascontiguousarray(kern.reshape(-1, self.filters))
        self.b = np.asarray(ws[1], dtype=np.float32) if self.use_bias else None
        if self.b is not None and self.b.shape != (self.filters,):
            raise self.fail(f"bias shape {self.b.shape}")

    def shape(self, s):
        s = s[0]
        if len(s) != 4 or s[3] != self.cin:
            raise self.fail(f"input shape {s} for a kernel with {self.cin} input channels")
        return (s[0], _out_size(s[1], self.k[0], self.s[0], self.padding),
                _out_size(s[2], self.k[1], self.s[1], self.padding), self.filters)

    def fold_affine(self, scale, shift):
        self.w = np.ascontiguousarray(self.w * scale[None, :], dtype=np.float32)
        b = self.b if self.b is not None else np.zeros(self.filters, np.float32)
        self.b = (b * scale + shift).astype(np.float32)

    def __call__(self, x):
        """The whole convolution, im2col and matmul a few windows at a time: each chunk's
        patch matrix (~1 MB) stays in cache for its matmul (measured 10-20 % faster than
        one patch matrix for the batch on the 2-core machine)."""
        win, (n, ho, wo) = _patches(x, self.k, self.s, self.padding, self.name)
        k = win.shape[3] * win.shape[4] * win.shape[5]
        per = max(1, _CHUNK_FLOATS // max(1, ho * wo * k))
        if per >= n:
            return self.apply((win.reshape(n * ho * wo, k), (n, ho, wo)))
        y = np.empty((n * ho * wo, self.filters), np.float32)
        buf = np.empty((per, *win.shape[1:]), np.float32)
        for s in range(0, n, per):
            e = min(s + per, n)
            b = buf[: e - s]
            np.copyto(b, win[s:e])
            np.matmul(b.reshape(-1, k), self.w, out=y[s * ho * wo: e * ho * wo])
        return self._finish(y, n, ho, wo)

    def apply(self, cols_shape):
        """The matmul half of the convolution, on :func:`_im2col`'s output."""
        cols, (n, ho, wo) = cols_shape
        return self._finish(cols @ self.w, n, ho, wo)

    def _finish(self, y, n, ho, wo):
        if self.deferred:  # bias and activation applied after the max-pool (see _fuse)
            return y.reshape(n, ho, wo, self.filters)
        if self.b is not None:
            y += self.b
        return _activate(y.reshape(n, ho, wo, self.filters), self.act, inplace=True)


#: Patch-matrix floats per chunk in Conv2D.__call__ (2**18 floats = 1 MB).
_CHUNK_FLOATS = 1 << 18


def _patches(x, k, s, padding, name):
    """(n, h, w, c) -> ((n, ho, wo, kh, kw, c) view of the patches, (n, ho, wo)), with
    TensorFlow's padding; reshaping the view to (n*ho*wo, kh*kw*c) is im2col."""
    (kh, kw), (sh, sw) = k, s
    n, h, w, c = x.shape
    if padding == "same":
        ph, pw = _same_pad(h, kh, sh), _same_pad(w, kw, sw)
        if any(ph) or any(pw):
            x = _pad_hw(x, ph, pw, 0.0)
    ho, wo = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
    if ho <= 0 or wo <= 0:
        raise ValueError(f"layer {name!r}: input {h}x{w} is smaller than the kernel")
    # sliding_window_view: (n, ho', wo', c, kh, kw), no copy and no Python loop
    win = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::sh, ::sw][:, :ho, :wo]
    return win.transpose(0, 1, 2, 4, 5, 3), (n, ho, wo)


def _im2col(x, k, s, padding, name):
    """(n, h, w, c) -> ((n*ho*wo, kh*kw*c) patch matrix, (n, ho, wo)), TF padding."""
    win, (n, ho, wo) = _patches(x, k, s, padding, name)
    return win.reshape(n * ho * wo, -1), (n, ho, wo)


class _Im2Col:
    """The first half of a Conv2D step in a plan. Weight-free, so ensemble members
    reading the same tensor (e.g. the first convolution of each) share it."""

    kind = "im2col"

    def __init__(self, conv: "_Conv2D"):
        self.k, self.s, self.padding, self.name = conv.k, conv.s, conv.padding, conv.name
        self.sig = ("im2col", self.k, self.s, self.padding)

    def __call__(self, x):
        return _im2col(x, self.k, self.s, self.padding, self.name)


class _ConvMatmul:
    """The second half of a Conv2D step: patches @ kernel + bias, activation."""

    kind = "Conv2D"
    sig = None

    def __init__(self, conv: "_Conv2D"):
        self.conv = conv

    def __call__(self, cols_shape):
        return self.conv.apply(cols_shape)


class _BatchNorm(_Op):
    def __init__(self, ctx):
        super().__init__(ctx)
        axis = ctx.get("axis", -1)
        if isinstance(axis, (list, tuple)) and len(axis) == 1:
            axis = axis[0]
        if not isinstance(axis, int) or isinstance(axis, bool):
            raise ctx.fail(f"axis={axis!r}")
        self.axis = axis
        self.eps = ctx.number("epsilon", 1e-3)
        self.center = ctx.flag("center", True)
        self.scale_ = ctx.flag("scale", True)

    def set_weights(self, ws):
        want = int(self.scale_) + int(self.center) + 2
        if len(ws) != want:
            raise self.fail(f"{len(ws)} weight arrays (expected {want})")
        ws = [np.asarray(w, dtype=np.float64) for w in ws]
        i = 0
        gamma = ws[i] if self.scale_ else None
        i += int(self.scale_)
        beta = ws[i] if self.center else None
        i += int(self.center)
        mean, var = ws[i], ws[i + 1]
        inv = 1.0 / np.sqrt(var + self.eps)
        if gamma is not None:
            inv = inv * gamma
        shift = -mean * inv
        if beta is not None:
            shift = shift + beta
        self.mul, self.add = inv.astype(np.float32), shift.astype(np.float32)
        if self.mul.ndim != 1:
            raise self.fail("weight shapes")

    def shape(self, s):
        s = s[0]
        ax = self.axis % len(s)
        if ax == 0 or s[ax] != self.mul.shape[0]:
            raise self.fail(f"axis {self.axis} of input shape {s}")
        self.ax = ax
        self.bshape = tuple(self.mul.shape[0] if i == ax else 1 for i in range(len(s)))
        return s

    def __call__(self, x):
        return x * self.mul.reshape(self.bshape) + self.add.reshape(self.bshape)


class _LayerNorm(_Op):
    def __init__(self, ctx):
        super().__init__(ctx)
        axis = ctx.get("axis", -1)
        axis = [axis] if isinstance(axis, int) and not isinstance(axis, bool) else axis
        if (not isinstance(axis, (list, tuple)) or not axis
                or not all(isinstance(a, int) and not isinstance(a, bool) for a in axis)):
            raise ctx.fail(f"axis={axis!r}")
        self.axis_cfg = list(axis)
        self.eps = ctx.number("epsilon", 1e-3)
        self.center = ctx.flag("center", True)
        self.scale_ = ctx.flag("scale", True)

    def set_weights(self, ws):
        want = int(self.scale_) + int(self.center)
        if len(ws) != want:
            raise self.fail(f"{len(ws)} weight arrays (expected {want})")
        self.gamma = np.asarray(ws[0], np.float32) if self.scale_ else None
        self.beta = np.asarray(ws[int(self.scale_)], np.float32) if self.center else None
        if not (self.scale_ or self.center):  # no weights: shareable
            self.sig = ("layernorm", tuple(self.axis_cfg), self.eps)

    def shape(self, s):
        s = s[0]
        nd = len(s)
        axes = sorted({a % nd for a in self.axis_cfg})
        if 0 in axes or len(axes) != len(self.axis_cfg) or any(s[a] is None for a in axes):
            raise self.fail(f"axis {self.axis_cfg} of input shape {s}")
        self.axes = tuple(axes)
        pshape = tuple(s[a] for a in axes)
        bshape = tuple(s[i] if i in axes else 1 for i in range(nd))
        for name in ("gamma", "beta"):
            v = getattr(self, name)
            if v is not None:
                if v.shape != pshape:
                    raise self.fail(f"{name} shape {v.shape}")
                setattr(self, name, v.reshape(bshape))
        return s

    def __call__(self, x):
        mean = x.mean(axis=self.axes, keepdims=True)
        d = x - mean
        var = np.mean(d * d, axis=self.axes, keepdims=True)
        inv = 1.0 / np.sqrt(var + np.float32(self.eps))
        if self.gamma is not None:
            inv = inv * self.gamma
        y = d * inv
        if self.beta is not None:
            y += self.beta
        return y.astype(np.float32, copy=False)


class _Pool2D(_Op):
    def __init__(self, ctx, mode: str):
        super().__init__(ctx)
        self.mode = mode
        self.k = ctx.pair("pool_size", (2, 2))
        st = ctx.get("strides", None)
        self.s = self.k if st is None else ctx.pair("strides")
        self.padding = ctx.padding()
        ctx.channels_last()
        self.sig = ("pool", mode, self.k, self.s, self.padding)
        self.post = None  # (bias, activation) moved here from a Conv2D, see _fuse

    def shape(self, s):
        s = s[0]
        if len(s) != 4:
            raise self.fail(f"input shape {s}")
        return (s[0], _out_size(s[1], self.k[0], self.s[0], self.padding),
                _out_size(s[2], self.k[1], self.s[1], self.padding), s[3])

    def tail_padded(self, h: int, w: int) -> bool:
        """True when this is a SAME max-pool whose padding of an (h, w) input is all after
        the data (pool 2, stride 2 on an odd size, as in lungcnn): :meth:`_pool` then
        pools without a padded copy of the input (3-5 % of a call of the bundled ensemble)."""
        return (self.mode == "max" and self.padding == "same" and h > 0 and w > 0
                and _same_pad(h, self.k[0], self.s[0])[0] == 0
                and _same_pad(w, self.k[1], self.s[1])[0] == 0)

    def _pool(self, x, fill):
        (kh, kw), (sh, sw) = self.k, self.s
        n, h, w, c = x.shape
        if self.padding == "same":
            ho, wo = -(-h // sh), -(-w // sw)
            ph, pw = _same_pad(h, kh, sh), _same_pad(w, kw, sw)
            # padding after the data never wins a max: a position of the pool window
            # then just reaches fewer output cells (below), and nothing is copied
            if (any(ph) or any(pw)) and not (fill == -np.inf and self.tail_padded(h, w)):
                x = _pad_hw(x, ph, pw, fill)
        else:
            ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
        if ho <= 0 or wo <= 0:
            raise ValueError(f"layer {self.name!r}: input {h}x{w} is smaller than the pool")
        # one strided slice per position inside the pool window (kh * kw of them; no
        # loop over windows): elementwise max / sum, much faster than a reduction over
        # non-contiguous window axes. Offset (0, 0) reaches every output cell; offset i
        # reaches the rows r with r * sh + i inside x (all of them once x is padded).
        combine = np.maximum if self.mode == "max" else np.add
        out = x[:, : (ho - 1) * sh + 1: sh, : (wo - 1) * sw + 1: sw].copy()
        for i in range(kh):
            rows = min(ho, -(-(x.shape[1] - i) // sh))
            for j in range(kw):
                cols = min(wo, -(-(x.shape[2] - j) // sw))
                if (i, j) == (0, 0) or rows <= 0 or cols <= 0:
                    continue
                dst = out[:, :rows, :cols]
                combine(dst, x[:, i: i + (rows - 1) * sh + 1: sh, j: j + (cols - 1) * sw + 1: sw],
                        out=dst)
        return out

    def __call__(self, x):
        if self.mode == "max":
            y = self._pool(x, -np.inf)
            if self.post is not None:  # the bias and ReLU of the convolution before
                bias, act = self.post
                if bias is not None:
                    y += bias
                y = _activate(y, act, inplace=True)
            return y
        total = self._pool(x, 0.0)
        # TensorFlow's SAME average pooling divides by the number of real (unpadded) cells
        ones = np.ones((1, x.shape[1], x.shape[2], 1), np.float32)
        count = self._pool(ones, 0.0)
        return (total / count).astype(np.float32, copy=False)


class _GlobalPool(_Op):
    def __init__(self, ctx, mode: str):
        super().__init__(ctx)
        self.mode = mode
        ctx.channels_last()
        self.keepdims = ctx.flag("keepdims", False)
        self.sig = ("globalpool", mode, self.keepdims)

    def shape(self, s):
        s = s[0]
        if len(s) != 4:
            raise self.fail(f"input shape {s}")
        return (s[0], 1, 1, s[3]) if self.keepdims else (s[0], s[3])

    def __call__(self, x):
        if self.mode == "max":
            return x.max(axis=(1, 2), keepdims=self.keepdims)
        return x.mean(axis=(1, 2), keepdims=self.keepdims, dtype=np.float32)


class _Concat(_Op):
    n_inputs = None

    def __init__(self, ctx):
        super().__init__(ctx)
        axis = ctx.get("axis", -1)
        if not isinstance(axis, int) or isinstance(axis, bool):
            raise ctx.fail(f"axis={axis!r}")
        self.axis = axis
        self.sig = ("concat", axis)

    def shape(self, shapes):
        if len(shapes) < 2 or len({len(s) for s in shapes}) != 1:
            raise self.fail("inputs")
        nd = len(shapes[0])
        ax = self.axis % nd
        if ax == 0:
            raise self.fail("concatenation over the batch axis")
        out = list(shapes[0])
        for s in shapes[1:]:
            for i in range(nd):
                if i != ax and None not in (s[i], out[i]) and s[i] != out[i]:
                    raise self.fail(f"input shapes {shapes}")
        out[ax] = None if any(s[ax] is None for s in shapes) else sum(s[ax] for s in shapes)
        self.ax = ax
        return tuple(out)

    def __call__(self, *xs):
        return np.concatenate(xs, axis=self.ax)


class _Flatten(_Op):
    sig = "flatten"

    def __init__(self, ctx):
        super().__init__(ctx)
        ctx.channels_last()

    def shape(self, s):
        s = s[0]
        rest = s[1:]
        return (s[0], None if None in rest else int(np.prod(rest)))

    def __call__(self, x):
        return x.reshape(len(x), -1)


_BUILDERS = {
    "InputLayer": _Input,
    "Dropout": _Identity,
    "Activation": _Activation,
    "ReLU": _ReLU,
    "Dense": _Dense,
    "Conv2D": _Conv2D,
    "BatchNormalization": _BatchNorm,
    "LayerNormalization": _LayerNorm,
    "MaxPooling2D": lambda ctx: _Pool2D(ctx, "max"),
    "AveragePooling2D": lambda ctx: _Pool2D(ctx, "avg"),
    "GlobalAveragePooling2D": lambda ctx: _GlobalPool(ctx, "avg"),
    "GlobalMaxPooling2D": lambda ctx: _GlobalPool(ctx, "max"),
    "Concatenate": _Concat,
    "Flatten": _Flatten,
}
SUPPORTED_LAYERS = tuple(sorted(_BUILDERS))
_UNSAFE = {"Lambda", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer"}


def _make_op(layer_cfg: dict, path: Path) -> _Op:
    if not isinstance(layer_cfg, dict):
        raise UnsupportedModel("a layer entry is not an object", path)
    cls = layer_cfg.get("class_name")
    module = layer_cfg.get("module") or ""
    ctx = _Ctx(layer_cfg, path)
    if cls in _UNSAFE:
        raise UnsafeModel(f"refused: the model file contains custom code (a {cls} layer, "
                          f"{ctx.name!r}) and could run code when loaded; lungapp loads models "
                          "in safe mode", path)
    if layer_cfg.get("registered_name") not in (None, cls) or not (
            module == "keras.layers" or module.startswith("keras.src.layers")):
        if cls in ("Functional", "Sequential", "Model") and module.startswith(("keras", "keras.src")):
            raise UnsupportedModel(f"layer {ctx.name!r} is a nested model ({cls}), which the "
                                   "NumPy runtime does not run", path)
        raise UnsafeModel(f"refused: the model file needs custom objects that lungapp does not "
                          f"provide (layer {ctx.name!r}: {layer_cfg.get('registered_name') or cls} "
                          f"from {module or 'an unknown module'})", path)
    builder = _BUILDERS.get(cls)
    if builder is None:
        raise UnsupportedModel(f"layer {ctx.name!r} of type {cls} is not supported by the NumPy "
                               "runtime", path)
    op = builder(ctx)
    ctx.finish()
    return op


# --- the graph ------------------------------------------------------------------------

def _tensor_ref(obj, path: Path, where: str) -> tuple[str, int, int]:
    if (isinstance(obj, dict) and obj.get("class_name") == "__keras_tensor__"):
        hist = (obj.get("config") or {}).get("keras_history")
        if (isinstance(hist, list) and len(hist) == 3 and isinstance(hist[0], str)
                and all(isinstance(i, int) for i in hist[1:])):
            return hist[0], hist[1], hist[2]
    raise UnsupportedModel(f"{where}: an input that is not a Keras tensor reference", path)


def _node_inputs(node, path: Path, layer: str) -> list[tuple[str, int, int]]:
    if not isinstance(node, dict):
        raise UnsupportedModel(f"layer {layer!r}: inbound node format (not Keras 3)", path)
    args, kwargs = node.get("args", []), node.get("kwargs", {}) or {}
    for k, v in kwargs.items():
        if k == "mask" and v is None or k == "training" and v in (None, False, True):
            continue
        raise UnsupportedModel(f"layer {layer!r}: call argument {k!r}", path)
    if len(args) != 1:
        raise UnsupportedModel(f"layer {layer!r}: {len(args)} call arguments", path)
    a = args[0]
    if isinstance(a, list):
        return [_tensor_ref(t, path, f"layer {layer!r}") for t in a]
    return [_tensor_ref(a, path, f"layer {layer!r}")]


def _refs(value, path: Path, what: str) -> list[tuple[str, int, int]]:
    """input_layers / output_layers: [name, node, tensor] or a list of those."""
    if (isinstance(value, list) and len(value) == 3 and isinstance(value[0], str)):
        value = [value]
    if (not isinstance(value, list) or not value
            or not all(isinstance(v, list) and len(v) == 3 and isinstance(v[0], str) for v in value)):
        raise UnsupportedModel(f"model {what} {value!r}", path)
    return [(v[0], int(v[1]), int(v[2])) for v in value]


class NumpyModel:
    """A loaded model: ``model(x)`` runs the plan on a float32 batch ``x``."""

    runtime = "numpy"

    def __init__(self, path: Path, name: str, input_shape: tuple, output_shape: tuple,
                 steps: list, input_key, output_key):
        self.path = Path(path)
        self.name = name
        self.input_shape = input_shape
        self.output_shape = output_shape
        self._steps = steps  # [(op, [input keys], output key, [keys to free], value sig)]
        self._input_key = input_key
        self._output_key = output_key

    def __call__(self, x) -> np.ndarray:
        x = self._check(x)
        with blas_limit():
            return _split_run(lambda part: self._run(part, {}), x)

    predict = __call__

    def _check(self, x) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        want = self.input_shape[1:]
        if x.ndim != len(self.input_shape) or any(
                w is not None and g != w for g, w in zip(x.shape[1:], want)):
            raise ValueError(f"{self.path.name}: input shape {x.shape[1:]} does not match the "
                             f"model's {want}")
        return x

    def _run(self, x, shared: dict) -> np.ndarray:
        """Run the plan; ``shared`` maps value signatures to values already computed
        (by another ensemble member on the same input) and receives this run's."""
        env = {self._input_key: x}
        for op, ins, out, free, sig in self._steps:
            if sig is not None and sig in shared:
                env[out] = shared[sig]
            else:
                env[out] = op(*[env[k] for k in ins])
                if sig is not None:
                    shared[sig] = env[out]
            for k in free:
                del env[k]
        return np.asarray(env[self._output_key], dtype=np.float32)

    def layer_types(self) -> list[str]:
        return [op.kind for op, *_ in self._steps if op.kind != "im2col"]


class NumpyEnsemble:
    """The mean of several NumpyModels' outputs (as ``keras.layers.Average``), computing
    what the members share (weight-free layers on the same input, e.g. a parameter-free
    LayerNormalization and the first convolution's patch matrix) once."""

    runtime = "numpy"

    def __init__(self, models: list[NumpyModel]):
        if not models:
            raise ValueError("an ensemble needs at least one model")
        shapes = {(m.input_shape, m.output_shape) for m in models}
        if len(shapes) != 1:
            raise ValueError(f"ensemble members disagree on input/output shapes: {sorted(shapes, key=repr)}")
        self.models = list(models)
        self.input_shape, self.output_shape = models[0].input_shape, models[0].output_shape

    def __call__(self, x) -> np.ndarray:
        x = self.models[0]._check(x)
        with blas_limit():
            return _split_run(self._mean, x)

    def _mean(self, x) -> np.ndarray:
        shared: dict = {}
        total = None
        for m in self.models:
            y = m._run(x, shared)
            total = y.copy() if total is None else total + y
        return (total / np.float32(len(self.models))).astype(np.float32, copy=False)

    predict = __call__


def load(path) -> NumpyModel:
    """Read a .keras file and build its NumPy execution plan.

    Raises :class:`UnsupportedModel` (a layer, option or graph shape this runtime does not
    run: use Keras), :class:`UnsafeModel` (custom code: refused) or :class:`ModelError`
    (not a readable .keras file)."""
    path = Path(path)
    top, weights = _read_keras_file(path)
    cls = top.get("class_name")
    module = top.get("module") or ""
    if top.get("registered_name") not in (None, cls) or not module.startswith(("keras", "keras.src")):
        raise UnsafeModel(f"refused: the model is a custom class ({top.get('registered_name') or cls}) "
                          "that could run code when loaded; lungapp loads models in safe mode", path)
    cfg = top.get("config")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("layers"), list):
        raise UnsupportedModel(f"model class {cls!r} without a layer list", path)
    name = cfg.get("name") or path.stem
    layer_cfgs = cfg["layers"]
    ops: dict[str, _Op] = {}
    for lc in layer_cfgs:
        op = _make_op(lc, path)
        if op.name in ops:
            raise UnsupportedModel(f"two layers named {op.name!r}", path)
        ops[op.name] = op

    # nodes: output key -> (op, input keys)
    nodes: dict[tuple, tuple[_Op, list]] = {}
    if cls == "Sequential":
        chain = list(ops.values())
        if chain and isinstance(chain[0], _Input):
            inp = chain.pop(0)
        else:
            shape = cfg.get("build_input_shape")
            if not isinstance(shape, list):
                raise UnsupportedModel("sequential model without an input shape", path)
            inp = _Input(_Ctx({"class_name": "InputLayer",
                               "config": {"name": "__input__", "batch_shape": shape}}, path))
        if not chain:
            raise UnsupportedModel("sequential model without layers", path)
        prev = (inp.name, 0, 0)
        for op in chain:
            if isinstance(op, _Input):
                raise UnsupportedModel("an InputLayer inside a sequential model", path)
            nodes[(op.name, 0, 0)] = (op, [prev])
            prev = (op.name, 0, 0)
        in_refs, out_refs = [(inp.name, 0, 0)], [prev]
        inputs = {(inp.name, 0, 0): inp}
    elif cls in ("Functional", "Model"):
        inputs = {}
        for lc in layer_cfgs:
            lname = (lc.get("config") or {}).get("name") or lc.get("name")
            op = ops[lname]
            inbound = lc.get("inbound_nodes", [])
            if isinstance(op, _Input):
                inputs[(lname, 0, 0)] = op
                continue
            if not isinstance(inbound, list):
                raise UnsupportedModel(f"layer {lname!r}: inbound nodes", path)
            for i, node in enumerate(inbound):
                ins = _node_inputs(node, path, lname)
                if op.n_inputs == 1 and len(ins) != 1:
                    raise UnsupportedModel(f"layer {lname!r}: {len(ins)} inputs", path)
                nodes[(lname, i, 0)] = (op, ins)
        in_refs = _refs(cfg.get("input_layers"), path, "inputs")
        out_refs = _refs(cfg.get("output_layers"), path, "outputs")
    else:
        raise UnsupportedModel(f"model class {cls!r} (expected Functional or Sequential)", path)

    if len(in_refs) != 1 or len(out_refs) != 1:
        raise UnsupportedModel(f"{len(in_refs)} inputs and {len(out_refs)} outputs (expected one each)", path)
    if in_refs[0] not in inputs:
        raise UnsupportedModel(f"model input {in_refs[0]} is not an InputLayer", path)

    # weights: every layer's arrays, by its own name; every weight group must be used
    for op in ops.values():
        op.set_weights(weights.pop(op.name, []))
    if weights:
        raise UnsupportedModel(f"weights for unknown layers {sorted(weights)[:5]}", path)

    # topological order of the nodes the output needs (depth-first from the output)
    order: list[tuple] = []
    state: dict[tuple, int] = {}

    def visit(key, depth=0):
        if key in inputs:
            if key != in_refs[0]:
                raise UnsupportedModel(f"the graph uses a second input {key[0]!r}", path)
            return
        if key not in nodes:
            raise UnsupportedModel(f"the graph refers to a missing tensor {key}", path)
        if state.get(key) == 2:
            return
        if state.get(key) == 1 or depth > 10000:
            raise UnsupportedModel("the layer graph has a cycle", path)
        state[key] = 1
        for k in nodes[key][1]:
            visit(k, depth + 1)
        state[key] = 2
        order.append(key)

    visit(out_refs[0])
    if not order:
        raise UnsupportedModel("the model's output is its input", path)

    # shapes (validates weights against the graph)
    shapes = {in_refs[0]: inputs[in_refs[0]].shape}
    for key in order:
        op, ins = nodes[key]
        shapes[key] = tuple(op.shape([shapes[k] for k in ins]))

    fused = _fuse([(nodes[k][0], list(nodes[k][1]), k) for k in order], out_refs[0])
    # value signatures: a weight-free op on a shared value gives a shared value (the
    # same for every ensemble member reading the same input: computed once)
    vsig: dict[tuple, object] = {in_refs[0]: ("input",)}
    steps = []

    def add(op, ins, out):
        in_sigs = [vsig[k] for k in ins]
        if op.sig == "identity":
            vsig[out] = in_sigs[0]
        elif op.sig is not None and all(v is not None for v in in_sigs):
            vsig[out] = (op.sig, tuple(in_sigs))
        else:
            vsig[out] = None
        steps.append((op, ins, out))

    for op, ins, out in fused:
        if isinstance(op, _Conv2D) and vsig[ins[0]] is not None:
            # on a shared value: a shareable im2col step + this member's matmul step
            add(_Im2Col(op), ins, (*out, "cols"))
            add(_ConvMatmul(op), [(*out, "cols")], out)
        else:
            add(op, ins, out)
    # free each intermediate array after its last use
    last_use: dict[tuple, int] = {}
    for i, (_, ins, _) in enumerate(steps):
        for k in ins:
            last_use[k] = i
    plan = []
    for i, (op, ins, out) in enumerate(steps):
        free = sorted({k for k in ins if last_use[k] == i and k != out_refs[0]}, key=repr)
        plan.append((op, ins, out, free, vsig[out]))
    return NumpyModel(path, name, inputs[in_refs[0]].shape, shapes[out_refs[0]], plan,
                      in_refs[0], out_refs[0])


def _fuse(steps: list, output_key) -> list:
    """Fold a BatchNormalization (channel axis last) into the linear Conv2D/Dense before
    it, and a plain ReLU into the Conv2D/Dense before it, when that layer's output goes
    nowhere else; move a convolution's bias and ReLU behind the max-pool that follows it:
    fewer passes over the activations. Returns the new step list."""
    steps = list(steps)
    while True:
        consumers: dict[tuple, int] = {}
        for _, ins, _ in steps:
            for k in ins:
                consumers[k] = consumers.get(k, 0) + 1
        by_out = {out: j for j, (_, _, out) in enumerate(steps)}
        for i, (op, ins, out) in enumerate(steps):
            if len(ins) != 1 or ins[0] not in by_out:
                continue
            j = by_out[ins[0]]
            prev = steps[j][0]
            if (not isinstance(prev, (_Conv2D, _Dense)) or prev.act != "linear"
                    or consumers[ins[0]] != 1 or ins[0] == output_key
                    or sum(1 for o, _, _ in steps if o is prev) != 1):
                continue
            if isinstance(op, _BatchNorm) and op.ax == len(op.bshape) - 1:
                prev.fold_affine(op.mul, op.add)
            elif _is_plain_relu(op):
                prev.act = "relu"
            else:
                continue
            steps[j] = (prev, steps[j][1], out)  # prev now produces what op produced
            del steps[i]
            break
        else:
            break
    # Conv2D (bias, linear or ReLU) -> MaxPooling2D: add the bias and apply the ReLU after
    # the pool, on a quarter of the values. Exact: max(a_i + b) = max(a_i) + b and
    # max(relu(a_i)) = relu(max(a_i)), as rounding and ReLU are monotonic.
    consumers = {}
    for idx, (_, ins, _) in enumerate(steps):
        for k in ins:
            consumers.setdefault(k, []).append(idx)
    for prev, _, out in steps:
        users = consumers.get(out, [])
        if (not isinstance(prev, _Conv2D) or prev.act not in ("linear", "relu") or prev.deferred
                or len(users) != 1 or out == output_key
                or sum(1 for o, _, _ in steps if o is prev) != 1):
            continue
        pool = steps[users[0]][0]
        if (isinstance(pool, _Pool2D) and pool.mode == "max" and pool.post is None
                and sum(1 for o, _, _ in steps if o is pool) == 1):
            prev.deferred = True
            pool.post = (prev.b, prev.act)
            pool.sig = None  # it holds weights now: not shareable between models
    return steps


def _is_plain_relu(op) -> bool:
    if isinstance(op, _ReLU):
        return op.threshold == 0.0 and op.slope == 0.0 and op.max_value is None
    return isinstance(op, _Activation) and op.act == "relu"
