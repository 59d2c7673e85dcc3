"""What the Review list shows again after a restart: the open list and the results of
files that are not in the store (no Qt here).

Recordings in the store keep their results in the store (it names the model and keeps the
notes beside the verdict; the cache only adds what the store does not keep, each class's
timeline). A file analysed in Review that is not in the store (a folder opened, never
imported) is not filed under an invented patient: its full result goes into a small cache,
``review-cache.sqlite3`` in the data folder, keyed by the file's path, size and
modification time and by the model that made it. A file changed since (another size or
time) finds nothing and is analysed again; deleting the cache loses nothing but those
results. The open list is kept there too, in order.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from lungapp import paths

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    model TEXT NOT NULL, prediction TEXT NOT NULL, saved_at REAL NOT NULL,
    PRIMARY KEY (path, size, mtime_ns, model)
);
CREATE TABLE IF NOT EXISTS open_list (position INTEGER PRIMARY KEY, path TEXT NOT NULL);
"""


def cache_path() -> Path:
    return paths.data_dir() / "review-cache.sqlite3"


def file_key(path: str) -> tuple[int, int] | None:
    """(size, mtime in ns) of ``path``, or None when it is not a file."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns) if os.path.isfile(path) else None


def model_fields(model: dict | None) -> list[str]:
    """Name, version, folder and card digest of a result's model dict (what the Review list
    tells models apart by)."""
    m = model or {}
    return [str(m.get("name", "")), str(m.get("version", "")), str(m.get("path", "")), str(m.get("card", ""))]


def model_text(model: dict | None) -> str:
    """The cache's key for the model that made a result (:func:`model_fields` as JSON)."""
    return json.dumps(model_fields(model))


def same_model(a, b) -> bool:
    """Whether two models' fields (:func:`model_fields`, or the Review list's model_key)
    are one model: name, version and folder equal, and the card digests too where both are
    known (results kept before the digest was have none)."""
    a, b = list(a), list(b)
    a += [""] * (4 - len(a))
    b += [""] * (4 - len(b))
    return a[:3] == b[:3] and (not a[3] or not b[3] or a[3] == b[3])


