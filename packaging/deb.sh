#!/usr/bin/env bash
# Package a built bundle as a Debian package (called by packaging/build.sh):
#   packaging/deb.sh APP_DIR OUT_DIR      APP_DIR: the PyInstaller folder (holds `lungapp`)
# Writes OUT_DIR/lungapp_VERSION_ARCH.deb: the bundle in /opt/lungapp, /usr/bin/lungapp, the
# menu entry (with the WAV/FLAC "Open with" association) and its hicolor icon, the copyright
# and changelog in /usr/share/doc/lungapp, and postinst/postrm that refresh the menu, MIME
# and icon caches. VERSION is the top entry of packaging/debian/changelog, whose upstream
# part must be the bundle's own version. Depends lists the Debian packages of every system
# library the bundle's ELF files load (ldd; the Qt xcb plugin's libxcb-* among them) and
# libportaudio2 (loaded at run time by sounddevice). Environment:
#   LUNGAPP_DEB_MAINTAINER   "Name <address>" (default: lungapp developers)
#   LUNGAPP_DEB_VARIANT      "viewer" for the training-free bundle (package lungapp-viewer)
#   LUNGAPP_DEB_XZ_LEVEL     xz level, 0-9 (default 1: about 4 % larger than 6, 4x faster
#                            to build; a release can afford 6 or 9)
# See docs/packaging.md (lintian's remaining tags are explained there).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
[ $# -eq 2 ] || { echo "usage: packaging/deb.sh APP_DIR OUT_DIR" >&2; exit 2; }
APP="$(cd "$1" && pwd)"
OUT="$(mkdir -p "$2" && cd "$2" && pwd)"
[ -x "$APP/lungapp" ] || { echo "deb.sh: $APP/lungapp: not a built bundle" >&2; exit 1; }
MAINTAINER="${LUNGAPP_DEB_MAINTAINER:-lungapp developers <lungapp-maintainers@users.noreply.github.com>}"
VARIANT="${LUNGAPP_DEB_VARIANT:-}"

DEBVERSION="$(sed -n '1s/^lungapp (\([^)]*\)).*/\1/p' "$HERE/debian/changelog")"
UPSTREAM="${DEBVERSION%-*}"
got="$(LUNGAPP_HOME="$(mktemp -d)" "$APP/lungapp" --version)"
[ "$got" = "lungapp $UPSTREAM" ] || {
  echo "deb.sh: packaging/debian/changelog's top entry is $DEBVERSION but the bundle says '$got'; add a changelog entry" >&2
  exit 1; }
ARCH="$(dpkg --print-architecture)"

# Qt plugins for other platforms and desktops (Wayland, EGLFS, GTK theme, network
# information...) are loaded only where their libraries exist: they add no Depends.
OPTIONAL_ELF='/PySide6/Qt/plugins/(egldeviceintegrations|generic|networkinformation|platforminputcontexts|platformthemes|tls|wayland-[a-z-]*)/|/PySide6/Qt/plugins/platforms/libq(eglfs|linuxfb|minimal|minimalegl|vkkhrdisplay|vnc|wayland)\.so$|/PySide6/Qt/lib/libQt6(Wayland|WlShell|EglFS)'

# The Debian package owning each system library (outside the bundle) that ldd resolves
# for the bundle's ELF files. A library that ldd finds neither on the system nor in the
# bundle (some resolve at run time through the bundle's own folder) fails the build:
# the package would install but not start.
system_depends() {
  local libs missing
  libs="$(find "$APP" -type f \( -name '*.so*' -o -perm -u+x \) | grep -Ev "$OPTIONAL_ELF" \
    | xargs -d '\n' file -N --mime-type | sed -n 's/: *application\/x-\(pie-executable\|sharedlib\|executable\)$//p' \
    | xargs -d '\n' ldd 2>/dev/null | awk '/=>/ {print $1, $3}' | sort -u)"
  missing="$(awk '$2 == "not" {print $1}' <<<"$libs" | sort -u | while read -r lib; do
    [ -n "$(find "$APP" -name "$lib" -print -quit)" ] || echo "$lib"; done | tr '\n' ' ')"
  [ -z "$missing" ] || { echo "deb.sh: system libraries not found on the build machine: $missing" >&2; exit 1; }
  awk '$2 ~ /^\// {print $2}' <<<"$libs" | grep -v "^$APP/" | sort -u | while read -r lib; do
    real="$(readlink -f "$lib")"
    # usrmerge: dpkg may know the file as /lib/... or /usr/lib/...
    dpkg -S "$lib" 2>/dev/null || dpkg -S "$real" 2>/dev/null || dpkg -S "${real#/usr}" 2>/dev/null \
      || { echo "deb.sh: $lib belongs to no Debian package" >&2; exit 1; }
  done | cut -d: -f1 | sort -u
}
DEPS="$(system_depends | grep -v '^libc6$' | tr '\n' ' ')"
GLIBC="$(dpkg-query -W -f='${Version}' libc6 | sed 's/-.*//')"
DEPENDS="libc6 (>= $GLIBC), libportaudio2"
for d in $DEPS; do DEPENDS="$DEPENDS, $d"; done

