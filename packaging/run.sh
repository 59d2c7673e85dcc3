#!/usr/bin/env bash
# Quick start: set everything up (idempotent) and start the app.
#   packaging/run.sh [FILE...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/packaging/setup.sh"
exec "$ROOT/.venv/bin/lungapp" "$@"
