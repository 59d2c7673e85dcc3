"""The guided exam's steps: order, skip, repeat, finish."""

from __future__ import annotations

import pytest

from lungapp.store.exam import PROTOCOLS, Exam, parse_sites


def test_protocols_have_4_6_and_8_sites_and_can_be_typed():
    assert {k: len(v) for k, v in PROTOCOLS.items()} == {4: 4, 6: 6, 8: 8}
    assert parse_sites(" Trachea, Anterior left,, Trachea ,Posterior left") == [
        "Trachea", "Anterior left", "Posterior left"]
    with pytest.raises(ValueError):
        Exam("P", [])


def test_an_exam_steps_through_the_sites_skips_repeats_and_finishes():
    exam = Exam("P", list(PROTOCOLS[4]))
    assert exam.current == "Anterior right" and exam.position() == (1, 4)
    assert exam.record("u1") == "Anterior left"
    assert exam.skip() == "Posterior right"
    assert exam.record("u2") == "Posterior left"
    assert exam.repeat() == "Posterior right"  # a poor recording: again
    assert exam.record("u3") == "Posterior left"
    assert exam.record("u4") is None and exam.finished
    assert exam.recorded == {"Anterior right": ["u1"], "Posterior right": ["u2", "u3"], "Posterior left": ["u4"]}
    assert exam.skipped == ["Anterior left"] and exam.remaining() == []
    assert exam.summary() == ("Anterior right ✓, Anterior left (skipped), Posterior right ✓×2, "
                              "Posterior left ✓")
    with pytest.raises(ValueError, match="finished"):
        exam.record("u5")
