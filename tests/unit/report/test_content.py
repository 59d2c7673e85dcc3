"""What the report and the Compare dialog read from a site's stored results."""

from __future__ import annotations

from lungapp.report.content import judged, trend


def _h(visit, p, level="good", stale=False):
    return {"visit_number": visit, "result": {"abnormal_probability": p, "stale": stale,
                                              "quality": {"level": level, "reason": "x"}}}


def test_the_trend_leaves_out_refused_recordings_and_other_models_results():
    history = [_h(1, 0.2), _h(2, 0.66, "refuse"), _h(3, 0.7, "warn"), _h(4, 0.9, stale=True),
               {"visit_number": 5, "result": None}]
    assert trend(history) == [(1, 0.2), (3, 0.7)]
    assert not judged(history[1]["result"]) and judged(history[2]["result"])
    assert judged({"abnormal_probability": 0.5})            # a result stored without a verdict
