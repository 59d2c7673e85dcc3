"""Model-assisted labelling: windows above threshold become draft regions."""

from __future__ import annotations

from types import SimpleNamespace

from lungapp.annotation.model import Annotation, ChangeRegion, UndoStack
from lungapp.annotation.sidecar import annotation_from_json, annotation_to_json
from lungapp.annotation.suggest import suggest_regions


def _w(start, p_abn, cas, das):
    return SimpleNamespace(start_s=start, end_s=start + 2.0, abnormal_probability=p_abn,
                           probabilities={"Normal": 1 - p_abn, "CAS": cas, "DAS": das,
                                          "CAS & DAS": 0.0})


def test_windows_above_threshold_merge_into_typed_suggestions():
    windows = [_w(0, 0.9, 0.8, 0.1), _w(1, 0.7, 0.6, 0.1), _w(2, 0.2, 0.1, 0.1),
               _w(4, 0.5, 0.05, 0.4), _w(6, 0.49, 0.3, 0.2)]
    regions = suggest_regions(windows, 0.5)
    assert [(r.start_s, r.end_s, r.type) for r in regions] == [(0, 3.0, "Wheeze"),
                                                               (4, 6.0, "Fine Crackle")]
    assert all(r.suggested and not r.accepted and r.author == "model" for r in regions)
    assert suggest_regions(windows, 0.95) == []


def test_accepting_a_suggestion_is_recorded_and_pending_ones_stay_out_of_events():
    doc = Annotation(regions=suggest_regions([_w(0, 0.9, 0.8, 0.1), _w(3, 0.9, 0.1, 0.8)], 0.5))
    stack = UndoStack(doc)
    stack.push(ChangeRegion(doc, doc.regions[0].id, author="ann", accepted=True))
    data = annotation_to_json(doc)
    assert [(e["type"], e["suggested"], e["accepted"], e["author"]) for e in data["event_annotation"]] \
        == [("Wheeze", True, True, "ann")]
    assert [e["type"] for e in data["suggested_events"]] == ["Fine Crackle"]
    assert annotation_from_json(data).same_labels(doc)
    stack.undo()
    assert annotation_to_json(doc)["event_annotation"] == []


def test_a_draft_mostly_in_a_noisy_stretch_says_so():
    from lungapp.annotation.suggest import NOISY_NOTE

    windows = [_w(0, 0.9, 0.8, 0.1), _w(6, 0.9, 0.1, 0.8)]      # drafts 0-2 s and 6-8 s
    regions = suggest_regions(windows, 0.5, noisy_ranges=[(5.5, 7.2), (7.1, 7.5)])
    assert [r.note for r in regions] == ["", NOISY_NOTE]          # 1.5 of 2 s are noisy
    regions = suggest_regions(windows, 0.5, noisy_ranges=[(6.0, 6.9)])
    assert [r.note for r in regions] == ["", ""]                   # under half
