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
