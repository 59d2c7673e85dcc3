#!/bin/sh
# Install the lungapp desktop bundle from this folder (the unpacked release archive):
#   ./install.sh               for the current user, into ${PREFIX:-$HOME/.local}
#   PREFIX=/usr/local ./install.sh     system-wide (as root; PREFIX must be absolute)
#   ./install.sh --uninstall   (or PREFIX/lib/lungapp/install.sh --uninstall: the installed
#                               copy knows its PREFIX unless PREFIX is set)
# Puts the app in PREFIX/lib/lungapp, the `lungapp` command in PREFIX/bin and a menu entry
# in PREFIX/share/applications. A reinstall replaces the app folder whole (the new copy is
# made first, in a folder of its own, then swapped in; a failed copy changes nothing). A
# `lungapp` command or menu entry that is not this installer's (the user's own script, a
# pip install's, the .deb's) is never replaced or removed. One install or uninstall into a
# PREFIX at a time. Recordings, labels, settings and installed models live in the user's
# own folders (`lungapp info` lists them) and are never touched by this script.
set -eu
usage() { echo "usage: [PREFIX=/absolute/folder] $0 [--uninstall]" >&2; exit 2; }
ACTION=install
case "$#:${1:-}" in
  0:) ;;
  1:--uninstall) ACTION=uninstall ;;
  *) usage ;;
esac
SELF="$(readlink -f -- "$0" 2>/dev/null || printf '%s' "$0")"  # run through a link: the real one
HERE="$(CDPATH='' cd -- "$(dirname -- "$SELF")" >/dev/null && pwd)"
if [ -z "${PREFIX:-}" ] && [ -f "$HERE/lungapp" ] && [ "$(basename "$(dirname "$HERE")")" = lib ]; then
  PREFIX="$(dirname "$(dirname "$HERE")")"  # run from an installed copy, PREFIX/lib/lungapp
