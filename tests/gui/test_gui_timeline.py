"""The Review timeline (issue #29, item 15): the shade marks the windows over the threshold
(one step around each centre, not the union of their 2-s spans) and has a legend entry;
the threshold is named in the legend, not by a label over the curves; a binary model's
one class is not drawn twice."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def windows(classes, high=(5.0, 7.0), length=2.0, hop=0.5, seconds=15.0):
    out = []
    for s in np.arange(0, seconds - length + 1e-9, hop):
        c = s + length / 2
        ab = 0.9 if high[0] <= c <= high[1] else 0.1
        probs = {classes[0]: 1 - ab, **{k: ab / (len(classes) - 1) for k in classes[1:]}}
        out.append(SimpleNamespace(start_s=float(s), end_s=float(s + length), probabilities=probs,
                                   abnormal_probability=ab))
    return SimpleNamespace(windows=out)


@pytest.fixture
def plots(qtbot):
    from lungapp.gui.plots import RecordingPlots

    w = RecordingPlots()
    qtbot.addWidget(w)
    w.duration = 15.0
    return w


def legend_names(plots):
    return [label.text for _, label in plots.legend.items]


def test_shade_covers_the_windows_over_threshold_not_their_union(plots):
    plots.set_timeline(windows(["Normal", "CAS", "DAS", "CAS & DAS"]), 0.36)
    shaded = sum(e - s for s, e in plots.shaded)
    # centres 5.0-7.0 every 0.5 s: 5 windows, 0.5 s each -> 2.5 s (their union: 4 s)
    assert shaded == pytest.approx(2.5)
    assert plots.shaded[0][0] == pytest.approx(4.75) and plots.shaded[-1][1] == pytest.approx(7.25)
    names = legend_names(plots)
    assert "over threshold" in names and "threshold 0.36" in names
    import pyqtgraph as pg

    lines = [i for i in plots.timeline_items if isinstance(i, pg.InfiniteLine)]
    assert lines and all(getattr(line, "label", None) is None for line in lines)   # no text over the curves


def test_binary_model_draws_its_class_once(plots):
    plots.set_timeline(windows(["Normal", "Abnormal"]), 0.5)
    assert plots.timeline_curves() == 1
    names = legend_names(plots)
    assert "abnormal" in names and "Abnormal" not in names


def test_spectrogram_levels_follow_the_recording(window, qtbot, tmp_path):  # noqa: F811
    """Auto levels (the default): the range comes from the recording's percentiles, not
    -100…0 dB; a quieter copy of the same recording gets a range that much lower."""
    import soundfile as sf
    from test_gui_review import wait_displayed, write_recordings

    (path,) = write_recordings(tmp_path, n=1)
    x, rate = sf.read(path, dtype="float32")
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, x * 0.01, rate)          # 40 dB quieter
    view = window.review
    assert view.auto_levels.isChecked()
    window.open_paths([str(path)])
    wait_displayed(qtbot, view)
    loud = tuple(view.plots.image.levels)
    assert loud != (-100.0, 0.0) and loud[1] - loud[0] >= 30
    spec = view.plots.image.image
    below = float(np.mean(spec < loud[0]))   # the floor: its quieter fifth, or 30 dB under the top
    assert below == pytest.approx(0.2, abs=0.05) or (below < 0.2 and loud[1] - loud[0] == 30)
    view.select(str(quiet))
    window.open_paths([str(quiet)])
    qtbot.waitUntil(lambda: tuple(view.plots.image.levels) != loud, timeout=10000)
    low = tuple(view.plots.image.levels)
    assert low[1] == pytest.approx(loud[1] - 40, abs=2)


def quality(level, reason, ranges=()):
    from lungapp.inference.quality import QualityVerdict

    return QualityVerdict(level != "refuse", reason, {}, level, tuple(ranges))


def test_noisy_ranges_are_hatched_on_all_three_plots(plots):
    """Issue #28: the quality check's noisy stretches are marked on the waveform, the
    spectrogram and the timeline, named in the legend, and cleared with the result."""
    import pyqtgraph as pg

    pred = windows(["Normal", "CAS", "DAS", "CAS & DAS"])
    pred.quality = quality("warn", "noisy recording: interpret with care (noise in parts; "
                           "noisy: 3.0-5.0 s, 9.5-10.0 s)", [(3.0, 5.0), (9.5, 10.0)])
    plots.set_timeline(pred, 0.36)
    assert plots.noisy == [(3.0, 5.0), (9.5, 10.0)]
    hatched = [(plot, item) for plot, item in (i for i in plots.timeline_items if isinstance(i, tuple))
               if isinstance(item, pg.LinearRegionItem) and item.getRegion() in ((3.0, 5.0), (9.5, 10.0))]
    assert {id(plot) for plot, _ in hatched} == {id(plots.wave), id(plots.spec), id(plots.timeline)}
    assert len(hatched) == 6
    assert "noisy: interpret with care" in legend_names(plots)
    assert plots.timeline_curves() == 4                     # the result is still drawn
    plots.set_timeline(windows(["Normal", "CAS", "DAS", "CAS & DAS"]), 0.36)   # a clean one
    assert plots.noisy == [] and "noisy: interpret with care" not in legend_names(plots)
    assert not any(isinstance(i, tuple) and i[0] is plots.spec for i in plots.timeline_items)


def test_a_refused_recording_gets_no_curves_but_the_reason(plots):
    pred = windows(["Normal", "CAS", "DAS", "CAS & DAS"])
    pred.quality = quality("refuse", "no signal (silent, muted or unplugged input)")
    plots.set_timeline(pred, 0.36)
    assert plots.timeline_curves() == 0 and plots.shaded == []
    assert plots.empty_text.textItem.toPlainText() == "Not judged: no signal (silent, muted or unplugged input)"


def test_auto_levels_draw_silence_dark_not_bright():
    from lungapp.gui.levels import MIN_SPAN_DB, auto_levels

    silent = np.full((100, 64), -100.0)                     # the spectrogram's floor
    lo, hi = auto_levels(silent)
    assert (lo, hi) == (-100.0, -100.0 + MIN_SPAN_DB)       # silence at the dark end
    rng = np.random.default_rng(0)
    spread = rng.uniform(-90.0, -20.0, (200, 64))
    lo, hi = auto_levels(spread)
    assert -77.0 <= lo <= -75.0 and -21.0 <= hi <= -19.0    # 20th and 99.8th percentiles


def test_a_stored_results_noisy_stretches_are_hatched_in_compare(plots):
    """The Compare dialog draws stored results: their quality verdict comes back from the
    store's JSON with the noisy ranges, as in Review."""
    from lungapp.gui.compare_view import _StoredPrediction

    verdict = quality("warn", "noisy recording: interpret with care (noise in parts; noisy: 3.0-5.0 s)",
                      [(3.0, 5.0)])
    stored = {"windows": [[0.0, 2.0, 0.1], [0.5, 2.5, 0.8]], "quality": verdict.to_dict()}
    pred = _StoredPrediction(stored)
    assert pred.quality == verdict
    plots.set_timeline(pred, 0.5)
    assert plots.noisy == [(3.0, 5.0)]
    plots.set_timeline(_StoredPrediction({"windows": [[0.0, 2.0, 0.1]], "quality": None}), 0.5)
    assert plots.noisy == []
