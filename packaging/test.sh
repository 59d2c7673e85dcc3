#!/usr/bin/env bash
# Set everything up (idempotent) and run the whole test suite: unit, GUI tests in a real
# X server (Xvfb, started by pytest-xvfb), audio tests through a PulseAudio null sink,
# and integration tests on ../shared/data/sprsound (skipped cleanly where absent).
#   packaging/test.sh [pytest args...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
packaging/setup.sh --test
# A real audio server for the capture/playback tests (as root, PulseAudio needs this).
packaging/pulse-null-sink.sh || echo "test: no PulseAudio server; audio tests will skip" >&2
unset QT_QPA_PLATFORM
export TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/python -m pytest "$@"
