"""research/unannotated_clips.py: a training folder with the normal recordings'
unannotated stretches added again as clips of the same patient."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from lungapp.errors import LungappError


def test_runs_of_uncovered_windows_become_spans(repo_script):
    mod = repo_script("research/unannotated_clips.py")
    starts = np.arange(8) * 0.5
    cover = np.array([0.5, 0.05, 0.0, 0.3, 0.0, 0.0, 0.0, 0.2])
    assert mod.unannotated_runs(starts, cover, 2.0, 0.1) == [(0.5, 3.0), (2.0, 5.0)]
    assert mod.unannotated_runs(starts, np.ones(8), 2.0, 0.1) == []
    assert mod.unannotated_runs(starts, np.zeros(8), 2.0, 0.1) == [(0.0, 5.5)]


def _recording(folder, stem, x, label, events):
    sf.write(folder / f"{stem}.flac", x, 8000, subtype="PCM_16")
    (folder / f"{stem}.json").write_text(json.dumps({"record_annotation": label, "event_annotation": [
        {"start": s, "end": e, "type": t} for s, e, t in events]}))


def test_the_folder_links_every_recording_and_adds_the_clips(repo_script, tmp_path):
    mod = repo_script("research/unannotated_clips.py")
    from lungapp.data import read_folder

    train = tmp_path / "train"
    train.mkdir()
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(6 * 8000)).astype(np.float32)
    # a normal recording annotated only in its first second: windows starting at 1 s or
    # later (2 s long, every 0.5 s) are covered by under 10 %: one clip, 1.0-6.0 s
    _recording(train, "7_3.0_0_p1_11", x, "Normal", [(0, 1000, "Normal")])
    _recording(train, "7_3.0_0_p2_12", x, "Normal", [(0, 6000, "Normal")])  # all annotated
    _recording(train, "8_5.0_1_p1_13", x, "DAS", [(1000, 1200, "Fine Crackle")])  # not normal
    (train / "manifest.csv").write_text("file,label\n")
    res = mod.build(train, tmp_path / "out")
    assert res == {"recordings": 3, "clips": 1, "clip_seconds": 5.0}
    out = tmp_path / "out"
    assert not (out / "manifest.csv").exists()
    assert all((out / f.name).is_symlink() for f in train.glob("*.flac"))
    clip, rate = sf.read(out / "7_3.0_0_p1_11u1.flac", dtype="float32")
    src, _ = sf.read(train / "7_3.0_0_p1_11.flac", dtype="float32")
    assert rate == 8000 and np.array_equal(clip, src[8000:])
    ds = read_folder(out, "sprsound")
    added = [e for e in ds.examples if e.path.endswith("u1.flac")]
    assert len(ds.examples) == 4 and len(added) == 1
    assert added[0].label == "Normal" and added[0].patient == "7" and added[0].events == ()
    with pytest.raises(LungappError, match="not empty"):
        mod.build(train, out)
