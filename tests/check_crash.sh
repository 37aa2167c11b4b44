#!/usr/bin/env bash
# Crash safety (issue 6): tests/crash/crash_harness.c SIGKILLs a vecstore writer at random points (mid-transaction,
# mid-commit, mid-snapshot, mid-optimize), in WAL and rollback-journal modes, on Flat, HNSW, IVF and index-switching
# tables, and after every kill checks that the file opens, passes both integrity checks, holds every committed row
# (searchable) and nothing uncommitted. About 50 s; CRASH_SECONDS / CRASH_ITERATIONS run it longer (see
# tests/mk/crash.mk). Prints one line; the whole output is in build/crash/last.log.
set -u
cd "$(dirname "$0")/.."
make -s build/vecstore.so build/crash/crash_harness >/dev/null || exit 1
log=build/crash/last.log
if build/crash/crash_harness >"$log" 2>&1; then
  tail -n 1 "$log"
else
  cat "$log"
  exit 1
fi
