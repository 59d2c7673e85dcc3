"""Agreement between two annotators on a hand-made pair with known kappa and F1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lungapp.annotation.agreement import agreement, cohen_kappa

ROOT = Path(__file__).resolve().parents[3]
LABELS_A = ["Normal", "Normal", "CAS", "DAS", "CAS", "Normal"]
LABELS_B = ["Normal", "CAS", "CAS", "DAS", "Normal", "Normal"]


def _write(folder: Path, labels, events_of_first):
    folder.mkdir()
    for i, label in enumerate(labels):
        events = events_of_first if i == 0 else []
        (folder / f"r{i}.json").write_text(json.dumps({"record_annotation": label,
                                                       "event_annotation": events}))


def _ev(start_s, type_):
    return {"start": int(start_s * 1000), "end": int(start_s * 1000) + 300, "type": type_}


@pytest.fixture
def pair(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _write(a, LABELS_A, [_ev(1.0, "Wheeze"), _ev(3.0, "Wheeze"), _ev(2.0, "Fine Crackle")])
    # Wheeze at 1.15 s matches (0.15 s <= 0.2 s); 3.3 s does not (0.3 s); the crackle matches.
    _write(b, LABELS_B, [_ev(1.15, "Wheeze"), _ev(3.3, "Wheeze"), _ev(2.1, "Fine Crackle")])
    (b / "extra.json").write_text(json.dumps({"record_annotation": "Normal"}))
    return a, b


def test_kappa_of_known_tables():
    # po = 4/6, pe = (3*3 + 2*2 + 1*1) / 36 = 14/36 -> kappa = (24 - 14) / (36 - 14) = 10/22
    assert cohen_kappa(LABELS_A, LABELS_B) == pytest.approx(10 / 22)
    assert cohen_kappa(["CAS", "DAS"], ["CAS", "DAS"]) == pytest.approx(1.0)
    assert cohen_kappa(["CAS", "DAS"], ["DAS", "CAS"]) == pytest.approx(-1.0)
    assert cohen_kappa(["CAS"], ["CAS"]) is None and cohen_kappa([], []) is None


def test_agreement_on_a_hand_made_pair(pair):
    res = agreement(*pair)
    assert res["n_common"] == 6 and res["only_b"] == ["extra"]
    assert res["kappa"] == pytest.approx(10 / 22)
    assert res["event_f1"]["Wheeze"] == {"tp": 1, "fp": 1, "fn": 1, "f1": pytest.approx(0.5)}
    assert res["event_f1"]["Fine Crackle"]["f1"] == pytest.approx(1.0)
    assert res["event_f1_all"] == pytest.approx(4 / 6)
    assert [d["recording"] for d in res["disagreements"]] == ["r0", "r1", "r4"]
    assert res["disagreements"][0]["reasons"] == ["Wheeze: 1 only in A, 1 only in B"]
    assert agreement(pair[0], pair[0], tolerance=0.0)["disagreements"] == []
    # A wider tolerance matches the second wheeze too.
    assert agreement(*pair, tolerance=0.35)["event_f1"]["Wheeze"]["f1"] == pytest.approx(1.0)


def test_cli_text_and_json(pair):
    run = lambda *a: subprocess.run([sys.executable, "-m", "lungapp", "labels", "agreement", *a],  # noqa: E731
                                    cwd=ROOT, capture_output=True, text=True, timeout=120)
    proc = run(str(pair[0]), str(pair[1]))
    assert proc.returncode == 0, proc.stderr
    assert "Cohen's kappa 0.455" in proc.stdout and "Wheeze          F1 0.500" in proc.stdout
    assert "  r1: record label Normal vs CAS" in proc.stdout
    res = json.loads(run(str(pair[0]), str(pair[1]), "--json").stdout)
    assert res["kappa"] == pytest.approx(10 / 22)
    proc = run(str(pair[0]), str(pair[0].parent / "missing"))
    assert proc.returncode == 2 and "missing: no such folder" in proc.stderr
    # With a negative tolerance nothing matched, with NaN identical folders disagreed.
    for bad in ("-1", "nan", "inf"):
        proc = run(str(pair[0]), str(pair[0]), "--tolerance", bad)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, (bad, proc.stderr)
        assert "onset tolerance must be a number of seconds" in proc.stderr
