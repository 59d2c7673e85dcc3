#!/usr/bin/env bash
# Build the desktop bundle, its release archive and its Debian package (Linux):
#   packaging/build.sh [--out DIR] [--viewer] [--python PY] [--no-deb]     (default DIR: dist/)
# 1. sets up .venv with PyInstaller (packaging/setup.sh --packaging), or uses --python PY:
#    a Python that already has lungapp's dependencies and PyInstaller (this checkout's
#    lungapp sources are the ones frozen either way);
# 2. PyInstaller, packaging/lungapp.spec: DIR/lungapp/, one folder with the `lungapp` binary
#    (the GUI without arguments, the CLI with a subcommand), Python, Qt, ONNX Runtime,
#    TensorFlow (training only) and the bundled model, card and synthetic examples;
#    --viewer leaves TensorFlow and Keras out: the app analyses, records and labels but
#    does not train (the Train tab says so);
# 3. strips the symbol tables and debug info of the shared libraries (Linux, 280 MB;
#    packaging/strip_bundle.py keeps a library unstripped when strip would corrupt it) and
#    links byte-identical copies of a library to one;
# 4. checks the built binary: its version, and a prediction on a synthetic example;
# 5. archives DIR/lungapp[-viewer]-VERSION-linux-ARCH.tar.gz: lungapp/, install.sh,
#    lungapp.desktop, lungapp.svg. Unpack it anywhere and run ./install.sh;
# 6. packages DIR/lungapp[-viewer]_VERSION-N_ARCH.deb (packaging/deb.sh) unless --no-deb
#    or dpkg-deb is missing.
# On Windows and macOS, `pyinstaller packaging/lungapp.spec` builds the same folder
# (docs/packaging.md).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="$ROOT/dist"
PY=""
VARIANT=""
DEB=1
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$(mkdir -p "$2" && cd "$2" && pwd)"; shift 2 ;;
    --python) PY="$2"; shift 2 ;;
    --viewer) VARIANT=viewer; shift ;;
    --no-deb) DEB=0; shift ;;
    *) echo "usage: packaging/build.sh [--out DIR] [--viewer] [--python PY] [--no-deb]" >&2; exit 2 ;;
  esac
done
if [ -z "$PY" ]; then
  packaging/setup.sh --packaging
  PY="$ROOT/.venv/bin/python"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"  # freeze this checkout's sources
VERSION="$("$PY" -c 'import lungapp; print(lungapp.__version__)')"
NAME=lungapp
[ "$VARIANT" = viewer ] && NAME=lungapp-viewer
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
echo "build: PyInstaller -> $OUT/$NAME"
LUNGAPP_BUNDLE_VARIANT="$VARIANT" "$PY" -m PyInstaller --noconfirm --log-level WARN \
  --distpath "$WORK/dist" --workpath "$WORK/build" packaging/lungapp.spec
APP="$WORK/dist/lungapp"
# Symbol tables and debug info only (.symtab/.strtab/.debug_*; the dynamic symbols that
# loading needs stay): TensorFlow's 240 MB, the Python interpreter's 23 MB (pyenv builds
# with -g) and the wheels' 15 MB. A stripped copy replaces a library only when ld.so can
# still map it: strip breaks the patchelf-edited OpenBLAS of NumPy and SciPy, left as is.
if command -v strip >/dev/null 2>&1; then
  "$PY" packaging/strip_bundle.py "$APP/_internal"
fi
# Byte-identical libraries that two wheels each carry (NumPy's and SciPy's libgfortran and
# libquadmath): the second copy becomes a relative symlink to the first.
find "$APP/_internal" -path '*.libs/*' -type f -print0 | xargs -0 -r sha256sum | LC_ALL=C sort \
  | awk '{h = $1; sub(/^[0-9a-f]+  /, "")} h in first {print first[h] "\t" $0; next} {first[h] = $0}' \
  | while IFS=$'\t' read -r keep dup; do ln -sfr "$keep" "$dup"; done
got="$(env LUNGAPP_HOME="$WORK/home" "$APP/lungapp" --version)"
[ "$got" = "lungapp $VERSION" ] || { echo "build: the bundle says '$got', expected 'lungapp $VERSION'" >&2; exit 1; }
env LUNGAPP_HOME="$WORK/home" "$APP/lungapp" predict resources/examples/synthetic_wheeze.wav >/dev/null 2>"$WORK/predict.err" \
  || { tail -5 "$WORK/predict.err" >&2; echo "build: the bundle could not analyse resources/examples/synthetic_wheeze.wav" >&2; exit 1; }
STAGE="$WORK/stage"
mkdir -p "$STAGE"
mv "$APP" "$STAGE/lungapp"
cp packaging/install.sh packaging/lungapp.desktop resources/icons/lungapp.svg "$STAGE/"
mkdir -p "$OUT"
ARCHIVE="$OUT/$NAME-$VERSION-linux-$(uname -m).tar.gz"
tar -C "$STAGE" -czf "$ARCHIVE.tmp" lungapp install.sh lungapp.desktop lungapp.svg
mv "$ARCHIVE.tmp" "$ARCHIVE"
rm -rf "${OUT:?}/$NAME"
mv "$STAGE/lungapp" "$OUT/$NAME"
echo "build: $OUT/$NAME ($(du -sh "$OUT/$NAME" | cut -f1)) and $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1))"
if [ "$DEB" = 1 ] && command -v dpkg-deb >/dev/null 2>&1; then
  deb="$(LUNGAPP_DEB_VARIANT="$VARIANT" packaging/deb.sh "$OUT/$NAME" "$OUT")"
  echo "build: $deb ($(du -h "$deb" | cut -f1))"
fi
