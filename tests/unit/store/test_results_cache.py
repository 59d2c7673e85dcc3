"""The Review results cache (lungapp.store.results_cache): keyed by path + size + time +
model, the open list, and Predictions rebuilt from their dicts and from stored results."""

from __future__ import annotations

import os

import pytest

from lungapp.store import ModelId, Store
from lungapp.store.results_cache import ResultsCache, prediction_from_dict, prediction_from_store

from store_helpers import prediction, write_recording


@pytest.fixture(scope="module")
def real_prediction(tiny_model_dir, tmp_path_factory):
    from lungapp.inference.predictor import Predictor

    path = write_recording(tmp_path_factory.mktemp("rec") / "a.wav", "CAS", seconds=5.0)
    return Predictor.load(tiny_model_dir).predict_file(path)


def test_a_prediction_comes_back_whole_from_its_dict(real_prediction):
    d = real_prediction.to_dict()
    again = prediction_from_dict(d)
    assert again.to_dict() == d
    assert again.notes() == real_prediction.notes()


def test_a_result_is_found_only_for_the_same_file_and_prefers_the_active_model(tmp_path):
    path = write_recording(tmp_path / "a.wav")
    cache = ResultsCache(tmp_path / "cache.sqlite3")
    old = {**prediction(0.9, "abnormal", "CAS"), "model": {"name": "old", "version": "1", "path": "/m/old"}}
    new = {**prediction(0.1, "normal", "Normal"), "model": {"name": "new", "version": "2", "path": "/m/new"}}
    assert cache.put(str(path), old) and cache.put(str(path), new)
    assert cache.get(str(path))["model"]["name"] == "new"   # the newest
    assert cache.get(str(path), prefer_model=old["model"])["abnormal_probability"] == 0.9
    assert cache.get(str(tmp_path / "other.wav")) is None
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))   # the file changed
    assert cache.get(str(path)) is None
    assert not cache.put(str(tmp_path / "gone.wav"), new)
    cache.close()


def test_the_preferred_models_result_is_found_by_its_card_digest(tmp_path):
    """One folder, two cards (retrained in place): the active card's result is preferred;
    a result kept before results named their card still matches its folder's model."""
    path = write_recording(tmp_path / "a.wav")
    cache = ResultsCache(tmp_path / "cache.sqlite3")
    m = {"name": "m", "version": "1", "path": "/m/m"}
    first = {**prediction(0.9, "abnormal", "CAS"), "model": {**m, "card": "aaaa"}}
    second = {**prediction(0.1, "normal", "Normal"), "model": {**m, "card": "bbbb"}}
    assert cache.put(str(path), first) and cache.put(str(path), second)
    assert cache.get(str(path), prefer_model={**m, "card": "aaaa"})["abnormal_probability"] == 0.9
    assert cache.get(str(path), prefer_model={**m, "card": "bbbb"})["abnormal_probability"] == 0.1
    other = write_recording(tmp_path / "b.wav")
    assert cache.put(str(other), {**prediction(0.7, "abnormal", "DAS"), "model": dict(m)})   # no card
    assert cache.put(str(other), {**prediction(0.2, "normal", "Normal"),
                                  "model": {"name": "n", "version": "1", "path": "/m/n"}})
    assert cache.get(str(other), prefer_model={**m, "card": "aaaa"})["abnormal_probability"] == 0.7
    cache.close()


def test_a_moved_file_keeps_its_results_and_the_list_keeps_its_order(tmp_path):
    path = write_recording(tmp_path / "a.wav")
    cache = ResultsCache(tmp_path / "cache.sqlite3")
    cache.put(str(path), prediction(0.7, "abnormal", "CAS"))
    moved = tmp_path / "sub" / "a.wav"
    moved.parent.mkdir()
    path.rename(moved)
    assert cache.move(str(path), str(moved)) == 1
    assert cache.get(str(moved))["abnormal_probability"] == 0.7
    cache.save_list(["/b", "/a", "/c"])
    cache.save_list(["/z", "/a"])
    cache.close()
    assert ResultsCache(tmp_path / "cache.sqlite3").open_list() == ["/z", "/a"]


def test_a_stored_result_becomes_a_prediction_naming_its_model(tmp_path):
    path = write_recording(tmp_path / "a.wav", seconds=3.0)
    model = ModelId("m", "3", "abc")
    with Store() as s:
        uid = s.add_recording(s.add_visit(s.add_patient("P")), path, duration_s=3.0)
        s.add_result(uid, prediction(0.8, "abnormal", "CAS"), model)
        result, row = s.latest_result(uid, model), dict(s.recording(uid))
    p = prediction_from_store(result, row, "/models/m", "0123456789abcdef")
    assert (p.label, p.decision, p.duration_s) == ("CAS", "abnormal", 3.0)
    assert p.abnormal_probability == pytest.approx(0.8) and p.quality.ok
    assert p.model == {"name": "m", "version": "3", "hash": "abc", "path": "/models/m",
                       "card": "0123456789abcdef"}
    assert [w.abnormal_probability for w in p.windows] == pytest.approx([0.8, 0.8, 0.8])


def test_known_results_skip_the_store_until_the_model_is_known(tmp_path):
    from lungapp.store.results_cache import known_results

    stored, loose = write_recording(tmp_path / "s.wav"), write_recording(tmp_path / "l.wav")
    model = ModelId("m", "3", "abc")
    with Store() as s:
        uid = s.add_recording(s.add_visit(s.add_patient("P")), stored)
        s.add_result(uid, prediction(0.8, "abnormal", "CAS"), model)
    cache = ResultsCache()
    cache.put(str(loose), prediction(0.2, "normal", "Normal"))
    cache.close()
    every = [str(stored), str(loose), str(tmp_path / "gone.wav")]
    assert [(p, src) for p, _, src in known_results(every, use_store=False)] == [(str(loose), "cache")]
    found = {p: (pred, src) for p, pred, src in known_results(every, active=model, active_model={"path": "/m"})}
    assert found[str(stored)][1] == "store" and found[str(stored)][0].model["path"] == "/m"
    assert found[str(loose)][0].abnormal_probability == pytest.approx(0.2)


def test_a_stored_result_takes_its_details_from_the_cache_only_when_it_is_the_same(tmp_path):
    from lungapp.store.results_cache import known_results

    path = write_recording(tmp_path / "s.wav")
    model = ModelId("m", "3", "abc")
    full = prediction(0.8, "abnormal", "CAS")
    full["windows"][0]["probabilities"] = {"Normal": 0.2, "CAS": 0.8}
    full["model"] = {"name": "m", "version": "3", "path": "/old/place"}
    with Store() as s:
        uid = s.add_recording(s.add_visit(s.add_patient("P")), path)
        s.add_result(uid, full, model)
    cache = ResultsCache()
    cache.put(str(path), full)
    (_, p, src), = known_results([str(path)], active=model, active_model={"path": "/m"})
    assert src == "store" and p.windows[0].probabilities == {"Normal": 0.2, "CAS": 0.8}
    assert p.model["path"] == "/m" and p.model["hash"] == "abc"   # the store decides: current
    cache.put(str(path), {**full, "abnormal_probability": 0.3, "model": {**full["model"], "path": "/m"}})
    cache.conn.execute("DELETE FROM results WHERE model LIKE '%/old/place%'")
    cache.close()
    (_, p, _), = known_results([str(path)], active=model, active_model={"path": "/m"})
    assert p.abnormal_probability == pytest.approx(0.8) and p.windows[0].probabilities == {}
