#!/usr/bin/env bash
# Set everything up (idempotent) and run the whole test suite: unit, GUI tests in a real
# X server (Xvfb, started by pytest-xvfb), audio tests through a PulseAudio null sink,
# and integration tests on ../shared/data/sprsound (skipped cleanly where absent).
# Before the tests: the layer contracts (import-linter, pyproject's [tool.importlinter]) and
# ruff. Any failure fails the script.
#   packaging/test.sh [pytest args...]     (LUNGAPP_TEST_WORKERS=N: N parallel workers, default 2)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
packaging/setup.sh --test
# A real audio server for the capture/playback tests (as root, PulseAudio needs this). The
# tests start it again if it dies; a server this run started is stopped when the run ends.
pulse_was_running=
command -v pactl >/dev/null 2>&1 && pactl info >/dev/null 2>&1 && pulse_was_running=1
stop_pulse() {
  if [ -z "$pulse_was_running" ] && command -v pulseaudio >/dev/null 2>&1; then
    pulseaudio --kill >/dev/null 2>&1 || true
  fi
}
trap stop_pulse EXIT
packaging/pulse-null-sink.sh || echo "test: no PulseAudio server; audio tests will skip" >&2
echo "test: checking the layers (lint-imports) and the code (ruff)"
.venv/bin/lint-imports --no-cache
.venv/bin/ruff check .
unset QT_QPA_PLATFORM
export TF_CPP_MIN_LOG_LEVEL=2
# Two workers (pytest-xdist; LUNGAPP_TEST_WORKERS=0 runs in this process). A test file's
# tests share a worker, so a module's fixtures (the one bundle build) are made once, and
# files go out in collection order (tests/conftest.py puts the bundle's first); the tests
# that use the audio server's null sink take turns (tests/conftest.py, pulse_sink). A
# worker that crashes fails the run: a replaced one can leave it waiting forever.
.venv/bin/python -m pytest -n "${LUNGAPP_TEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder \
  --max-worker-restart 0 "$@"
