#!/usr/bin/env bash
# Smoke test of what is shipped: build from a clean clone, install the .deb, run it, remove it.
#   packaging/smoke.sh [--python PY] [--dpkg] [--viewer] [--deb FILE] [--keep]
# 1. clones this repository's HEAD (committed work only) into a temporary folder and runs
#    packaging/build.sh there (--python PY: a Python that has lungapp's dependencies and
#    PyInstaller, instead of the clone's own packaging/setup.sh); --deb FILE skips 1-2
#    and tests an already built package;
# 2. installs the .deb: with --dpkg (as root, on a disposable machine) for real with
#    `dpkg -i`, else `dpkg -x` into a temporary root (no chroot/container is assumed);
# 3. runs the installed app, each check printing PASS or FAIL: --version; `predict` on
#    two bundled examples (labels from their sidecars); `evaluate` on a small labelled
#    folder (SPRSound files from ../shared/data if present, else the bundled examples
#    under patient names); a one-epoch two-fold `train` (skipped for --viewer, which
#    must refuse with one line instead); the window under Xvfb opening an example and
#    showing its result (`lungapp --smoke-test`); no network: the CLI runs in a network
#    namespace of its own (`unshare -n`) and the window under `strace -e trace=connect`
#    shows no internet (AF_INET/AF_INET6) connection attempt;
# 4. removes the package (`dpkg -r`, then `dpkg -P`) and checks nothing is left under
#    /opt or /usr, and that user data is untouched;
# prints the times and exits non-zero if any check failed. --keep keeps the temporary
# folder. Needs git, dpkg, xvfb-run, strace, unshare, python3 (for JSON).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY=""; REAL=0; VIEWER=""; DEB=""; KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    # absolute, as the build runs in the clone (not readlink -f: a venv's python is a link)
    --python) PY="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")" || exit 2; shift 2 ;;
    --dpkg) REAL=1; shift ;;
    --viewer) VIEWER=--viewer; shift ;;
    --deb) DEB="$(readlink -f "$2")"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    *) echo "usage: packaging/smoke.sh [--python PY] [--dpkg] [--viewer] [--deb FILE] [--keep]" >&2; exit 2 ;;
  esac
