"""Does re-estimating a model's batch-norm statistics on a collection's own recordings,
without their labels (AdaBN, Li et al. 2016), make its answers transfer?

Each member of the model normalises its convolution blocks with BatchNormalization
statistics gathered while training. Here every BatchNormalization layer's mean and variance
are re-estimated, layer by layer in network order, as the exact mean and variance of its
input over a set of windows; no label is read. Rows, for each target folder (SPRSound
intra_test, each ICBHI device):

- ``as is``: the model unchanged;
- ``train``: statistics re-estimated on SPRSound train's windows (clean, every
  ``--train-stride``-th window), the same model for every target;
- ``other half``: the target's patients split into two halves (sorted ids, alternately);
  each half predicted by the model re-estimated on the other half's recordings.

Threshold, calibration and pooling stay the card's. Printed per row and target: AUC,
sensitivity, specificity and score at the card's threshold, the four-class score and the
threshold that would have maximised the score there (for comparison only). The model runs
on Keras (the card must list ``.keras`` files).

    .venv/bin/python research/adabn_transfer.py [--model resources/model] [--data ../shared/data]
        [--train-stride 4]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pooling_transfer import folders  # noqa: E402

_BATCH = 256


def bn_layers(model) -> list:
    """The model's BatchNormalization layers in network order."""
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def reestimate_bn(model, X: np.ndarray):
    """A copy of ``model`` whose BatchNormalization layers' moving mean and variance are
    the mean and variance of their inputs over the windows ``X``, each layer estimated with
    the layers before it already re-estimated. ``model`` is not changed."""
    import keras

    out = keras.models.clone_model(model)
    out.set_weights(model.get_weights())
    for layer in bn_layers(out):
        feed = keras.Model(out.input, layer.input)
        total = sq = None
        n = 0
        for i in range(0, len(X), _BATCH):
            a = np.asarray(feed(X[i: i + _BATCH], training=False), dtype=np.float64)
            a = a.reshape(-1, a.shape[-1])
            total = a.sum(0) if total is None else total + a.sum(0)
            sq = (a * a).sum(0) if sq is None else sq + (a * a).sum(0)
            n += len(a)
        mean = total / n
        layer.moving_mean.assign(mean.astype(np.float32))
        layer.moving_variance.assign(np.maximum(sq / n - mean * mean, 0.0).astype(np.float32))
    return out


def windows_of(paths, fcs, stride: int = 1) -> list[np.ndarray]:
    """For each feature config of ``fcs``: every ``stride``-th model input window of each
    recording (decoded at the model's rate), stacked; recordings that cannot be decoded are
    skipped."""
    from lungapp.audio.decode import load_audio
    from lungapp.errors import LungappError
    from lungapp.inference.features import member_windows

    parts: list[list[np.ndarray]] = [[] for _ in fcs]
    for path in paths:
        try:
            x = load_audio(path, rate=fcs[0].rate, min_seconds=1.0).samples
        except LungappError:
            continue
        for part, (X, _) in zip(parts, member_windows(x, list(fcs))):
            part.append(X[::stride])
    return [np.concatenate(part).astype(np.float32) for part in parts]


def halves(patients) -> tuple[set, set]:
    """The distinct patient ids split into two halves: sorted, alternately."""
    ids = sorted({p for p in patients if p is not None})
    return set(ids[0::2]), set(ids[1::2])


