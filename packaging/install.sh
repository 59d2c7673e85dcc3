#!/bin/sh
# Install the lungapp desktop bundle from this folder (the unpacked release archive):
#   ./install.sh               for the current user, into ${PREFIX:-$HOME/.local}
#   PREFIX=/usr/local ./install.sh     system-wide (as root)
#   ./install.sh --uninstall   (or PREFIX/lib/lungapp/install.sh --uninstall: the installed
#                               copy knows its PREFIX)
# Puts the app in PREFIX/lib/lungapp, the `lungapp` command in PREFIX/bin and a menu entry
# in PREFIX/share/applications. A reinstall replaces the app folder whole (the new copy is
# made first, then swapped in). Recordings, labels, settings and installed models live in
# the user's own folders (`lungapp info` lists them) and are never touched by this script.
set -eu
HERE="$(cd "$(dirname "$0")" && pwd)"
if [ -z "${PREFIX:-}" ] && [ -f "$HERE/lungapp" ] && [ "$(basename "$(dirname "$HERE")")" = lib ]; then
  PREFIX="$(dirname "$(dirname "$HERE")")"  # run from an installed copy, PREFIX/lib/lungapp
fi
PREFIX="${PREFIX:-$HOME/.local}"
DEST="$PREFIX/lib/lungapp"
BIN="$PREFIX/bin/lungapp"
DESKTOP="$PREFIX/share/applications/lungapp.desktop"

if [ "${1:-}" = "--uninstall" ]; then
  rm -rf "$DEST" "$DEST.new" "$DEST.old"
  [ -L "$BIN" ] && rm -f "$BIN"
  rm -f "$DESKTOP"
  echo "lungapp removed from $PREFIX (your recordings and settings are kept)"
  exit 0
fi
if [ ! -x "$HERE/lungapp/lungapp" ]; then
  echo "install.sh: $HERE/lungapp/lungapp not found; run this script from the unpacked archive" >&2
  exit 1
fi
mkdir -p "$PREFIX/lib" "$PREFIX/bin" "$PREFIX/share/applications"
rm -rf "$DEST.new" "$DEST.old"
cp -a "$HERE/lungapp" "$DEST.new"
cp "$HERE/lungapp.svg" "$DEST.new/lungapp.svg"
cp "$HERE/install.sh" "$DEST.new/install.sh"  # for --uninstall without the archive
[ -d "$DEST" ] && mv "$DEST" "$DEST.old"
mv "$DEST.new" "$DEST"
rm -rf "$DEST.old"
ln -sfn "$DEST/lungapp" "$BIN"
sed -e "s|@EXEC@|$DEST/lungapp|" -e "s|@ICON@|$DEST/lungapp.svg|" "$HERE/lungapp.desktop" > "$DESKTOP.tmp"
mv "$DESKTOP.tmp" "$DESKTOP"
echo "lungapp installed in $DEST; command: $BIN; menu entry: $DESKTOP"
if command -v ldconfig >/dev/null 2>&1 && ! ldconfig -p 2>/dev/null | grep -q 'libportaudio\.so\.2'; then
  echo "note: recording from a stethoscope needs PortAudio (Debian/Ubuntu: apt-get install libportaudio2)"
fi
case ":$PATH:" in *":$PREFIX/bin:"*) ;; *) echo "note: $PREFIX/bin is not on PATH" ;; esac