class ResultsCache:
    """One connection to the cache (WAL, so two app windows can share it)."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.executescript(_SCHEMA)

    @classmethod
    def open_or_reset(cls) -> tuple[ResultsCache | None, str]:
        """The cache and "" or, when the file is not a readable cache, a fresh one (the
        bad file kept beside it as ``.bad``) and one line saying so; (None, why) when
        even that fails. Losing the cache loses no data: only results to redo."""
        path = cache_path()
        try:
            return cls(path), ""
        except sqlite3.DatabaseError as exc:
            problem = (f"{path}: not a readable results cache ({exc}); kept as {path.name}.bad, "
                       "the Review list starts empty")
            try:
                os.replace(path, path.with_name(path.name + ".bad"))
                return cls(path), problem
            except (OSError, sqlite3.Error) as again:
                return None, f"{path}: results cache unavailable ({again})"
        except (OSError, sqlite3.Error) as exc:
            return None, f"{path}: results cache unavailable ({exc})"

    def close(self) -> None:
        self.conn.close()

    def put(self, path: str, prediction: dict, key: tuple[int, int] | None = None) -> bool:
        """Keep ``prediction`` (:meth:`Prediction.to_dict`) of ``path`` as the file is now
        (``key``: as it was when the prediction was made; a file changed since gets no
        result); False when the file is gone or changed (nothing to key it by)."""
        now = file_key(path)
        if now is None or (key is not None and tuple(key) != now):
            return False
        key = now
        self.conn.execute("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, julianday('now'))",
                          (os.path.abspath(path), *key, model_text(prediction.get("model")),
                           json.dumps(prediction)))
        return True

    def get(self, path: str, prefer_model: dict | None = None, key: tuple[int, int] | None = None) -> dict | None:
        """The result of ``path`` as the file is now (or as ``key`` says): the one of
        ``prefer_model`` when there is one, else the newest; None when there is none."""
        key = key or file_key(path)
        if key is None:
            return None
        rows = self.conn.execute("SELECT model, prediction FROM results WHERE path = ? AND size = ? "
                                 "AND mtime_ns = ? ORDER BY saved_at DESC", (os.path.abspath(path), *key)).fetchall()
        if not rows:
            return None
        chosen = next((r for r in rows if prefer_model and same_model(json.loads(r[0]), model_fields(prefer_model))),
                      rows[0])
        return json.loads(chosen[1])

    def move(self, old: str, new: str) -> int:
        """A file relocated: its results follow when the new file is the same one (same
        size and time; a copy keeps its time with ``cp -p`` or a move). Returns how many."""
        key = file_key(new)
        if key is None:
            return 0
        cur = self.conn.execute("UPDATE OR REPLACE results SET path = ? WHERE path = ? AND size = ? "
                                "AND mtime_ns = ?", (os.path.abspath(new), os.path.abspath(old), *key))
        return cur.rowcount

    def save_list(self, paths_: list[str]) -> None:
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("DELETE FROM open_list")
            self.conn.executemany("INSERT INTO open_list VALUES (?, ?)", enumerate(paths_))

    def open_list(self) -> list[str]:
        """The files listed at the last close; rows that are no absolute path (a damaged or
        hand-edited cache: a number, a BLOB, "") are left out, not a reason not to start."""
        rows = self.conn.execute("SELECT path FROM open_list ORDER BY position")
        return [r[0] for r in rows if isinstance(r[0], str) and os.path.isabs(r[0])]


def prediction_from_dict(d: dict):
    """A :class:`~lungapp.inference.predictor.Prediction` again from its ``to_dict()``."""
    # Imported here: the app restores its list before the first paint, and the model's
    # loading (after it) should not find the inference modules already imported for it.
    from lungapp.inference.predictor import Prediction, WindowResult
    from lungapp.inference.profile import Unfamiliar
    from lungapp.inference.quality import QualityVerdict
    from lungapp.inference.segments import SegmentResult

    q = d.get("quality")
    quality = None if q is None else QualityVerdict.from_dict(q)
    windows = [WindowResult(w["start_s"], w["end_s"], dict(w.get("probabilities") or {}),
                            w["abnormal_probability"]) for w in d.get("windows") or []]
    segments = [SegmentResult(s["start_s"], s["end_s"], dict(s.get("probabilities") or {}),
                              s["abnormal_probability"], bool(s.get("flagged"))) for s in d.get("segments") or []]
    return Prediction(
        file=d.get("file"), duration_s=float(d.get("duration_s") or 0.0), label=d["label"],
        decision=d["decision"], abnormal_probability=float(d["abnormal_probability"]),
        probabilities=dict(d["probabilities"]), windows=windows, model=dict(d.get("model") or {}),
        threshold=d.get("threshold") if d.get("threshold") is not None else 0.5, quality=quality,
        segments=segments, abnormal_ranges=[tuple(r) for r in d.get("abnormal_ranges") or []],
        borderline=bool(d.get("borderline")), borderline_margin=float(d.get("borderline_margin") or 0.0),
        peaks=[(p["time_s"], p["abnormal_probability"]) for p in d.get("peaks") or []],
        truncated=d.get("truncated"),
        unfamiliar=Unfamiliar.from_dict(d["unfamiliar"]) if d.get("unfamiliar") else None)


def prediction_from_store(result: dict, recording: dict, model_path: str = "", model_card: str = ""):
    """A stored result (:meth:`Store.latest_result`) of ``recording`` (its row) as a
    Prediction. The store keeps the per-window abnormal probability, not each class's, so
    the timeline shows the abnormal line only. ``model_path``: the active model's folder
    when this result is that model's (the list then calls it current), else ""; ``model_card``
    its card digest then (:attr:`Predictor.card_digest`)."""
    windows = [{"start_s": s, "end_s": e, "abnormal_probability": p} for s, e, p in result["windows"]]
    duration = recording.get("duration_s") or (windows[-1]["end_s"] if windows else 0.0)
    return prediction_from_dict({
        **{k: v for k, v in (result.get("details") or {}).items() if k != "notes"},
        "file": recording["path"], "duration_s": duration, "label": result["label"],
        "decision": result["decision"], "abnormal_probability": result["abnormal_probability"],
        "probabilities": result["probabilities"], "quality": result["quality"], "windows": windows,
        "threshold": result["threshold"],
        "model": {"name": result["model_name"], "version": result["model_version"],
                  "hash": result["model_hash"], "path": model_path, "card": model_card}})


def known_results(paths_: list[str], *, active=None, active_model: dict | None = None,
                  use_store: bool = True, cancelled=lambda: False):
    """Yield ``(path, Prediction, source)`` for each of ``paths_`` with a result already:
    ``source`` "store" (a recording in the store: its newest result, ``active``'s first,
    a :class:`~lungapp.store.db.ModelId`) or "cache" (``active_model``'s result first, a
    Prediction's model dict). ``use_store`` False: skip recordings in the store (the
    active model is not known yet). Opens its own connections: runs in a worker."""
    from lungapp.errors import LungappError
    from lungapp.store.db import Store

    try:
        store = Store() if paths.database_path().exists() else None
    except LungappError:
        store = None
    cache = ResultsCache()
    try:
        for p in paths_:
            if cancelled():
                return
            if not os.path.isfile(p):
                continue
            row = store.recording_by_path(p) if store is not None else None
            if row is not None:
                found = _from_store(store, row, p, active, active_model, cache) if use_store else None
            else:
                d = cache.get(p, prefer_model=active_model)
                found = None if d is None else (prediction_from_dict(d), "cache")
            if found is not None:
                yield p, *found
    finally:
        cache.close()
        if store is not None:
            store.close()


def _from_store(store, row, path: str, active, active_model: dict | None, cache: ResultsCache):
    """The store's choice of result; each class's timeline from the cache when the cache
    holds that same result of the unchanged file (cached under ``path``, the list's path
    of the file: the store's may be another path to it, symbolic links resolved)."""
    result = store.latest_result(row["uid"], active)
    if result is None:
        return None
    current = active is not None and not result.get("stale")
    model_path = str((active_model or {}).get("path", "")) if current else ""
    model_card = str((active_model or {}).get("card", "")) if current else ""
    full = cache.get(path, prefer_model={"name": result["model_name"], "version": result["model_version"],
                                         "path": model_path, "card": model_card})
    if full is not None and _same_result(full, result):
        # The store decides which model's result this is: its hash, not the cached folder.
        full["model"] = {**full.get("model", {}), "hash": result["model_hash"], "path": model_path,
                         "card": model_card}
        return prediction_from_dict(full), "store"
    return prediction_from_store(result, dict(row), model_path, model_card), "store"


def _same_result(full: dict, result: dict) -> bool:
    m = full.get("model") or {}
    return (str(m.get("name", "")), str(m.get("version", ""))) == (result["model_name"], result["model_version"]) \
        and abs(float(full["abnormal_probability"]) - float(result["abnormal_probability"])) < 1e-6 \
        and full.get("label") == result["label"]
