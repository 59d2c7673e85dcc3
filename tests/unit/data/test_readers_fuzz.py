"""Fuzzing the labelled-folder readers: whatever a folder holds, read_folder returns a
Dataset whose examples lie inside the folder, or refuses the folder with a DatasetError
naming it; no other exception escapes, and every entry it cannot use is listed.

The ``@example`` cases are the corpus: inputs that once got through or broke a reader."""

from __future__ import annotations

import json
import os

import numpy as np
import soundfile as sf
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lungapp.data import read_folder
from lungapp.errors import DatasetError

_SETTINGS = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

_names = st.sampled_from(["a.wav", "b.wav", "sub/c.wav", "missing.wav", "../outside.wav", "/etc/passwd",
                          "", " ", "a.wav ", "A.WAV", "m.csv", "sub", "..", "x\x00y.wav", "ü.wav"])
_labels = st.one_of(st.sampled_from(["normal", "Normal", "CAS", "wheeze", "crackles and wheezes",
                                     "Poor Quality", "", "gurgle", "CAS & DAS", "abnormal"]),
                    st.text(max_size=12))
_cells = st.one_of(st.text(max_size=10), st.sampled_from(["", "P1", "7", ",", '"', "\n"]))


def _folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz") / "set"
    (root / "sub").mkdir(parents=True)
    x = (0.1 * np.sin(np.arange(8000) / 5)).astype(np.float32)
    for name in ("a.wav", "b.wav", "sub/c.wav"):
        sf.write(root / name, x, 8000)
    sf.write(root.parent / "outside.wav", x, 8000)
    return root


def _check(root):
    try:
        ds = read_folder(root)
    except DatasetError as exc:
        assert exc.path is not None and exc.problem
        return None
    real_root = os.path.realpath(root)
    for e in ds.examples:
        assert os.path.realpath(e.path).startswith(real_root + os.sep), e.path
    for where, why in ds.problems:
        assert where and why
    return ds


@_SETTINGS
@example(rows=[("../outside.wav", "normal", "")])  # once read a file outside the folder
@example(rows=[("a.wav", "normal", "P1"), ("a.wav", "CAS", "P1")])  # a duplicate row
@example(rows=[("", "", "")])
@given(rows=st.lists(st.tuples(_names, _labels, _cells), max_size=8))
def test_random_csv_manifests(tmp_path_factory, rows):
    root = _folder(tmp_path_factory)
    lines = ["file,label,patient"] + [",".join(json.dumps(c) if "," in c or '"' in c or "\n" in c else c
                                               for c in row) for row in rows]
    (root / "m.csv").write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    ds = _check(root)
    if ds is not None:
        named = {os.path.normpath(os.path.join(root, r[0])) for r in rows if r[0].strip()}
        assert len(ds.examples) <= len(named)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
_sidecars = st.one_of(
    st.binary(max_size=64),
    _json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"record_annotation": _labels, "event_annotation": _json_values}).map(
        lambda v: json.dumps(v).encode()))


@_SETTINGS
@example(sidecars=[b"{not json", b'{"record_annotation": "Normal", "event_annotation": []}'])
@example(sidecars=[b"\xff\xfe\x00", b'{"record_annotation": "Normal", "event_annotation": "x"}'])
# not labelled yet: left out with a warning that names it, not a problem
@example(sidecars=[b'{"record_annotation": "", "event_annotation": null}',
                   b'{"record_annotation":"normal","":[]}'])
@given(sidecars=st.lists(_sidecars, min_size=1, max_size=3))
def test_random_sprsound_sidecars(tmp_path_factory, sidecars):
    root = _folder(tmp_path_factory)
    for name, data in zip(("a", "b", "sub/c"), sidecars):
        (root / f"{name}.json").write_bytes(data)
    ds = _check(root)
    if ds is not None and ds.layout == "sprsound":
        # every audio file is an example, a listed problem or named in the warning about
        # recordings not labelled yet: nothing vanishes
        accounted = {os.path.splitext(e.path)[0] for e in ds.examples} | {
            os.path.splitext(w)[0] for w, _ in ds.problems}
        warned = " ".join(ds.warnings)
        for name in ("a", "b", "sub/c")[:len(sidecars)]:
            assert str(root / name) in accounted or f"{name}.wav" in warned, (name, ds.problems)
