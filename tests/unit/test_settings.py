"""The settings file shared by the CLI and the GUI: a corrupt or hand-edited one is never a
reason for a command to fail."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from lungapp import paths, settings


def _write(data) -> None:
    p = paths.settings_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(data if isinstance(data, str) else json.dumps(data))


def test_a_corrupt_file_is_set_aside_and_defaults_used():
    _write("{not json")
    assert settings.load() == {}
    assert paths.settings_path().with_name("settings.json.bad").read_text() == "{not json"


@pytest.mark.parametrize("key,value", [("active_model", 5), ("active_model", ["a"]),
                                       ("recordings_folder", 5), ("recordings_folder", {"x": 1})])
def test_a_value_of_the_wrong_type_counts_as_unset(key, value, tmp_path, capsys):
    from lungapp.cli import main

    _write({key: value})
    assert settings.get(key, kind=str) is None
    assert paths.recordings_dir().name == "recordings"
    wav = tmp_path / "a.wav"
    sf.write(wav, (0.1 * np.random.default_rng(0).standard_normal(4 * 8000)).astype(np.float32), 8000)
    assert main(["predict", str(wav), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["model"]["name"] == "lungapp-sprsound"
    assert main(["info"]) == 0


def test_a_value_of_the_right_type_is_used(tmp_path):
    _write({"recordings_folder": str(tmp_path / "mine")})
    assert paths.recordings_dir() == tmp_path / "mine"
