#!/usr/bin/env bash
# Set up everything lungapp needs on a Debian/Ubuntu machine, idempotently:
# system packages (PortAudio, libsndfile, Xvfb and the Qt xcb libraries, PulseAudio),
# a virtual environment in .venv and the project installed into it (editable).
#   packaging/setup.sh          app only
#   packaging/setup.sh --test   app + test, lint and packaging extras (the suite builds the bundle)
#   packaging/setup.sh --packaging   app + PyInstaller (packaging/build.sh)
# Versions the model runtime's exactness depends on are pinned in packaging/constraints.txt.
# Re-running is cheap: packages already present are not reinstalled, and pip runs only
# when pyproject.toml changed since the last successful install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
EXTRAS=""
TEST_APT=()
case "${1:-}" in
  # The PDF report's tests render its pages with poppler's pdftoppm.
  --test) EXTRAS="[test,lint,packaging]"; TEST_APT=(poppler-utils) ;;
  --packaging) EXTRAS="[packaging]" ;;
esac

APT_PACKAGES=(libportaudio2 libsndfile1 xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-image0
  libxcb-render-util0 libxcb-xinerama0 libxcb-randr0 libxcb-shape0 libxcb-cursor0 libxkbcommon-x11-0
  libegl1 libgl1 libfontconfig1 libdbus-1-3 pulseaudio pulseaudio-utils libasound2-plugins x11-utils
  ${TEST_APT[@]+"${TEST_APT[@]}"})

if command -v apt-get >/dev/null 2>&1; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "setup: installing system packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  echo "setup: not a Debian-like system; install PortAudio, libsndfile and Qt's xcb libraries yourself" >&2
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
STAMP=".venv/.lungapp-installed${EXTRAS}"
HASH="$(cat pyproject.toml packaging/constraints.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$HASH" ] || ! .venv/bin/python -c "import lungapp" 2>/dev/null; then
  echo "setup: installing lungapp${EXTRAS} into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check -U pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -c packaging/constraints.txt -e ".${EXTRAS}"
  echo "$HASH" > "$STAMP"
fi
