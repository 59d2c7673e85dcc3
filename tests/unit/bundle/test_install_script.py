"""packaging/install.sh, the release archive's installer, run with sh on an archive-shaped
folder whose app is a small script (tests/integration/test_bundle.py installs the real
bundle): what a QA pass found it did to files that were not its own, to odd and relative
prefixes, to unknown arguments, to two runs at once and to a full disk."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("sh") is None,
                                reason="the installer is a POSIX shell script for Linux")


@pytest.fixture
def archive(tmp_path) -> Path:
    """An unpacked release archive: install.sh, lungapp.desktop, lungapp.svg and lungapp/
    whose `lungapp` prints a version, as the bundle's does."""
    a = tmp_path / "archive"
    (a / "lungapp" / "_internal").mkdir(parents=True)
    app = a / "lungapp" / "lungapp"
    app.write_text("#!/bin/sh\necho 'lungapp 9.9'\n")
    app.chmod(0o755)
    (a / "lungapp" / "_internal" / "lib.so").write_bytes(b"\0" * 4096)
    for name in ("install.sh", "lungapp.desktop"):
        shutil.copy(ROOT / "packaging" / name, a / name)
    shutil.copy(ROOT / "resources" / "icons" / "lungapp.svg", a / "lungapp.svg")
    return a


def run(script: Path, *args: str, prefix: str | None = None, cwd: Path | None = None, **env):
    e = {k: v for k, v in os.environ.items() if k not in ("PREFIX", "CDPATH")}
    if prefix is not None:
        e["PREFIX"] = prefix
    e.update(env)
    return subprocess.run(["sh", str(script), *args], capture_output=True, text=True, env=e, cwd=cwd,
                          timeout=120)


def test_install_reinstall_and_uninstall_leave_only_their_own_files(archive, tmp_path):
    prefix = tmp_path / "p"
    assert run(archive / "install.sh", prefix=str(prefix) + "/").returncode == 0  # a trailing slash
    assert run(archive / "install.sh", prefix=str(prefix)).returncode == 0
    assert sorted(p.name for p in (prefix / "lib").iterdir()) == ["lungapp"]  # nothing left over
    out = subprocess.run([str(prefix / "bin" / "lungapp")], capture_output=True, text=True).stdout
    assert out.strip() == "lungapp 9.9"
    link = prefix / "lib" / "lungapp-uninstall"
    link.symlink_to(prefix / "lib" / "lungapp" / "install.sh")  # the installed copy, through a link
    done = run(link, "--uninstall")
    assert done.returncode == 0 and "removed from" in done.stdout and str(prefix) in done.stdout
    assert not (prefix / "lib" / "lungapp").exists() and not (prefix / "bin" / "lungapp").is_symlink()
    again = run(archive / "install.sh", "--uninstall", prefix=str(prefix))
    assert again.returncode == 1 and "not installed" in again.stdout


def test_a_command_or_menu_entry_that_is_not_lungapps_is_never_replaced_or_removed(archive, tmp_path):
    prefix = tmp_path / "p"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "share" / "applications").mkdir(parents=True)
    own = prefix / "bin" / "lungapp"
    own.write_text("#!/bin/sh\necho mine\n")
    proc = run(archive / "install.sh", prefix=str(prefix))
    assert proc.returncode == 1 and f"{own} is not lungapp's" in proc.stderr
    assert own.read_text().endswith("echo mine\n") and not (prefix / "lib").exists()
    own.unlink()
    own.symlink_to("/opt/venv/bin/lungapp")                     # a pip install's, say
    entry = prefix / "share" / "applications" / "lungapp.desktop"
    entry.write_text("[Desktop Entry]\nExec=other\n")
    proc = run(archive / "install.sh", "--uninstall", prefix=str(prefix))
    assert proc.returncode == 1 and "not installed" in proc.stdout
    assert os.readlink(own) == "/opt/venv/bin/lungapp" and entry.read_text() == "[Desktop Entry]\nExec=other\n"


def test_relative_prefixes_and_unknown_arguments_are_refused(archive, tmp_path):
    for prefix in ("apps", "~/apps"):
        proc = run(archive / "install.sh", prefix=prefix, cwd=tmp_path)
        assert proc.returncode == 2 and "PREFIX must be an absolute folder" in proc.stderr
    for args in (["uninstall"], ["--help"], ["--prefix", str(tmp_path / "x")], ["--uninstall", "x"]):
        proc = run(archive / "install.sh", *args, prefix=str(tmp_path / "p"))
        assert proc.returncode == 2 and proc.stderr.startswith("usage:"), args
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive"]


@pytest.mark.parametrize("odd", ["R&D", "100%", "back\\slash", "a|b", 'q"t', "d$x", "two words"])
def test_the_menu_entry_quotes_an_odd_prefix_as_the_desktop_entry_spec_says(archive, tmp_path, odd):
    prefix = tmp_path / odd
    assert run(archive / "install.sh", prefix=str(prefix)).returncode == 0
    entry = (prefix / "share" / "applications" / "lungapp.desktop").read_text()
    app = str(prefix / "lib" / "lungapp" / "lungapp")
    quoted = app.replace("\\", "\\\\\\\\").replace('"', '\\\\"').replace("$", "\\\\$").replace("%", "%%")
    assert f'Exec="{quoted}" %F' in entry.splitlines()
    assert "Icon=" + str(prefix / "lib" / "lungapp" / "lungapp.svg").replace("\\", "\\\\") in entry.splitlines()
    assert run(archive / "install.sh", "--uninstall", prefix=str(prefix)).returncode == 0
    assert not (prefix / "share" / "applications" / "lungapp.desktop").exists()


def test_a_second_run_into_the_same_prefix_waits_for_none_and_changes_nothing(archive, tmp_path):
    prefix = tmp_path / "p"
    assert run(archive / "install.sh", prefix=str(prefix)).returncode == 0
    if shutil.which("flock") is None:
        pytest.skip("no flock here: runs are not serialised")
    with open(prefix / "lib" / ".lungapp-install.lock", "w") as held:   # as a running install holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = run(archive / "install.sh", prefix=str(prefix))
        assert proc.returncode == 1 and "another install or uninstall" in proc.stderr
        proc = run(archive / "install.sh", "--uninstall", prefix=str(prefix))
        assert proc.returncode == 1
    assert (prefix / "lib" / "lungapp" / "lungapp").is_file()


def test_a_copy_that_fails_changes_nothing_and_says_why_in_one_line(archive, tmp_path):
    from mount_helpers import tmpfs

    (archive / "lungapp" / "_internal" / "big.so").write_bytes(os.urandom(600 * 1024))
    with tmpfs(tmp_path / "disk", "400k") as disk:
        proc = run(archive / "install.sh", prefix=str(disk))
        assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
        assert "No space left on device" in proc.stderr and "nothing was changed" in proc.stderr
        assert sorted(p.name for p in (disk / "lib").iterdir()) == []
    (archive / "lungapp" / "lungapp").chmod(0o644)
    proc = run(archive / "install.sh", prefix=str(tmp_path / "p"))
    assert proc.returncode == 1 and "is not executable" in proc.stderr