fi
PREFIX="${PREFIX:-$HOME/.local}"
case "$PREFIX" in
  /*) ;;
  *) echo "install.sh: PREFIX must be an absolute folder, not '$PREFIX' (a '~' is not expanded in quotes)" >&2
     exit 2 ;;
esac
while [ "$PREFIX" != "/" ] && [ "${PREFIX%/}" != "$PREFIX" ]; do PREFIX="${PREFIX%/}"; done
DEST="$PREFIX/lib/lungapp"
BIN="$PREFIX/bin/lungapp"
DESKTOP="$PREFIX/share/applications/lungapp.desktop"
MARK="# lungapp install.sh: $DEST"  # the first line of the menu entry this script writes

ours_bin() { [ -L "$BIN" ] && [ "$(readlink -- "$BIN")" = "$DEST/lungapp" ]; }
ours_desktop() { [ -f "$DESKTOP" ] && { grep -Fqx -- "$MARK" "$DESKTOP" || grep -Fq -- "\"$DEST/lungapp\"" "$DESKTOP"; }; }
ours_app() { [ -d "$DEST" ] && [ -f "$DEST/lungapp" ] && [ -f "$DEST/install.sh" ]; }

# One run into a PREFIX at a time (the kernel drops the lock when a run ends or is killed).
lock() {
  mkdir -p "$PREFIX/lib"
  LOCKFILE="$PREFIX/lib/.lungapp-install.lock"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$LOCKFILE"
    if ! flock -n 9; then
      echo "install.sh: another install or uninstall into $PREFIX is running; try again when it has ended" >&2
      exit 1
    fi
  fi
  # Left by a run that was killed (none can be running now): removed.
  rm -rf "$DEST.new" "$DEST.old" "$PREFIX/lib/.lungapp-new."* "$PREFIX/lib/.lungapp-old."* "$DESKTOP.tmp"
}

if [ "$ACTION" = uninstall ]; then
  [ -d "$PREFIX/lib" ] && lock
  found=""
  if ours_app; then rm -rf "$DEST"; found=1; fi
  if ours_bin; then rm -f "$BIN"; found=1; fi
  if ours_desktop; then rm -f "$DESKTOP"; found=1; fi
  [ -n "${LOCKFILE:-}" ] && rm -f "$LOCKFILE"
  if [ -z "$found" ]; then
    echo "lungapp is not installed in $PREFIX: nothing removed"
    exit 1
  fi
  echo "lungapp removed from $PREFIX (your recordings and settings are kept)"
  exit 0
fi

if [ ! -e "$HERE/lungapp/lungapp" ]; then
  echo "install.sh: $HERE/lungapp/lungapp not found; run this script from the unpacked archive" >&2
  exit 1
fi
if [ ! -x "$HERE/lungapp/lungapp" ]; then
  echo "install.sh: $HERE/lungapp/lungapp is not executable: unpack the archive with tar, which keeps file modes" >&2
  exit 1
fi
for f in "$BIN" "$DESKTOP"; do
  if { [ -e "$f" ] || [ -L "$f" ]; } && ! { [ "$f" = "$BIN" ] && ours_bin; } && ! { [ "$f" = "$DESKTOP" ] && ours_desktop; }; then
    echo "install.sh: $f is not lungapp's (another program's, or your own): it is left as it is; move it away, or install with another PREFIX" >&2
    exit 1
  fi
done
mkdir -p "$PREFIX/bin" "$PREFIX/share/applications"
lock
NEW="$(mktemp -d "$PREFIX/lib/.lungapp-new.XXXXXX")"
OLD="$PREFIX/lib/.lungapp-old.$$"
trap 'rm -rf "$NEW" "$DESKTOP.tmp"; rm -f "$LOCKFILE"' EXIT
trap 'exit 1' INT TERM HUP
if ! problem="$(cp -a "$HERE/lungapp/." "$NEW/" 2>&1 >/dev/null && cp "$HERE/lungapp.svg" "$HERE/install.sh" "$NEW/" 2>&1)"; then
  echo "install.sh: could not copy the app into $PREFIX/lib ($(printf '%s\n' "$problem" | head -n 1)); nothing was changed (the app needs about $(du -sh "$HERE/lungapp" | cut -f1) free)" >&2
  exit 1
fi
chmod 755 "$NEW"
# The menu entry: Exec's path quoted as the Desktop Entry spec says (\ " ` $ escaped, % doubled).
EXEC="$(printf '%s' "$DEST/lungapp" | sed -e 's/\\/\\\\\\\\/g' -e 's/["`$]/\\\\&/g' -e 's/%/%%/g')"
ICON="$(printf '%s' "$DEST/lungapp.svg" | sed -e 's/\\/\\\\/g')"
{
  printf '%s\n' "$MARK"
  LUNGAPP_EXEC="$EXEC" LUNGAPP_ICON="$ICON" awk '
    function rep(s, a, b,   i) { i = index(s, a); return i ? substr(s, 1, i - 1) b substr(s, i + length(a)) : s }
    { print rep(rep($0, "@EXEC@", ENVIRON["LUNGAPP_EXEC"]), "@ICON@", ENVIRON["LUNGAPP_ICON"]) }' "$HERE/lungapp.desktop"
} > "$DESKTOP.tmp"
[ -d "$DEST" ] && mv "$DEST" "$OLD"
mv "$NEW" "$DEST"
rm -rf "$OLD"
ln -sfn "$DEST/lungapp" "$BIN"
mv "$DESKTOP.tmp" "$DESKTOP"
echo "lungapp installed in $DEST; command: $BIN; menu entry: $DESKTOP"
if command -v ldconfig >/dev/null 2>&1 && ! ldconfig -p 2>/dev/null | grep -q 'libportaudio\.so\.2'; then
  echo "note: recording from a stethoscope needs PortAudio (Debian/Ubuntu: apt-get install libportaudio2)"
fi
case ":$PATH:" in *":$PREFIX/bin:"*) ;; *) echo "note: $PREFIX/bin is not on PATH" ;; esac
