"""research/leave_device_out.py: which runs train on what, and the results table."""

from __future__ import annotations

import pytest


def _check(name, **kw):
    return {"name": name, "n": 20, "n_abnormal": 15, "n_normal": 5, "auc": 0.44, "sensitivity": 0.3,
            "specificity": 0.4, "score": 0.35, "four_class_score": 0.2, "refused": 0, "warned": 12,
            "ece": 0.6, **kw}


def test_each_left_out_device_is_checked_and_never_trained_on(repo_script):
    mod = repo_script("research/leave_device_out.py")
    runs = {r["name"]: r for r in mod.plan(["sprsound", "no-Meditron", "icbhi"])}
    assert runs["no-Meditron"]["checks"] == ["Meditron", "intra_test"]
    assert "Meditron" not in runs["no-Meditron"]["train"]["devices"]
    assert set(runs["no-Meditron"]["train"]["devices"]) == set(mod.DEVICES) - {"Meditron"}
    assert runs["icbhi"]["train"]["sprsound"] is False and runs["icbhi"]["checks"] == ["intra_test"]
    with pytest.raises(SystemExit, match="unknown run 'no-Stethoscope'"):
        mod.plan(["no-Stethoscope"])


def test_the_table_gives_intervals_where_the_results_hold_them(repo_script):
    mod = repo_script("research/leave_device_out.py")
    cv = {"n": 1850, "auc": 0.9, "score": 0.8, "four_class_score": 0.7, "minutes": 9.1}
    results = {"no-AKGC417L": {"cv": cv, "checks": {
        "AKGC417L": _check("ICBHI AKGC417L", auc_ci95=[0.04, 1.0], score_ci95=[0.15, 0.68]),
        "intra_test": _check("SPRSound intra_test")}}}  # recorded before intervals were
    lines = mod.table(results).splitlines()
    assert lines[2].startswith("| no-AKGC417L | 1850 | 0.900 |")
    assert "| 0.440 (0.04-1.00) |" in lines[2] and "| 0.350 (0.15-0.68) |" in lines[2]
    assert lines[3].startswith("| | | | | | | SPRSound intra_test |")
    assert "| 0.440 | 0.300 | 0.400 | 0.350 |" in lines[3]
