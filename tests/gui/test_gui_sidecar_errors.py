"""A sidecar that cannot be read, in a real X server: the recording is still displayed with one
clear line naming the file, the Labels column of the other recordings is filled, the file is
never written; and a failed read of the label states is said, not silent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lungapp.errors import LungappError

pytestmark = pytest.mark.gui


@pytest.fixture
def window(bare_window):
    return bare_window  # tests/gui/conftest.py


def _wav(path: Path) -> Path:
    sf.write(path, (0.1 * np.random.default_rng(2).standard_normal(2 * 8000)).astype(np.float32), 8000)
    return path


def test_an_unreadable_sidecar_is_said_and_the_rest_of_the_folder_is_read(window, qtbot, tmp_path):
    good = _wav(tmp_path / "a.wav")
    good.with_suffix(".json").write_text(json.dumps({"record_annotation": "CAS", "event_annotation": []}))
    bad = _wav(tmp_path / "z.wav")
    bad.with_suffix(".json").mkdir()  # the same path as a sidecar without read permission
    view = window.review
    messages, shown = [], []
    view.statusMessage.connect(lambda text, ms: messages.append(text))
    view.displayed.connect(shown.append)
    window.open_paths([str(tmp_path)])
    model = view.model
    qtbot.waitUntil(lambda: model.rowCount() == 2 and all(e.labels for e in model.entries), timeout=10000)
    assert model.entry(str(good)).labels == ("reviewed", "")
    assert model.entry(str(bad)).labels == ("unreadable", "cannot be read (Is a directory); fix or remove it")
    view.select(str(bad))
    # The display goes on to the end (an uncaught error would stop it before `displayed`).
    qtbot.waitUntil(lambda: str(bad) in shown, timeout=10000)
    assert view.annotation.layer.doc is None and view.plots.has_image()
    assert f"{bad.with_suffix('.json')}: cannot be read (Is a directory)" in "\n".join(messages)
    assert bad.with_suffix(".json").is_dir() and not list(tmp_path.glob("z.json.mine-*"))


def test_a_failed_read_of_the_label_states_is_said(window, qtbot, tmp_path, monkeypatch):
    from lungapp.gui import review_annotation

    def failing(task, paths, annotator=""):
        raise LungappError("cannot list the labels", tmp_path)

    monkeypatch.setattr(review_annotation, "label_states", failing)
    messages = []
    window.review.statusMessage.connect(lambda text, ms: messages.append(text))
    window.open_paths([str(_wav(tmp_path / "a.wav"))])
    qtbot.waitUntil(lambda: any(m.startswith("Label states not read: ") for m in messages), timeout=10000)
    assert f"{tmp_path}: cannot list the labels" in "\n".join(messages)
