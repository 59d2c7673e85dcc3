#!/usr/bin/env bash
# Build the desktop bundle and its release archive (Linux):
#   packaging/build.sh [--out DIR]        (default: dist/)
# 1. sets up .venv with PyInstaller (packaging/setup.sh --packaging);
# 2. PyInstaller, packaging/lungapp.spec: DIR/lungapp/, one folder with the `lungapp` binary
#    (the GUI without arguments, the CLI with a subcommand), Python, Qt, TensorFlow and the
#    bundled model, card and synthetic examples;
# 3. checks the built binary: its version, and a prediction on a synthetic example;
# 4. archives DIR/lungapp-VERSION-linux-ARCH.tar.gz: lungapp/, install.sh, lungapp.desktop,
#    lungapp.svg. Unpack it anywhere and run ./install.sh.
# On Windows and macOS, `pyinstaller packaging/lungapp.spec` builds the same folder.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="$ROOT/dist"
if [ "${1:-}" = "--out" ]; then OUT="$(mkdir -p "$2" && cd "$2" && pwd)"; fi
packaging/setup.sh --packaging
VERSION="$(.venv/bin/python -c 'import lungapp; print(lungapp.__version__)')"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
echo "build: PyInstaller -> $OUT/lungapp"
.venv/bin/pyinstaller --noconfirm --log-level WARN --distpath "$WORK/dist" --workpath "$WORK/build" \
  packaging/lungapp.spec
APP="$WORK/dist/lungapp"
got="$(env LUNGAPP_HOME="$WORK/home" "$APP/lungapp" --version)"
[ "$got" = "lungapp $VERSION" ] || { echo "build: the bundle says '$got', expected 'lungapp $VERSION'" >&2; exit 1; }
env LUNGAPP_HOME="$WORK/home" "$APP/lungapp" predict resources/examples/synthetic_wheeze.wav >/dev/null \
  || { echo "build: the bundle could not analyse resources/examples/synthetic_wheeze.wav" >&2; exit 1; }
STAGE="$WORK/stage"
mkdir -p "$STAGE"
mv "$APP" "$STAGE/lungapp"
cp packaging/install.sh packaging/lungapp.desktop resources/icons/lungapp.svg "$STAGE/"
mkdir -p "$OUT"
ARCHIVE="$OUT/lungapp-$VERSION-linux-$(uname -m).tar.gz"
tar -C "$STAGE" -czf "$ARCHIVE.tmp" lungapp install.sh lungapp.desktop lungapp.svg
mv "$ARCHIVE.tmp" "$ARCHIVE"
rm -rf "$OUT/lungapp"
mv "$STAGE/lungapp" "$OUT/lungapp"
echo "build: $OUT/lungapp ($(du -sh "$OUT/lungapp" | cut -f1)) and $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1))"