done
T0=$(date +%s)
WORK="$(mktemp -d /tmp/lungapp-smoke.XXXXXX)"
[ "$KEEP" = 1 ] || trap 'rm -rf "$WORK"' EXIT
FAILED=0
pass() { echo "smoke: PASS $*"; }
fail() { echo "smoke: FAIL $*" >&2; FAILED=1; }
die() { echo "smoke: FAIL $*" >&2; exit 1; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# --- 1. build from a clean clone -------------------------------------------------------
if [ -z "$DEB" ]; then
  git clone -q --no-checkout "$ROOT" "$WORK/src" && git -C "$WORK/src" checkout -q "$(git -C "$ROOT" rev-parse HEAD)" \
    || die "could not clone $ROOT"
  [ -z "$(git -C "$ROOT" status --porcelain --untracked-files=no)" ] \
    || echo "smoke: note: uncommitted changes in $ROOT are not in the clone"
  TB=$(date +%s)
  (cd "$WORK/src" && packaging/build.sh --out "$WORK/dist" $VIEWER ${PY:+--python "$PY"}) > "$WORK/build.log" 2>&1 \
    || { tail -20 "$WORK/build.log" >&2; die "build (log: $WORK/build.log)"; }
  BUILD_S=$(( $(date +%s) - TB ))
  grep '^build:' "$WORK/build.log"
  DEB="$(ls "$WORK"/dist/*.deb)"
  pass "bundle, tar.gz and .deb built from a clean clone in ${BUILD_S} s"
fi
PKG="$(dpkg-deb -f "$DEB" Package)"
VERSION="$(dpkg-deb -f "$DEB" Version)"
echo "smoke: $DEB: $PKG $VERSION, $(du -m "$DEB" | cut -f1) MB, Installed-Size $(( $(dpkg-deb -f "$DEB" Installed-Size) / 1024 )) MB"

# --- 2. install ---------------------------------------------------------------------------
snapshot() { find /opt /usr -xdev 2>/dev/null | LC_ALL=C sort; }
if [ "$REAL" = 1 ]; then
  [ "$(id -u)" = 0 ] || die "--dpkg needs root"
  dpkg -s "$PKG" >/dev/null 2>&1 && die "$PKG is already installed here; remove it first"
  snapshot > "$WORK/before.txt"
  dpkg -i "$DEB" > "$WORK/dpkg-i.log" 2>&1 || { cat "$WORK/dpkg-i.log" >&2; die "dpkg -i $DEB"; }
  PREFIX=""
  APP=/usr/bin/lungapp
  [ "$(command -v lungapp)" = /usr/bin/lungapp ] || fail "lungapp is not /usr/bin/lungapp on PATH"
else
  PREFIX="$WORK/root"
  dpkg-deb -x "$DEB" "$PREFIX" || die "dpkg-deb -x $DEB"
  APP="$PREFIX/opt/lungapp/lungapp"
  [ "$(readlink "$PREFIX/usr/bin/lungapp")" = /opt/lungapp/lungapp ] || fail "/usr/bin/lungapp does not point to /opt/lungapp/lungapp"
fi
[ -x "$APP" ] && pass "installed ($([ "$REAL" = 1 ] && echo "dpkg -i" || echo "dpkg -x into $PREFIX"))" || die "$APP missing"
grep -q '^MimeType=.*audio/x-wav.*audio/flac' "$PREFIX/usr/share/applications/lungapp.desktop" \
  && [ -f "$PREFIX/usr/share/icons/hicolor/scalable/apps/lungapp.svg" ] \
  && [ -f "$PREFIX/usr/share/doc/$PKG/copyright" ] && [ -f "$PREFIX/usr/share/doc/$PKG/changelog.Debian.gz" ] \
  && pass "menu entry with WAV/FLAC association, hicolor icon, copyright, changelog" \
  || fail "menu entry, icon, copyright or changelog missing"

export LUNGAPP_HOME="$WORK/home"  # the user's data for this test (checked after removal)
mkdir -p "$LUNGAPP_HOME/recordings" && echo "a user's recording" > "$LUNGAPP_HOME/recordings/keep.txt"
EX="$PREFIX/opt/lungapp/_internal/lungapp/resources/examples"
OFFLINE=(unshare -n)
unshare -n true 2>/dev/null || { echo "smoke: note: unshare -n is not permitted here; the CLI runs with the network"; OFFLINE=(); }

# --- 3. run it ----------------------------------------------------------------------------
got="$("$APP" --version 2>&1)"
[ "$got" = "lungapp ${VERSION%-*}" ] && pass "--version: $got" || fail "--version said '$got'"

for ex in synthetic_wheeze synthetic_normal; do
  want="$(json 'd["record_annotation"]' < "$EX/$ex.json")"
  got="$("${OFFLINE[@]}" "$APP" predict --format json "$EX/$ex.wav" 2>"$WORK/predict.err" | json 'd[0]["label"]')"
  [ "$got" = "$want" ] && pass "predict $ex.wav (no network): $got" || fail "predict $ex.wav: '$got', expected '$want' $(tail -1 "$WORK/predict.err")"
done

# A small labelled folder: 4 patients with a normal and an abnormal SPRSound recording each.
LABELLED="$WORK/labelled"
mkdir -p "$LABELLED"
SPR="$ROOT/../shared/data/sprsound/train"
if [ -d "$SPR" ]; then
  python3 - "$SPR" "$LABELLED" <<'EOF'
import json, os, sys
from pathlib import Path
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
by_patient = {}
for j in sorted(src.glob("*.json")):
    label = json.loads(j.read_text()).get("record_annotation")
    kind = "normal" if label == "Normal" else "abnormal" if label in ("CAS", "DAS", "CAS & DAS") else None
    if kind:
        by_patient.setdefault(j.name.split("_")[0], {}).setdefault(kind, j)
picked = [p for p, k in by_patient.items() if len(k) == 2][:4]
for p in picked:
    for j in by_patient[p].values():
        for f in (j, j.with_suffix(".flac")):
            os.symlink(f, dst / f.name)
print(f"smoke: labelled folder: {len(picked)} SPRSound patients, {2 * len(picked)} recordings")
EOF
else  # the bundled examples under two patients' names (normal + abnormal each)
  i=0
  for p in 101 102; do
    for ex in synthetic_normal $([ $p = 101 ] && echo synthetic_wheeze || echo synthetic_crackles); do
      i=$((i + 1)); cp "$EX/$ex.wav" "$LABELLED/${p}_6.0_0_p1_$i.wav"; cp "$EX/$ex.json" "$LABELLED/${p}_6.0_0_p1_$i.json"
    done
  done
  echo "smoke: labelled folder: the bundled examples as 2 patients (no SPRSound data found)"
fi
WANT_N="$(find "$LABELLED" -name '*.json' | wc -l)"
if "${OFFLINE[@]}" "$APP" evaluate --json "$LABELLED" > "$WORK/evaluate.json" 2>"$WORK/evaluate.err"; then
  got="$(json '"%d recordings, AUC %.3f, sensitivity %.2f, specificity %.2f" % (d["n"], d["auc"], d["sensitivity"], d["specificity"])' < "$WORK/evaluate.json")"
  [ "${got%% *}" = "$WANT_N" ] && pass "evaluate on the labelled folder (no network): $got" \
    || fail "evaluate read '$got', expected $WANT_N recordings"
else
  fail "evaluate: $(tail -2 "$WORK/evaluate.err")"
fi

TT=$(date +%s)
"${OFFLINE[@]}" "$APP" train "$LABELLED" --out "$WORK/model" --preset seed --folds 2 --epochs 1 --progress none \
  > "$WORK/train.log" 2>&1
rc=$?
TRAIN_S=$(( $(date +%s) - TT ))
if [ -n "$VIEWER" ]; then
  [ $rc -ne 0 ] && [ "$(wc -l < "$WORK/train.log")" -le 2 ] && grep -qi tensorflow "$WORK/train.log" \
    && pass "train refused by the viewer build: $(tail -1 "$WORK/train.log")" \
    || fail "the viewer build's train: exit $rc: $(tail -3 "$WORK/train.log")"
elif [ $rc -eq 0 ] && [ -f "$WORK/model/card.json" ]; then
  pass "train, one epoch, two folds (no network), ${TRAIN_S} s"
else
  fail "train: exit $rc: $(tail -3 "$WORK/train.log")"
fi

# The window: opens an example, shows its result, quits; launched under strace.
TW=$(python3 -c 'import time; print(time.time())')
xvfb-run -a -s "-screen 0 1280x800x24" strace -f -qq -e trace=connect -o "$WORK/strace.log" \
  "$APP" --smoke-test "$EX/synthetic_wheeze.wav" > "$WORK/window.json" 2>"$WORK/window.err"
rc=$?
if [ $rc -eq 0 ]; then
  python3 - "$TW" "$WORK/window.json" <<'EOF' && pass "window: $(cat "$WORK/window.txt")" || fail "window: $(tail -3 "$WORK/window.err")"
import json, sys
t0, d = float(sys.argv[1]), json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
assert d["label"] == "CAS" and "CAS" in d["headline"], d
open(sys.argv[2].replace(".json", ".txt"), "w").write(
    f"synthetic_wheeze.wav shows {d['label']!r}; window after {d['window_shown'] - t0:.2f} s, "
    f"result after {d['result'] - t0:.2f} s (under strace and Xvfb)")
EOF
else
  fail "window: exit $rc: $(tail -3 "$WORK/window.err")"
fi
inet="$(grep -E 'AF_INET6?[,}]' "$WORK/strace.log" | head -3)"
grep -q 'connect(' "$WORK/strace.log" && [ -z "$inet" ] \
  && pass "no network: the window's connect() calls are local sockets only ($(grep -c 'connect(' "$WORK/strace.log") calls, none AF_INET/AF_INET6)" \
  || fail "network connection attempts (or no strace output): ${inet:-empty $WORK/strace.log}"

# --- 4. remove ----------------------------------------------------------------------------
if [ "$REAL" = 1 ]; then
  dpkg -r "$PKG" > "$WORK/dpkg-r.log" 2>&1 || fail "dpkg -r $PKG: $(tail -2 "$WORK/dpkg-r.log")"
  dpkg -P "$PKG" > "$WORK/dpkg-P.log" 2>&1 || fail "dpkg -P $PKG: $(tail -2 "$WORK/dpkg-P.log")"
  grep -q "kept" "$WORK/dpkg-P.log" && pass "purge says where the user's data is" || fail "purge printed no note on user data"
  snapshot > "$WORK/after.txt"
  # (python3, used here for JSON, may compile its own stdlib's __pycache__ under /usr/lib)
  left="$(comm -13 "$WORK/before.txt" "$WORK/after.txt" | grep -v '^/usr/lib/python3[^/]*/.*__pycache__')"
  [ -z "$left" ] && pass "dpkg -r/-P left no files under /opt or /usr" || fail "left behind: $(head -5 <<<"$left")"
else
  rm -rf "$PREFIX"
  pass "removed the temporary root"
fi
[ "$(cat "$LUNGAPP_HOME/recordings/keep.txt" 2>/dev/null)" = "a user's recording" ] \
  && pass "user data untouched" || fail "user data changed"

echo "smoke: $([ $FAILED = 0 ] && echo PASSED || echo FAILED) in $(( $(date +%s) - T0 )) s"
exit $FAILED
