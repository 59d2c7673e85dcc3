"""Model recipe research: patient-grouped 4-fold CV of window recipes on SPRSound train.

    python benchmarks/model_research.py [--data ../shared/data/sprsound/train]
        [--recipes event_mel8k,record_mel8k,...] [--epochs 15] [--steps 120] [--folds 0,1,2,3]
        [--cache DIR] [--json OUT.json]

Prints one row per recipe: recording-level binary (normal vs abnormal) AUC, sensitivity,
specificity and score at the out-of-fold threshold, and the four-class (Normal / CAS /
DAS / CAS & DAS) ICBHI score, for each pooling rule.

Protocol
--------
* Recordings: SPRSound train without ``Poor Quality`` (1772 recordings of 251 children).
* Folds: ``StratifiedGroupKFold(4, shuffle=True, random_state=42)`` on the record label,
  grouped by patient (the first field of the file name). Every number is out-of-fold:
  each recording is scored by the model that never saw its child.
* Thresholds are chosen on the out-of-fold predictions only (binary: the one maximising
  (sensitivity + specificity) / 2; four-class: the pair (t_CAS, t_DAS) maximising the
  ICBHI score on a grid of quantiles).
* Four-class score (ICBHI): sensitivity = abnormal recordings given their exact class over
  all abnormal recordings; specificity = normal recordings called Normal over all normal;
  score = their mean.

Model (every recipe): a window classifier with two sigmoid outputs, [CAS present,
DAS present], on fixed-length windows of the app's spectrogram
(:func:`lungapp.dsp.spectrogram.spectrogram` + :func:`normalise`), pooled over a
recording's windows into recording probabilities p_CAS, p_DAS; the abnormal
probability is 1 - (1 - p_CAS)(1 - p_DAS) (what :mod:`lungapp.inference.predictor` does for
a card with sigmoid outputs ["CAS", "DAS"]).

Window targets
--------------
* ``labels="record"``: every window carries its recording's label (CAS -> [1, 0], DAS ->
  [0, 1], CAS & DAS -> [1, 1], Normal -> [0, 0]).
* ``labels="event"``: from SPRSound's timed events. A window [t0, t0 + W) gets CAS = 1 if
  it overlaps an event of type Wheeze, Rhonchi, Stridor or Wheeze+Crackle by at least
  min(0.25 s, half the event's length), and DAS = 1 likewise for Fine Crackle, Coarse
  Crackle or Wheeze+Crackle. Windows overlapping only Normal events, or no event, are
  [0, 0]. (Recordings labelled Normal have only Normal events.)

Training: Adam, one epoch of linear warm-up from 1e-4 to 2e-3, then cosine decay to 4e-5, batches of 64 drawn with a
quarter from CAS windows, a quarter from DAS windows and half from all windows; SpecAugment
(two frequency masks up to 8 bands, one time mask up to 1/8 of the window), a random
level shift of about +-5 dB; ``epochs x steps`` batches per fold.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lungapp.dsp.spectrogram import SpectrogramConfig, normalise, spectrogram  # noqa: E402

CAS_TYPES = {"Wheeze", "Rhonchi", "Stridor", "Wheeze+Crackle"}
DAS_TYPES = {"Fine Crackle", "Coarse Crackle", "Wheeze+Crackle"}
FOLD_SEED = 42

FEATURES = {
    # 8 kHz log-mel, full band: 32 ms window, 16 ms hop, 64 bands 50-4000 Hz.
    "mel8k": SpectrogramConfig(rate=8000, win_length=256, hop_length=128, n_fft=256, window="hann",
                               scale="mel", n_mels=64, fmin=50.0, fmax=4000.0,
                               min_db=-100.0, max_db=0.0),
    # The same resolution restricted to what a 4 kHz stethoscope records (50-2000 Hz).
    "mel4k": SpectrogramConfig(rate=8000, win_length=256, hop_length=128, n_fft=256, window="hann",
                               scale="mel", n_mels=64, fmin=50.0, fmax=2000.0,
                               min_db=-100.0, max_db=0.0),
    # SPRSound's stethoscope passes almost nothing above ~800 Hz (above 1 kHz the bands sit at
    # the 16-bit quantisation floor, about -112 dB), and -100 dB floors the 600-800 Hz bands:
    # 64 bands 50-1000 Hz, zero-padded 512-point FFT (15.6 Hz bins), floor -120 dB.
    "mel1k": SpectrogramConfig(rate=8000, win_length=256, hop_length=128, n_fft=512, window="hann",
                               scale="mel", n_mels=64, fmin=50.0, fmax=1000.0,
                               min_db=-120.0, max_db=0.0),
    # Linear-frequency log-STFT, 129 bins 0-4000 Hz.
    "stft8k": SpectrogramConfig(rate=8000, win_length=256, hop_length=128, n_fft=256, window="hann",
                                scale="linear", min_db=-100.0, max_db=0.0),
}

BASE = dict(feat="mel8k", labels="event", win=2.0, train_hop=0.5, eval_hop=0.5, norm="layer",
            width=16, specaug=True, mixup=0.0, lowpass=0.0)
RECIPES = {
    "record_mel8k": dict(BASE, labels="record"),
    "event_mel8k": dict(BASE),
    "event_mel4k": dict(BASE, feat="mel4k"),
    "event_mel1k": dict(BASE, feat="mel1k"),
    "event_mel8k_lowpass": dict(BASE, lowpass=0.3),
    "event_stft8k": dict(BASE, feat="stft8k"),
    "event_mel8k_nonorm": dict(BASE, norm="none"),
    "event_mel8k_mixup": dict(BASE, mixup=0.4),
}
POOLINGS = ("max", "top2", "top3", "mean")


# ----------------------------------------------------------------------------- model
def build_recommended_model(input_shape, n_classes: int = 2, *, width: int = 16,
                            norm: str = "layer", activation: str = "sigmoid"):
    """The recommended window classifier, built from Keras built-in layers only (loads
    with ``safe_mode=True``).

    input_shape: (frames, bins, 1) of one window, values in [0, 1] (``normalise``d dB).
    n_classes: number of outputs; the recipe uses 2 sigmoid outputs [CAS, DAS]
        (``activation="softmax"`` gives a softmax over n_classes instead).
    norm: ``"layer"`` standardises each frequency band over the window's frames
        (LayerNormalization over the time axis, no learned parameters), which removes the
        recording's level and spectral tilt; ``"none"`` feeds the normalised dB as is.

    Four conv blocks (3x3 conv, BatchNorm, ReLU, 2x2 max-pool; the first conv has stride 2),
    channels width x (1, 2, 4, 8), global average + max pooling, dropout, a 64-unit dense
    layer, dropout and the output layer. About 115 k parameters (0.5 MB) at width 16.
    """
    import keras
    from keras import layers

    inp = keras.Input(tuple(input_shape), name="spectrogram")
    x = inp
    if norm == "layer":
        x = layers.LayerNormalization(axis=1, center=False, scale=False, epsilon=1e-3,
                                      name="per_band_norm")(x)
    elif norm != "none":
        raise ValueError(f"norm must be 'layer' or 'none', not {norm!r}")
    for k, ch in enumerate([width, 2 * width, 4 * width, 8 * width]):
        x = layers.Conv2D(ch, 3, strides=2 if k == 0 else 1, padding="same", use_bias=False,
                          kernel_initializer="he_normal", name=f"conv{k + 1}")(x)
        x = layers.BatchNormalization(name=f"bn{k + 1}")(x)
        x = layers.ReLU(name=f"relu{k + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{k + 1}")(x)
    x = layers.Concatenate(name="pooled")([layers.GlobalAveragePooling2D(name="gap")(x),
                                           layers.GlobalMaxPooling2D(name="gmp")(x)])
    x = layers.Dropout(0.3, name="drop1")(x)
    x = layers.Dense(64, activation="relu", name="dense")(x)
    x = layers.Dropout(0.3, name="drop2")(x)
    out = layers.Dense(n_classes, activation=activation, name="outputs")(x)
    return keras.Model(inp, out, name="lungapp_cnn")


# ----------------------------------------------------------------------------- data
def load_recordings(folder: Path, cfg: SpectrogramConfig, cache: Path | None = None):
    """Non-poor-quality recordings of an SPRSound folder with their normalised spectrogram."""
    import soundfile as sf

    key = None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        key = cache / f"{folder.name}_{abs(hash(cfg.to_json())) % 10**10}.pkl"
        if key.exists():
            with open(key, "rb") as fh:
                return pickle.load(fh)
    recs = []
    min_samples = int(2.0 * cfg.rate)  # at least one 2-s window (zero padded: silence)
    for jf in sorted(folder.glob("*.json")):
        meta = json.loads(jf.read_text())
        if meta["record_annotation"] == "Poor Quality":
            continue
        x, rate = sf.read(str(jf.with_suffix(".flac")), dtype="float32")
        if rate != cfg.rate:
            from scipy.signal import resample_poly

            g = np.gcd(rate, cfg.rate)
            x = resample_poly(x, cfg.rate // g, rate // g).astype(np.float32)
        n = len(x)
        xp = np.pad(x, (0, max(0, min_samples - n)))
        spec = normalise(spectrogram(xp, cfg), cfg).astype(np.float16)
        events = [(float(e["start"]) / 1000, float(e["end"]) / 1000, e["type"])
                  for e in meta["event_annotation"]]
        recs.append(dict(name=jf.stem, patient=jf.stem.split("_")[0],
                         label=meta["record_annotation"], n=n, spec=spec, events=events))
    if key is not None:
        with open(key, "wb") as fh:
            pickle.dump(recs, fh)
    return recs


def window_starts(n: int, rate: int, win: float, hop: float) -> np.ndarray:
    """Start times (s) of windows; the last one is aligned to the end (as the app does)."""
    ws, hs = int(win * rate), int(hop * rate)
    if n <= ws:
        return np.zeros(1)
    starts = np.arange(0, n - ws + 1, hs)
    if starts[-1] + ws < n:
        starts = np.append(starts, n - ws)
    return starts / rate


def window_target(rec, t0: float, win: float, labels: str) -> tuple[float, float]:
    """[CAS, DAS] target of the window [t0, t0 + win) (see the module docstring)."""
    if labels == "record":
        lab = rec["label"]
        return float(lab in ("CAS", "CAS & DAS")), float(lab in ("DAS", "CAS & DAS"))
    c = d = 0.0
    for s, e, kind in rec["events"]:
        overlap = min(e, t0 + win) - max(s, t0)
        if overlap >= min(0.25, 0.5 * (e - s)):
            c = 1.0 if kind in CAS_TYPES else c
            d = 1.0 if kind in DAS_TYPES else d
    return c, d


# ----------------------------------------------------------------------------- scoring
def pool(p: np.ndarray, rule: str) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    if rule == "max":
        return p.max(0)
    if rule == "mean":
        return p.mean(0)
    if rule.startswith("top"):
        k = min(int(rule[3:]), len(p))
        return np.sort(p, 0)[::-1][:k].mean(0)
    raise ValueError(rule)


def best_threshold(y: np.ndarray, s: np.ndarray):
    """(score, threshold, sensitivity, specificity) maximising (sens + spec) / 2."""
    best = (-1.0, 0.5, 0.0, 0.0)
    for t in np.unique(np.quantile(s, np.linspace(0, 1, 401))):
        pr = s >= t
        se = float((pr & (y == 1)).sum() / max(1, (y == 1).sum()))
        sp = float((~pr & (y == 0)).sum() / max(1, (y == 0).sum()))
        if (se + sp) / 2 > best[0]:
            best = ((se + sp) / 2, float(t), se, sp)
    return best


def four_class_pred(pc, pd, tc, td):
    return np.where(pc >= tc, np.where(pd >= td, "CAS & DAS", "CAS"),
                    np.where(pd >= td, "DAS", "Normal"))


def icbhi_score(labels: np.ndarray, pred: np.ndarray):
    ab = labels != "Normal"
    se = float((pred[ab] == labels[ab]).mean())
    sp = float((pred[~ab] == "Normal").mean())
    return (se + sp) / 2, se, sp


def score_oof(labels, window_probs, rules=POOLINGS) -> dict:
    """Metrics of out-of-fold window probabilities, per pooling rule."""
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels)
    y = (labels != "Normal").astype(int)
    out = {}
    for rule in rules:
        P = np.array([pool(p, rule) for p in window_probs])
        pc, pd = P[:, 0], P[:, 1]
        ab = 1 - (1 - pc) * (1 - pd)
        sc, t, se, sp = best_threshold(y, ab)
        qs = np.unique(np.quantile(np.concatenate([pc, pd]), np.linspace(0.3, 0.995, 60)))
        b4 = max(((*icbhi_score(labels, four_class_pred(pc, pd, tc, td)), tc, td)
                  for tc in qs for td in qs), key=lambda z: z[0])
        out[rule] = dict(
            auc=round(float(roc_auc_score(y, ab)), 4), sens=round(se, 3), spec=round(sp, 3),
            score=round(sc, 4), threshold=round(t, 4), score4=round(b4[0], 4),
            sens4=round(b4[1], 3), spec4=round(b4[2], 3), t_cas=round(float(b4[3]), 4),
            t_das=round(float(b4[4]), 4),
            auc_cas=round(float(roc_auc_score(np.isin(labels, ["CAS", "CAS & DAS"]), pc)), 4),
            auc_das=round(float(roc_auc_score(np.isin(labels, ["DAS", "CAS & DAS"]), pd)), 4))
    return out


# ----------------------------------------------------------------------------- CV
def cross_validate(recs, cfg: SpectrogramConfig, recipe: dict, *, epochs: int, steps: int,
                   batch: int = 64, folds=(0, 1, 2, 3), seed: int = 0, log=print):
    """Out-of-fold window probabilities [(n_windows, 2)] per recording (None where the
    recording's fold was not run)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from sklearn.model_selection import StratifiedGroupKFold

    win = recipe["win"]
    wf = cfg.n_frames(int(round(win * cfg.rate)))
    nb = cfg.n_bins
    hi_bins = cfg.frequencies() > 2000.0
    rows = []
    for i, r in enumerate(recs):
        for t0 in window_starts(r["n"], cfg.rate, win, recipe["train_hop"]):
            f0 = min(int(round(t0 * cfg.rate / cfg.hop_length)), r["spec"].shape[0] - wf)
            rows.append((i, f0, *window_target(r, t0, win, recipe["labels"])))
    rows = np.array(rows)
    labels = np.array([r["label"] for r in recs])
    groups = np.array([r["patient"] for r in recs])
    splits = list(StratifiedGroupKFold(4, shuffle=True, random_state=FOLD_SEED)
                  .split(np.zeros(len(recs)), labels, groups))
    rng = np.random.default_rng(seed)

    def windows_of(sel):
        return np.stack([recs[int(i)]["spec"][int(f):int(f) + wf] for i, f in sel[:, :2]]).astype(np.float32)

    def augment(X):
        if recipe["specaug"]:
            for b in range(len(X)):
                fill = X[b].mean()
                for _ in range(2):
                    w = rng.integers(0, 9)
                    f0 = rng.integers(0, nb - w + 1)
                    X[b, :, f0:f0 + w] = fill
                w = rng.integers(0, wf // 8)
                t0 = rng.integers(0, wf - w + 1)
                X[b, t0:t0 + w, :] = fill
            X += rng.normal(0, 0.05, (len(X), 1, 1)).astype(np.float32)
        if recipe["lowpass"] > 0:  # imitate a 4 kHz stethoscope: nothing above 2 kHz
            m = rng.random(len(X)) < recipe["lowpass"]
            X[np.ix_(m, np.arange(wf), hi_bins)] = 0.0
        return X

    def batches(sel):
        cas, das = sel[sel[:, 2] == 1], sel[sel[:, 3] == 1]
        q = batch // 4
        while True:
            pick = np.concatenate([cas[rng.integers(0, len(cas), q)], das[rng.integers(0, len(das), q)],
                                   sel[rng.integers(0, len(sel), batch - 2 * q)]])
            X, Y = augment(windows_of(pick)), pick[:, 2:4].astype(np.float32)
            if recipe["mixup"] > 0:
                lam = rng.beta(recipe["mixup"], recipe["mixup"], (len(X), 1)).astype(np.float32)
                perm = rng.permutation(len(X))
                X = lam[:, :, None] * X + (1 - lam[:, :, None]) * X[perm]
                Y = lam * Y + (1 - lam) * Y[perm]
            yield X[..., None], Y

    oof = [None] * len(recs)
    for k in folds:
        tr, va = splits[k]
        t_fold = time.time()
        keras.utils.set_random_seed(seed * 10 + k)
        model = build_recommended_model((wf, nb, 1), 2, width=recipe["width"], norm=recipe["norm"])
        sched = keras.optimizers.schedules.CosineDecay(1e-4, epochs * steps, alpha=0.02,
                                                       warmup_target=2e-3, warmup_steps=steps)
        model.compile(keras.optimizers.Adam(sched), loss="binary_crossentropy")
        model.fit(batches(rows[np.isin(rows[:, 0], tr)]), steps_per_epoch=steps, epochs=epochs, verbose=0)
        for i in va:
            r = recs[i]
            fs = [min(int(round(t0 * cfg.rate / cfg.hop_length)), r["spec"].shape[0] - wf)
                  for t0 in window_starts(r["n"], cfg.rate, win, recipe["eval_hop"])]
            X = np.stack([r["spec"][f:f + wf] for f in fs]).astype(np.float32)[..., None]
            oof[i] = np.asarray(model.predict_on_batch(X))
        log(f"  fold {k}: {time.time() - t_fold:.0f} s")
    return oof


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/sprsound/train"))
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--steps", type=int, default=120, help="batches of 64 per epoch")
    ap.add_argument("--folds", default="0,1,2,3")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default=None, help="folder to cache spectrograms in")
    ap.add_argument("--json", default=None, help="write all metrics to this JSON file")
    a = ap.parse_args(argv)
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(1)
    folds = tuple(int(v) for v in a.folds.split(","))
    results = {}
    for name in a.recipes.split(","):
        recipe = RECIPES[name]
        cfg = FEATURES[recipe["feat"]]
        t0 = time.time()
        recs = load_recordings(Path(a.data), cfg, Path(a.cache) if a.cache else None)
        print(f"{name}: {len(recs)} recordings", flush=True)
        oof = cross_validate(recs, cfg, recipe, epochs=a.epochs, steps=a.steps, folds=folds,
                             seed=a.seed, log=lambda m: print(m, flush=True))
        done = [i for i, p in enumerate(oof) if p is not None]
        results[name] = score_oof([recs[i]["label"] for i in done], [oof[i] for i in done])
        results[name]["minutes"] = round((time.time() - t0) / 60, 1)
    print()
    print("| recipe | pooling | AUC | sens | spec | score | 4-class score | AUC CAS | AUC DAS |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, res in results.items():
        for rule in POOLINGS:
            m = res[rule]
            print(f"| {name} | {rule} | {m['auc']:.3f} | {m['sens']:.3f} | {m['spec']:.3f} | "
                  f"{m['score']:.3f} | {m['score4']:.3f} | {m['auc_cas']:.3f} | {m['auc_das']:.3f} |")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
