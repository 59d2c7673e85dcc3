"""The result panel's sentence: what the model heard, and why a class named by the model's
per-sound thresholds may not be the largest bar."""

from __future__ import annotations

from types import SimpleNamespace

from lungapp.gui.result_panel import describe, windows_words


def _pred(label, probs, decision="abnormal"):
    return SimpleNamespace(label=label, decision=decision, probabilities=probs, quality=None)


def test_a_class_named_by_the_flag_thresholds_is_explained():
    c, d = 0.40, 0.35  # both sounds moderately present: "CAS & DAS" is the smallest joint bar
    probs = {"Normal": (1 - c) * (1 - d), "CAS": c * (1 - d), "DAS": (1 - c) * d, "CAS & DAS": c * d}
    text = describe(_pred("CAS & DAS", probs))
    assert text.startswith("The model heard CAS:") and "DAS:" in text
    assert "not the largest bar: CAS evidence 40%, DAS evidence 35%." in text


def test_no_note_when_the_result_is_the_largest_bar_or_normal():
    probs = {"Normal": 0.2, "CAS": 0.6, "DAS": 0.1, "CAS & DAS": 0.1}
    assert "largest bar" not in describe(_pred("CAS", probs))
    assert describe(_pred("Normal", probs, "normal")) == "The model heard normal breath sounds only."
    binary = {"Normal": 0.3, "Abnormal": 0.7}
    assert "largest bar" not in describe(_pred("Abnormal", binary))


def test_windows_read_are_counted_per_window_length():
    one = SimpleNamespace(windows=[object()] * 27, model={"windows_read": [
        {"window_s": 2.0, "windows": 27}]})
    assert windows_words(one) == "27 windows analysed"
    assert windows_words(SimpleNamespace(windows=[object()] * 5, model={})) == "5 windows analysed"
    mixed = SimpleNamespace(windows=[object()] * 27, model={"windows_read": [
        {"window_s": 2.0, "windows": 27}, {"window_s": 4.0, "windows": 12}]})
    assert windows_words(mixed) == ("27 × 2-s and 12 × 4-s windows analysed "
                                    "(the timeline shows the 2-s ones)")
