"""The card's typed sections: real cards read back unchanged, fields are typed, and keys a
newer lungapp may add survive a load and a save."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lungapp.inference.card_schema import BinaryScores, Metrics, Training

ROOT = Path(__file__).resolve().parents[3]
CARDS = sorted([ROOT / "resources" / "model" / "card.json",
                *(ROOT / "research" / "bundled_members").glob("*/card.json")])


@pytest.mark.parametrize("path", CARDS, ids=lambda p: p.parent.name)
def test_real_cards_round_trip_and_read_typed(path):
    card = json.loads(path.read_text())
    metrics = Metrics.from_dict(card["metrics"])
    training = Training.from_dict(card["training"])
    assert metrics.to_dict() == card["metrics"]
    assert training.to_dict() == card["training"]
    assert isinstance(metrics.overall, BinaryScores)
    assert metrics.overall.auc == card["metrics"]["overall"]["auc"]
    assert training.data.n_recordings == sum(map(sum, metrics.overall.confusion))


def test_unknown_keys_are_kept_and_nulls_that_mean_something_are_written():
    d = {"overall": {"n": 3, "n_abnormal": 3, "n_normal": 0, "auc": None, "new_figure": 1.5},
         "from_the_future": {"x": [1, 2]}}
    m = Metrics.from_dict(d)
    assert m.overall.auc is None and m.overall.extra == {"new_figure": 1.5}
    assert m.extra == {"from_the_future": {"x": [1, 2]}}
    out = m.to_dict()
    assert out["overall"]["auc"] is None and out["from_the_future"] == {"x": [1, 2]}
    assert "device_shift" not in out


def test_a_section_that_is_not_an_object_is_refused():
    with pytest.raises(ValueError, match="BinaryScores: expected an object"):
        Metrics.from_dict({"overall": [1, 2, 3]})


def test_a_loaded_card_is_typed_and_saves_back_what_it_read(tmp_path):
    """ModelCard's metrics and training are the typed sections, and a load followed by a
    save writes the same JSON (keys this lungapp does not know included)."""
    import shutil

    from lungapp.inference.card import load_card, write_card

    src = ROOT / "resources" / "model"
    d = tmp_path / "m"
    shutil.copytree(src, d)
    raw = json.loads((d / "card.json").read_text())
    raw["metrics"]["overall"]["from_a_newer_lungapp"] = 7
    (d / "card.json").write_text(json.dumps(raw))
    card = load_card(d)
    assert isinstance(card.metrics, Metrics) and isinstance(card.training, Training)
    assert card.metrics.overall.extra == {"from_a_newer_lungapp": 7}
    write_card(d, card)
    assert json.loads((d / "card.json").read_text()) == raw


@pytest.mark.parametrize("section, key, value, words", [
    ("overall", "auc", "high", "BinaryScores.auc must be float"),
    ("overall", "n", True, "BinaryScores.n must be int"),
    ("overall", "confusion", "[[1]]", "BinaryScores.confusion must be list"),
])
def test_wrong_types_are_refused_naming_the_field(section, key, value, words):
    with pytest.raises(ValueError, match=words):
        Metrics.from_dict({section: {key: value}})
