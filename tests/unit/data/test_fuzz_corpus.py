"""The fuzz corpus (tests/unit/data/fuzz_corpus/): inputs that once broke lungapp or got
through it silently, kept so that the same failure cannot come back. Each audio file must
decode or be refused with one AudioError naming it (with what it once did wrong now right);
each folder description is built and read, and must give what its ``expect`` says. The
hypothesis tests here mutate the corpus files and fuzz CSV headers, on top of the random
bytes of tests/unit/audio/test_decode.py and the readers' fuzz in test_readers_fuzz.py.
Add a case: drop the file (audio/) or a JSON description (folders/) in the corpus."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lungapp.audio import load_audio
from lungapp.data import read_folder
from lungapp.errors import AudioError, DatasetError

CORPUS = Path(__file__).resolve().parent / "fuzz_corpus"
AUDIO = sorted((CORPUS / "audio").iterdir())
FOLDERS = sorted((CORPUS / "folders").glob("*.json"))

#: What each audio case must now give: its decoded length in seconds (None: refused with
#: an AudioError naming it) and the truncation it reports (declared s, present s), or None.
AUDIO_EXPECT = {
    "xing_stream_size_off.mp3": (5.0, None),  # once: a stray mpg123 line on stderr
    "truncated_header_3s_holds_1s.wav": (1.0, (3.0, 1.0)),  # once: analysed silently as 1 s
    "data_size_ffffffff.wav": (1.0, None),  # a streamed size is not "truncated"
    # what SIGKILL leaves mid-recording: refused in one line (`lungapp record --recover`
    # repairs the header)
    "killed_recording_data_size_0.wav": (None, None),
}


def test_every_corpus_file_has_an_expectation():
    assert sorted(p.name for p in AUDIO) == sorted(AUDIO_EXPECT)


@pytest.mark.parametrize("path", AUDIO, ids=[p.name for p in AUDIO])
def test_audio_corpus(path):
    seconds, cut = AUDIO_EXPECT[path.name]
    if seconds is None:
        with pytest.raises(AudioError) as err:
            load_audio(path)
        assert str(err.value).startswith(f"{path}: ")
        return
    a = load_audio(path)
    assert a.duration_s == pytest.approx(seconds, abs=0.1)
    assert np.isfinite(a.samples).all()
    got = None if a.declared_duration_s is None else (a.declared_duration_s, a.duration_s)
    assert (got is None) if cut is None else got == pytest.approx(cut)


def _build(spec: dict, root: Path) -> Path:
    x = (0.1 * np.sin(np.arange(8000) / 5)).astype(np.float32)
    folder = root / "set"
    folder.mkdir(parents=True)
    sf.write(root / "outside.wav", x, 8000)
    for rel, text in spec["files"].items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if text is None:
            sf.write(p, x, 8000)
        else:
            p.write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize("path", FOLDERS, ids=[p.stem for p in FOLDERS])
def test_folder_corpus(path, tmp_path):
    spec = json.loads(path.read_text())
    folder = _build(spec, tmp_path)
    want = spec["expect"]
    ds = read_folder(folder)
    assert ds.layout == want["layout"], spec["why"]
    if "examples" in want:
        assert sorted(os.path.relpath(e.path, folder) for e in ds.examples) == want["examples"]
    if "problem" in want:
        assert any(want["problem"] in why for _, why in ds.problems), ds.problems
    if "warning" in want:
        assert any(want["warning"] in w for w in ds.warnings), ds.warnings


_FUZZ = settings(max_examples=80, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@_FUZZ
@given(data=st.data())
def test_mutated_corpus_audio_decodes_or_says_why(tmp_path, data):
    src = data.draw(st.sampled_from(AUDIO))
    raw = bytearray(src.read_bytes())
    raw = raw[: data.draw(st.integers(0, len(raw)))]
    for _ in range(data.draw(st.integers(0, 8)) if raw else 0):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    p = tmp_path / src.name
    p.write_bytes(bytes(raw))
    try:
        a = load_audio(p)
    except AudioError as e:
        assert str(e).startswith(f"{p}: ") and e.problem
    else:
        assert np.isfinite(a.samples).all() and len(a.samples) > 0
        # a truncation is a longer header than data
        assert a.declared_duration_s is None or a.declared_duration_s > a.duration_s >= 0


_COLUMNS = ["file", "label", "patient", "decision", "abnormal_probability", "duration_s", "p_CAS"]


@_FUZZ
@given(header=st.lists(st.sampled_from(_COLUMNS), min_size=1, max_size=6, unique=True),
       label=st.sampled_from(["Normal", "CAS", "normal", "gurgle", ""]))
def test_random_csv_headers_never_read_results_as_a_manifest(tmp_path_factory, header, label):
    folder = tmp_path_factory.mktemp("csvfuzz")
    sf.write(folder / "a.wav", (0.1 * np.ones(8000)).astype(np.float32), 8000)
    row = {"file": "a.wav", "label": label, "patient": "P1", "decision": "normal",
           "abnormal_probability": "0.2", "duration_s": "1", "p_CAS": "0.1"}
    (folder / "x.csv").write_text(",".join(header) + "\n" + ",".join(row[c] for c in header) + "\n")
    try:
        ds = read_folder(folder)
    except DatasetError as exc:
        assert exc.path and exc.problem
        return
    results = {"decision", "abnormal_probability"} & set(header)
    assert not results, "a results export was read as labels"
    assert ds.layout == "csv"
