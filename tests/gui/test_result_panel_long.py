"""The result panel on a long recording, a borderline answer and a truncated file: the
verdict, the bars and the timeline never disagree without words on screen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lungapp.audio import load_audio
from lungapp.gui.result_panel import ResultPanel, consistency_note
from lungapp.inference.predictor import Predictor


@pytest.fixture(scope="module")
def bundled():
    return Predictor.load()


def _examples() -> dict[str, Path]:
    import lungapp.resources as res

    return {p.stem: p for p in (Path(res.__file__).parent / "examples").glob("*.wav")}


def test_long_recording_names_its_abnormal_stretch(qtbot, bundled):
    ex = _examples()
    normal = load_audio(ex["synthetic_normal"], rate=8000).samples
    wheeze = load_audio(ex["synthetic_wheeze"], rate=8000).samples
    pred = bundled.predict_audio(np.concatenate([normal, normal, wheeze, normal, normal]), 8000)
    assert pred.decision == "abnormal" and pred.abnormal_ranges
    panel = ResultPanel()
    qtbot.addWidget(panel)
    panel.show_prediction(pred)
    text = panel.notes.text()
    assert "Abnormal in" in text and "judged in 15-s segments" in text
    assert "The bars show the most abnormal segment" in text
    assert panel.state == "abnormal"


def test_borderline_headline_and_peaks(qtbot, bundled):
    path = _examples()["synthetic_normal"]
    p = bundled.predict_file(path)
    saved = bundled.card.threshold
    bundled.card.threshold = p.abnormal_probability + 0.5 * p.borderline_margin
    try:
        b = bundled.predict_file(path)
    finally:
        bundled.card.threshold = saved
    panel = ResultPanel()
    qtbot.addWidget(panel)
    panel.show_prediction(b)
    assert "Borderline: listen again" in panel.headline.text()
    assert "timeline peaks at" in panel.notes.text()
    panel.show_prediction(p)
    assert "Borderline" not in panel.headline.text()


def test_normal_verdict_with_windows_above_the_threshold_is_explained(bundled):
    p = bundled.predict_file(_examples()["synthetic_normal"])
    top = max(w.abnormal_probability for w in p.windows)
    p.threshold = (top + p.abnormal_probability) / 2  # pooled below it, one window above
    assert p.decision == "normal"
    assert "rise above the threshold" in consistency_note(p)
    p.threshold = top + 0.01
    assert consistency_note(p) == ""


def test_truncated_file_is_said(qtbot, bundled, tmp_path):
    wav = tmp_path / "cut.wav"
    x = load_audio(_examples()["synthetic_normal"], rate=8000).samples
    sf.write(wav, x, 8000, subtype="PCM_16")
    wav.write_bytes(wav.read_bytes()[: 44 + 2 * 8000 * 6])
    panel = ResultPanel()
    qtbot.addWidget(panel)
    panel.show_prediction(bundled.predict_file(wav))
    assert "Truncated file: the header says 15.0 s, the file holds 6.0 s" in panel.notes.text()


def _bar_names(panel) -> list[str]:
    from PySide6.QtWidgets import QLabel

    grid = panel.prob_grid
    return [grid.itemAtPosition(r, 0).widget().text() for r in range(grid.rowCount())
            if grid.itemAtPosition(r, 0) is not None and isinstance(grid.itemAtPosition(r, 0).widget(), QLabel)]


def test_binary_model_shows_abnormal_once_four_classes_add_the_sum(qtbot, bundled):
    """A binary model's "Abnormal" bar is the abnormal probability: no second "abnormal
    (any)" bar repeating it (issue #29, item 15). Four classes keep the sum's bar."""
    import dataclasses

    p4 = bundled.predict_file(_examples()["synthetic_wheeze"])
    p2 = dataclasses.replace(p4, probabilities={"Normal": 1 - p4.abnormal_probability,
                                                "Abnormal": p4.abnormal_probability},
                             label="Abnormal")
    panel = ResultPanel()
    qtbot.addWidget(panel)
    panel.show_prediction(p2)
    assert _bar_names(panel) == ["Normal", "Abnormal"]
    panel.show_prediction(p4)
    assert _bar_names(panel) == ["Normal", "CAS", "DAS", "CAS & DAS", "abnormal (any)"]


def _coloured(x: np.ndarray, rate: int = 8000, lo: float = 177.0, hi: float = 354.0,
              db: float = 25.0) -> np.ndarray:
    """``x`` with ``db`` more power between ``lo`` and ``hi`` Hz: a stethoscope's coloration
    beyond what the training recordings show."""
    X = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / rate)
    X[(f >= lo) & (f < hi)] *= 10 ** (db / 20)
    y = np.fft.irfft(X, n=len(x))
    return (0.2 * y / np.max(np.abs(y))).astype(np.float32)


def test_a_recording_unlike_the_training_ones_is_cautioned_on_screen_and_in_the_export(qtbot, bundled):
    from types import SimpleNamespace

    from lungapp.gui.export import rows

    x = load_audio(_examples()["synthetic_normal"], rate=8000).samples
    plain, unlike = bundled.predict_audio(x, 8000), bundled.predict_audio(_coloured(x), 8000)
    assert plain.unfamiliar is None and unlike.unfamiliar is not None
    panel = ResultPanel()
    qtbot.addWidget(panel)
    panel.show_prediction(unlike)
    # in its own box under the verdict, not repeated among the notes
    assert panel.caution.text().startswith(unlike.unfamiliar.sentence()) and not panel.caution.isHidden()
    assert "Recalibrate to my stethoscope" in panel.caution.text()
    assert "Unlike the recordings the model was trained on" in panel.caution.text()
    assert "Unlike the recordings" not in panel.notes.text()
    assert panel.state in ("normal", "abnormal")  # the answer is still given
    panel.show_prediction(plain)
    assert panel.caution.isHidden() and panel.caution.text() == ""
    panel.show_prediction(unlike)
    panel.show_message("Analysing...")
    assert panel.caution.isHidden()
    entries = [SimpleNamespace(path=f"{n}.wav", duration_s=15.0, status="done", error="", prediction=p)
               for n, p in (("plain", plain), ("unlike", unlike))]
    header, data = rows(entries)
    assert "unlike_training" in header and [r["unlike_training"] for r in data] == ["false", "true"]


def test_noisy_warning_in_the_caution_box_and_no_bars_when_refused(qtbot, bundled):
    """Issue #28: a noisy stretch is warned about where the verdict is read, naming its
    time range; a refused recording shows the reason and no probability bars."""
    x = load_audio(_examples()["synthetic_normal"], rate=8000).samples.copy()
    rng = np.random.default_rng(0)
    x[3 * 8000:5 * 8000] += rng.standard_normal(2 * 8000) * 8 * float(np.std(x))
    noisy = bundled.predict_audio(np.clip(x, -1, 1), 8000)
    assert noisy.quality.level == "warn" and noisy.quality.noisy_ranges
    panel = ResultPanel()
    qtbot.addWidget(panel)
    panel.show_prediction(noisy)
    caution = panel.caution.text()
    assert caution.startswith("Noisy recording: interpret with care") and "3.0-5.0 s" in caution
    assert "hatched on the plots" in caution and not panel.caution.isHidden()
    assert panel.quality.text() == "Quality check: passed, with the warning above."
    assert panel.prob_grid.count() > 0

    silent = bundled.predict_audio(np.zeros(15 * 8000, dtype=np.float32), 8000)
    assert silent.decision == "poor quality"
    panel.show_prediction(silent)
    assert "no signal" in panel.sentence.text() and panel.prob_grid.count() == 0
    assert panel.caution.isHidden()
