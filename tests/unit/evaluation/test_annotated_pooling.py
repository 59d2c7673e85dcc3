"""research/annotated_pooling.py: a model's ranking when it pools only the windows the
annotators' events cover (an upper bound, not a method)."""

from __future__ import annotations

import numpy as np
import pytest


def test_windows_are_kept_by_coverage_and_a_group_with_none_keeps_all(repo_script):
    mod = repo_script("research/annotated_pooling.py")
    outs = [np.arange(8.0).reshape(4, 2), np.arange(4.0).reshape(2, 2)]
    covers = [np.array([0.0, 0.2, 0.7, 1.0]), np.array([0.05, 0.0])]
    assert [o.tolist() for o in mod.keep_windows(outs, covers, None, None)] == [o.tolist() for o in outs]
    most = mod.keep_windows(outs, covers, "at least", 0.6)
    assert most[0].tolist() == [[4.0, 5.0], [6.0, 7.0]]
    assert most[1].tolist() == outs[1].tolist()  # no window of the second group passes: all kept
    bare = mod.keep_windows(outs, covers, "under", 0.1)
    assert bare[0].tolist() == [[0.0, 1.0]] and bare[1].tolist() == outs[1].tolist()


def test_figures_are_at_the_given_threshold_and_the_folders_own_best(repo_script):
    mod = repo_script("research/annotated_pooling.py")
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.6, 0.5, 0.7, 0.9])
    r = mod.figures(y, p, 0.15)
    assert r["sensitivity"] == 1.0 and r["specificity"] == pytest.approx(1 / 3)
    assert r["auc"] == pytest.approx(8 / 9)
    assert 0.2 < r["best_threshold"] <= 0.5 and r["best_score"] == pytest.approx((1 + 2 / 3) / 2)


def test_on_sprsound_the_covered_windows_rank_no_worse_than_the_bare_ones(sprsound_dir, repo_script):
    """On a slice of intra_test with the bundled model: every selection is scored on the
    same recordings, and the covered windows rank better than the bare ones."""
    mod = repo_script("research/annotated_pooling.py")
    res = mod.run_check(sprsound_dir / "intra_test", every=8)
    assert set(res) == {name for name, _, _ in mod.SELECTIONS}
    assert len({r["n"] for r in res.values()}) == 1 and res["all windows (the model's)"]["n"] >= 40
    assert res["covered 10 % or more"]["auc"] > res["covered under 10 %"]["auc"]


def test_a_missing_folder_is_named(repo_script, tmp_path, capsys):
    mod = repo_script("research/annotated_pooling.py")
    assert mod.main([str(tmp_path / "nowhere")]) == 2
    assert "nowhere: not a folder" in capsys.readouterr().err
