#!/usr/bin/env bash
# make install / make uninstall round trip (run by make test). About 5 s once build/vecstore.so is built.
#  1. DESTDIR=$tmp make install puts exactly one file, $tmp$LIBDIR/vecstore.so, and nothing outside $tmp;
#     DESTDIR=$tmp make uninstall removes it again.
#  2. As root, the real thing: make install, then from an empty temporary directory (LD_LIBRARY_PATH unset)
#     `.load vecstore` in the sqlite3 shell and load_extension("vecstore") in /usr/bin/python3 work by bare name;
#     make uninstall, then both bare-name loads fail and the directory lists what it listed before.
#     Skipped with a note when not root, or when a vecstore.so that this check did not install is already there
#     (it is never overwritten). Concurrent runs (several clones on one machine) take turns through a lock.
# Prints one line; exits non-zero with a one-line reason on failure.
set -u
cd "$(dirname "$0")/.."
root_dir=$PWD
fail() { echo "check_install: $*"; exit 1; }
start=$SECONDS
log=build/check_install.log
mkdir -p build
make -s build/vecstore.so >"$log" 2>&1 || fail "build failed (see $log)"
libdir=$(make -s --no-print-directory -f Makefile -f <(printf 'check-install-libdir:\n\t@echo $(LIBDIR)\n') \
  check-install-libdir 2>>"$log") || fail "cannot read LIBDIR from the Makefile"
[ -n "$libdir" ] || fail "empty LIBDIR"
target=$libdir/vecstore.so
version=$(sed -n 's/^#define VECSTORE_VERSION "\(.*\)"/\1/p' ext/vecstore_int.h)

exec 9>"${TMPDIR:-/tmp}/vecstore-check-install.lock"
flock -w 600 9 || fail "another install check held the lock for 10 minutes"

tmp=$(mktemp -d)
installed=0
cleanup() {
  if [ $installed = 1 ]; then make -s -C "$root_dir" uninstall >/dev/null 2>&1 || rm -f "$target"; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
state() { [ -e "$target" ] && stat -c '%i %s %Y' "$target" || echo absent; }
before_state=$(state)

# 1. DESTDIR
stage=$tmp/stage
make -s install DESTDIR="$stage" >>"$log" 2>&1 || fail "DESTDIR=$stage make install failed (see $log)"
[ "$(state)" = "$before_state" ] || {
  [ "$before_state" = absent ] && rm -f "$target"
  fail "DESTDIR make install changed $target outside DESTDIR"
}
files=$(cd "$stage" && find . ! -type d | sort)
[ "$files" = "./${target#/}" ] || fail "DESTDIR make install installed [$(echo $files)], expected only ./${target#/}"
cmp -s "$stage$target" build/vecstore.so || fail "DESTDIR make install: $stage$target differs from build/vecstore.so"
make -s uninstall DESTDIR="$stage" >>"$log" 2>&1 || fail "DESTDIR=$stage make uninstall failed (see $log)"
left=$(cd "$stage" && find . ! -type d)
[ -z "$left" ] || fail "DESTDIR make uninstall left [$(echo $left)]"
summary="DESTDIR install/uninstall ok"

# 2. The real install.
if [ "$(id -u)" != 0 ]; then
  echo "check_install: $summary; real install skipped (not root) ($((SECONDS - start)) s)"
  exit 0
fi
if [ -e "$target" ]; then
  echo "check_install: $summary; real install skipped: $target exists and was not installed by this check ($((SECONDS - start)) s)"
  exit 0
fi
listing_before=$(ls -A "$libdir" 2>/dev/null)
installed=1
make -s install >>"$log" 2>&1 || fail "make install failed (see $log)"
cmp -s "$target" build/vecstore.so || fail "make install: $target differs from build/vecstore.so"

empty=$tmp/empty
mkdir -p "$empty"
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3) || fail "no python3"
load_sqlite() { (cd "$empty" && env -u LD_LIBRARY_PATH sqlite3 :memory: '.load vecstore' 'select vecstore_version()' 2>&1); }
load_python() {
  (cd "$empty" && env -u LD_LIBRARY_PATH "$py" -c '
import sqlite3
c = sqlite3.connect(":memory:")
c.enable_load_extension(True)
c.load_extension("vecstore")
print(c.execute("select vecstore_version()").fetchone()[0])' 2>&1)
}
out=$(load_sqlite)
[ "$out" = "$version" ] || fail "after make install ($target) sqlite3 '.load vecstore' from an empty directory gave: $(echo $out | cut -c1-160)"
out=$(load_python)
[ "$out" = "$version" ] || fail "after make install ($target) python3 load_extension(\"vecstore\") gave: $(echo $out | tail -c 160)"

make -s uninstall >>"$log" 2>&1 || fail "make uninstall failed (see $log)"
installed=0
[ ! -e "$target" ] || fail "make uninstall left $target"
out=$(load_sqlite) && fail "after make uninstall sqlite3 '.load vecstore' still works: $out"
out=$(load_python) && fail "after make uninstall python3 load_extension(\"vecstore\") still works: $out"
[ "$(ls -A "$libdir" 2>/dev/null)" = "$listing_before" ] || fail "make uninstall did not restore the listing of $libdir"
echo "check_install: $summary; installed $target, loaded by bare name in sqlite3 and python3, uninstalled ($((SECONDS - start)) s)"