class Adapter:
    """The model's Keras members by feature group, and predictors of them with re-estimated
    statistics."""

    def __init__(self, model_dir: Path):
        from lungapp.inference.card import load_card
        from lungapp.inference.predictor import load_keras_model

        self.dir = model_dir
        self.card = load_card(model_dir)
        self.groups = [(fc, [load_keras_model(model_dir / f) for f in files])
                       for fc, files in self.card.member_groups()]
        self.fcs = [fc for fc, _ in self.groups]

    def predictor(self, Xs: list[np.ndarray] | None = None):
        """A Keras-runtime predictor of the members, each group's re-estimated on its
        windows in ``Xs`` (:func:`windows_of` with ``self.fcs``; None: as they are)."""
        from lungapp.inference.predictor import MemberGroup, Predictor, _ensemble

        groups = []
        for g, (fc, members) in enumerate(self.groups):
            if Xs is not None:
                members = [reestimate_bn(m, Xs[g]) for m in members]
            groups.append(MemberGroup(fc, _ensemble(members), len(members)))
        return Predictor(self.dir, self.card, groups, runtime="keras", runtime_note="adabn_transfer")


def scores(rows: list[dict], card) -> dict:
    """AUC, sensitivity, specificity, score at the card's threshold, four-class score and
    the best threshold of evaluate_folder's per-recording rows."""
    from lungapp.evaluation.metrics import binary_metrics, choose_threshold, multiclass_metrics

    y = [int(r["truth"] == "abnormal") for r in rows]
    p = [r["abnormal_probability"] for r in rows]
    m = binary_metrics(y, p, card.threshold)
    out = {k: None if math.isnan(m[k]) else m[k] for k in ("auc", "sensitivity", "specificity", "score")}
    named = [(r["class"], r["predicted_class"]) for r in rows if r["class"] is not None]
    out["four_class"] = (multiclass_metrics([t for t, _ in named], [d for _, d in named],
                                            card.classes)["score"] if named else None)
    out["best_threshold"] = choose_threshold(y, p)[0] if len(set(y)) == 2 else None
    out["n"] = len(rows)
    return out


def target_rows(adapter: Adapter, folder: Path, layout: str, fixed: dict) -> dict:
    """{row name: scores} for one target folder: the fixed predictors, then the halves."""
    from lungapp.data import read_folder
    from lungapp.evaluation.folder import evaluate_folder

    out = {name: scores(evaluate_folder(folder, pred, layout=layout)["recordings"], adapter.card)
           for name, pred in fixed.items()}
    ds = read_folder(folder, layout)
    rows = []
    first, second = halves(e.patient for e in ds.examples)
    for keep, other in ((first, second), (second, first)):
        Xs = windows_of([e.path for e in ds.examples if e.patient in other], adapter.fcs)
        res = evaluate_folder(folder, adapter.predictor(Xs), layout=layout)
        rows += [r for r in res["recordings"] if r["patient"] in keep]
    out["other half"] = scores(rows, adapter.card)
    return out


def _f(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def table(results: dict) -> str:
    lines = ["| data | statistics | n | AUC | sens | spec | score | four-class | best threshold |",
             "|---|---|---|---|---|---|---|---|---|"]
    for target, rows in results.items():
        for name, s in rows.items():
            lines.append(f"| {target} | {name} | {s['n']} | {_f(s['auc'])} | {_f(s['sensitivity'])} | "
                         f"{_f(s['specificity'])} | {_f(s['score'])} | {_f(s['four_class'])} | "
                         f"{_f(s['best_threshold'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from lungapp.errors import LungappError

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=ROOT / "resources" / "model")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--train-stride", type=int, default=4)
    a = ap.parse_args(argv)
    try:
        from lungapp.data import read_folder

        adapter = Adapter(a.model)
        fixed = {"as is": adapter.predictor()}
        train = a.data / "sprsound" / "train"
        if train.is_dir():
            paths = [e.path for e in read_folder(train, "sprsound").examples]
            fixed["train"] = adapter.predictor(windows_of(paths, adapter.fcs, a.train_stride))
        with tempfile.TemporaryDirectory() as tmp:
            found = folders(a.data, Path(tmp))
            if not found:
                print(f"no SPRSound intra_test or ICBHI subset under {a.data}", file=sys.stderr)
                return 1
            results = {name: target_rows(adapter, folder, layout, fixed) for name, folder, layout in found}
    except LungappError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
