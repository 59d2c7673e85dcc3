"""lungapp.fsutil: staging folders and their clean-up after a killed process, publish_dir,
and writes that never clobber what the user has."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lungapp import fsutil

from train_helpers import binary_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _fake_staging(parent: Path, name: str, pid: int, host: str | None = None) -> Path:
    d = parent / f".{name}.staging-{pid}@{host or fsutil._host_tag()}-abc123"
    d.mkdir()
    (d / "fold1.keras").write_bytes(b"half written")
    return d


def test_make_staging_is_hidden_empty_and_next_to_target(tmp_path):
    target = tmp_path / "sub" / "model"
    d = fsutil.make_staging(target)
    assert d.parent == target.parent and d.is_dir() and not any(d.iterdir())
    assert d.name.startswith(f".model.staging-{os.getpid()}@")
    assert not target.exists()


def test_stale_staging_of_a_dead_process_is_removed_and_nothing_else(tmp_path):
    target = tmp_path / "model"
    dead = _fake_staging(tmp_path, "model", _dead_pid())
    live = _fake_staging(tmp_path, "model", os.getpid())
    other_host = _fake_staging(tmp_path, "model", _dead_pid(), host="0123abcd")
    other_name = _fake_staging(tmp_path, "model2", _dead_pid())
    old_style = tmp_path / ".model.staging-k2j3h4"  # made before names recorded the process
    old_style.mkdir()
    user_folder = tmp_path / "model.staging-1@00000000-x"  # not hidden: not ours
    user_folder.mkdir()

    new = fsutil.make_staging(target)

    assert not dead.exists()
    for kept in (live, other_host, other_name, old_style, user_folder, new):
        assert kept.is_dir(), kept
    assert (live / "fold1.keras").read_bytes() == b"half written"
    assert fsutil.remove_stale_staging(target) == []


def test_pid_alive():
    assert fsutil._pid_alive(os.getpid())
    assert not fsutil._pid_alive(_dead_pid())
    if os.name == "posix" and os.getuid() != 0:
        assert fsutil._pid_alive(1)  # exists, owned by root: PermissionError counts as alive


def test_atomic_write_without_overwrite_keeps_the_existing_file(tmp_path):
    f = tmp_path / "labels.json"
    fsutil.atomic_write_json(f, {"a": 1})
    with pytest.raises(FileExistsError, match="labels.json"):
        fsutil.atomic_write_json(f, {"a": 2}, overwrite=False)
    assert json.loads(f.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["labels.json"]  # no temporary file left


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_killed_training_leaves_staging_that_the_next_run_removes(tmp_path):
    """A `lungapp train` killed outright (no clean-up code runs) leaves its staging folder;
    the next staging for the same --out (the next training, combine or install) deletes it."""
    features = json.dumps({
        "spectrogram": {"rate": 4000, "win_length": 256, "hop_length": 128, "n_fft": 256,
                        "scale": "mel", "n_mels": 32, "fmin": 50.0, "fmax": 2000.0},
        "window_s": 2.0, "hop_s": 1.0, "resize": None})
    data = binary_dataset(tmp_path / "d", n_patients=6, per_class=1, seconds=3.0)
    out = tmp_path / "model"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lungapp", "train", str(data), "--out", str(out), "--features", features,
         "--folds", "2", "--no-device-shift", "--progress", "json", "--epochs", "200", "--batch-size", "1"],
        cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in proc.stdout:
            if json.loads(line)["event"] == "epoch_end":
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    left = [p for p in tmp_path.iterdir() if ".staging-" in p.name]
    assert len(left) == 1 and left[0].name.startswith(f".model.staging-{proc.pid}@"), left
    assert not out.exists()
    deadline = time.monotonic() + 10
    while fsutil._pid_alive(proc.pid) and time.monotonic() < deadline:  # reaped above; be sure
        time.sleep(0.1)

    new = fsutil.make_staging(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["d", new.name])


def test_a_write_refused_by_the_folder_names_the_file_not_its_hidden_temporary(tmp_path):
    """A read-only config folder made `models use` say ".settings.json.m0uw.tmp: Read-only
    file system"."""
    from lungapp.fsutil import atomic_write_json

    from mount_helpers import tmpfs

    with tmpfs(tmp_path / "ro", read_only=True) as ro, pytest.raises(OSError) as info:
        atomic_write_json(ro / "settings.json", {"a": 1})
    assert info.value.filename == str(ro / "settings.json") and info.value.strerror == "Read-only file system"


def test_a_long_legal_name_is_written_though_its_temporary_name_would_not_be(tmp_path):
    target = tmp_path / ("p" * 245 + ".json")  # 250 bytes: legal; ".NAME.XXXXXXXX.tmp" is not
    assert fsutil.atomic_write_text(target, "{}") == target
    assert target.read_text() == "{}" and os.listdir(tmp_path) == [target.name]


def test_a_link_is_written_through_and_kept(tmp_path):
    (tmp_path / "kept").mkdir()
    real = tmp_path / "kept" / "r1.json"
    real.write_text("old")
    link = tmp_path / "r1.json"
    link.symlink_to(real)
    fsutil.atomic_write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


def test_a_new_file_gets_the_usual_mode_and_a_replaced_one_keeps_its_own(tmp_path):
    old = os.umask(0o027)
    try:
        fsutil.atomic_write_text(tmp_path / "new.txt", "x")
        kept = tmp_path / "kept.txt"
        kept.write_text("x")
        os.chmod(kept, 0o604)
        fsutil.atomic_write_text(kept, "y")
    finally:
        os.umask(old)
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o640
    assert kept.stat().st_mode & 0o777 == 0o604


def test_a_failed_write_names_the_file_not_its_temporary_one(tmp_path, monkeypatch):
    import errno

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    target = tmp_path / "r1.json"
    target.write_text("kept")
    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError) as err:
        fsutil.atomic_write_text(target, "new")
    assert err.value.filename == str(target) and err.value.errno == errno.ENOSPC
    assert target.read_text() == "kept" and os.listdir(tmp_path) == ["r1.json"]
