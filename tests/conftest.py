"""Shared fixtures. Every test runs with its own LUNGAPP_HOME so nothing touches the
user's real settings, models or recordings.

Tests sit in three folders, and each folder's tests get its marker automatically:
``unit/`` (mirrors the package: unit/audio, unit/inference, ...), ``gui/`` (pytest-qt in a
real X server) and ``integration/`` (the real audio server, the built bundle). gui and
integration tests are also ``slow``: ``pytest -m "not slow"`` is the fast inner loop. Helpers shared
by several test files (tiny_model.py, train_helpers.py) sit beside this file."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
if str(TESTS) not in sys.path:  # the shared helpers, importable from every test folder
    sys.path.insert(0, str(TESTS))

_FOLDER_MARKERS = ("unit", "gui", "integration")
#: Test files that take minutes (the bundle build): collected first, so that with two
#: workers (packaging/test.sh) one starts them at once while the other runs the rest.
_START_FIRST = ("integration/test_bundle.py",)


def pytest_collection_modifyitems(config, items):
    first = tuple(str(TESTS / name) for name in _START_FIRST)
    items.sort(key=lambda item: str(item.path) not in first)  # stable: the rest keep their order
    for item in items:
        try:
            folder = Path(str(item.path)).resolve().relative_to(TESTS).parts[0]
        except ValueError:
            continue
        if folder in _FOLDER_MARKERS:
            item.add_marker(getattr(pytest.mark, folder))
        if folder in ("gui", "integration"):  # a real X or audio server: not the fast loop
            item.add_marker(pytest.mark.slow)
SPRSOUND = (ROOT / ".." / "shared" / "data" / "sprsound").resolve()


@pytest.fixture(autouse=True)
def lungapp_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("lungapp_home")
    monkeypatch.setenv("LUNGAPP_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def sprsound_dir() -> Path:
    """../shared/data/sprsound, or skip where it is absent (a user's fresh clone)."""
    if not (SPRSOUND / "train").is_dir():
        pytest.skip(f"SPRSound data not found at {SPRSOUND}")
    return SPRSOUND


@pytest.fixture
def repo_script():
    """Load a script of the repository (``repo_script("benchmarks/ensemble_steps.py")``) as a
    module; skips where it is absent (an installed copy without benchmarks/ or packaging/)."""
    import importlib.util

    def load(relpath: str):
        path = ROOT / relpath
        if not path.is_file():
            pytest.skip(f"no {relpath} in this copy")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = mod  # as an import would: dataclasses look their module up
        spec.loader.exec_module(mod)
        return mod

    return load


def pytest_unconfigure(config):
    """A watchdog on the test process's own exit: if it has not exited within
    LUNGAPP_EXIT_WATCHDOG_S seconds (default 300) after the run (a native thread stuck in an
    audio driver, say, which an exit handler then waits for), every thread's stack is printed
    and the process exits with status 1, instead of hanging CI until its time limit with
    nothing said."""
    import faulthandler

    faulthandler.dump_traceback_later(float(os.environ.get("LUNGAPP_EXIT_WATCHDOG_S", "300")), exit=True)


def pytest_report_header(config):
    return [f"sprsound data: {'found' if (SPRSOUND / 'train').is_dir() else 'absent'} ({SPRSOUND})",
            f"DISPLAY={os.environ.get('DISPLAY')!r} QT_QPA_PLATFORM={os.environ.get('QT_QPA_PLATFORM')!r}"]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A small real model (4 classes) trained in seconds on generated signals; see
    tests/tiny_model.py. Use with ``--model DIR`` or ``LUNGAPP_MODEL=DIR``."""
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


_pulse_seen_up = False


@pytest.fixture
def pulse_sink():
    """A running PulseAudio server with the 48 kHz mono null sink ci_sink (started by
    packaging/pulse-null-sink.sh); skips where PulseAudio is not installed.

    One test at a time has the sink, whatever process runs it (packaging/test.sh runs two
    pytest-xdist workers; a contributor may run another pytest beside it): the fixture
    holds an exclusive lock on a file in the system's temporary folder for the whole
    test, so no two tests hear each other's signal or unplug the sink under another.

    Checked before every audio test, not once a session: a server that died during the run
    (as one did in CI, with nothing in the log to say why) is started again, and the test
    run warns with the end of the dead server's log instead of failing every later audio
    test on a refused connection."""
    import fcntl
    import tempfile

    with open(Path(tempfile.gettempdir()) / "lungapp-test-pulse.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield _start_pulse()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _start_pulse() -> str:
    global _pulse_seen_up
    script = ROOT / "packaging" / "pulse-null-sink.sh"
    log = Path(os.environ.get("LUNGAPP_CI_PULSE_LOG", "/tmp/lungapp-ci-pulse.log"))
    proc = subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=60)
    if proc.returncode == 2:
        pytest.skip(f"PulseAudio not available: {proc.stderr.strip()}")
    assert proc.returncode == 0, f"{script} failed: {proc.stderr.strip()}"
    if "started" in proc.stdout.split() and _pulse_seen_up:
        old = log.with_name(log.name + ".1")
        tail = old.read_text(errors="replace").splitlines()[-15:] if old.exists() else []
        warnings.warn("the PulseAudio test server had died and was started again; the end "
                      f"of its log ({old}):\n" + "\n".join(tail), stacklevel=1)
    _pulse_seen_up = True
    return "ci_sink"


@pytest.fixture
def unplug_sink(pulse_sink):
    """A function that unplugs the capture device for real: it unloads ci_sink's module,
    so its monitor source vanishes under any open stream, as a USB stethoscope's source
    does when it is pulled out (PortAudio's stream ends with an error). The sink is
    loaded again afterwards for the next test."""
    script = ROOT / "packaging" / "pulse-null-sink.sh"

    def unplug() -> None:
        mods = subprocess.run(["pactl", "list", "short", "modules"], capture_output=True,
                              text=True, timeout=20, check=True).stdout
        ids = [line.split()[0] for line in mods.splitlines()
               if "module-null-sink" in line and f"sink_name={pulse_sink}" in line]
        assert ids, f"no module-null-sink {pulse_sink} loaded:\n{mods}"
        for mid in ids:
            subprocess.run(["pactl", "unload-module", mid], check=True, timeout=20)

    yield unplug
    subprocess.run(["sh", str(script)], capture_output=True, timeout=60, check=True)
