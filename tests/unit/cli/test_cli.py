"""The `lungapp` CLI: predict, evaluate, info, models, exit codes and error lines."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lungapp.cli import main

from tiny_model import RATE, make_signal


@pytest.fixture
def recordings(tmp_path):
    rng = np.random.default_rng(3)
    folder = tmp_path / "recs"
    (folder / "sub").mkdir(parents=True)
    sf.write(folder / "normal.wav", make_signal("Normal", 5, rng), RATE)
    sf.write(folder / "sub" / "wheeze.flac", make_signal("CAS", 5, rng), RATE)
    return folder


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    import lungapp

    assert lungapp.__version__ in capsys.readouterr().out


def test_predict_json_folder_recursive(recordings, tiny_model_dir, capsys):
    rc = main(["predict", str(recordings), "--model", str(tiny_model_dir), "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and len(out) == 2
    for r in out:
        assert set(r) >= {"file", "duration_s", "label", "abnormal_probability", "probabilities",
                          "windows", "model"}
        assert r["duration_s"] == pytest.approx(5.0)
        assert r["model"]["name"] == "tiny-test-model"
        assert r["windows"][0]["start_s"] == 0.0 and set(r["windows"][0]["probabilities"]) == set(r["probabilities"])
    by_name = {Path(r["file"]).name: r for r in out}
    assert by_name["wheeze.flac"]["abnormal_probability"] > by_name["normal.wav"]["abnormal_probability"]


def test_predict_reports_good_files_when_others_fail(recordings, tiny_model_dir, tmp_path, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_text("this is not audio")
    missing = tmp_path / "missing.wav"
    rc = main(["predict", str(recordings / "normal.wav"), str(bad), str(missing),
               "--model", str(tiny_model_dir), "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 2
    assert "label" in out[0]
    assert out[1]["file"] == str(bad) and out[1]["error"]
    assert out[2]["file"] == str(missing) and "not found" in out[2]["error"].lower()


def test_predict_csv_and_table(recordings, tiny_model_dir, capsys):
    assert main(["predict", str(recordings), "--model", str(tiny_model_dir), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 2 and {"file", "label", "abnormal_probability", "p_Normal"} <= set(rows[0])
    assert main(["predict", str(recordings / "normal.wav"), "--model", str(tiny_model_dir)]) == 0
    text = capsys.readouterr().out
    assert "normal.wav" in text and "not a diagnostic device" in text


def test_predict_cautions_on_a_recording_unlike_the_training_ones(tmp_path, capsys):
    """The bundled model (the active one here) on a breath sound with 25 dB more at
    177-354 Hz than the training recordings show: the answer, with the caution in every
    format."""
    import numpy as np
    import soundfile as sf

    from lungapp import synth

    x = synth.generate("normal", seconds=15.0, rate=8000, seed=2)
    X = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / 8000)
    X[(f >= 177) & (f < 354)] *= 10 ** (25 / 20)
    y = np.fft.irfft(X, n=len(x))
    sf.write(tmp_path / "coloured.wav", (0.2 * y / np.abs(y).max()).astype(np.float32), 8000)
    sf.write(tmp_path / "plain.wav", x, 8000)
    assert main(["predict", str(tmp_path / "coloured.wav"), str(tmp_path / "plain.wav"), "--format", "csv"]) == 0
    rows = {Path(r["file"]).name: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert rows["coloured.wav"]["unlike_training"] == "1" and rows["plain.wav"]["unlike_training"] == "0"
    assert rows["coloured.wav"]["label"] in ("Normal", "CAS", "DAS", "CAS & DAS")
    assert main(["predict", str(tmp_path / "coloured.wav"), "--format", "json"]) == 0
    u = json.loads(capsys.readouterr().out)[0]["unfamiliar"]
    assert u["distance"] > u["threshold"] and u["differences"]
    assert main(["predict", str(tmp_path / "coloured.wav"), str(tmp_path / "plain.wav")]) == 0
    out = capsys.readouterr().out
    assert "Unlike the recordings the model was trained on" in out
    # what to do about it, once under the table, counting the recordings it concerns
    assert out.count("lungapp recalibrate FOLDER") == 1
    assert "1 of 2 unlike the training recordings" in out.splitlines()[-1]
    assert main(["predict", str(tmp_path / "plain.wav")]) == 0
    assert "recalibrate" not in capsys.readouterr().out


def test_predict_table_gives_the_quality_verdict(tmp_path, capsys):
    """Issue #28 in the table: a noisy stretch is warned about with its time range; a
    refused recording says why, and its meaningless probability is left out."""
    from lungapp import synth

    x = synth.generate("normal", seconds=15.0, rate=8000, seed=2)
    rng = np.random.default_rng(0)
    x[3 * 8000:5 * 8000] += rng.standard_normal(2 * 8000) * 8 * float(np.std(x))
    sf.write(tmp_path / "noisy.wav", np.clip(x, -1, 1).astype(np.float32), 8000)
    sf.write(tmp_path / "silent.wav", np.zeros(15 * 8000, dtype=np.float32), 8000)
    assert main(["predict", str(tmp_path / "noisy.wav"), str(tmp_path / "silent.wav")]) == 0
    lines = capsys.readouterr().out.splitlines()
    noisy = next(i for i, line in enumerate(lines) if "noisy.wav" in line)
    assert lines[noisy + 1].strip().startswith("Noisy recording: interpret with care")
    assert "3.0-5.0 s" in lines[noisy + 1]
    silent = next(i for i, line in enumerate(lines) if "silent.wav" in line)
    assert lines[silent].split()[1:3] == ["15.0", "-"]
    assert lines[silent + 1].strip() == "Not judged: no signal (silent, muted or unplugged input)"


def test_a_refused_recording_has_no_abnormal_stretch_in_csv_or_json(tmp_path, capsys):
    """A script reading the output must not see a silent file as abnormal from start to end:
    the CSV leaves its probabilities out as the table does, and the JSON flags no segment,
    no stretch and no peak (the bundled model calls silence abnormal, 0.66)."""
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(9 * 8000, dtype=np.float32), 8000)
    assert main(["predict", str(silent), "--format", "csv"]) == 0
    row = next(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert row["decision"] == "poor quality" and row["abnormal_ranges"] == ""
    assert row["abnormal_probability"] == "" and all(row[k] == "" for k in row if k.startswith("p_"))
    assert main(["predict", str(silent), "--format", "json"]) == 0
    r = json.loads(capsys.readouterr().out)[0]
    assert r["quality"]["level"] == "refuse" and r["abnormal_probability"] >= r["threshold"]
    assert r["abnormal_ranges"] == [] and r["peaks"] == [] and not r["borderline"]
    assert not any(sg["flagged"] for sg in r["segments"])


def test_predict_with_no_model_is_one_clear_line(recordings, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LUNGAPP_MODEL", str(tmp_path))  # a folder without a card
    rc = main(["predict", str(recordings / "normal.wav")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "no model card" in err[0] and "Traceback" not in err[0]


def _sprsound_like(folder: Path, rng) -> None:
    folder.mkdir()
    plan = [("Normal", 6), ("CAS", 3), ("DAS", 3), ("CAS & DAS", 2), ("Poor Quality", 2)]
    i = 0
    for label, n in plan:
        for _ in range(n):
            i += 1
            kind = "Normal" if label == "Poor Quality" else label
            name = f"{100 + i % 5}_5.0_0_p1_{i}"
            sf.write(folder / f"{name}.wav", make_signal(kind, 4, rng), RATE)
            (folder / f"{name}.json").write_text(json.dumps(
                {"record_annotation": label, "event_annotation": []}))


def test_evaluate_json(tiny_model_dir, tmp_path, capsys):
    _sprsound_like(tmp_path / "ds", np.random.default_rng(9))
    rc = main(["evaluate", str(tmp_path / "ds"), "--model", str(tiny_model_dir), "--json"])
    res = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert res["n"] == 14 and res["n_skipped"] == 2 and res["n_abnormal"] == 8
    assert sum(map(sum, res["confusion"])) == 14
    assert res["score"] == pytest.approx((res["sensitivity"] + res["specificity"]) / 2)
    assert res["auc"] > 0.7  # the tiny model does separate generated tones/clicks from noise
    assert set(res["per_class"]) == {"Normal", "CAS", "DAS", "CAS & DAS"}
    assert len(res["multiclass"]["confusion"]) == 4
    assert res["n_unusable"] == 0 and res["unusable"] == []
    # how far the figures can be trusted: resampling the folder's 5 patients whole
    iv = res["intervals"]
    assert iv["resampled"] == "patients" and iv["n_groups"] == 5
    assert iv["score_ci95"][0] <= res["score"] <= iv["score_ci95"][1]
    assert main(["evaluate", str(tmp_path / "ds"), "--model", str(tiny_model_dir)]) == 0
    assert "(2000 resamples of the 5 patients)" in capsys.readouterr().out


def test_evaluate_lists_every_entry_it_could_not_use(tiny_model_dir, tmp_path, capsys):
    ds = tmp_path / "ds"
    _sprsound_like(ds, np.random.default_rng(9))
    first = sorted(ds.glob("*.json"))[0]
    first.write_text("{not json")
    second = sorted(ds.glob("*.json"))[1]
    second.write_text(json.dumps({"record_annotation": "gurgle", "event_annotation": []}))
    assert main(["evaluate", str(ds), "--model", str(tiny_model_dir), "--json"]) == 2  # not all of it could be scored
    res = json.loads(capsys.readouterr().out)
    assert res["n_unusable"] == 2
    assert {Path(u["file"]).stem for u in res["unusable"]} == {first.stem, second.stem}
    assert main(["evaluate", str(ds), "--model", str(tiny_model_dir)]) == 2
    text = capsys.readouterr().out
    assert "unusable entries 2" in text and text.count("unusable: ") == 2


def test_evaluate_reports_what_the_quality_gate_does(tiny_model_dir, tmp_path, capsys):
    """With the gate on, evaluate says how many Poor Quality recordings it flags, how many
    others it refuses, and scores the recordings it passes exactly as the app shows them."""
    import shutil

    from lungapp import synth
    from lungapp.evaluation.metrics import binary_metrics
    from lungapp.inference.predictor import Predictor

    model = tmp_path / "gated_model"
    shutil.copytree(tiny_model_dir, model)
    card = json.loads((model / "card.json").read_text())
    card["quality_gate"] = {"enabled": True}
    (model / "card.json").write_text(json.dumps(card))
    # synthetic breath sounds, which pass the gate (the tiny model's test signals are
    # noise-like and would all be refused), one too quiet (no signal), and two Poor Quality ones
    ds = tmp_path / "ds"
    ds.mkdir()
    plan = [("normal", 4), ("wheeze", 3), ("crackle", 3), ("wheeze+crackle", 2), ("poor", 2)]
    labels, seed = {}, 0
    for kind, n in plan:
        for _ in range(n):
            seed += 1
            f = ds / f"{100 + seed % 4}_5.0_0_p1_{seed}.wav"
            x = synth.generate("normal" if kind == "poor" else kind, 5.0, 8000, seed=seed)
            sf.write(f, x, 8000)
            labels[f] = "Poor Quality" if kind == "poor" else synth.RECORD_LABEL[kind]
            f.with_suffix(".json").write_text(json.dumps(
                {"record_annotation": labels[f], "event_annotation": []}))
    files = sorted(labels)
    poor = [f for f in files if labels[f] == "Poor Quality"]
    normal = [f for f in files if labels[f] == "Normal"]
    sf.write(poor[0], np.zeros(5 * 8000, dtype=np.float32), 8000)  # silent: "no signal"
    sf.write(normal[0], 1e-5 * synth.generate("normal", 5.0, 8000, seed=99), 8000)

    assert main(["evaluate", str(ds), "--model", str(model), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    predictor = Predictor.load(model)

    def predictor_quality(f):
        return predictor.predict_file(f).quality

    gate = res["quality_gate"]
    # the silent Poor Quality one and the quiet normal one at least (the noise rule may
    # refuse a few synthetic ones too)
    assert gate["poor_quality"]["n"] == 2 and gate["poor_quality"]["flagged"] >= 1
    assert gate["others"]["n"] == 12 and gate["others"]["flagged"] == res["n_quality_gated"]
    assert gate["others"]["warned"] == sum(
        getattr(predictor_quality(f), "level", "") == "warn" for f in files if labels[f] != "Poor Quality")
    assert res["n"] == 12 and res["n_quality_gated"] >= 1

    preds = {f: predictor.predict_file(f) for f in files if labels[f] != "Poor Quality"}
    kept = [f for f, pr in preds.items() if pr.decision != "poor quality"]
    assert normal[0] not in kept
    want = binary_metrics([int(labels[f] != "Normal") for f in kept],
                          [preds[f].abnormal_probability for f in kept], predictor.card.threshold)
    got = gate["passed"]
    assert got["n"] == len(kept) == 12 - res["n_quality_gated"] > 0
    assert got["confusion"] == want["confusion"]
    assert got["auc"] == pytest.approx(want["auc"])
    assert sum(map(sum, got["multiclass"]["confusion"])) == len(kept)
    # the best any threshold could do here: at least the model's own score, and exactly
    # the score at the reported best threshold
    every = [f for f in files if labels[f] != "Poor Quality"]
    y_all = [int(labels[f] != "Normal") for f in every]
    p_all = [preds[f].abnormal_probability for f in every]
    assert res["best_score"] == pytest.approx(binary_metrics(y_all, p_all, res["best_threshold"])["score"])
    assert res["best_score"] >= res["score"] - 1e-12

    assert main(["evaluate", str(ds), "--model", str(model)]) == 0
    text = capsys.readouterr().out
    assert (f"refuses {gate['poor_quality']['flagged']} and warns on {gate['poor_quality']['warned']} "
            "of 2 Poor Quality") in text
    assert f"on the {len(kept)} it passes" in text


def test_evaluate_bad_folder(tiny_model_dir, tmp_path, capsys):
    rc = main(["evaluate", str(tmp_path / "nope"), "--model", str(tiny_model_dir)])
    assert rc == 2 and "nope" in capsys.readouterr().err


def test_info_respects_lungapp_home(lungapp_home, capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert all(v.startswith(str(lungapp_home)) for v in info["paths"].values())
    assert "tensorflow" in info["libraries"]


def test_models_install_use_list(tiny_model_dir, capsys, monkeypatch):
    monkeypatch.delenv("LUNGAPP_MODEL", raising=False)
    assert main(["models", "install", str(tiny_model_dir), "--use"]) == 0
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "* tiny-test-model 0.0.1" in out


def test_python_dash_m_entry_point(recordings, tiny_model_dir):
    env = {**os.environ, "LUNGAPP_MODEL": str(tiny_model_dir)}
    r = subprocess.run([sys.executable, "-m", "lungapp", "predict", str(recordings / "normal.wav"),
                        "--format", "json"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["file"].endswith("normal.wav")
    r = subprocess.run([sys.executable, "-m", "lungapp", "predict", "/nonexistent/x.wav"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr + r.stdout


@pytest.mark.data
def test_evaluate_real_intra_test_subset_runs(sprsound_dir, tiny_model_dir, tmp_path, capsys):
    """The reader + evaluate path on real SPRSound files (a subset, for speed)."""
    src = sprsound_dir / "intra_test"
    sub = tmp_path / "subset"
    sub.mkdir()
    for flac in sorted(src.glob("*.flac"))[:12]:
        (sub / flac.name).symlink_to(flac)
        (sub / flac.with_suffix(".json").name).symlink_to(flac.with_suffix(".json"))
    assert main(["evaluate", str(sub), "--model", str(tiny_model_dir), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n"] + res["n_skipped"] + res["n_failed"] == 12


# --- the one rule at the entry point: no traceback for anything that escapes a command ---

def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(monkeypatch, capsys):
    from lungapp.cli import info

    def boom(args):
        raise RuntimeError("the disk said no\nsecond line")

    monkeypatch.setattr(info, "run", boom)
    assert main(["info"]) == 1
    err = capsys.readouterr().err
    assert err == ("lungapp: unexpected error: RuntimeError: the disk said no "
                   "(run with --debug for the traceback)\n")
    with pytest.raises(RuntimeError, match="the disk said no"):
        main(["info", "--debug"])


def test_an_os_error_names_its_file(monkeypatch, capsys, tmp_path):
    from lungapp.cli import info

    def denied(args):
        raise PermissionError(13, "Permission denied", str(tmp_path / "x.wav"))

    monkeypatch.setattr(info, "run", denied)
    assert main(["info"]) == 1
    assert capsys.readouterr().err == (f"lungapp: {tmp_path / 'x.wav'}: Permission denied "
                                       "(run with --debug for the details)\n")


def test_predict_reports_an_impossible_path_and_still_analyses_the_good_files(recordings, tiny_model_dir,
                                                                              tmp_path, capsys):
    too_long = str(tmp_path / ("a" * 300 + ".wav"))
    rc = main(["predict", str(recordings / "normal.wav"), too_long, "--model", str(tiny_model_dir),
               "--format", "json"])
    assert rc == 2
    res = {r["file"]: r for r in json.loads(capsys.readouterr().out)}
    assert "label" in res[str(recordings / "normal.wav")]
    assert res[too_long]["error"] == "cannot access the file (File name too long)"


def test_collect_inputs_names_folders_it_cannot_read(tmp_path, monkeypatch):
    import os

    from lungapp.cli.predict import collect_inputs

    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "a.wav").write_bytes(b"x")
    (tmp_path / "locked").mkdir()
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path).endswith("locked"):  # root reads everything: refuse it here
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    got = collect_inputs([str(tmp_path)], (".wav",))
    assert (str(tmp_path / "ok" / "a.wav"), None) in got
    assert (str(tmp_path / "locked"), "cannot read this folder (Permission denied)") in got
