"""Data-loss guard of every command that writes a folder (lungapp.fsutil.check_output_dir):
`lungapp train DATA --out X --overwrite` never replaces the data, a folder above or inside
it, or anything but a model; an impossible --out fails in one line before any work;
--overwrite keeps what it replaces as a dated backup; a swap killed half way is repaired
by the next command that touches the folder."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lungapp import fsutil
from lungapp.errors import LungappError

from mount_helpers import tmpfs  # noqa: E402
from train_helpers import binary_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra):
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def _train(data, out, *extra):
    return subprocess.run([sys.executable, "-m", "lungapp", "train", str(data), "--out", str(out),
                           "--progress", "json", *extra],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return binary_dataset(tmp_path_factory.mktemp("guard") / "data", n_patients=4, per_class=1,
                          seconds=2.0)


def _assert_refused_in_one_line(proc, needle: str):
    assert proc.returncode == 4, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["event"] for e in events] == ["error"]  # before start, before any feature
    assert needle in events[0]["message"]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("where", ["same", "parent", "inside", "symlink"])
def test_train_never_writes_over_or_around_the_data(data, tmp_path, where):
    before = _snapshot(data)
    out = {"same": data, "parent": data.parent, "inside": data / "model",
           "symlink": tmp_path / "link"}[where]
    if where == "symlink":
        out.symlink_to(data, target_is_directory=True)
    proc = _train(data, out, "--overwrite")
    word = {"same": "is the data folder", "parent": "contains the data folder",
            "inside": "lies inside the data folder", "symlink": "is the data folder"}[where]
    _assert_refused_in_one_line(proc, word)
    assert _snapshot(data) == before


def test_train_overwrite_refuses_a_folder_that_is_not_a_model(data, tmp_path):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.docx").write_bytes(b"years of work")
    (out / "card.json").write_text("{}")
    proc = _train(data, out, "--overwrite")
    _assert_refused_in_one_line(proc, "not a lungapp model")
    assert (out / "chapter1.docx").read_bytes() == b"years of work"


def test_train_out_under_proc_fails_at_once(data):
    _assert_refused_in_one_line(_train(data, "/proc/lungapp-model"), "/proc/lungapp-model: is on a virtual")


def test_train_out_on_a_read_only_disk_fails_at_once(data, tmp_path):
    with tmpfs(tmp_path / "ro", read_only=True) as ro:
        proc = _train(data, ro / "model")
    _assert_refused_in_one_line(proc, f"{ro / 'model'}: cannot write the output folder here")
    assert "Read-only file system" in proc.stdout


def test_check_output_dir_accepts_a_model_folder_to_overwrite_and_free_places(tmp_path):
    model = tmp_path / "m"
    (model / "w2s_seed0").mkdir(parents=True)
    for f in ("card.json", "model.keras", "model.onnx", "curves.json", "w2s_seed0/card.json",
              "w2s_seed0/oof.npz"):
        (model / f).write_bytes(b"x")
    fsutil.check_output_dir(model, data_dirs=[tmp_path / "data"], overwrite=True)
    with pytest.raises(LungappError, match="use --overwrite"):
        fsutil.check_output_dir(model)
    fsutil.check_output_dir(tmp_path / "new" / "deeper")
    assert not (tmp_path / "new").exists()  # the probe creates nothing that stays
    (model / "run.wav").write_bytes(b"RIFF")
    with pytest.raises(LungappError, match="not a lungapp model"):
        fsutil.check_output_dir(model, overwrite=True)


def test_publish_dir_keeps_what_it_replaces_as_a_dated_backup(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.keras").write_text("old")
    staging = fsutil.make_staging(target)
    (staging / "new.keras").write_text("new")
    backup = fsutil.publish_dir(staging, target)
    assert [p.name for p in target.iterdir()] == ["new.keras"]
    assert backup is not None and backup.parent == tmp_path
    assert backup.name.startswith("model.replaced-") and len(backup.name) == len("model.replaced-20260101-120000")
    assert (backup / "old.keras").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["model", backup.name])


# --- a swap killed between its two renames -----------------------------------------------

_SWAP = """
import shutil, sys
from pathlib import Path
from lungapp.fsutil import make_staging, publish_dir
new, target = Path(sys.argv[1]), Path(sys.argv[2])
staging = make_staging(target)
shutil.copytree(new, staging, dirs_exist_ok=True)
publish_dir(staging, target)
"""


def _kill_inside_swap(new: Path, target: Path) -> None:
    """Run publish_dir(new -> target) in a real process and SIGKILL it between the renames."""
    proc = subprocess.Popen([sys.executable, "-c", _SWAP, str(new), str(target)], cwd=ROOT,
                            env=_env(**{fsutil.SWAP_PAUSE_ENV: "60"}))
    try:
        deadline = time.monotonic() + 60
        while target.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not target.exists(), "the swap never started"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _model_named(tiny_model_dir: Path, where: Path, name: str) -> Path:
    shutil.copytree(tiny_model_dir, where)
    card = json.loads((where / "card.json").read_text())
    card["name"] = name
    (where / "card.json").write_text(json.dumps(card))
    return where


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_a_swap_killed_half_way_is_completed_by_the_next_predict(tiny_model_dir, tmp_path):
    target = _model_named(tiny_model_dir, tmp_path / "model", "old")
    new = _model_named(tiny_model_dir, tmp_path / "incoming", "new")
    _kill_inside_swap(new, target)
    assert not target.exists() and len(list(tmp_path.glob("model.replaced-*"))) == 1

    import numpy as np
    import soundfile as sf

    wav = tmp_path / "x.wav"
    sf.write(wav, np.zeros(8000, np.float32), 4000)
    proc = subprocess.run([sys.executable, "-m", "lungapp", "predict", "--model", str(target),
                           str(wav), "--format", "json"], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "completed a replacement" in proc.stderr and "model.replaced-" in proc.stderr
    assert json.loads(proc.stdout)[0]["model"]["name"] == "new"
    assert not list(tmp_path.glob(".model.*"))  # no staging folder, no journal left


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_a_swap_killed_half_way_is_restored_by_the_next_train(data, tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "card.json").write_text('{"name": "old"}')
    new = tmp_path / "incoming"
    new.mkdir()
    (new / "card.json").write_text('{"name": "new"}')
    _kill_inside_swap(new, target)
    for staging in tmp_path.glob(".model.staging-*"):  # e.g. a disk that lost the new folder
        shutil.rmtree(staging)
    proc = _train(data, target)  # no --overwrite: refused after the repair
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert "restored the previous version" in events[0]["message"], events
    assert events[-1]["event"] == "error" and "use --overwrite" in events[-1]["message"]
    assert json.loads((target / "card.json").read_text()) == {"name": "old"}


def test_combine_refuses_an_output_over_the_data_or_a_member_before_any_work(tmp_path):
    from lungapp.training.combine import combine

    data = tmp_path / "data"
    data.mkdir()
    (data / "a.wav").write_bytes(b"RIFF")
    members = [(tmp_path / "runs" / f"r{i}", tmp_path / f"oof{i}.npz") for i in (1, 2)]
    with pytest.raises(LungappError, match="is the data folder"):
        combine(members, data, data_root=data, overwrite=True)
    with pytest.raises(LungappError, match="contains the data folder"):
        combine(members, tmp_path / "runs", overwrite=True)
    assert (data / "a.wav").read_bytes() == b"RIFF"


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_train_overwrite_killed_inside_its_swap_is_completed_by_the_next_run(data, tmp_path):
    """The real `lungapp train --overwrite`, killed between the swap's two renames (the
    test hook holds it there): --out is missing, the old model sits in its backup, and the
    new one in a staging folder of a dead process. The next run puts the new model in place
    and says so, before anything else."""
    features = json.dumps({
        "spectrogram": {"rate": 4000, "win_length": 256, "hop_length": 128, "n_fft": 256,
                        "scale": "mel", "n_mels": 32, "fmin": 50.0, "fmax": 2000.0},
        "window_s": 2.0, "hop_s": 1.0, "resize": None})
    out = tmp_path / "model"
    out.mkdir()
    (out / "card.json").write_text('{"name": "old"}')
    cmd = [sys.executable, "-m", "lungapp", "train", str(data), "--out", str(out), "--overwrite",
           "--features", features, "--folds", "2", "--epochs", "1", "--no-device-shift",
           "--progress", "json"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(**{fsutil.SWAP_PAUSE_ENV: "120"}),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 400
        while out.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert not out.exists(), "the run never reached its swap"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    (backup,) = tmp_path.glob("model.replaced-*")
    (staging,) = tmp_path.glob(".model.staging-*")
    assert (staging / "card.json").is_file() and (backup / "card.json").read_text() == '{"name": "old"}'
    again = _train(data, out)  # no --overwrite: the repair, then the usual refusal
    events = [json.loads(line) for line in again.stdout.splitlines()]
    assert "completed a replacement" in events[0]["message"] and str(backup) in events[0]["message"]
    assert "use --overwrite" in events[-1]["message"]
    assert json.loads((out / "card.json").read_text())["name"] != "old"
    assert (out / "model.onnx").is_file() or list(out.glob("*.onnx"))
    assert not list(tmp_path.glob(".model.*"))
