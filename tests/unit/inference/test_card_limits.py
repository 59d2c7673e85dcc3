"""Hostile or broken cards are refused at load (and so at install) with one line naming
the problem, before anything sized by the card is allocated: numbers outside sane ranges,
oversized cards, cards nested deeper than the JSON parser can follow."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lungapp.errors import ModelError
from lungapp.inference.card import MAX_CARD_BYTES, load_card

ROOT = Path(__file__).resolve().parents[3]
BUNDLED = ROOT / "resources" / "model"


@pytest.fixture
def model_copy(tmp_path) -> Path:
    d = tmp_path / "model"
    shutil.copytree(BUNDLED, d)
    return d


def _edit(d: Path, change) -> None:
    raw = json.loads((d / "card.json").read_text())
    change(raw)
    (d / "card.json").write_text(json.dumps(raw))


@pytest.mark.parametrize("change, words", [
    (lambda c: c["features"].update(window_s=1e12), "features.window_s must be within"),
    (lambda c: c["features"].update(hop_s=1e-9), "features.hop_s must be within"),
    (lambda c: c["features"]["spectrogram"].update(n_fft=1 << 17),
     "features.n_fft must be within"),
    (lambda c: c["features"]["spectrogram"].update(n_mels=100_000), "features.n_mels must be within"),
    (lambda c: [f["spectrogram"].update(hop_length=1) or f.update(window_s=60.0)
                for f in (c["features"], *c["member_features"])], "frames x bins must be within"),
    (lambda c: c.update(pooling="topk:99999999"), "pooling topk:K must be within"),
    (lambda c: c.update(name="x" * 100_000), "name's length must be within"),
    (lambda c: c.update(limitations=[1, 2]), "limitations must be a list of strings"),
    (lambda c: c["metrics"]["overall"].update(auc="0.9"), "BinaryScores.auc must be float"),
])
def test_out_of_range_numbers_are_refused(model_copy, change, words):
    _edit(model_copy, change)
    with pytest.raises(ModelError, match=words):
        load_card(model_copy)


def test_a_card_over_the_size_cap_is_refused_unparsed(model_copy):
    raw = json.loads((model_copy / "card.json").read_text())
    raw["description"] = "x" * 100
    raw["padding"] = "y" * (MAX_CARD_BYTES + 10)
    (model_copy / "card.json").write_text(json.dumps(raw))
    with pytest.raises(ModelError, match="larger than 2 MB"):
        load_card(model_copy)


def test_a_card_nested_200k_deep_is_one_line_not_a_recursion_error(model_copy, tmp_path):
    (model_copy / "card.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(ModelError, match="nested too deeply"):
        load_card(model_copy)
    # and through the CLI: one line, exit 2, nothing installed
    proc = subprocess.run([sys.executable, "-m", "lungapp", "models", "install", str(model_copy)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "nested too deeply" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_predict_refuses_a_huge_window_without_allocating(model_copy, tmp_path):
    """The issue's case: window_s = 1e12 was accepted, and predict then tried to allocate
    14 PiB. Now predict says what is wrong with the model folder."""
    _edit(model_copy, lambda c: c["features"].update(window_s=1e12))
    wav = next((ROOT / "resources" / "examples").glob("*.wav"))
    proc = subprocess.run([sys.executable, "-m", "lungapp", "predict", "--model", str(model_copy), str(wav)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "window_s must be within" in proc.stderr and "Traceback" not in proc.stderr
