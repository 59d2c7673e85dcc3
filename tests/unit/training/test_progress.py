"""The training progress protocol: typed events, their JSON lines and parsing them back."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from lungapp.training import progress as P


def test_every_event_round_trips_through_its_json_line():
    events = [
        P.Start(folder="/d", out="/m", task="4class", preset="seed", arch="seed_cnn", folds=4,
                epochs=20, classes=["Normal", "CAS", "DAS", "CAS & DAS"]),
        P.Extract(done=3, total=10, bad=1),
        P.Log(message="3 recordings excluded", level="warning"),
        P.EpochEnd(fold="final", epoch=2, epochs=5, metrics={"loss": 0.5, "lr": 1e-3}),
        P.FoldEnd(fold=1, folds=4, metrics={"auc": 0.9, "best_epoch": None}),
        P.Done(out="/m", wall_s=12.5, threshold=0.4, metrics={"auc": 0.9}, artifact=["fold1.keras"],
               four_class_score=0.7),
        P.Error(kind="cancelled", message="cancelled (SIGTERM); /m left untouched"),
    ]
    assert {type(e) for e in events} == set(P.EVENTS.values())  # every kind covered
    for e in events:
        line = e.to_json()
        assert "\n" not in line and json.loads(line)["event"] == e.event
        assert P.parse(line) == e


def test_wire_form_is_strict_json_and_leaves_out_unset_optional_fields():
    done = P.Done(out="/m", wall_s=1.0, threshold=math.nan, metrics={"auc": math.inf})
    wire = json.loads(done.to_json())
    assert wire["threshold"] is None and wire["metrics"]["auc"] is None  # NaN / inf: null
    assert "four_class_score" not in wire and "device_shift_drop" not in wire
    assert P.Error(kind="dataset", message="x").to_dict() == {"event": "error", "kind": "dataset",
                                                               "message": "x"}


def test_parse_refuses_what_is_not_an_event():
    for line, why in (("not json", "Expecting value"), ("[1, 2]", "JSON object"), ('{"event": "nope"}', "unknown"),
                      ('{"event": "extract", "done": 1}', "bad extract event")):
        with pytest.raises(ValueError, match=why):
            P.parse(line)
    # a newer writer's extra fields are ignored
    assert P.parse('{"event": "log", "message": "m", "level": "info", "extra": 1}') == P.Log("m")


def test_the_protocol_module_is_light():
    code = ("import sys, lungapp.training.progress; "
            "print(sorted(m for m in ('numpy', 'keras', 'tensorflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