PKG=lungapp
[ "$VARIANT" = viewer ] && PKG=lungapp-viewer
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/opt" "$STAGE/usr/bin" "$STAGE/usr/share/applications" \
  "$STAGE/usr/share/icons/hicolor/scalable/apps" "$STAGE/usr/share/doc/$PKG" "$STAGE/usr/share/man/man1" \
  "$STAGE/DEBIAN"
cp -a "$APP" "$STAGE/opt/lungapp"
# Files are root-owned (--root-owner-group), world-readable; nothing is setuid or writable by
# others; shared libraries need no execute bit (some wheels set it).
chmod -R u+rwX,go+rX,go-w "$STAGE/opt/lungapp"
find "$STAGE/opt/lungapp" -type f -name '*.so*' -exec chmod a-x {} +
ln -s /opt/lungapp/lungapp "$STAGE/usr/bin/lungapp"
sed -e 's|@EXEC@|lungapp|' -e 's|@ICON@|lungapp|' "$HERE/lungapp.desktop" \
  > "$STAGE/usr/share/applications/lungapp.desktop"
install -m 644 "$ROOT/resources/icons/lungapp.svg" "$STAGE/usr/share/icons/hicolor/scalable/apps/lungapp.svg"
sed -e "s|@MAINTAINER@|$MAINTAINER|" "$HERE/debian/changelog" | gzip -9n > "$STAGE/usr/share/doc/$PKG/changelog.Debian.gz"
gzip -9n < "$HERE/debian/lungapp.1" > "$STAGE/usr/share/man/man1/lungapp.1.gz"
install -m 644 "$HERE/debian/copyright" "$STAGE/usr/share/doc/$PKG/copyright"
install -D -m 644 "$HERE/debian/lintian-overrides" "$STAGE/usr/share/lintian/overrides/$PKG"
install -m 755 "$HERE/debian/postinst" "$HERE/debian/postrm" "$STAGE/DEBIAN/"

TF_LINE=", TensorFlow and Keras for training"
if [ "$VARIANT" = viewer ]; then
  TF_LINE="; this viewer build has no TensorFlow: it\n analyses, records and labels but does not train"
fi
SIZE="$(du -sk --apparent-size "$STAGE" --exclude=DEBIAN | cut -f1)"
sed -e "s|@VERSION@|$DEBVERSION|" -e "s|@ARCH@|$ARCH|" -e "s|@MAINTAINER@|$MAINTAINER|" \
    -e "s|@SIZE@|$SIZE|" -e "s|@DEPENDS@|$DEPENDS|" -e "s|@TF_LINE@|$TF_LINE|" \
    -e "s|^Package: lungapp$|Package: $PKG|" "$HERE/debian/control.in" > "$STAGE/DEBIAN/control"
if [ "$VARIANT" = viewer ]; then
  # The two builds install the same files: one at a time.
  sed -i '/^Depends:/a Conflicts: lungapp\nReplaces: lungapp' "$STAGE/DEBIAN/control"
fi
(cd "$STAGE" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z \
  | xargs -0 md5sum > DEBIAN/md5sums)
chmod 644 "$STAGE/DEBIAN/md5sums"
DEB="$OUT/${PKG}_${DEBVERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz -z"${LUNGAPP_DEB_XZ_LEVEL:-1}" --build "$STAGE" "$DEB.tmp" >/dev/null
mv "$DEB.tmp" "$DEB"
echo "$DEB"
